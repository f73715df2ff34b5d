//! The crate's error enum and the problems enumeration records instead of failing.
//!
//! Enumeration never fails as a whole: a broken bridge, BAR or capability list is logged with
//! `log::warn!`, recorded as a [`Problem`], and skipped, and the walk goes on. Operations on a
//! single function ([`crate::enable_for_dma`]) return [`Error`].

use core::fmt;

use pci_types::PciAddress;

/// Why an operation on one function failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The function reads vendor ID 0xFFFF (or 0x0000): nothing answers at this address.
    FunctionAbsent {
        /// The address that was accessed.
        address: PciAddress,
    },
    /// The command register did not keep bits that were written to it.
    CommandNotAccepted {
        /// The function.
        address: PciAddress,
        /// The command value written.
        written: u16,
        /// The command value read back.
        read_back: u16,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FunctionAbsent { address } => write!(f, "no PCI function at {address}"),
            Error::CommandNotAccepted {
                address,
                written,
                read_back,
            } => write!(
                f,
                "{address}: command register wrote {written:#06x}, read back {read_back:#06x}"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Something wrong with the hardware's (or firmware's) configuration, found while enumerating.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A bus range with `start_bus > end_bus`; it was not scanned.
    InvalidRange {
        /// The PCI segment group.
        segment: u16,
        /// First bus.
        start_bus: u8,
        /// Last bus.
        end_bus: u8,
    },
    /// A PCI-to-PCI bridge whose secondary bus was not followed.
    BridgeNotFollowed {
        /// The bridge function.
        bridge: PciAddress,
        /// Its secondary bus number.
        secondary: u8,
        /// What is wrong with it.
        defect: BridgeDefect,
    },
    /// A header type other than 0, 1 or 2; the function was skipped.
    UnknownHeaderType {
        /// The function.
        address: PciAddress,
        /// The header type (bits 0..7 of the header-type byte).
        header_type: u8,
    },
    /// A BAR that cannot be decoded; it is not listed in the function's BARs.
    BarInvalid {
        /// The function.
        address: PciAddress,
        /// The BAR slot (0..6).
        index: u8,
        /// The BAR's value before probing.
        original: u32,
        /// What the BAR read after writing all-ones.
        probed: u32,
        /// What is wrong with it.
        defect: BarDefect,
    },
    /// A capability list that ended early; the capabilities before the fault are kept.
    CapabilityListBroken {
        /// The function.
        address: PciAddress,
        /// The offending pointer.
        offset: u8,
        /// What is wrong with it.
        defect: CapabilityDefect,
    },
}

/// Why a bridge's secondary bus was not followed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeDefect {
    /// The secondary bus lies outside the bus range being enumerated.
    SecondaryOutsideRange,
    /// The secondary bus is not greater than the bridge's own bus (unconfigured or out of order).
    SecondaryNotAboveOwnBus,
    /// The secondary bus was already scanned (a loop, or two bridges claiming one bus).
    SecondaryAlreadyVisited,
}

/// Why a BAR could not be decoded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarDefect {
    /// Memory BAR type 0b11, which the specification reserves.
    ReservedType,
    /// The size probe left no address bits writable, although the BAR is not all-zero.
    ZeroSizeMask,
    /// The writable address bits are not contiguous up to the top of the address space.
    NonContiguousSizeMask,
    /// An I/O BAR larger than the 64 KiB x86 I/O space.
    SizeExceedsAddressSpace,
    /// The address has bits set below the BAR's size (they must be hard-wired to zero).
    MisalignedAddress,
    /// A 64-bit memory BAR in the last slot, with no slot left for its upper half.
    Upper64BitHalfMissing,
}

/// Why a capability list walk stopped early.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityDefect {
    /// A pointer into the standard header (below 0x40).
    PointerIntoHeader,
    /// A pointer to a capability already visited.
    Loop,
    /// A capability whose registers would run past the end of the 256-byte space.
    Truncated,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::InvalidRange {
                segment,
                start_bus,
                end_bus,
            } => write!(
                f,
                "bus range {segment:04x}:{start_bus:02x}-{end_bus:02x} is empty (start after end)"
            ),
            Problem::BridgeNotFollowed {
                bridge,
                secondary,
                defect,
            } => {
                write!(
                    f,
                    "{bridge}: bridge to bus {secondary:02x} not followed: {defect:?}"
                )
            }
            Problem::UnknownHeaderType {
                address,
                header_type,
            } => {
                write!(
                    f,
                    "{address}: unknown header type {header_type:#04x}, skipped"
                )
            }
            Problem::BarInvalid {
                address,
                index,
                original,
                probed,
                defect,
            } => write!(
                f,
                "{address}: BAR{index} (value {original:#010x}, probe {probed:#010x}) skipped: \
                 {defect:?}"
            ),
            Problem::CapabilityListBroken {
                address,
                offset,
                defect,
            } => write!(
                f,
                "{address}: capability list stopped at pointer {offset:#04x}: {defect:?}"
            ),
        }
    }
}
