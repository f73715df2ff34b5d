//! The default application end to end in QEMU: data safety (an unsigned
//! disk is byte-for-byte unchanged after a full run and reported
//! read-only), the settings path (a changed setting changes what runs,
//! without a rebuild), and the machine-readable report.

use std::path::Path;
use std::time::Duration;

use boot::disk;
use boot::qemu::{Outcome, run};

mod support;

/// Boot the default application with `settings` and the given disks.
fn boot(dir: &Path, settings: &str, disks: &[(&Path, &str)]) -> boot::qemu::Run {
    let kernel = support::app("inspector");
    let machine = support::machine(&kernel, dir, settings, disks);
    let result = run(&machine, Duration::from_secs(240), None).unwrap();
    assert!(
        result.nvme_violations.is_empty(),
        "{:?}",
        result.nvme_violations
    );
    result
}

fn json_line(serial: &str) -> &str {
    serial
        .lines()
        .find_map(|l| l.strip_prefix("JSON "))
        .expect("no JSON report line")
}

fn checksum(path: &Path) -> u64 {
    // FNV-1a over the whole file: any changed byte changes it.
    std::fs::read(path)
        .unwrap()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

#[test]
fn unsigned_disk_is_untouched_and_reported_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let owned = dir.path().join("owned.img");
    let foreign = dir.path().join("foreign.img");
    disk::create_if_missing(&owned, 32 << 20).unwrap();
    disk::stamp(&owned, "OWNED0", 1).unwrap();
    // Somebody's disk: non-zero content everywhere, including a signature
    // stamped for another controller (it must not count).
    let content: Vec<u8> = (0..(32u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&foreign, &content).unwrap();
    disk::stamp(&foreign, "SOMEONE-ELSE", 1).unwrap();
    let before = checksum(&foreign);
    let owned_before = checksum(&owned);

    let result = boot(
        dir.path(),
        "steps=identify,verify,bench\nverify_span=2M\nbench_ms=100\n",
        &[(owned.as_path(), "OWNED0"), (foreign.as_path(), "FOREIGN1")],
    );
    assert_eq!(
        result.outcome,
        Outcome::Success,
        "serial:\n{}",
        result.serial
    );
    assert_eq!(checksum(&foreign), before, "the unowned disk was modified");
    assert_ne!(
        checksum(&owned),
        owned_before,
        "the owned disk was not written at all"
    );
    assert!(
        result.serial.contains(
            "namespace 1 of FOREIGN1: read-only: signature names another controller serial"
        ),
        "{}",
        result.serial
    );
    assert!(result.serial.contains("namespace 1 of OWNED0: owned"));
    let json = json_line(&result.serial);
    assert!(
        json.contains("\"serial\":\"FOREIGN1\",\"nsid\":1,\"owned\":false,\"verified_bytes\":0"),
        "{json}"
    );
    assert!(json.contains("\"serial\":\"OWNED0\",\"nsid\":1,\"owned\":true,\"verified_bytes\":2097152,\"mismatches\":0"), "{json}");
    assert!(json.contains("\"pass\":true"));
}

#[test]
fn settings_change_what_runs_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let owned = dir.path().join("owned.img");
    disk::create_if_missing(&owned, 16 << 20).unwrap();
    disk::stamp(&owned, "OWNED0", 1).unwrap();
    let disks = [(owned.as_path(), "OWNED0")];

    let identify_only = boot(dir.path(), "steps=identify\n", &disks);
    assert_eq!(identify_only.outcome, Outcome::Success);
    assert!(identify_only.serial.contains("Model      QEMU NVMe Ctrl"));
    assert!(
        !identify_only.serial.contains("verify:"),
        "verify ran although not asked for"
    );
    assert!(!identify_only.serial.contains("SMART / health"));
    assert!(json_line(&identify_only.serial).contains("\"verified_bytes\":0"));

    let verify_only = boot(
        dir.path(),
        "steps = smart, verify\nverify_span = 1M\nlog = warn\n",
        &disks,
    );
    assert_eq!(verify_only.outcome, Outcome::Success);
    assert!(verify_only.serial.contains("SMART / health"));
    assert!(!verify_only.serial.contains("Model      QEMU NVMe Ctrl"));
    assert!(json_line(&verify_only.serial).contains("\"verified_bytes\":1048576"));
    assert!(
        !verify_only.serial.contains("INFO  kernel::pci"),
        "log level setting ignored"
    );

    let bad = boot(dir.path(), "steps=identify\nfrobnicate=yes\n", &disks);
    assert!(
        bad.serial
            .contains("settings: line 2: `frobnicate=yes` not understood; ignored"),
        "{}",
        bad.serial
    );
}
