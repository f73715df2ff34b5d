//! The two PCI topologies the PCI tests boot, each under BIOS and UEFI:
//! what QEMU is given, and exactly what the scan must find.

use pci::ConfigurationAccess;

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

/// Command register offset and the bits a bridge on an NVMe path needs.
const COMMAND: u16 = 0x04;
const MEMORY_SPACE: u32 = 1 << 1;
const BUS_MASTER: u32 = 1 << 2;

/// The NVMe controller behind the most bridges, with the `bridges` bridges
/// above it: turn memory decoding and bus mastering off on every one of
/// them (as firmware leaves ports it did not boot through), prepare the
/// controller, and check that both are on again along the whole path and
/// that BAR0 answers.
pub fn check_bridge_path_enabled_by_prepare(bridges: usize) {
    let pci = super::pci();
    let kernel = super::kernel();
    let behind = pci
        .enumeration
        .nvme_controllers()
        .max_by_key(|f| pci.enumeration.upstream_bridges(f).len())
        .expect("an NVMe controller");
    let path = pci.enumeration.upstream_bridges(behind);
    assert_eq!(path.len(), bridges, "bridges above {}", behind.address);
    assert_eq!(path.last().map(|b| b.address), behind.upstream);
    for bridge in &path {
        // The command register is at 0x04; writing the status half as
        // zero leaves its write-1-to-clear bits alone.
        let command = pci.config.read(bridge.address, COMMAND) & 0xffff;
        pci.config.write(
            bridge.address,
            COMMAND,
            command & !(MEMORY_SPACE | BUS_MASTER),
        );
    }
    let bar = pci
        .prepare_nvme(&kernel.memory, behind)
        .expect("NVMe behind the bridge prepared");
    for bridge in &path {
        let command = pci.config.read(bridge.address, COMMAND);
        assert_eq!(
            command & (MEMORY_SPACE | BUS_MASTER),
            MEMORY_SPACE | BUS_MASTER,
            "bridge {} command {command:#06x}",
            bridge.address
        );
    }
    // NVMe VS (offset 8): readable only if the bridge forwards BAR0 again.
    let vs = (bar.virt.as_u64() + 8) as *const u32;
    // SAFETY: BAR0 was just mapped uncached; VS is a read-only register.
    let version = unsafe { core::ptr::read_volatile(vs) };
    assert!(
        version >> 16 >= 1,
        "NVMe version {version:#x} behind the bridge"
    );
}
