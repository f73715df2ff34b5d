//! Flushed data survives QEMU being killed: a kernel writes and flushes
//! rounds of blocks until the host sends SIGKILL; a second boot on the same
//! image checks that every flushed block is there and that no block holds
//! garbage or another block's data (unflushed rounds may be lost).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use boot::disk;
use boot::qemu::{Machine, Outcome, run};

mod support;

fn machine(kernel: &Path, dir: &Path, settings: &str, disk_path: &Path) -> Machine {
    support::machine(kernel, dir, settings, &[(disk_path, "DURABLE0")])
}

#[test]
fn flushed_blocks_survive_sigkill() {
    let kernel = support::kernel("example", "durability");
    let dir = tempfile::tempdir().unwrap();
    let disk_path = dir.path().join("disk.img");
    disk::create_if_missing(&disk_path, 16 << 20).unwrap();
    disk::stamp(&disk_path, "DURABLE0", 1).unwrap();

    let writer = machine(&kernel, dir.path(), "mode = write\n", &disk_path);
    let mut child = writer
        .command()
        .unwrap()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut flushed = 0u64;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(n) = line.trim().strip_prefix("FLUSHED ") {
            flushed = n.parse().unwrap();
            // Kill in the middle of the work, once several slots wrapped.
            if flushed >= 40 {
                break;
            }
        }
    }
    // SIGKILL: no chance for QEMU to write anything back on its way out.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(flushed >= 40, "the writer stopped early at round {flushed}");

    let checker = machine(
        &kernel,
        dir.path(),
        &format!("mode = check\nflushed = {flushed}\n"),
        &disk_path,
    );
    let result = run(&checker, Duration::from_secs(120), None).unwrap();
    let line = result
        .serial
        .lines()
        .find(|l| l.starts_with("CHECKED"))
        .unwrap_or("no CHECKED line");
    assert_eq!(
        result.outcome,
        Outcome::Success,
        "{line}\n{}",
        result.serial
    );
    assert_eq!(line, format!("CHECKED flushed={flushed} garbage=0 lost=0"));
}
