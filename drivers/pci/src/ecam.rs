//! ECAM address arithmetic for one ACPI MCFG entry.
//!
//! PCI Express Base Specification, section 7.2.2 (Enhanced Configuration Access Mechanism): each
//! function has 4 KiB of configuration space at
//! `base + (bus << 20 | device << 15 | function << 12) + offset`.
//! PCI Firmware Specification 3.x, table 4-3 (MCFG): an entry's base address is that of bus 0
//! of its segment, even when the entry's start bus is not 0. So bus B of an entry is at
//! `base + (B << 20)`, and the memory an entry actually describes starts at
//! `base + (start_bus << 20)`: that is what a kernel maps, and offsets into the mapping subtract
//! the start bus. Mapping from `base` instead (and subtracting the start bus) reads bus 0's
//! window as the start bus.
//!
//! An entry is rejected when its bus range is reversed, when its base has bits set below 1 MiB
//! (bus windows are 1 MiB and bus 0's starts at the base), or when its last bus would end past
//! the 64-bit address space.

use pci_types::PciAddress;

use crate::enumerate::BusRange;
use crate::error::{EcamDefect, Error};

/// Bytes of configuration space per bus: 32 devices x 8 functions x 4 KiB.
pub const BUS_WINDOW_SIZE: u64 = 1 << 20;
/// Bytes of configuration space per function.
pub const FUNCTION_WINDOW_SIZE: u64 = 1 << 12;
/// Bit position of the bus number in an ECAM offset.
const BUS_SHIFT: u32 = 20;
/// Bit position of the device number.
const DEVICE_SHIFT: u32 = 15;
/// Bit position of the function number.
const FUNCTION_SHIFT: u32 = 12;

/// One MCFG entry (or another ECAM window, such as an Intel VMD's CFGBAR), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcamEntry {
    range: BusRange,
    /// The physical address of the start bus's window.
    window_start: u64,
}

impl EcamEntry {
    /// Validates an MCFG entry: `base` is the address of bus 0 of `segment` (see the module
    /// notes), the entry covers buses `start_bus..=end_bus`.
    pub fn new(segment: u16, start_bus: u8, end_bus: u8, base: u64) -> Result<EcamEntry, Error> {
        let defect = if start_bus > end_bus {
            Some(EcamDefect::BusRangeReversed)
        } else if !base.is_multiple_of(BUS_WINDOW_SIZE) {
            Some(EcamDefect::BaseMisaligned)
        } else if base
            .checked_add((u64::from(end_bus) + 1) << BUS_SHIFT)
            .is_none()
        {
            Some(EcamDefect::PastAddressSpace)
        } else {
            None
        };
        if let Some(defect) = defect {
            return Err(Error::EcamEntryInvalid {
                segment,
                start_bus,
                end_bus,
                base,
                defect,
            });
        }
        Ok(EcamEntry {
            range: BusRange {
                segment,
                start_bus,
                end_bus,
            },
            window_start: base + (u64::from(start_bus) << BUS_SHIFT),
        })
    }

    /// An ECAM window whose first megabyte is bus `start_bus` (not bus 0), as an Intel VMD's
    /// CFGBAR is for its domain. Rejected like [`EcamEntry::new`], with `base` in the error
    /// being `window_start`.
    pub fn from_window(
        segment: u16,
        start_bus: u8,
        end_bus: u8,
        window_start: u64,
    ) -> Result<EcamEntry, Error> {
        let buses = u64::from(end_bus.saturating_sub(start_bus)) + 1;
        let defect = if start_bus > end_bus {
            Some(EcamDefect::BusRangeReversed)
        } else if !window_start.is_multiple_of(BUS_WINDOW_SIZE) {
            Some(EcamDefect::BaseMisaligned)
        } else if window_start.checked_add(buses << BUS_SHIFT).is_none() {
            Some(EcamDefect::PastAddressSpace)
        } else {
            None
        };
        if let Some(defect) = defect {
            return Err(Error::EcamEntryInvalid {
                segment,
                start_bus,
                end_bus,
                base: window_start,
                defect,
            });
        }
        Ok(EcamEntry {
            range: BusRange {
                segment,
                start_bus,
                end_bus,
            },
            window_start,
        })
    }

    /// The buses this entry reaches.
    pub fn range(&self) -> BusRange {
        self.range
    }

    /// The physical address of the first bus this entry covers: what to map.
    pub fn window_start(&self) -> u64 {
        self.window_start
    }

    /// The length of the entry's window: one megabyte per bus.
    pub fn window_len(&self) -> u64 {
        (u64::from(self.range.end_bus - self.range.start_bus) + 1) << BUS_SHIFT
    }

    /// Where the dword at `offset` of the function at `address` is, relative to
    /// [`EcamEntry::window_start`]; `None` if the address is not in this entry or the offset is
    /// not a dword-aligned offset below 4 KiB.
    pub fn offset_in_window(&self, address: PciAddress, offset: u16) -> Option<u64> {
        if address.segment() != self.range.segment
            || !self.range.contains(address.bus())
            || u64::from(offset) >= FUNCTION_WINDOW_SIZE
            || !offset.is_multiple_of(4)
        {
            return None;
        }
        let bus = u64::from(address.bus() - self.range.start_bus);
        Some(
            bus << BUS_SHIFT
                | u64::from(address.device()) << DEVICE_SHIFT
                | u64::from(address.function()) << FUNCTION_SHIFT
                | u64::from(offset),
        )
    }

    /// The physical address of the dword at `offset` of the function at `address`.
    pub fn physical_address(&self, address: PciAddress, offset: u16) -> Option<u64> {
        self.offset_in_window(address, offset)
            .map(|within| self.window_start() + within)
    }
}
