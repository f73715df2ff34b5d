//! PCI on QEMU's `q35` machine under UEFI with an NVMe controller behind a
//! PCI Express switch: root port, switch upstream port, switch downstream
//! port. The scan records that path, and preparing the controller turns
//! memory decoding and bus mastering on along all three bridges.

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
    "machine=q35",
    "firmware=uefi",
    "qemu=-nic",
    "qemu=none",
    "qemu=-device",
    "qemu=pcie-root-port,id=rp1,chassis=1,bus=pcie.0,addr=4",
    "qemu=-device",
    "qemu=x3130-upstream,id=up1,bus=rp1",
    "qemu=-device",
    "qemu=xio3130-downstream,id=dn1,bus=up1,chassis=2,slot=0",
    "nvme=16M,bus=dn1",
);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn the_path_through_the_switch_is_recorded_and_enabled_by_prepare() {
    common::topologies::check_bridge_path_enabled_by_prepare(3);
}

#[test_case]
fn the_controller_behind_the_switch_is_ready() {
    common::assert_nvme_ready(1);
}
