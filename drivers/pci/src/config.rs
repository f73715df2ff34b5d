//! Raw configuration-space dword access and register offsets; the only module with `unsafe`.
//!
//! `pci_types::ConfigRegionAccess::{read, write}` are `unsafe fn`: the caller promises that the
//! address and offset are valid. This module keeps that promise in one place:
//! - offsets: every access goes through [`Config::read`] / [`Config::write`], which only pass on
//!   dword-aligned offsets below 0x100 (the configuration header and the capability area that
//!   both mechanisms reach). Any other offset (only possible if a device-supplied pointer slipped
//!   past validation) is not sent to the hardware: reads return all-ones ("absent"), writes are
//!   dropped.
//! - addresses: a `Config` is built only for addresses in the bus ranges the kernel gave to
//!   `enumerate`, or for an address the kernel passed to `enable_for_dma`. The crate documents
//!   (lib.rs) that the kernel's implementation must accept those, and that absent functions read
//!   all-ones, which is how both configuration mechanisms behave.
//!
//! Writes to the command register are always made with the status half (bits 16..32) zero:
//! status bits are read-only or write-1-to-clear, so writing zero leaves them unchanged, while
//! writing back what was read would clear pending error bits.
#![allow(unsafe_code)]

use pci_types::{ConfigRegionAccess, PciAddress};

/// Vendor ID (bits 0..16) and device ID (bits 16..32).
pub(crate) const ID: u16 = 0x00;
/// Command (bits 0..16) and status (bits 16..32).
pub(crate) const COMMAND_STATUS: u16 = 0x04;
/// First base address register; BAR n is at `BAR0 + 4 * n`.
pub(crate) const BAR0: u16 = 0x10;
/// Type 1 (PCI-to-PCI bridge) header: memory base (bits 0..16) and memory limit (bits 16..32).
/// PCI-to-PCI Bridge Architecture Specification 1.2, section 3.2.5.8.
pub(crate) const BRIDGE_MEMORY_BASE_LIMIT: u16 = 0x20;
/// Type 1 header: prefetchable memory base (bits 0..16) and limit (bits 16..32), section 3.2.5.9.
pub(crate) const BRIDGE_PREFETCHABLE_BASE_LIMIT: u16 = 0x24;
/// Type 1 header: prefetchable base, upper 32 bits (section 3.2.5.10).
pub(crate) const BRIDGE_PREFETCHABLE_BASE_UPPER: u16 = 0x28;
/// Type 1 header: prefetchable limit, upper 32 bits (section 3.2.5.10).
pub(crate) const BRIDGE_PREFETCHABLE_LIMIT_UPPER: u16 = 0x2c;
/// Capabilities pointer for header types 0 and 1 (bits 0..8).
pub(crate) const CAPABILITY_POINTER: u16 = 0x34;
/// Capabilities pointer for the CardBus header (type 2), bits 0..8.
pub(crate) const CARDBUS_CAPABILITY_POINTER: u16 = 0x14;
/// Interrupt line (bits 0..8) and interrupt pin (bits 8..16), all header types.
pub(crate) const INTERRUPT: u16 = 0x3c;
/// First offset after the standard header: where capabilities may live.
pub(crate) const CAPABILITY_AREA_START: u16 = 0x40;
/// Highest dword offset this crate accesses (end of the PCI-compatible space).
pub(crate) const LAST_DWORD: u16 = 0xfc;

/// One function's configuration space, through the kernel's access implementation.
pub(crate) struct Config<'a, A: ConfigRegionAccess + ?Sized> {
    access: &'a A,
    address: PciAddress,
}

impl<'a, A: ConfigRegionAccess + ?Sized> Config<'a, A> {
    /// The configuration space of the function at `address`.
    pub(crate) fn new(access: &'a A, address: PciAddress) -> Self {
        Config { access, address }
    }

    /// The function's address.
    pub(crate) fn address(&self) -> PciAddress {
        self.address
    }

    /// Reads the dword at `offset`; all-ones if the offset is not a valid dword offset.
    pub(crate) fn read(&self, offset: u16) -> u32 {
        if !valid_offset(offset) {
            return u32::MAX;
        }
        // SAFETY: `offset` is dword-aligned and below 0x100 (checked above); the address is one
        // the kernel declared accessible (see the module notes and the crate documentation).
        unsafe { self.access.read(self.address, offset) }
    }

    /// Writes the dword at `offset`; dropped if the offset is not a valid dword offset.
    pub(crate) fn write(&self, offset: u16, value: u32) {
        if !valid_offset(offset) {
            return;
        }
        // SAFETY: as for `read`: aligned offset inside the header/capability area, at an address
        // the kernel declared accessible. What is written (BAR probe/restore, command bits) is
        // decided by the callers in this crate, which restore every value they change.
        unsafe { self.access.write(self.address, offset, value) }
    }
}

/// Whether `offset` is a dword-aligned offset this crate may access.
fn valid_offset(offset: u16) -> bool {
    offset.is_multiple_of(4) && offset <= LAST_DWORD
}
