//! Intel VMD and RAID-mode controllers are recognised, marked in the listing, and explained.

mod common;

use common::{FakeConfigSpace, FakeFunction};
use pci::{HIDDEN_STORAGE_ADVICE, PciAddress, StorageHider, enumerate};

fn addr(device: u8) -> PciAddress {
    PciAddress::new(0, 0, device, 0)
}

/// A Tiger Lake laptop in "RAID On": host bridge, VMD 8086:9a0b (class 01h/04h as it reports
/// itself) with its CFGBAR, MEMBAR1 and MEMBAR2, and the SATA controller in RAID mode.
fn laptop_in_raid_mode() -> FakeConfigSpace {
    FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x9a14, [0x06, 0x00, 0x00], 1),
        )
        .with(
            0,
            0,
            0x0e,
            0,
            FakeFunction::endpoint(0x8086, 0x9a0b, [0x01, 0x04, 0x00], 0)
                .mem64(0, 0x60_0000_0000, 32 << 20, false)
                .mem64(2, 0x60_0400_0000, 32 << 20, false)
                .mem64(4, 0x60_0600_0000, 1 << 20, false),
        )
        .with(
            0,
            0,
            0x17,
            0,
            FakeFunction::endpoint(0x8086, 0xa0d3, [0x01, 0x04, 0x00], 0x20).mem32(
                5,
                0xfd10_0000,
                2048,
                false,
            ),
        )
        .with(
            0,
            0,
            0x14,
            0,
            FakeFunction::endpoint(0x8086, 0xa0ed, [0x0c, 0x03, 0x30], 0x20),
        )
}

#[test]
fn vmd_and_raid_controllers_are_recognised() {
    let enumeration = enumerate(&laptop_in_raid_mode(), &[pci::BusRange::LEGACY]);
    let hiders: Vec<(PciAddress, StorageHider)> = enumeration
        .storage_hiders()
        .map(|(function, hider)| (function.address, hider))
        .collect();
    assert_eq!(
        hiders,
        [
            (addr(0x0e), StorageHider::IntelVmd),
            (addr(0x17), StorageHider::RaidController),
        ]
    );
    assert_eq!(enumeration.nvme_controllers().count(), 0);
}

#[test]
fn every_listed_vmd_device_id_is_recognised_whatever_its_class() {
    for device in [
        0x201d, 0x28c0, 0x467f, 0x4c3d, 0x7d0b, 0x9a0b, 0xa77f, 0xad0b, 0xb06f, 0xb07f, 0xb60b,
    ] {
        let space = FakeConfigSpace::new().with(
            0,
            0,
            0x0e,
            0,
            FakeFunction::endpoint(0x8086, device, [0x08, 0x80, 0x00], 0),
        );
        let enumeration = enumerate(&space, &[pci::BusRange::LEGACY]);
        assert_eq!(
            enumeration.functions[0].storage_hider(),
            Some(StorageHider::IntelVmd),
            "{device:04x}"
        );
    }
    // The same device ID from another vendor, and Intel's AHCI controller, hide nothing.
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            1,
            0,
            FakeFunction::endpoint(0x1022, 0x9a0b, [0x08, 0x80, 0x00], 0),
        )
        .with(
            0,
            0,
            0x17,
            0,
            FakeFunction::endpoint(0x8086, 0xa0d3, [0x01, 0x06, 0x01], 0x20),
        );
    let enumeration = enumerate(&space, &[pci::BusRange::LEGACY]);
    assert_eq!(enumeration.storage_hiders().count(), 0);
}

#[test]
fn the_listing_marks_them_and_the_advice_is_plain() {
    let enumeration = enumerate(&laptop_in_raid_mode(), &[pci::BusRange::LEGACY]);
    let vmd = enumeration.function(addr(0x0e)).unwrap().to_string();
    assert!(
        vmd.starts_with("0000:00:0e.0 RAID bus controller [0104]: 8086:9a0b"),
        "{vmd}"
    );
    assert!(
        vmd.ends_with("\n    Hides drives: Intel VMD (RAID On / Intel RST): NVMe drives behind it are not visible"),
        "{vmd}"
    );
    let raid = enumeration.function(addr(0x17)).unwrap().to_string();
    assert!(
        raid.contains("\n    Hides drives: storage controller in RAID mode"),
        "{raid}"
    );
    let usb = enumeration.function(addr(0x14)).unwrap().to_string();
    assert!(!usb.contains("Hides drives"), "{usb}");
    assert_eq!(
        HIDDEN_STORAGE_ADVICE,
        "The NVMe drives are behind Intel VMD/RAID; switch the storage mode (SATA/NVMe \
         operation) to AHCI/NVMe in the firmware setup."
    );
}
