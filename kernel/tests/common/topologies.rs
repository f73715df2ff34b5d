//! The two PCI topologies the PCI tests boot, each under BIOS and UEFI:
//! what QEMU is given, and exactly what the scan must find.

use super::Expected;

/// `pc`: an NVMe controller behind a PCI-to-PCI bridge and one on the root
/// bus (the bridge and the disks are in each test's `qemu_machine!`).
pub const PC_WITH_BRIDGE: &[Expected] = &[
    (0, 0, 0, 0x8086, 0x1237, 0x06, 0x00), // i440FX host bridge
    (0, 1, 0, 0x8086, 0x7000, 0x06, 0x01), // PIIX3 ISA bridge
    (0, 1, 1, 0x8086, 0x7010, 0x01, 0x01), // PIIX3 IDE
    (0, 1, 3, 0x8086, 0x7113, 0x06, 0x80), // PIIX4 ACPI
    (0, 2, 0, 0x1234, 0x1111, 0x03, 0x00), // VGA
    (0, 5, 0, 0x1b36, 0x0001, 0x06, 0x04), // PCI-to-PCI bridge
    (0, 6, 0, 0x1b36, 0x0010, 0x01, 0x08), // NVMe on the root bus
    (1, 3, 0, 0x1b36, 0x0010, 0x01, 0x08), // NVMe behind the bridge
];

/// `q35`: an NVMe controller behind a PCIe root port and one on the root
/// complex.
pub const Q35_WITH_ROOT_PORT: &[Expected] = &[
    (0, 0, 0, 0x8086, 0x29c0, 0x06, 0x00),    // Q35 host bridge
    (0, 1, 0, 0x1234, 0x1111, 0x03, 0x00),    // VGA
    (0, 4, 0, 0x1b36, 0x000c, 0x06, 0x04),    // PCIe root port
    (0, 6, 0, 0x1b36, 0x0010, 0x01, 0x08),    // NVMe on the root complex
    (0, 0x1f, 0, 0x8086, 0x2918, 0x06, 0x01), // ICH9 LPC
    (0, 0x1f, 2, 0x8086, 0x2922, 0x01, 0x06), // ICH9 AHCI
    (0, 0x1f, 3, 0x8086, 0x2930, 0x0c, 0x05), // ICH9 SMBus
    (1, 0, 0, 0x1b36, 0x0010, 0x01, 0x08),    // NVMe behind the root port
];

/// On q35, configuration space is ECAM and the NVMe controller behind the
/// root port shows its PCI Express and MSI-X capabilities.
pub fn check_q35_specifics() {
    let pci = super::pci();
    assert_eq!(pci.config.describe(), "ECAM (ACPI MCFG)");
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
