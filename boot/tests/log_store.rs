//! The log application (`apps/log`) keeps an append-only log that survives reboots:
//! three boots of the same disk image, three records, in order; a disk
//! without the ownership signature is refused and left unchanged; QEMU
//! killed while several tasks append loses no record announced durable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boot::disk;
use boot::qemu::{Machine, Outcome, run};

mod support;

fn example() -> PathBuf {
    support::app("log")
}

fn machine(kernel: &Path, dir: &Path, settings: &str, disk_path: &Path) -> Machine {
    support::machine(kernel, dir, settings, &[(disk_path, "LOG0")])
}

fn boot(kernel: &Path, dir: &Path, message: &str, disk_path: &Path) -> boot::qemu::Run {
    let machine = machine(kernel, dir, &format!("message = {message}\n"), disk_path);
    let result = run(&machine, Duration::from_secs(120), None).unwrap();
    assert!(
        result.nvme_violations.is_empty(),
        "{:?}",
        result.nvme_violations
    );
    result
}

#[test]
fn records_survive_reboots_in_order() {
    let kernel = example();
    let dir = tempfile::tempdir().unwrap();
    let disk_path = dir.path().join("log.img");
    disk::create_if_missing(&disk_path, 16 << 20).unwrap();
    disk::stamp(&disk_path, "LOG0", 1).unwrap();
    for (boot_number, message) in ["first", "second", "third"].iter().enumerate() {
        let result = boot(&kernel, dir.path(), message, &disk_path);
        assert_eq!(result.outcome, Outcome::Success, "{}", result.serial);
        assert!(
            result
                .serial
                .contains(&format!("log holds {} records", boot_number + 1)),
            "{}",
            result.serial
        );
    }
    let last = boot(&kernel, dir.path(), "fourth", &disk_path);
    let records: Vec<&str> = last
        .serial
        .lines()
        .filter(|l| l.starts_with("log record"))
        .collect();
    assert_eq!(
        records,
        [
            "log record 0: first",
            "log record 1: second",
            "log record 2: third",
            "log record 3: fourth"
        ]
    );
}

#[test]
fn unsigned_disk_is_refused_and_unchanged() {
    let kernel = example();
    let dir = tempfile::tempdir().unwrap();
    let disk_path = dir.path().join("foreign.img");
    disk::create_if_missing(&disk_path, 16 << 20).unwrap();
    let before = std::fs::read(&disk_path).unwrap();
    let result = boot(&kernel, dir.path(), "intruder", &disk_path);
    assert_eq!(result.outcome, Outcome::Failure);
    assert!(
        result.serial.contains("no owned namespace"),
        "{}",
        result.serial
    );
    assert!(
        std::fs::read(&disk_path).unwrap() == before,
        "the unsigned disk changed"
    );
}

#[test]
fn durable_records_survive_sigkill_in_the_middle_of_appending() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let kernel = example();
    let dir = tempfile::tempdir().unwrap();
    let disk_path = dir.path().join("log.img");
    disk::create_if_missing(&disk_path, 16 << 20).unwrap();
    disk::stamp(&disk_path, "LOG0", 1).unwrap();
    let writer = machine(
        &kernel,
        dir.path(),
        "message = entry\nappends = 3000\n",
        &disk_path,
    );
    let mut child = writer
        .command()
        .unwrap()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut durable = 0u64;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().trim().strip_prefix("APPENDED ") {
            // Announced in order, each time the durable prefix grows.
            let n: u64 = n.parse().unwrap();
            assert!(n > durable, "APPENDED {n} after APPENDED {durable}");
            durable = n;
            if durable >= 25 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(durable >= 25, "the writer stopped at {durable}");

    let result = boot(&kernel, dir.path(), "after-crash", &disk_path);
    assert_eq!(result.outcome, Outcome::Success, "{}", result.serial);
    let records: Vec<&str> = result
        .serial
        .lines()
        .filter(|l| l.starts_with("log record"))
        .collect();
    // Every durable record is there, in order; at most a few more (appended
    // after the last line the host read) precede the new one.
    assert!(
        records.len() as u64 > durable,
        "{} records, {durable} were durable",
        records.len()
    );
    for (i, record) in records[..records.len() - 1].iter().enumerate() {
        assert_eq!(*record, format!("log record {i}: entry {i}"));
    }
    assert_eq!(
        *records.last().unwrap(),
        format!("log record {}: after-crash", records.len() - 1)
    );
}
