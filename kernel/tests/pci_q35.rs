//! PCI on QEMU's `q35` machine, booted under BIOS and then UEFI (ECAM
//! through ACPI MCFG): the exact devices, an NVMe controller behind a PCIe
//! root port, and a second one on the root complex, both enabled and
//! mapped.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use bootloader_api::{BootInfo, entry_point};
use common::topologies::{Q35_WITH_ROOT_PORT, check_q35_specifics};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!(
    "machine=q35",
    "firmware=bios,uefi",
    "qemu=-nic",
    "qemu=none",
    "qemu=-device",
    "qemu=pcie-root-port,id=rp1,chassis=1,bus=pcie.0,addr=4",
    "nvme=16M,bus=rp1",
    "nvme=16M,addr=6",
);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn finds_exactly_the_devices_qemu_was_given() {
    common::assert_exact_devices(Q35_WITH_ROOT_PORT);
}

#[test_case]
fn both_nvme_controllers_are_enabled_and_mapped() {
    common::assert_nvme_ready(2);
}

#[test_case]
fn ecam_and_the_root_port_device_capabilities() {
    check_q35_specifics();
}

#[test_case]
fn the_bridge_above_an_nvme_controller_is_enabled_by_prepare() {
    common::topologies::check_bridge_path_enabled_by_prepare(1);
}
