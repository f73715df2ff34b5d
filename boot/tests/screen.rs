//! What a person sees: a screen dump (QEMU monitor `screendump`) taken at
//! the end of the default application's run shows the report (the
//! framebuffer is not blank, and text covers a good part of it), and the
//! serial JSON report parses with the expected figures; on a 4K screen the
//! text is drawn three times larger.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
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

/// Boot `machine` (with a monitor on `socket`), wait for the JSON report
/// line on serial, take a screen dump, then end the run (a byte on serial
/// ends the application's linger). Returns the serial text up to the JSON
/// line, the JSON line, the dump and QEMU's exit code.
fn run_to_report(
    machine: &mut boot::qemu::Machine,
    socket: &Path,
    dump: &Path,
) -> (String, String, Vec<u8>, Option<i32>) {
    machine.add_monitor(socket);
    let mut child = machine
        .command()
        .unwrap()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut serial = String::new();
    let mut json = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap().replace('\r', "");
        if let Some(rest) = line.strip_prefix("JSON ") {
            json = Some(rest.to_owned());
            break;
        }
        serial.push_str(&line);
        serial.push('\n');
    }
    let json = json.unwrap_or_else(|| panic!("no JSON line on serial:\n{serial}"));
    boot::qemu::monitor_command(
        socket,
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
    let data = std::fs::read(dump).expect("screen dump written");
    (serial, json, data, exit.code())
}

/// Share of pixels with any channel above a dim grey.
fn lit_share(width: usize, height: usize, pixels: &[u8]) -> f64 {
    let lit = pixels
        .chunks(3)
        .filter(|p| p.iter().any(|&c| c > 64))
        .count();
    lit as f64 / (width * height) as f64
}

/// The tallest run of consecutive pixel rows holding a lit pixel: about
/// the height of a line of text (glyphs are 16 px high unscaled).
fn tallest_text_run(width: usize, pixels: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for row in pixels.chunks(width * 3) {
        if row.chunks(3).any(|p| p.iter().any(|&c| c > 64)) {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[test]
fn final_screen_shows_the_report_and_json_parses() {
    let kernel = support::app("inspector");
    let dir = tempfile::tempdir().unwrap();
    let settings = "bench_ms=200\nverify_span=4M\nlinger_ms=60000\n";
    let disk_path = support::disk_image(dir.path(), "scratch.img", 64 << 20, Some("UNIKERNEL0"));
    let mut machine =
        support::machine(&kernel, dir.path(), settings, &[(&disk_path, "UNIKERNEL0")]);
    let socket = dir.path().join("monitor.sock");
    let dump = dir.path().join("screen.ppm");
    let (_, json, data, exit) = run_to_report(&mut machine, &socket, &dump);
    assert_eq!(exit, Some(33), "the application did not pass");

    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report parses");
    assert_eq!(report["pass"], true);
    assert_eq!(report["controllers"], 1);
    let ns = &report["namespaces"][0];
    assert_eq!(ns["owned"], true);
    assert_eq!(ns["verified_bytes"], 4 << 20);
    assert_eq!(ns["bench"].as_array().map(Vec::len), Some(5));
    assert!(ns["bench"][0]["iops"].as_f64().unwrap() > 0.0);

    let (width, height, pixels) = parse_ppm(&data);
    assert!(width >= 640 && height >= 400, "{width}x{height}");
    let share = lit_share(width, height, pixels);
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

/// A 4K screen under UEFI (OVMF offers the modes QEMU's VGA `xres`/`yres`
/// allow; the image's boot configuration asks the bootloader for at least
/// 3840x2160): the report is drawn with the font scaled 3x.
#[test]
fn report_on_a_4k_screen_uses_a_large_font() {
    let kernel = support::app("inspector");
    let dir = tempfile::tempdir().unwrap();
    let settings = "bench_ms=100\nverify_span=1M\nlinger_ms=60000\n";
    let disk_path = support::disk_image(dir.path(), "scratch.img", 16 << 20, Some("UNIKERNEL0"));
    let image = dir.path().join("uefi-4k.img");
    let mut config = bootloader::BootConfig::default();
    config.frame_buffer.minimum_framebuffer_width = Some(3840);
    config.frame_buffer.minimum_framebuffer_height = Some(2160);
    bootloader::DiskImageBuilder::new(kernel)
        .set_boot_config(&config)
        .set_file_contents(boot::image::SETTINGS_FILE.into(), settings.into())
        .create_uefi_image(&image)
        .unwrap();
    let mut machine = boot::qemu::Machine::new(image, dir.path().to_path_buf());
    machine.firmware = boot::qemu::Firmware::Uefi;
    machine.machine = "q35".into();
    machine
        .disks
        .push(boot::qemu::NvmeDisk::new(disk_path, "UNIKERNEL0"));
    machine.extra.extend(
        [
            "-vga",
            "none",
            "-device",
            "VGA,xres=3840,yres=2160,vgamem_mb=64",
        ]
        .map(String::from),
    );
    let socket = dir.path().join("monitor.sock");
    let dump = dir.path().join("screen.ppm");
    let (serial, json, data, exit) = run_to_report(&mut machine, &socket, &dump);
    assert_eq!(exit, Some(33), "the application did not pass:\n{serial}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report parses");
    assert_eq!(report["pass"], true);

    let (width, height, pixels) = parse_ppm(&data);
    assert!(width >= 3840 && height >= 2160, "{width}x{height}");
    assert!(
        serial.contains(&format!("framebuffer: {width}x{height}, font scale 3")),
        "{serial}"
    );
    assert!(
        lit_share(width, height, pixels) > 0.02,
        "screen looks blank"
    );
    // 3x glyphs: a line of text is far taller than an unscaled one (16 px).
    let run = tallest_text_run(width, pixels);
    assert!((33..=48).contains(&run), "tallest text line {run} px");
    if let Ok(keep) = std::env::var("SCREEN_DUMP_4K_OUT") {
        std::fs::copy(&dump, keep).unwrap();
    }
}
