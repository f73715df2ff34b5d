//! PCI on QEMU's `pc` machine under BIOS (port I/O configuration access):
//! the exact devices, an NVMe controller behind a PCI-to-PCI bridge, and a
//! second one on the root bus.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use bootloader_api::{BootInfo, entry_point};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!(
    "machine=pc",
    "firmware=bios",
    "qemu=-nic",
    "qemu=none",
    "qemu=-device",
    "qemu=pci-bridge,id=br1,chassis_nr=1,bus=pci.0,addr=5",
    "nvme=16M,bus=br1,addr=3",
    "nvme=16M,addr=6",
);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::set_kernel(kernel::init(boot_info, "warn"));
    common::pci();
    test_main();
    kernel::exit(kernel::ExitStatus::Success)
}

#[test_case]
fn finds_exactly_the_devices_qemu_was_given() {
    common::assert_exact_devices(&[
        (0, 0, 0, 0x8086, 0x1237, 0x06, 0x00), // i440FX host bridge
        (0, 1, 0, 0x8086, 0x7000, 0x06, 0x01), // PIIX3 ISA bridge
        (0, 1, 1, 0x8086, 0x7010, 0x01, 0x01), // PIIX3 IDE
        (0, 1, 3, 0x8086, 0x7113, 0x06, 0x80), // PIIX4 ACPI
        (0, 2, 0, 0x1234, 0x1111, 0x03, 0x00), // VGA
        (0, 5, 0, 0x1b36, 0x0001, 0x06, 0x04), // PCI-to-PCI bridge
        (0, 6, 0, 0x1b36, 0x0010, 0x01, 0x08), // NVMe on the root bus
        (1, 3, 0, 0x1b36, 0x0010, 0x01, 0x08), // NVMe behind the bridge
    ]);
}

#[test_case]
fn both_nvme_controllers_are_enabled_and_mapped() {
    common::assert_nvme_ready(2);
}
