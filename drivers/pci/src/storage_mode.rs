//! Controllers that hide NVMe drives: Intel VMD ("RAID On", Intel RST) and RAID-mode storage.
//!
//! Many laptops ship with the firmware's storage mode ("SATA operation", "NVMe operation") set
//! to Intel RST / RAID. The NVMe drives then sit behind an Intel Volume Management Device, a
//! root-complex endpoint that owns a PCI domain of its own: its root ports and the drives do
//! not appear in the platform's configuration space at all, only the VMD endpoint does. A
//! SATA controller in RAID mode (class 01h, subclass 04h) likewise hides its disks behind a
//! vendor interface. Neither is something this project drives; the user can switch the storage
//! mode to AHCI/NVMe in the firmware setup and the drives appear as plain NVMe functions.
//!
//! Recognised by the Intel VMD device IDs that Linux's VMD driver binds to, and by the
//! mass-storage RAID class code: from identification fields alone, so this module sits below
//! `function`, which asks it about each function it reads (`StorageHider::of`).

use core::fmt;

/// Intel's PCI vendor ID.
const VENDOR_INTEL: u16 = 0x8086;
/// Device IDs of Intel Volume Management Devices (server and client platforms).
const INTEL_VMD_DEVICE_IDS: [u16; 11] = [
    0x201d, 0x28c0, 0x467f, 0x4c3d, 0x7d0b, 0x9a0b, 0xa77f, 0xad0b, 0xb06f, 0xb07f, 0xb60b,
];
/// Class code of a RAID controller: mass storage (01h), RAID bus controller (04h).
const RAID_CLASS: (u8, u8) = (0x01, 0x04);

/// What the user is told, once, when such a controller is present.
pub const HIDDEN_STORAGE_ADVICE: &str = "The NVMe drives are behind Intel VMD/RAID; switch the \
     storage mode (SATA/NVMe operation) to AHCI/NVMe in the firmware setup.";

/// A controller that keeps drives out of sight of an NVMe driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageHider {
    /// An Intel Volume Management Device: its NVMe drives live in a PCI domain of its own.
    IntelVmd,
    /// A storage controller in RAID mode (class 01h, subclass 04h).
    RaidController,
}

impl StorageHider {
    /// Whether a function with these identification fields hides drives, and how.
    pub(crate) fn identify(
        vendor_id: u16,
        device_id: u16,
        class: u8,
        subclass: u8,
    ) -> Option<StorageHider> {
        if vendor_id == VENDOR_INTEL && INTEL_VMD_DEVICE_IDS.contains(&device_id) {
            Some(StorageHider::IntelVmd)
        } else if (class, subclass) == RAID_CLASS {
            Some(StorageHider::RaidController)
        } else {
            None
        }
    }
}

impl fmt::Display for StorageHider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageHider::IntelVmd => {
                "Intel VMD (RAID On / Intel RST): NVMe drives behind it are not visible"
            }
            StorageHider::RaidController => {
                "storage controller in RAID mode: drives behind it are not visible"
            }
        })
    }
}
