//! Configuration-space dword access: the trait the kernel implements, the offset check in front
//! of it, and the header's register offsets.
//!
//! [`ConfigurationAccess`] is safe to call: whoever implements it guarantees that every call is
//! sound, so this crate holds no `unsafe` at all. On top of it, [`Config`] keeps the crate's
//! accesses within what both configuration mechanisms reach:
//! - offsets: every access goes through [`Config::read`] / [`Config::write`], which only pass on
//!   dword-aligned offsets below 0x100 (the configuration header and the capability area). Any
//!   other offset (only possible if a device-supplied pointer slipped past validation) is not
//!   sent to the hardware: reads return all-ones ("absent"), writes are dropped.
//! - addresses: a `Config` is built only for addresses in the bus ranges the kernel gave to
//!   `enumerate`, or for an address the kernel passed to `enable_for_dma` or
//!   `prepare_for_driver`, and the bridges above it.
//!
//! Writes to the command register are always made with the status half (bits 16..32) zero:
//! status bits are read-only or write-1-to-clear, so writing zero leaves them unchanged, while
//! writing back what was read would clear pending error bits.

use pci_types::PciAddress;

/// Reads and writes dwords of PCI configuration space: the crate's only way to the hardware.
///
/// The kernel implements it over ECAM (the ACPI MCFG table) or the 0xCF8/0xCFC ports; the host
/// tests over a simulated configuration space.
///
/// The methods are safe to call, so the implementer guarantees that every call is sound, with
/// any `address` and any `offset`: an access the implementation cannot make soundly (an
/// unaligned offset, one past what its mechanism reaches, an address outside its windows) must
/// read all-ones and drop the write rather than reach the hardware. This crate itself only
/// passes dword-aligned offsets below 0x100, at addresses in the bus ranges given to `enumerate`
/// or passed to `enable_for_dma` and `prepare_for_driver` (and the bridges above them), and it
/// expects an absent function to read all-ones, as both configuration mechanisms do.
pub trait ConfigurationAccess {
    /// The dword at `offset` of the function at `address`; all-ones where nothing answers.
    fn read(&self, address: PciAddress, offset: u16) -> u32;

    /// Writes `value` to the dword at `offset` of the function at `address`.
    fn write(&self, address: PciAddress, offset: u16, value: u32);
}

/// Vendor ID (bits 0..16) and device ID (bits 16..32).
pub(crate) const ID: u16 = 0x00;
/// Command (bits 0..16) and status (bits 16..32).
pub(crate) const COMMAND_STATUS: u16 = 0x04;
/// Status bit 4 (bit 20 of the dword): the function has a capability list (PCI Local Bus 3.0,
/// section 6.2.3).
pub(crate) const STATUS_CAPABILITY_LIST: u32 = 1 << 20;
/// Revision ID (bits 0..8), programming interface (8..16), subclass (16..24), class (24..32).
pub(crate) const REVISION_CLASS: u16 = 0x08;
/// Cache line size, latency timer, header type (bits 16..24), BIST.
pub(crate) const HEADER_TYPE: u16 = 0x0c;
/// Type 1 header: primary (bits 0..8), secondary (8..16) and subordinate (16..24) bus numbers.
/// PCI-to-PCI Bridge Architecture Specification 1.2, sections 3.2.5.2 to 3.2.5.4.
pub(crate) const BRIDGE_BUS_NUMBERS: u16 = 0x18;
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
pub(crate) struct Config<'a, A: ConfigurationAccess + ?Sized> {
    access: &'a A,
    address: PciAddress,
}

impl<'a, A: ConfigurationAccess + ?Sized> Config<'a, A> {
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
        self.access.read(self.address, offset)
    }

    /// Writes the dword at `offset`; dropped if the offset is not a valid dword offset.
    pub(crate) fn write(&self, offset: u16, value: u32) {
        if !valid_offset(offset) {
            return;
        }
        // What is written (BAR probe and restore, command bits, PMCSR) is decided by the callers
        // in this crate, which restore every value they change.
        self.access.write(self.address, offset, value)
    }
}

/// Whether `offset` is a dword-aligned offset this crate may access.
fn valid_offset(offset: u16) -> bool {
    offset.is_multiple_of(4) && offset <= LAST_DWORD
}
