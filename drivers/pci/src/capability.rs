//! The capability list: a bounded walk, and typed views of the capabilities a driver needs.
//!
//! The list (PCI Local Bus Specification 3.0, section 6.7) is a chain of pointers in
//! device-supplied registers, so the walk trusts none of them: the low two bits of every
//! pointer are masked off (they are reserved), a pointer below 0x40 (into the standard header)
//! ends the walk, a pointer to a capability already visited ends the walk, and a capability
//! whose registers would run past offset 0xFF ends it. Each of these is recorded as a
//! [`Problem`]. There are at most 48 dwords between 0x40 and 0xFF, so the walk visits at most 48
//! capabilities. A capability that reads all-ones means the function stopped answering; the walk
//! ends there without a problem, as the enumeration will see the function absent.
//!
//! `pci_types::CapabilityIterator` follows pointers without any of these checks (a looped list
//! never ends), so it is not used; its decoding of MSI and MSI-X fields is mirrored here.
//! Capability ID 0 (the "null" capability) is skipped, as in `pci_types`.

use alloc::vec::Vec;
use core::fmt;

use pci_types::PciAddress;

use crate::config::{CAPABILITY_AREA_START, Config, ConfigurationAccess, LAST_DWORD};
use crate::error::{CapabilityDefect, Problem};

/// Capability IDs (PCI Code and ID Assignment Specification, section 2).
const ID_NULL: u8 = 0x00;
const ID_POWER_MANAGEMENT: u8 = 0x01;
const ID_MSI: u8 = 0x05;
const ID_VENDOR_SPECIFIC: u8 = 0x09;
const ID_PCI_EXPRESS: u8 = 0x10;
const ID_MSI_X: u8 = 0x11;

/// The most capabilities that fit between 0x40 and 0xFF, one per dword.
const MAX_CAPABILITIES: usize = ((LAST_DWORD - CAPABILITY_AREA_START) / 4 + 1) as usize;

/// One entry of a function's capability list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// The capability ID.
    pub id: u8,
    /// Its offset in configuration space.
    pub offset: u8,
    /// What it is, with the fields a driver needs.
    pub kind: CapabilityKind,
}

/// The capabilities this crate decodes; others are [`CapabilityKind::Other`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityKind {
    /// Power management (ID 01h).
    PowerManagement {
        /// The PCI Power Management Interface specification version (PMC bits 0..3).
        version: u8,
    },
    /// Message signalled interrupts (ID 05h).
    Msi {
        /// The message address register is 64 bits wide.
        address_64bit: bool,
        /// Per-vector masking is supported.
        per_vector_masking: bool,
        /// Vectors the function can request (1, 2, 4, 8, 16 or 32).
        vectors: u8,
    },
    /// MSI-X (ID 11h).
    MsiX {
        /// Number of table entries (Table Size field plus one).
        table_size: u16,
        /// The BAR holding the table (BIR, 0..8; only 0..6 are valid).
        table_bar: u8,
        /// The table's byte offset in that BAR.
        table_offset: u32,
        /// The BAR holding the pending bit array.
        pba_bar: u8,
        /// The pending bit array's byte offset in that BAR.
        pba_offset: u32,
    },
    /// PCI Express (ID 10h).
    PciExpress {
        /// The capability version.
        version: u8,
        /// The device/port type.
        port_type: PciExpressPortType,
    },
    /// Vendor-specific (ID 09h).
    VendorSpecific {
        /// The length byte of the capability.
        length: u8,
    },
    /// Any other capability; see [`Capability::id`].
    Other,
}

/// The PCI Express device/port type (PCI Express Base Specification, section 7.5.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciExpressPortType {
    /// PCI Express endpoint (0h).
    Endpoint,
    /// Legacy PCI Express endpoint (1h).
    LegacyEndpoint,
    /// Root port of a root complex (4h).
    RootPort,
    /// Upstream port of a switch (5h).
    UpstreamPort,
    /// Downstream port of a switch (6h).
    DownstreamPort,
    /// PCI Express to PCI/PCI-X bridge (7h).
    PcieToPciBridge,
    /// PCI/PCI-X to PCI Express bridge (8h).
    PciToPcieBridge,
    /// Root complex integrated endpoint (9h).
    RootComplexIntegratedEndpoint,
    /// Root complex event collector (Ah).
    RootComplexEventCollector,
    /// A reserved value.
    Reserved(u8),
}

impl PciExpressPortType {
    fn from_field(value: u8) -> Self {
        match value {
            0x0 => Self::Endpoint,
            0x1 => Self::LegacyEndpoint,
            0x4 => Self::RootPort,
            0x5 => Self::UpstreamPort,
            0x6 => Self::DownstreamPort,
            0x7 => Self::PcieToPciBridge,
            0x8 => Self::PciToPcieBridge,
            0x9 => Self::RootComplexIntegratedEndpoint,
            0xa => Self::RootComplexEventCollector,
            other => Self::Reserved(other),
        }
    }
}

impl fmt::Display for PciExpressPortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Endpoint => "endpoint",
            Self::LegacyEndpoint => "legacy endpoint",
            Self::RootPort => "root port",
            Self::UpstreamPort => "upstream port",
            Self::DownstreamPort => "downstream port",
            Self::PcieToPciBridge => "PCIe to PCI bridge",
            Self::PciToPcieBridge => "PCI to PCIe bridge",
            Self::RootComplexIntegratedEndpoint => "root complex integrated endpoint",
            Self::RootComplexEventCollector => "root complex event collector",
            Self::Reserved(value) => return write!(f, "type {value:#x}"),
        };
        f.write_str(name)
    }
}

impl fmt::Display for Capability {
    /// A short summary: `MSI-X(table size 65)`, `PCI-Express(endpoint)`, `PM`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            CapabilityKind::PowerManagement { .. } => f.write_str("PM"),
            CapabilityKind::Msi {
                address_64bit,
                vectors,
                ..
            } => {
                let width = if address_64bit { "64-bit" } else { "32-bit" };
                let plural = if vectors == 1 { "" } else { "s" };
                write!(f, "MSI({vectors} vector{plural}, {width})")
            }
            CapabilityKind::MsiX { table_size, .. } => write!(f, "MSI-X(table size {table_size})"),
            CapabilityKind::PciExpress { port_type, .. } => write!(f, "PCI-Express({port_type})"),
            CapabilityKind::VendorSpecific { .. } => f.write_str("Vendor"),
            CapabilityKind::Other => write!(f, "Cap[{:02x}]", self.id),
        }
    }
}

/// Walks the capability list starting at `pointer` (the header's capabilities pointer).
pub(crate) fn read_capabilities<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    pointer: u8,
    problems: &mut Vec<Problem>,
) -> Vec<Capability> {
    let address = config.address();
    let mut capabilities = Vec::new();
    let mut visited = [false; MAX_CAPABILITIES];
    let mut offset = pointer & !0b11;

    for _ in 0..MAX_CAPABILITIES {
        if offset == 0 {
            return capabilities;
        }
        let here = u16::from(offset);
        if here < CAPABILITY_AREA_START {
            record(
                problems,
                address,
                offset,
                CapabilityDefect::PointerIntoHeader,
            );
            return capabilities;
        }
        let slot = usize::from((here - CAPABILITY_AREA_START) / 4);
        match visited.get_mut(slot) {
            Some(seen) if !*seen => *seen = true,
            _ => {
                record(problems, address, offset, CapabilityDefect::Loop);
                return capabilities;
            }
        }

        let header = config.read(here);
        if header == u32::MAX {
            return capabilities;
        }
        let id = header as u8;
        let next = (header >> 8) as u8 & !0b11;
        let control = (header >> 16) as u16;
        if id != ID_NULL {
            match decode(config, here, id, control) {
                Some(kind) => capabilities.push(Capability { id, offset, kind }),
                None => {
                    record(problems, address, offset, CapabilityDefect::Truncated);
                    return capabilities;
                }
            }
        }
        offset = next;
    }
    // Unreachable in practice: 48 distinct slots are all visited before a 49th step.
    record(problems, address, offset, CapabilityDefect::Loop);
    capabilities
}

fn record(problems: &mut Vec<Problem>, address: PciAddress, offset: u8, defect: CapabilityDefect) {
    log::warn!("pci {address}: capability list stopped at {offset:#04x}: {defect:?}");
    problems.push(Problem::CapabilityListBroken {
        address,
        offset,
        defect,
    });
}

/// Decodes one capability; `None` if its registers would extend past the 256-byte space.
fn decode<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    offset: u16,
    id: u8,
    control: u16,
) -> Option<CapabilityKind> {
    let kind = match id {
        ID_POWER_MANAGEMENT => CapabilityKind::PowerManagement {
            version: (control & 0b111) as u8,
        },
        ID_MSI => {
            // Message control: bit 7 64-bit address, bit 8 per-vector masking, bits 1..4
            // multiple message capable (log2 of the vector count; values above 5 are reserved).
            let log2 = ((control >> 1) & 0b111).min(5);
            CapabilityKind::Msi {
                address_64bit: control & (1 << 7) != 0,
                per_vector_masking: control & (1 << 8) != 0,
                vectors: 1 << log2,
            }
        }
        ID_MSI_X => {
            let table_register = offset + 4;
            let pba_register = offset + 8;
            if pba_register > LAST_DWORD {
                return None;
            }
            let table = config.read(table_register);
            let pba = config.read(pba_register);
            CapabilityKind::MsiX {
                table_size: (control & 0x7ff) + 1,
                table_bar: (table & 0b111) as u8,
                table_offset: table & !0b111,
                pba_bar: (pba & 0b111) as u8,
                pba_offset: pba & !0b111,
            }
        }
        ID_PCI_EXPRESS => CapabilityKind::PciExpress {
            version: (control & 0xf) as u8,
            port_type: PciExpressPortType::from_field(((control >> 4) & 0xf) as u8),
        },
        ID_VENDOR_SPECIFIC => CapabilityKind::VendorSpecific {
            length: control as u8,
        },
        _ => CapabilityKind::Other,
    };
    Some(kind)
}
