//! The PCI domain behind an Intel Volume Management Device: its ECAM window and memory windows.
//!
//! A VMD is an endpoint on the platform's bus that owns a PCI domain of its own (facts as
//! Linux's VMD driver uses them):
//! - BAR0 (CFGBAR) is an ECAM window for the domain's buses, one megabyte per bus, its first
//!   megabyte being the domain's first bus;
//! - BAR2 (MEMBAR1) and BAR4 (MEMBAR2) are the memory the domain's root ports forward to their
//!   devices; the first 8 KiB of MEMBAR2 hold the VMD's own MSI-X table and pending bits, so the
//!   domain's window starts after them;
//! - on most models (all but 8086:201d) the domain's bus numbers may be restricted: if bit 0
//!   of VMCAP (config offset 0x40) is set, bits 9..8 of VMCONFIG (0x44) select the first bus:
//!   0, 128 or 224 (value 3 is reserved).
//!
//! The domain gets a segment number of the caller's choosing (one the MCFG does not use). Its
//! functions enumerate like any other range; their BARs must lie in a root port's window (as
//! everywhere) and in one of the VMD's memory windows; the VMD itself needs memory decoding
//! (for the CFGBAR and the windows) and bus mastering (to pass the drives' DMA upstream).
//! Interrupts behind a VMD are remapped through its MSI-X table; this project polls and needs
//! none.

use pci_types::PciAddress;

use crate::bar::DecodedBar;
use crate::bridge::MemoryWindow;
use crate::command::enable_bridge_forwarding;
use crate::config::{Config, ConfigurationAccess};
use crate::ecam::{BUS_WINDOW_SIZE, EcamEntry};
use crate::enumerate::BusRange;
use crate::error::Error;
use crate::function::Function;
use crate::storage_mode::StorageHider;

/// VMCAP (VMD capability register), bits 0..16 of the dword at 0x40.
const VMCAP: u16 = 0x40;
/// VMCONFIG (VMD configuration register), the dword at 0x44.
const VMCONFIG: u16 = 0x44;
/// The BAR slots of CFGBAR, MEMBAR1 and MEMBAR2.
const CFGBAR: u8 = 0;
const MEMBAR1: u8 = 2;
const MEMBAR2: u8 = 4;
/// Bytes at the start of MEMBAR2 that belong to the VMD itself (MSI-X table and PBA).
const MEMBAR2_RESERVED: u64 = 0x2000;
/// The one VMD model without bus-number restriction.
const DEVICE_WITHOUT_BUS_RESTRICTION: u16 = 0x201d;

/// VMCAP (bits 0..16 of the dword at 0x40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VmCapability(u32);

impl VmCapability {
    /// Bit 0: the domain's bus numbers can be restricted (VMCONFIG says how).
    const BUS_RESTRICTION: u32 = 1 << 0;

    fn bus_restriction(self) -> bool {
        self.0 & Self::BUS_RESTRICTION != 0
    }
}

/// VMCONFIG (the dword at 0x44).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VmConfiguration(u32);

impl VmConfiguration {
    /// Bits 9..8: where the domain's bus numbers start.
    const BUS_RESTRICTION_SHIFT: u32 = 8;
    const BUS_RESTRICTION_MASK: u32 = 0b11;

    /// The first bus of the domain; `None` for the reserved setting.
    fn first_bus(self) -> Option<u8> {
        match (self.0 >> Self::BUS_RESTRICTION_SHIFT) & Self::BUS_RESTRICTION_MASK {
            0 => Some(0),
            1 => Some(128),
            2 => Some(224),
            _ => None,
        }
    }
}

/// The PCI domain of one Intel VMD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmdDomain {
    controller: PciAddress,
    ecam: EcamEntry,
    windows: [Option<MemoryWindow>; 2],
}

impl VmdDomain {
    /// Reads the domain of the VMD `function` (found by enumeration), numbering it `segment`.
    ///
    /// Errors: [`Error::NotVmd`]; [`Error::BarMissing`] or [`Error::BarUnassigned`] for the
    /// CFGBAR; [`Error::VmdBusRestrictionReserved`]; [`Error::EcamEntryInvalid`] for a CFGBAR
    /// smaller than one bus.
    pub fn read(
        access: &impl ConfigurationAccess,
        function: &Function,
        segment: u16,
    ) -> Result<VmdDomain, Error> {
        let address = function.address;
        if function.storage_hider() != Some(StorageHider::IntelVmd) {
            return Err(Error::NotVmd { address });
        }
        let cfgbar = memory_bar(function, CFGBAR).ok_or(Error::BarMissing {
            address,
            index: CFGBAR,
        })?;
        if cfgbar.address == 0 {
            return Err(Error::BarUnassigned {
                address,
                index: CFGBAR,
            });
        }

        let config = Config::new(access, address);
        let restricted = function.device_id != DEVICE_WITHOUT_BUS_RESTRICTION
            && VmCapability(config.read(VMCAP)).bus_restriction();
        let first_bus = if restricted {
            let setting = VmConfiguration(config.read(VMCONFIG));
            setting
                .first_bus()
                .ok_or(Error::VmdBusRestrictionReserved { address })?
        } else {
            0
        };
        let buses = cfgbar.size / BUS_WINDOW_SIZE;
        let Some(last) = buses.checked_sub(1) else {
            return Err(Error::EcamEntryInvalid {
                segment,
                start_bus: first_bus,
                end_bus: first_bus,
                base: cfgbar.address,
                defect: crate::error::EcamDefect::WindowSmallerThanOneBus,
            });
        };
        let last_bus = u64::from(first_bus)
            .saturating_add(last)
            .min(u64::from(u8::MAX)) as u8;
        let ecam = EcamEntry::from_window(segment, first_bus, last_bus, cfgbar.address)?;

        let membar1 = memory_bar(function, MEMBAR1)
            .filter(|bar| bar.address != 0)
            .and_then(|bar| window(bar.address, bar.size));
        let membar2 = memory_bar(function, MEMBAR2)
            .filter(|bar| bar.address != 0 && bar.size > MEMBAR2_RESERVED)
            .and_then(|bar| window(bar.address + MEMBAR2_RESERVED, bar.size - MEMBAR2_RESERVED));
        Ok(VmdDomain {
            controller: address,
            ecam,
            windows: [membar1, membar2],
        })
    }

    /// The VMD endpoint.
    pub fn controller(&self) -> PciAddress {
        self.controller
    }

    /// The domain's ECAM window (the CFGBAR).
    pub fn ecam(&self) -> EcamEntry {
        self.ecam
    }

    /// The domain's buses, to enumerate.
    pub fn range(&self) -> BusRange {
        self.ecam.range()
    }

    /// Whether `function` is in this domain.
    pub fn contains(&self, function: &Function) -> bool {
        function.address.segment() == self.range().segment
    }

    /// The memory the domain's devices can decode: MEMBAR1, and MEMBAR2 after the VMD's own
    /// 8 KiB.
    pub fn windows(&self) -> impl Iterator<Item = MemoryWindow> + '_ {
        self.windows.iter().flatten().copied()
    }

    /// Whether `size` bytes from `address` lie inside one of the domain's memory windows.
    pub fn forwards(&self, address: u64, size: u64) -> bool {
        self.windows().any(|window| window.contains(address, size))
    }

    /// Turns on the VMD's memory decoding (its CFGBAR and windows) and bus mastering (the
    /// domain's DMA), leaving its other command bits as they are.
    pub fn enable(&self, access: &impl ConfigurationAccess) -> Result<(), Error> {
        enable_bridge_forwarding(&Config::new(access, self.controller))
    }
}

/// The implemented memory BAR in slot `index`.
fn memory_bar(function: &Function, index: u8) -> Option<DecodedBar> {
    function
        .bar(index)
        .filter(|bar| bar.is_memory() && bar.size > 0)
        .copied()
}

/// The window of `size` bytes from `address`, if it does not wrap.
fn window(address: u64, size: u64) -> Option<MemoryWindow> {
    let limit = address.checked_add(size.checked_sub(1)?)?;
    Some(MemoryWindow {
        base: address,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_restriction_settings() {
        assert_eq!(VmConfiguration(0x000).first_bus(), Some(0));
        assert_eq!(VmConfiguration(0x100).first_bus(), Some(128));
        assert_eq!(VmConfiguration(0x200).first_bus(), Some(224));
        assert_eq!(VmConfiguration(0x300).first_bus(), None);
        assert!(VmCapability(0x1).bus_restriction());
        assert!(!VmCapability(0x2).bus_restriction());
    }
}
