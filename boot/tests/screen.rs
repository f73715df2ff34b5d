//! What a person sees: a screen dump (QEMU monitor `screendump`) taken at
//! the end of the default application's run shows the report (the
//! framebuffer is not blank, and text covers a good part of it), and the
//! serial JSON report parses with the expected figures.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boot::qemu::{Machine, NvmeDisk};
use boot::{disk, image};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Parse a binary PPM (P6): width, height, RGB bytes.
fn parse_ppm(data: &[u8]) -> (usize, usize, &[u8]) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(std::str::from_utf8(&data[start..at]).unwrap().to_owned());
    }
    assert_eq!(fields[0], "P6");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, &data[at + 1..at + 1 + w * h * 3])
}

fn monitor(socket: &Path, command: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("monitor: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    let start = Instant::now();
    while text.matches("(qemu)").count() < 2 && start.elapsed() < Duration::from_secs(20) {
        if let Ok(n) = stream.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

#[test]
fn final_screen_shows_the_report_and_json_parses() {
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "build",
            "--package",
            "kernel",
            "--target",
            "x86_64-unknown-none",
            "--bin",
            "kernel",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let kernel = workspace().join("target/x86_64-unknown-none/debug/kernel");
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("screen.img");
    let settings = "bench_ms=200\nverify_span=4M\nlinger_ms=60000\n";
    image::build(
        &kernel,
        &image_path,
        &image::ImageSpec {
            settings: Some(settings.into()),
        },
    )
    .unwrap();
    let disk_path = dir.path().join("scratch.img");
    disk::create_if_missing(&disk_path, 64 << 20).unwrap();
    disk::stamp(&disk_path, "UNIKERNEL0", 1).unwrap();
    let mut machine = Machine::new(image_path, dir.path().to_path_buf());
    machine.disks.push(NvmeDisk::new(disk_path, "UNIKERNEL0"));
    let socket = dir.path().join("monitor.sock");
    machine.extra = vec![
        "-monitor".into(),
        format!("unix:{},server=on,wait=off", socket.display()),
    ];
    let mut child = machine
        .command()
        .unwrap()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut json = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap().replace('\r', "");
        if let Some(rest) = line.strip_prefix("JSON ") {
            json = Some(rest.to_owned());
            break;
        }
    }
    let json = json.expect("no JSON line on serial");
    let dump = dir.path().join("screen.ppm");
    monitor(&socket, &format!("screendump {}", dump.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dump.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stdin.write_all(b"q").unwrap();
    stdin.flush().unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(33), "the application did not pass");

    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report parses");
    assert_eq!(report["pass"], true);
    assert_eq!(report["controllers"], 1);
    let ns = &report["namespaces"][0];
    assert_eq!(ns["owned"], true);
    assert_eq!(ns["verified_bytes"], 4 << 20);
    assert_eq!(ns["bench"].as_array().map(Vec::len), Some(5));
    assert!(ns["bench"][0]["iops"].as_f64().unwrap() > 0.0);

    let data = std::fs::read(&dump).expect("screen dump written");
    let (width, height, pixels) = parse_ppm(&data);
    assert!(width >= 640 && height >= 400, "{width}x{height}");
    let lit = pixels
        .chunks(3)
        .filter(|p| p.iter().any(|&c| c > 64))
        .count();
    let share = lit as f64 / (width * height) as f64;
    // Text on a black background: a full screen of report lights a few
    // percent of the pixels; a blank or nearly empty screen lights none.
    assert!(
        share > 0.02,
        "screen looks blank: {:.4} of pixels lit",
        share
    );
    if let Ok(keep) = std::env::var("SCREEN_DUMP_OUT") {
        std::fs::copy(&dump, keep).unwrap();
    }
}
