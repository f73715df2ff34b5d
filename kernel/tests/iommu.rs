//! An Intel VT-d IOMMU on q35: the kernel finds it through DMAR at boot,
//! and a unit left translating (turned on here with an empty root table,
//! so every DMA faults and NVMe bring-up fails) is turned off by the
//! kernel's own path, after which NVMe bring-up and I/O work.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::vec;
use bootloader_api::{BootInfo, entry_point};
use common::{fill_pattern, kernel, with_nvme};
use iommu::RemappingUnit;
use iommu::registers::REGISTER_PAGE;
use iommu::unit::DEFAULT_TIMEOUT_NS;
use kernel::iommu::{Outcome, TscClock, UnitRegisters};
use x86_64::PhysAddr;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
// The IOMMU comes before the NVMe device (the runner puts qemu= lines
// first), so the device's DMA goes through it.
kernel::qemu_machine!(
    "machine=q35",
    "qemu=-device",
    "qemu=intel-iommu",
    "nvme=16M",
    "timeout=120"
);

/// Where QEMU puts its VT-d unit's registers (hw/i386/intel_iommu.h).
const QEMU_UNIT: u64 = 0xfed9_0000;

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn t1_boot_finds_the_unit_with_translation_off() {
    let k = kernel();
    let found = kernel::iommu::quiesce(&k.memory, k.rsdp);
    assert_eq!(found.units.len(), 1, "{:?}", found.units);
    let unit = found.units[0];
    assert_eq!(unit.register_base, QEMU_UNIT);
    assert_eq!(unit.segment, 0);
    assert_eq!(unit.outcome, Outcome::WasOff);
    let state = unit.before.expect("registers read");
    assert!(state.version.major() >= 1, "{state:?}");
    assert!(!state.translating());
    assert_eq!(kernel::iommu::dma_ready(), Ok(()));
    // The table itself: the unit covers the NVMe function at 00:03.0,
    // either as "every PCI device" or through a device scope.
    let acpi = kernel::acpi::Acpi::new(k.memory.physical_map(), k.rsdp);
    let bytes = acpi
        .table_bytes(kernel::acpi::RawSignature::Dmar)
        .expect("DMAR");
    let dmar = iommu::Dmar::parse(bytes).expect("DMAR parses");
    assert!(dmar.host_address_width() >= 39);
    let drhd = dmar.units().next().expect("a DRHD").expect("well formed");
    let covers_nvme = drhd.include_pci_all()
        || drhd
            .device_scopes()
            .any(|s| s.start_bus == 0 && s.path().next() == Some((3, 0)));
    assert!(covers_nvme, "{drhd:?}");
}

#[test_case]
fn t2_translation_left_on_is_turned_off_and_nvme_does_io() {
    let k = kernel();
    let memory = &k.memory;
    // Firmware's part: an empty root table (every root entry not present,
    // so every DMA faults), latched, then translation on.
    let root = memory.allocate_dma(4096).expect("root table");
    let region = memory
        .map_mmio(PhysAddr::new(QEMU_UNIT), REGISTER_PAGE)
        .expect("map the unit");
    // SAFETY: QEMU's VT-d register page, just mapped uncached; the MMIO
    // window is never unmapped.
    let registers = unsafe { UnitRegisters::new(region) }.expect("registers");
    let unit = RemappingUnit::new(registers);
    let clock = TscClock;
    unit.set_root_table(root.phys().as_u64(), &clock, DEFAULT_TIMEOUT_NS)
        .expect("root table latched");
    unit.enable_translation(&clock, DEFAULT_TIMEOUT_NS)
        .expect("translation on");
    assert!(unit.status().translation_enabled(), "GSTS.TES not set");

    // While it translates, the controller's DMA (its first admin command
    // fetch) faults, and bring-up fails.
    let (attached, failed) =
        kernel::storage::attach_all(memory, common::pci(), nvme::Config::default());
    assert!(
        attached.is_empty(),
        "NVMe came up through an empty root table"
    );
    assert!(
        matches!(failed[..], [(_, kernel::storage::AttachError::Driver(_))]),
        "{failed:?}"
    );

    // The kernel's path, as at boot.
    let found = kernel::iommu::scan(memory, k.rsdp);
    assert_eq!(found.units.len(), 1);
    assert!(found.units[0].before.expect("state").translating());
    assert_eq!(found.units[0].outcome, Outcome::TurnedOff);
    assert_eq!(found.dma_ready(), Ok(()));
    assert!(!unit.status().translation_enabled(), "GSTS.TES still set");
    memory.free_dma(root).expect("free the root table");

    // Real NVMe DMA: bring-up (admin queue, Identify), then writes and
    // reads that must round-trip.
    with_nvme(|all| {
        assert_eq!(all.len(), 1);
        let mut dev = all[0].controller.namespace(1).expect("namespace 1");
        dev.set_writable(true);
        let bs = dev.block_size();
        let mut data = vec![0u8; 64 * bs];
        let mut back = vec![0u8; 64 * bs];
        for lba in [0u64, 1000, dev.block_count() - 64] {
            fill_pattern(&mut data, lba, bs, 7);
            dev.write(lba, &data).expect("write");
            back.fill(0);
            dev.read(lba, &mut back).expect("read");
            assert!(data == back, "blocks at {lba} did not round-trip");
        }
    });
}
