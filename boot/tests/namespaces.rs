//! The default application in QEMU with namespaces that refuse writes: an
//! owned disk behind a read-only drive (`readonly=on`: QEMU fails every
//! write with Write Fault), and a zoned namespace (`nvme-ns,zoned=true`).
//! Each is reported once for what it is, gets no write it would refuse
//! beyond the first one that revealed it, still has its read steps run,
//! keeps its bytes, and the run passes.

use std::path::Path;
use std::time::Duration;

use boot::disk;
use boot::qemu::{Outcome, run};

mod support;

fn checksum(path: &Path) -> u64 {
    std::fs::read(path)
        .unwrap()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

fn json_line(serial: &str) -> &str {
    serial
        .lines()
        .find_map(|l| l.strip_prefix("JSON "))
        .expect("no JSON report line")
}

#[test]
fn read_only_drive_is_reported_write_protected_once_and_still_read() {
    let result = boot_read_only(
        "steps=identify,verify,bench,soak\nverify_span=1M\nbench_ms=100\nsoak_ms=500\n\
         bench_jobs=randread-4k-qd1,randwrite-4k-qd32,write-128k-qd8\n",
    );
    let serial = &result.serial;
    // Owned (it carries the signature); the one write that reached the
    // device was verify's first, which revealed the protection.
    assert!(serial.contains("namespace 1 of RDONLY0: owned"), "{serial}");
    assert!(
        serial.contains("write pass stopped, the span is read twice"),
        "{serial}"
    );
    // Reported once, by the step that met the refusal.
    assert_eq!(serial.matches("refused (").count(), 1, "{serial}");
    assert!(
        serial.contains("randwrite-4k-qd32    skipped: namespace write-protected"),
        "{serial}"
    );
    assert!(
        serial.contains("write-128k-qd8       skipped: namespace write-protected"),
        "{serial}"
    );
    assert!(
        serial.contains("soak: skipped: namespace is write-protected"),
        "{serial}"
    );
    // The read steps ran.
    assert!(
        serial.contains("BENCH-RESULT {\"job\":\"randread-4k-qd1\""),
        "{serial}"
    );
    let json = json_line(serial);
    assert!(
        json.contains("\"owned\":true,\"verified_bytes\":0,\"mismatches\":0,\"errors\":0,\"write_protected\":true,\"read_verified_bytes\":1048576"),
        "{json}"
    );
}

/// Boot the default application with `settings` and the stamped disk
/// `RDONLY0` behind a `readonly=on` drive; checks the run passed, the disk
/// is unchanged and exactly one write reached the device (and failed).
fn boot_read_only(settings: &str) -> boot::qemu::Run {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("readonly.img");
    disk::create_if_missing(&image, 32 << 20).unwrap();
    disk::stamp(&image, "RDONLY0", 1).unwrap();
    let before = checksum(&image);
    let kernel = support::app("inspector");
    let mut machine = support::machine(&kernel, dir.path(), settings, &[(&image, "RDONLY0")]);
    machine.disks[0].drive_options.push("readonly=on".into());
    let result = run(&machine, Duration::from_secs(240), None).unwrap();
    assert_eq!(
        result.outcome,
        Outcome::Success,
        "serial:\n{}",
        result.serial
    );
    assert!(
        result.nvme_violations.is_empty(),
        "{:?}",
        result.nvme_violations
    );
    assert_eq!(checksum(&image), before, "the read-only disk changed");
    let failed_writes = result
        .nvme_errors
        .iter()
        .filter(|l| l.contains("pci_nvme_err_aio"))
        .count();
    assert_eq!(failed_writes, 1, "{:?}", result.nvme_errors);
    assert!(json_line(&result.serial).contains("\"pass\":true"));
    result
}

#[test]
fn write_steps_at_depth_stop_at_their_first_refused_write() {
    // Without verify first, the benchmark's write job is the first to
    // meet the refusal; then the soak, on its own.
    let bench = boot_read_only(
        "steps=bench,soak\nbench_ms=100\nsoak_ms=500\nbench_jobs=randread-4k-qd1,randwrite-4k-qd32\n",
    );
    assert!(
        bench
            .serial
            .contains("randwrite-4k-qd32    stopped: namespace refused writes (write-protected)"),
        "{}",
        bench.serial
    );
    assert!(
        bench
            .serial
            .contains("soak: skipped: namespace is write-protected")
    );
    assert!(
        bench
            .serial
            .contains("BENCH-RESULT {\"job\":\"randread-4k-qd1\"")
    );
    let soak = boot_read_only("steps=soak\nsoak_ms=500\n");
    assert!(
        soak.serial
            .contains("soak: stopped at the first refused write: namespace is write-protected"),
        "{}",
        soak.serial
    );
}

#[test]
fn zoned_namespace_is_reported_with_its_zone_size_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("zoned.img");
    // Somebody's zoned drive: content everywhere.
    let content: Vec<u8> = (0..(16u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&image, &content).unwrap();
    let before = checksum(&image);

    let kernel = support::app("inspector");
    let settings = "steps=identify,verify,bench\nverify_span=1M\nbench_ms=100\n\
                    bench_unowned_reads=yes\nbench_jobs=randread-4k-qd1,randwrite-4k-qd32\n";
    let mut machine = support::machine(&kernel, dir.path(), settings, &[]);
    machine.extra.extend(
        [
            "-device",
            "nvme,id=zctrl,serial=ZONED0",
            "-drive",
            &format!("if=none,id=zns,file={},format=raw", image.display()),
            "-device",
            "nvme-ns,drive=zns,bus=zctrl,nsid=1,zoned=true,zoned.zone_size=1M",
        ]
        .map(String::from),
    );
    let result = run(&machine, Duration::from_secs(240), None).unwrap();
    let serial = &result.serial;

    assert_eq!(result.outcome, Outcome::Success, "serial:\n{serial}");
    assert!(
        result.nvme_violations.is_empty(),
        "{:?}",
        result.nvme_violations
    );
    assert!(result.nvme_errors.is_empty(), "{:?}", result.nvme_errors);
    assert_eq!(checksum(&image), before, "the zoned namespace was written");
    assert!(
        serial.contains(
            "namespace 1 of ZONED0: read-only: zoned namespace (never owned), zoned (zone 1.05 MB)"
        ),
        "{serial}"
    );
    assert!(serial.contains("zoned, zone 1.05 MB"), "{serial}");
    assert!(
        serial.contains("verify: skipped: zoned namespace"),
        "{serial}"
    );
    assert!(
        serial.contains("randwrite-4k-qd32    skipped: zoned namespace"),
        "{serial}"
    );
    assert!(
        serial.contains("BENCH-RESULT {\"job\":\"randread-4k-qd1\""),
        "{serial}"
    );
    let json = json_line(serial);
    assert!(
        json.contains("\"serial\":\"ZONED0\",\"nsid\":1,\"owned\":false,\"verified_bytes\":0,\"mismatches\":0,\"errors\":0,\"write_protected\":false,\"read_verified_bytes\":0,\"zone_bytes\":1048576"),
        "{json}"
    );
    assert!(json.contains("\"pass\":true"), "{json}");
}
