//! The ACPI DMA Remapping Reporting table (DMAR, VT-d chapter 8).
//!
//! Layout: the 36-byte ACPI header, the host address width (one byte, the
//! width less one), flags (one byte), 10 reserved bytes, then remapping
//! structures back to back, each starting with a 16-bit type and a 16-bit
//! length (VT-d 8.1, 8.2):
//!
//! | type | structure | fixed part | read here                          |
//! |------|-----------|------------|------------------------------------|
//! | 0    | DRHD      | 16 bytes   | flags, segment, register base, scopes |
//! | 1    | RMRR      | 24 bytes   | segment, base, limit, scopes        |
//! | 2    | ATSR      | 8 bytes    | skipped by its length               |
//! | 3..  | RHSA, ANDD, SATC, ... | | skipped by its length            |
//!
//! DRHD and RMRR end in device scopes (VT-d 8.3.1): type, length (6 plus
//! two bytes per path entry), two reserved bytes, enumeration ID, start
//! bus, then (device, function) pairs.
//!
//! Nothing here trusts a length: the table's against the bytes given, each
//! structure's against what is left of the table and its own fixed part,
//! each scope's against its structure. A framing error (a structure whose
//! length cannot be right) ends the walk with an error, since nothing after
//! it can be found; an error inside a well-framed structure is reported for
//! that structure and the walk goes on.

use core::fmt;

/// The table's signature.
pub const SIGNATURE: [u8; 4] = *b"DMAR";

/// Bytes before the first remapping structure (VT-d 8.1).
pub const HEADER_LEN: usize = 48;
/// Offset of the host address width field.
const HOST_ADDRESS_WIDTH: usize = 36;
/// Offset of the flags field.
const FLAGS: usize = 37;

/// Remapping structure types (VT-d 8.2).
mod structure_type {
    /// DMA Remapping Hardware Unit Definition.
    pub const DRHD: u16 = 0;
    /// Reserved Memory Region Reporting.
    pub const RMRR: u16 = 1;
}

/// Fixed part of a DRHD (VT-d 8.3).
const DRHD_LEN: usize = 16;
/// Fixed part of an RMRR (VT-d 8.4).
const RMRR_LEN: usize = 24;
/// Fixed part of a device scope (VT-d 8.3.1).
const SCOPE_LEN: usize = 6;
/// A register base is the start of a 4 KiB page.
const PAGE: u64 = 4096;

/// Why a DMAR table, or a structure in it, cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DmarError {
    /// Fewer bytes than the table's fixed header.
    TooShort {
        /// Bytes given.
        length: usize,
    },
    /// The signature is not `DMAR`.
    BadSignature([u8; 4]),
    /// The header's length is shorter than the header or longer than the
    /// bytes given.
    BadLength {
        /// Length the header declares.
        declared: u32,
        /// Bytes given.
        available: usize,
    },
    /// The bytes of the table do not sum to zero.
    BadChecksum {
        /// What they sum to.
        sum: u8,
    },
    /// Fewer than four bytes left for a structure's type and length.
    StructureTruncated {
        /// Offset of the structure in the table.
        offset: usize,
    },
    /// A structure's length is shorter than its fixed part or runs past the
    /// end of the table.
    BadStructureLength {
        /// Offset of the structure in the table.
        offset: usize,
        /// Its type.
        structure_type: u16,
        /// The length it declares.
        length: u16,
    },
    /// A DRHD's register base is zero or not page-aligned.
    BadRegisterBase {
        /// Offset of the DRHD in the table.
        offset: usize,
        /// The base it declares.
        base: u64,
    },
    /// An RMRR whose limit is below its base.
    BadRegion {
        /// Offset of the RMRR in the table.
        offset: usize,
        /// First byte of the region.
        base: u64,
        /// Last byte of the region.
        limit: u64,
    },
    /// A device scope whose length is too short, odd past its fixed part,
    /// or runs past its structure.
    BadDeviceScope {
        /// Offset of the scope in the table.
        offset: usize,
        /// The length it declares (0 if there was no room to read one).
        length: u8,
    },
}

impl fmt::Display for DmarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DmarError::TooShort { length } => {
                write!(f, "DMAR table of {length} bytes is shorter than its header")
            }
            DmarError::BadSignature(s) => write!(f, "signature {s:02x?} is not DMAR"),
            DmarError::BadLength {
                declared,
                available,
            } => write!(
                f,
                "DMAR length {declared} does not fit the {available} bytes given"
            ),
            DmarError::BadChecksum { sum } => write!(f, "DMAR checksum is off by {sum:#04x}"),
            DmarError::StructureTruncated { offset } => {
                write!(f, "remapping structure at {offset:#x} is cut short")
            }
            DmarError::BadStructureLength {
                offset,
                structure_type,
                length,
            } => write!(
                f,
                "remapping structure type {structure_type} at {offset:#x} has bad length {length}"
            ),
            DmarError::BadRegisterBase { offset, base } => {
                write!(f, "DRHD at {offset:#x} has bad register base {base:#x}")
            }
            DmarError::BadRegion {
                offset,
                base,
                limit,
            } => write!(
                f,
                "RMRR at {offset:#x} ends ({limit:#x}) before it starts ({base:#x})"
            ),
            DmarError::BadDeviceScope { offset, length } => {
                write!(f, "device scope at {offset:#x} has bad length {length}")
            }
        }
    }
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..at + 2) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from(le32(bytes, at)) | u64::from(le32(bytes, at + 4)) << 32
}

/// The DMAR header's flags (VT-d 8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmarFlags(pub u8);

impl DmarFlags {
    /// INTR_REMAP, bit 0: the platform supports interrupt remapping.
    pub const fn interrupt_remapping(self) -> bool {
        self.0 & 1 != 0
    }

    /// X2APIC_OPT_OUT, bit 1: firmware asks the OS not to use x2APIC mode.
    pub const fn x2apic_opt_out(self) -> bool {
        self.0 & 2 != 0
    }

    /// DMA_CTRL_PLATFORM_OPT_IN_FLAG, bit 2: firmware protected memory
    /// from DMA during boot and asks the OS to keep it protected.
    pub const fn dma_control_opt_in(self) -> bool {
        self.0 & 4 != 0
    }
}

/// A DMAR table whose header checked out.
#[derive(Clone, Copy, Debug)]
pub struct Dmar<'a> {
    /// The table, exactly as long as its header says.
    bytes: &'a [u8],
}

impl<'a> Dmar<'a> {
    /// Check the header of the table in `bytes` (signature, length,
    /// checksum). The remapping structures are checked as they are read.
    pub fn parse(bytes: &'a [u8]) -> Result<Dmar<'a>, DmarError> {
        if bytes.len() < HEADER_LEN {
            return Err(DmarError::TooShort {
                length: bytes.len(),
            });
        }
        let signature = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if signature != SIGNATURE {
            return Err(DmarError::BadSignature(signature));
        }
        let declared = le32(bytes, 4);
        let bad_length = DmarError::BadLength {
            declared,
            available: bytes.len(),
        };
        let length = usize::try_from(declared).map_err(|_| bad_length)?;
        if !(HEADER_LEN..=bytes.len()).contains(&length) {
            return Err(bad_length);
        }
        let bytes = &bytes[..length];
        let sum = bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b));
        if sum != 0 {
            return Err(DmarError::BadChecksum { sum });
        }
        Ok(Dmar { bytes })
    }

    /// The table's revision (header byte 8).
    pub fn revision(&self) -> u8 {
        self.bytes[8]
    }

    /// The table's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True if the table has no remapping structures.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == HEADER_LEN
    }

    /// Physical address width DMA can reach, in bits (the field plus one).
    pub fn host_address_width(&self) -> u8 {
        self.bytes[HOST_ADDRESS_WIDTH].saturating_add(1)
    }

    /// The header's flags.
    pub fn flags(&self) -> DmarFlags {
        DmarFlags(self.bytes[FLAGS])
    }

    /// The remapping structures, in table order.
    pub fn structures(&self) -> Structures<'a> {
        Structures {
            bytes: self.bytes,
            offset: HEADER_LEN,
            done: false,
        }
    }

    /// The remapping hardware units (DRHD structures), with any error met
    /// on the way.
    pub fn units(&self) -> impl Iterator<Item = Result<Drhd<'a>, DmarError>> + 'a {
        self.structures().filter_map(|s| match s {
            Ok(RemappingStructure::Drhd(unit)) => Some(Ok(unit)),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        })
    }
}

/// One remapping structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemappingStructure<'a> {
    /// A remapping hardware unit.
    Drhd(Drhd<'a>),
    /// Memory firmware keeps using for DMA (USB, graphics) after boot.
    Rmrr(Rmrr<'a>),
    /// Any other structure (ATSR, RHSA, ANDD, SATC, ...), skipped.
    Other {
        /// Its type.
        structure_type: u16,
        /// Its length in bytes.
        length: u16,
    },
}

/// Walks the remapping structures; see [`Dmar::structures`].
#[derive(Clone, Debug)]
pub struct Structures<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Iterator for Structures<'a> {
    type Item = Result<RemappingStructure<'a>, DmarError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.offset;
        let rest = self.bytes.get(offset..).unwrap_or_default();
        if self.done || rest.is_empty() {
            return None;
        }
        if rest.len() < 4 {
            self.done = true;
            return Some(Err(DmarError::StructureTruncated { offset }));
        }
        let structure_type = le16(rest, 0);
        let length = le16(rest, 2);
        let minimum = match structure_type {
            structure_type::DRHD => DRHD_LEN,
            structure_type::RMRR => RMRR_LEN,
            _ => 4,
        };
        let Some(body) = rest
            .get(..usize::from(length))
            .filter(|body| body.len() >= minimum)
        else {
            self.done = true;
            return Some(Err(DmarError::BadStructureLength {
                offset,
                structure_type,
                length,
            }));
        };
        self.offset += body.len();
        Some(match structure_type {
            structure_type::DRHD => Drhd::parse(body, offset).map(RemappingStructure::Drhd),
            structure_type::RMRR => Rmrr::parse(body, offset).map(RemappingStructure::Rmrr),
            _ => Ok(RemappingStructure::Other {
                structure_type,
                length,
            }),
        })
    }
}

/// A DMA remapping hardware unit definition (DRHD, VT-d 8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drhd<'a> {
    /// Offset of the structure in the table.
    pub offset: usize,
    flags: u8,
    size: u8,
    segment: u16,
    register_base: u64,
    scopes: &'a [u8],
}

impl<'a> Drhd<'a> {
    fn parse(body: &'a [u8], offset: usize) -> Result<Drhd<'a>, DmarError> {
        let register_base = le64(body, 8);
        if register_base == 0 || !register_base.is_multiple_of(PAGE) {
            return Err(DmarError::BadRegisterBase {
                offset,
                base: register_base,
            });
        }
        let scopes = &body[DRHD_LEN..];
        check_scopes(scopes, offset + DRHD_LEN)?;
        Ok(Drhd {
            offset,
            flags: body[4],
            size: body[5],
            segment: le16(body, 6),
            register_base,
            scopes,
        })
    }

    /// INCLUDE_PCI_ALL (flags bit 0): the unit covers every PCI device of
    /// its segment not claimed by another unit, and its scopes list only
    /// I/O APICs and HPETs.
    pub fn include_pci_all(&self) -> bool {
        self.flags & 1 != 0
    }

    /// The PCI segment whose devices the unit covers.
    pub fn segment(&self) -> u16 {
        self.segment
    }

    /// Physical address of the unit's register set.
    pub fn register_base(&self) -> u64 {
        self.register_base
    }

    /// Bytes of the register set: 2^size pages (the Size field, bits 3:0;
    /// zero, as older tables have it, means one page).
    pub fn register_len(&self) -> u64 {
        PAGE << (self.size & 0xf)
    }

    /// The devices the unit covers (or, with INCLUDE_PCI_ALL, the I/O APICs
    /// and HPETs under it).
    pub fn device_scopes(&self) -> DeviceScopes<'a> {
        DeviceScopes { bytes: self.scopes }
    }
}

/// A reserved memory region (RMRR, VT-d 8.4): memory that devices in its
/// scope may keep using for DMA after boot (USB keyboards, shared graphics
/// memory), which an OS that turns translation on must map for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rmrr<'a> {
    /// Offset of the structure in the table.
    pub offset: usize,
    segment: u16,
    base: u64,
    limit: u64,
    scopes: &'a [u8],
}

impl<'a> Rmrr<'a> {
    fn parse(body: &'a [u8], offset: usize) -> Result<Rmrr<'a>, DmarError> {
        let base = le64(body, 8);
        let limit = le64(body, 16);
        if limit < base {
            return Err(DmarError::BadRegion {
                offset,
                base,
                limit,
            });
        }
        let scopes = &body[RMRR_LEN..];
        check_scopes(scopes, offset + RMRR_LEN)?;
        Ok(Rmrr {
            offset,
            segment: le16(body, 6),
            base,
            limit,
            scopes,
        })
    }

    /// The PCI segment of the devices in scope.
    pub fn segment(&self) -> u16 {
        self.segment
    }

    /// First byte of the region.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Last byte of the region (inclusive).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The devices that use the region.
    pub fn device_scopes(&self) -> DeviceScopes<'a> {
        DeviceScopes { bytes: self.scopes }
    }
}

/// Check that `bytes` is a whole number of well-formed device scopes;
/// `offset` is where it starts in the table.
fn check_scopes(bytes: &[u8], offset: usize) -> Result<(), DmarError> {
    let mut at = 0;
    while at < bytes.len() {
        let length = bytes.get(at + 1).copied().unwrap_or(0);
        let len = usize::from(length);
        if len < SCOPE_LEN || !(len - SCOPE_LEN).is_multiple_of(2) || at + len > bytes.len() {
            return Err(DmarError::BadDeviceScope {
                offset: offset + at,
                length,
            });
        }
        at += len;
    }
    Ok(())
}

/// What a device scope names (VT-d 8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeType {
    /// A PCI endpoint device.
    PciEndpoint,
    /// A PCI-PCI bridge and every device below it.
    PciSubHierarchy,
    /// An I/O APIC.
    IoApic,
    /// An MSI-capable HPET.
    Hpet,
    /// An ACPI namespace device.
    AcpiNamespaceDevice,
    /// A type this crate does not know.
    Other(u8),
}

impl From<u8> for ScopeType {
    fn from(value: u8) -> ScopeType {
        match value {
            1 => ScopeType::PciEndpoint,
            2 => ScopeType::PciSubHierarchy,
            3 => ScopeType::IoApic,
            4 => ScopeType::Hpet,
            5 => ScopeType::AcpiNamespaceDevice,
            other => ScopeType::Other(other),
        }
    }
}

/// One device scope: a device found by walking `path` from `start_bus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceScope<'a> {
    /// What is named.
    pub scope_type: ScopeType,
    /// The I/O APIC ID, HPET number or ACPI device number (other types: 0).
    pub enumeration_id: u8,
    /// The bus the path starts on.
    pub start_bus: u8,
    path: &'a [u8],
}

impl DeviceScope<'_> {
    /// The path: (device, function) for each hop from `start_bus`.
    pub fn path(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        self.path
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&[device, function]| (device, function))
    }
}

/// The device scopes of a structure (checked when it was read).
#[derive(Clone, Debug)]
pub struct DeviceScopes<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for DeviceScopes<'a> {
    type Item = DeviceScope<'a>;

    fn next(&mut self) -> Option<DeviceScope<'a>> {
        let len = usize::from(*self.bytes.get(1)?);
        let scope = self.bytes.get(..len).filter(|s| s.len() >= SCOPE_LEN)?;
        self.bytes = &self.bytes[len..];
        Some(DeviceScope {
            scope_type: ScopeType::from(scope[0]),
            enumeration_id: scope[4],
            start_bus: scope[5],
            path: &scope[SCOPE_LEN..],
        })
    }
}
