//! PCI on QEMU's `pc` machine, booted under BIOS and then UEFI (port I/O
//! configuration access): the exact devices, an NVMe controller behind a
//! PCI-to-PCI bridge, and a second one on the root bus, both enabled and
//! mapped.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use bootloader_api::{BootInfo, entry_point};
use common::topologies::PC_WITH_BRIDGE;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!(
    "machine=pc",
    "firmware=bios,uefi",
    "qemu=-nic",
    "qemu=none",
    "qemu=-device",
    "qemu=pci-bridge,id=br1,chassis_nr=1,bus=pci.0,addr=5",
    "nvme=16M,bus=br1,addr=3",
    "nvme=16M,addr=6",
);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn finds_exactly_the_devices_qemu_was_given() {
    common::assert_exact_devices(PC_WITH_BRIDGE);
}

#[test_case]
fn both_nvme_controllers_are_enabled_and_mapped() {
    common::assert_nvme_ready(2);
}

#[test_case]
fn the_bridge_above_an_nvme_controller_is_enabled_by_prepare() {
    common::topologies::check_bridge_path_enabled_by_prepare(1);
}
