//! The image as it reaches a real PC: written to a USB stick on an xHCI
//! controller and booted from it, on machine shapes that imitate recent
//! hardware (no PIT, an IOMMU, the NVMe drive behind a PCIe root port) and
//! an older one (no PIT and no HPET, conventional PCI). The whole default
//! run must pass on each.

use std::path::Path;
use std::time::Duration;

use boot::qemu::{BootDevice, Firmware, Outcome, Run, run};

mod support;

/// Short settings: every step, small enough to keep the boot quick.
const SETTINGS: &str = "steps=identify,smart,verify,bench\nverify_span=1M\nbench_ms=100\nbench_jobs=randread-4k-qd1,randwrite-4k-qd8\n";

fn boot_from_stick(
    dir: &Path,
    machine_type: &str,
    firmware: Firmware,
    extra: &[&str],
    disk_properties: &[&str],
) -> Run {
    let kernel = support::app("inspector");
    let disk = support::disk_image(dir, "owned.img", 32 << 20, Some("LAPTOP0"));
    let mut machine = support::machine(&kernel, dir, SETTINGS, &[(disk.as_path(), "LAPTOP0")]);
    machine.machine = machine_type.into();
    machine.firmware = firmware;
    machine.boot_device = BootDevice::UsbStick;
    machine.extra.extend(extra.iter().map(|a| a.to_string()));
    machine.disks[0]
        .properties
        .extend(disk_properties.iter().map(|p| p.to_string()));
    let result = run(&machine, Duration::from_secs(240), None).unwrap();
    assert!(
        result.nvme_violations.is_empty(),
        "{:?}",
        result.nvme_violations
    );
    assert_eq!(
        result.outcome,
        Outcome::Success,
        "serial:\n{}",
        result.serial
    );
    assert!(result.serial.contains("result: PASS"), "{}", result.serial);
    assert!(
        result.serial.contains("namespace 1 of LAPTOP0: owned"),
        "{}",
        result.serial
    );
    // The stick's xHCI controller is in the PCI listing (QEMU's qemu-xhci
    // is 1b36:000d), and there is no other disk the image could come from.
    assert!(
        result
            .serial
            .lines()
            .any(|l| l.contains("USB controller") && l.contains("1b36:000d")),
        "{}",
        result.serial
    );
    result
}

fn banner(serial: &str) -> &str {
    serial
        .lines()
        .find(|l| l.starts_with("nvme-unikernel "))
        .expect("no banner")
}

#[test]
fn recent_laptop_shape_boots_from_a_usb_stick_under_uefi() {
    let dir = tempfile::tempdir().unwrap();
    let result = boot_from_stick(
        dir.path(),
        "q35,pit=off",
        Firmware::Uefi,
        &[
            "-device",
            "intel-iommu",
            "-device",
            "pcie-root-port,id=rp1,chassis=1,bus=pcie.0,addr=4",
        ],
        &["bus=rp1"],
    );
    let banner = banner(&result.serial);
    assert!(banner.contains("firmware UEFI"), "{banner}");
    assert!(banner.contains("MHz (HPET, PM timer agrees)"), "{banner}");
    assert!(
        result.serial.contains("IOMMU: VT-d unit at 0xfed90000"),
        "{}",
        result.serial
    );
    // The drive sits on the bus behind the root port.
    assert!(
        result.serial.contains("NVMe controller 0000:01:00.0"),
        "{}",
        result.serial
    );
}

#[test]
fn older_pc_shape_without_pit_or_hpet_boots_from_a_usb_stick_under_bios() {
    let dir = tempfile::tempdir().unwrap();
    let result = boot_from_stick(dir.path(), "pc,pit=off,hpet=off", Firmware::Bios, &[], &[]);
    let banner = banner(&result.serial);
    assert!(banner.contains("firmware BIOS"), "{banner}");
    assert!(banner.contains("MHz (PM timer; PIT absent)"), "{banner}");
}
