//! PCI on QEMU's `q35` machine under UEFI (ECAM through ACPI MCFG): the
//! exact devices, an NVMe controller behind a PCIe root port, and a second
//! one on the root complex.

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
    "nvme=16M,bus=rp1",
    "nvme=16M,addr=6",
);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::set_kernel(kernel::init(boot_info, "warn"));
    common::pci();
    test_main();
    kernel::exit(kernel::ExitStatus::Success)
}

#[test_case]
fn configuration_space_is_ecam() {
    assert_eq!(common::pci().config.describe(), "ECAM (ACPI MCFG)");
}

#[test_case]
fn finds_exactly_the_devices_qemu_was_given() {
    common::assert_exact_devices(&[
        (0, 0, 0, 0x8086, 0x29c0, 0x06, 0x00),    // Q35 host bridge
        (0, 1, 0, 0x1234, 0x1111, 0x03, 0x00),    // VGA
        (0, 4, 0, 0x1b36, 0x000c, 0x06, 0x04),    // PCIe root port
        (0, 6, 0, 0x1b36, 0x0010, 0x01, 0x08),    // NVMe on the root complex
        (0, 0x1f, 0, 0x8086, 0x2918, 0x06, 0x01), // ICH9 LPC
        (0, 0x1f, 2, 0x8086, 0x2922, 0x01, 0x06), // ICH9 AHCI
        (0, 0x1f, 3, 0x8086, 0x2930, 0x0c, 0x05), // ICH9 SMBus
        (1, 0, 0, 0x1b36, 0x0010, 0x01, 0x08),    // NVMe behind the root port
    ]);
}

#[test_case]
fn both_nvme_controllers_are_enabled_and_mapped() {
    common::assert_nvme_ready(2);
}

#[test_case]
fn nvme_behind_the_root_port_has_a_pci_express_capability() {
    let pci = common::pci();
    let behind = pci
        .enumeration
        .nvme_controllers()
        .find(|f| f.address.bus() == 1)
        .expect("NVMe on bus 1");
    assert!(
        behind.capabilities.iter().any(|c| c.id == 0x10),
        "no PCIe capability: {:?}",
        behind.capabilities
    );
    assert!(behind.msix().is_some(), "no MSI-X capability");
}
