//! The firmware's ACPI tables, read through the physical-memory mapping.
//!
//! Several parts of the kernel need a table or two: PCI needs MCFG (ECAM),
//! time needs HPET and the FADT (PM timer), the end of a run needs the FADT
//! (reset register), and DMA needs DMAR (IOMMUs left translating). Each asks
//! [`Acpi`] for what it needs; tables the `acpi` crate does not parse are
//! handed out as bytes ([`Acpi::table_bytes`]) for the caller to decode.
//!
//! Firmware keeps its tables in RAM (ACPI reclaimable or NVS), which the
//! bootloader maps with the rest of physical memory, so "mapping" a table is
//! only an offset and nothing is ever unmapped. That is also why a table's
//! bytes can be handed out as `&'static`.

use core::ptr::NonNull;

use acpi::sdt::{SdtHeader, Signature};
use acpi::{AcpiHandler, AcpiTable, AcpiTables, PhysicalMapping};
use x86_64::PhysAddr;

use crate::memory::PhysicalMap;

/// Reads ACPI tables through the physical-memory mapping.
#[derive(Clone, Copy, Debug)]
pub struct AcpiMapper {
    map: PhysicalMap,
}

impl AcpiHandler for AcpiMapper {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = self.map.virt(PhysAddr::new(physical_address as u64));
        let pointer = NonNull::new(virt.as_mut_ptr::<T>()).unwrap_or(NonNull::dangling());
        // SAFETY: the physical-memory mapping covers all RAM, where firmware
        // keeps its ACPI tables; the mapping is never unmapped, so the
        // region stays valid for the PhysicalMapping's life.
        unsafe { PhysicalMapping::new(physical_address, pointer, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The machine's ACPI tables, if the firmware gave an RSDP that checks out.
///
/// Cheap to build (it validates the RSDP and the root table only), so parts
/// of the kernel build one when they need it rather than share one.
pub struct Acpi {
    map: PhysicalMap,
    tables: Option<AcpiTables<AcpiMapper>>,
}

impl Acpi {
    /// Find the tables from the RSDP the bootloader reported (None: no
    /// ACPI, as under some legacy BIOSes; every lookup then finds nothing).
    pub fn new(map: PhysicalMap, rsdp: Option<PhysAddr>) -> Acpi {
        let handler = AcpiMapper { map };
        let tables = rsdp.and_then(|rsdp| {
            // SAFETY: the bootloader reported this RSDP address from the
            // firmware; `from_rsdp` validates its signature and checksum.
            match unsafe { AcpiTables::from_rsdp(handler, rsdp.as_u64() as usize) } {
                Ok(tables) => Some(tables),
                Err(error) => {
                    log::warn!("ACPI: RSDP at {:#x} rejected: {error:?}", rsdp.as_u64());
                    None
                }
            }
        });
        Acpi { map, tables }
    }

    /// The parsed tables, for the `acpi` crate's own table types
    /// (`find_table::<Mcfg>()`, `HpetInfo::new`, ...).
    pub fn tables(&self) -> Option<&AcpiTables<AcpiMapper>> {
        self.tables.as_ref()
    }

    /// A table the `acpi` crate has no type for, as its bytes (header
    /// included, `length` bytes long), or None if the firmware has none.
    /// The checksum has been verified.
    pub fn table_bytes(&self, signature: RawSignature) -> Option<&'static [u8]> {
        let tables = self.tables.as_ref()?;
        let (start, len) = match signature {
            RawSignature::Dmar => extent(tables.find_table::<RawTable<DmarTag>>().ok()?),
            RawSignature::Hpet => extent(tables.find_table::<RawTable<HpetTag>>().ok()?),
        };
        let virt = self.map.virt(PhysAddr::new(start as u64));
        // SAFETY: the table lies in firmware RAM covered by the physical-
        // memory mapping for the kernel's whole life; `find_table` checked
        // the header's signature, length and checksum over `len` bytes;
        // nothing in the kernel writes firmware tables.
        Some(unsafe { core::slice::from_raw_parts(virt.as_ptr::<u8>(), len) })
    }
}

/// Where a table found as a [`RawTable`] starts and how long it is.
fn extent<Tag: SignatureTag + Unpin>(
    mapping: PhysicalMapping<AcpiMapper, RawTable<Tag>>,
) -> (usize, usize) {
    (mapping.physical_start(), mapping.header.length as usize)
}

/// Tables read as bytes through [`Acpi::table_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawSignature {
    /// DMA Remapping Reporting table (Intel VT-d).
    Dmar,
    /// High Precision Event Timer table (read as bytes: the `acpi` crate's
    /// own type asserts on firmware data instead of reporting it).
    Hpet,
}

/// A table known only by its header.
#[repr(C, packed)]
struct RawTable<Tag> {
    header: SdtHeader,
    tag: core::marker::PhantomData<Tag>,
}

/// Names the signature of a [`RawTable`].
trait SignatureTag {
    const SIGNATURE: Signature;
}

struct DmarTag;

impl SignatureTag for DmarTag {
    const SIGNATURE: Signature = Signature::DMAR;
}

struct HpetTag;

impl SignatureTag for HpetTag {
    const SIGNATURE: Signature = Signature::HPET;
}

// SAFETY: `RawTable` starts with the standard SDT header, which is all the
// trait reads; the signature is the one its tag names.
unsafe impl<Tag: SignatureTag> AcpiTable for RawTable<Tag> {
    const SIGNATURE: Signature = Tag::SIGNATURE;

    fn header(&self) -> &SdtHeader {
        // A packed struct's first field is at offset 0, and SdtHeader is
        // itself packed (alignment 1), so the reference is aligned.
        let header: *const SdtHeader = core::ptr::addr_of!(self.header);
        // SAFETY: `header` points at the first field of `self`, valid for
        // `self`'s lifetime; alignment 1 (see above).
        unsafe { &*header }
    }
}
