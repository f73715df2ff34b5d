//! What a person sees: a screen dump (QEMU monitor `screendump`) taken at
//! the end of the default application's run shows the report (the
//! framebuffer is not blank, and text covers a good part of it), and the
//! serial JSON report parses with the expected figures.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

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

#[test]
fn final_screen_shows_the_report_and_json_parses() {
    let kernel = support::kernel("bin", "kernel");
    let dir = tempfile::tempdir().unwrap();
    let settings = "bench_ms=200\nverify_span=4M\nlinger_ms=60000\n";
    let disk_path = support::disk_image(dir.path(), "scratch.img", 64 << 20, Some("UNIKERNEL0"));
    let mut machine =
        support::machine(&kernel, dir.path(), settings, &[(&disk_path, "UNIKERNEL0")]);
    let socket = dir.path().join("monitor.sock");
    machine.add_monitor(&socket);
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
    boot::qemu::monitor_command(
        &socket,
        &format!("screendump {}", dump.display()),
        Duration::from_secs(20),
    )
    .unwrap();
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
