//! The crate's error enum and the problems enumeration records instead of failing.
//!
//! Enumeration never fails as a whole: a broken bridge, BAR or capability list is logged with
//! `log::warn!`, recorded as a [`Problem`], and skipped, and the walk goes on. Operations on a
//! single function ([`crate::enable_for_dma`], [`crate::prepare_for_driver`]) and on an MCFG
//! entry ([`crate::EcamEntry::new`]) return [`Error`].

use core::fmt;

use pci_types::PciAddress;

use crate::power_state::PowerState;

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
    /// The BAR a driver needs is not an implemented, well-formed memory BAR.
    BarMissing {
        /// The function.
        address: PciAddress,
        /// The BAR slot.
        index: u8,
    },
    /// The BAR reads address 0: firmware did not assign it. It was not mapped or enabled.
    BarUnassigned {
        /// The function.
        address: PciAddress,
        /// The BAR slot.
        index: u8,
    },
    /// The BAR lies outside both memory windows of a bridge on the path from the root
    /// complex, so accesses to it would never reach the function. Nothing was enabled.
    BarOutsideBridgeWindow {
        /// The function.
        address: PciAddress,
        /// The BAR slot.
        index: u8,
        /// The BAR's address.
        bar_address: u64,
        /// The BAR's size.
        bar_size: u64,
        /// The bridge that does not forward it.
        bridge: PciAddress,
    },
    /// The function did not reach D0 after the power state was written and the
    /// specification's delay passed.
    PowerStateNotD0 {
        /// The function.
        address: PciAddress,
        /// The state it was in.
        from: PowerState,
        /// The state it reads now.
        state: PowerState,
    },
    /// Leaving D3hot reset the function's BAR, and writing the firmware's address back did not
    /// stick.
    BarNotRestored {
        /// The function.
        address: PciAddress,
        /// The BAR slot.
        index: u8,
        /// The address written.
        expected: u64,
        /// The address read back.
        read_back: u64,
    },
    /// The function is not an Intel VMD.
    NotVmd {
        /// The function.
        address: PciAddress,
    },
    /// An Intel VMD whose bus-number restriction is set to the reserved value.
    VmdBusRestrictionReserved {
        /// The VMD.
        address: PciAddress,
    },
    /// A BAR in an Intel VMD's domain that lies outside the VMD's memory windows (MEMBAR1,
    /// MEMBAR2), so the VMD would not forward accesses to it. Nothing was enabled.
    BarOutsideVmdWindow {
        /// The function.
        address: PciAddress,
        /// The BAR slot.
        index: u8,
        /// The BAR's address.
        bar_address: u64,
        /// The VMD.
        controller: PciAddress,
    },
    /// An ACPI MCFG entry (or VMD CFGBAR) that cannot describe configuration space; it is not
    /// used.
    EcamEntryInvalid {
        /// The PCI segment group.
        segment: u16,
        /// First bus.
        start_bus: u8,
        /// Last bus.
        end_bus: u8,
        /// The base address (that of bus 0).
        base: u64,
        /// What is wrong with it.
        defect: EcamDefect,
    },
}

impl Error {
    /// The function the error is about; `None` for an MCFG entry.
    pub fn address(&self) -> Option<PciAddress> {
        match *self {
            Error::FunctionAbsent { address }
            | Error::CommandNotAccepted { address, .. }
            | Error::BarMissing { address, .. }
            | Error::BarUnassigned { address, .. }
            | Error::BarOutsideBridgeWindow { address, .. }
            | Error::PowerStateNotD0 { address, .. }
            | Error::BarNotRestored { address, .. }
            | Error::NotVmd { address }
            | Error::VmdBusRestrictionReserved { address }
            | Error::BarOutsideVmdWindow { address, .. } => Some(address),
            Error::EcamEntryInvalid { .. } => None,
        }
    }

    /// What went wrong, without the function's address, for a caller that names the function
    /// itself: `BAR0 not assigned by firmware; skipped`.
    pub fn reason(&self) -> impl fmt::Display + '_ {
        Reason(self)
    }
}

/// [`Error::reason`].
struct Reason<'a>(&'a Error);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Error::FunctionAbsent { .. } => f.write_str("no PCI function answers"),
            Error::CommandNotAccepted {
                written, read_back, ..
            } => write!(
                f,
                "command register wrote {written:#06x}, read back {read_back:#06x}"
            ),
            Error::BarMissing { index, .. } => {
                write!(f, "BAR{index} is not a usable memory BAR; skipped")
            }
            Error::BarUnassigned { index, .. } => {
                write!(f, "BAR{index} not assigned by firmware; skipped")
            }
            Error::BarOutsideBridgeWindow {
                index,
                bar_address,
                bridge,
                ..
            } => write!(
                f,
                "BAR{index} {bar_address:#x} outside the window of bridge {bridge}; skipped"
            ),
            Error::PowerStateNotD0 { from, state, .. } => {
                write!(f, "still in {state} after leaving {from} for D0; skipped")
            }
            Error::BarNotRestored {
                index,
                expected,
                read_back,
                ..
            } => write!(
                f,
                "BAR{index} lost its address leaving D3hot: wrote {expected:#x}, read back \
                 {read_back:#x}; skipped"
            ),
            Error::NotVmd { .. } => f.write_str("not an Intel VMD"),
            Error::VmdBusRestrictionReserved { .. } => f.write_str(
                "Intel VMD bus restriction set to a reserved value; its domain not scanned",
            ),
            Error::BarOutsideVmdWindow {
                index,
                bar_address,
                controller,
                ..
            } => write!(
                f,
                "BAR{index} {bar_address:#x} outside the windows of Intel VMD {controller}; skipped"
            ),
            Error::EcamEntryInvalid {
                segment,
                start_bus,
                end_bus,
                base,
                defect,
            } => write!(
                f,
                "MCFG entry for segment {segment:04x} buses {start_bus:02x}-{end_bus:02x} at \
                 {base:#x} not used: {defect}"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.address()) {
            (Error::FunctionAbsent { address }, _) => write!(f, "no PCI function at {address}"),
            (_, Some(address)) => write!(f, "{address}: {}", self.reason()),
            (_, None) => write!(f, "{}", self.reason()),
        }
    }
}

/// Why an MCFG entry was not used.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcamDefect {
    /// The start bus is above the end bus.
    BusRangeReversed,
    /// The base address has bits set below 1 MiB, the size of one bus's window.
    BaseMisaligned,
    /// The window of the last bus would end past the 64-bit address space.
    PastAddressSpace,
    /// The window (an Intel VMD's CFGBAR) is smaller than one bus's megabyte.
    WindowSmallerThanOneBus,
}

impl fmt::Display for EcamDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EcamDefect::BusRangeReversed => "start bus above end bus",
            EcamDefect::BaseMisaligned => "base address not aligned to 1 MiB",
            EcamDefect::PastAddressSpace => "window ends past the 64-bit address space",
            EcamDefect::WindowSmallerThanOneBus => "window smaller than one bus (1 MiB)",
        })
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
