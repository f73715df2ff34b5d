//! Write-combining mappings, for the framebuffer: the Page Attribute Table
//! (PAT) gets a write-combining entry, and existing pages are switched to
//! it.
//!
//! A page's memory type is the PAT entry its PAT, PCD and PWT bits select
//! (index = PAT·4 + PCD·2 + PWT; Intel SDM Vol. 3A §13.12.3). At power-on
//! the entries are WB, WT, UC-, UC, then the same again. The kernel uses
//! index 0 (write-back, ordinary memory) and index 3 (PCD+PWT, uncached,
//! for device registers: [`super::mmio`]), nothing else; the bootloader
//! maps the framebuffer with index 0. So entry 1 (PWT alone, write-through
//! by default) becomes write-combining, the choice Linux makes too. Using a
//! slot without the PAT bit has a second merit: PWT is bit 3 in entries of
//! every page size, whereas the PAT bit moves (bit 7 in a 4 KiB entry, bit
//! 12 in a 2 MiB or 1 GiB one), so 4 KiB and huge pages are switched alike.
//!
//! Write-combining lets the CPU gather writes to video memory into whole
//! bursts; with the firmware's MTRRs typically marking the framebuffer
//! uncached, a write-back page there is as slow as uncached (SDM Table
//! 13-7: MTRR UC with PAT WC gives WC).

use core::fmt;

use x86_64::VirtAddr;
use x86_64::registers::model_specific::Msr;
use x86_64::structures::paging::mapper::{MappedFrame, TranslateResult};
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageSize, PageTableFlags, Size1GiB, Size2MiB, Size4KiB,
    Translate,
};

use super::Memory;

/// IA32_PAT (SDM Vol. 3A §13.12.2): eight 8-bit entries, entry `i` in bits
/// `8i..8i+2`.
const IA32_PAT: u32 = 0x277;
/// The PAT entry this module makes write-combining (selected by PWT alone).
pub const WRITE_COMBINING_SLOT: u64 = 1;
/// CPUID leaf 1, EDX bit 16: the processor has a PAT.
const CPUID_PAT: u32 = 1 << 16;

/// Memory types a PAT entry can name (SDM Vol. 3A Table 13-10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MemoryType {
    /// Uncacheable.
    Uncacheable = 0x00,
    /// Write-combining.
    WriteCombining = 0x01,
    /// Write-through.
    WriteThrough = 0x04,
    /// Write-protected.
    WriteProtected = 0x05,
    /// Write-back.
    WriteBack = 0x06,
    /// Uncacheable, overridable by a write-combining MTRR (UC-).
    UncachedMinus = 0x07,
}

impl MemoryType {
    fn from_entry(entry: u8) -> Option<MemoryType> {
        [
            MemoryType::Uncacheable,
            MemoryType::WriteCombining,
            MemoryType::WriteThrough,
            MemoryType::WriteProtected,
            MemoryType::WriteBack,
            MemoryType::UncachedMinus,
        ]
        .into_iter()
        .find(|t| *t as u8 == entry & 0x07)
    }
}

/// Why a range was not made write-combining.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCombiningError {
    /// The processor has no PAT (CPUID.01H:EDX.PAT clear).
    NoPat,
    /// A page of the range is not mapped.
    NotMapped(VirtAddr),
    /// The page tables refused the flag update (a huge page seen as a small
    /// one, or a parent entry missing).
    FlagUpdate(VirtAddr),
}

impl fmt::Display for WriteCombiningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteCombiningError::NoPat => f.write_str("the processor has no PAT"),
            WriteCombiningError::NotMapped(at) => write!(f, "{:#x} is not mapped", at.as_u64()),
            WriteCombiningError::FlagUpdate(at) => {
                write!(f, "the page at {:#x} could not be updated", at.as_u64())
            }
        }
    }
}

/// How many pages of each size were switched to write-combining, and how
/// many huge pages were left alone because they reach outside the range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Switched {
    /// 4 KiB pages.
    pub small: usize,
    /// 2 MiB pages.
    pub large: usize,
    /// 1 GiB pages.
    pub huge: usize,
    /// Huge pages that also map memory outside the range (not switched).
    pub skipped: usize,
}

impl fmt::Display for Switched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} 4 KiB, {} 2 MiB, {} 1 GiB pages ({} huge pages reaching outside left alone)",
            self.small, self.large, self.huge, self.skipped
        )
    }
}

/// True if the processor has a PAT.
pub fn has_pat() -> bool {
    let leaf = core::arch::x86_64::__cpuid(1);
    leaf.edx & CPUID_PAT != 0
}

/// The memory type PAT entry `slot` (0..8) names now, if the processor has
/// a PAT and the entry holds a defined type.
pub fn pat_entry(slot: u64) -> Option<MemoryType> {
    if !has_pat() || slot >= 8 {
        return None;
    }
    // SAFETY: IA32_PAT exists when CPUID reports PAT (checked above);
    // reading it has no side effect.
    let pat = unsafe { Msr::new(IA32_PAT).read() };
    MemoryType::from_entry((pat >> (8 * slot)) as u8)
}

/// Make PAT entry [`WRITE_COMBINING_SLOT`] write-combining (idempotent).
fn program_pat() -> Result<(), WriteCombiningError> {
    if !has_pat() {
        return Err(WriteCombiningError::NoPat);
    }
    let mut msr = Msr::new(IA32_PAT);
    // SAFETY: IA32_PAT exists (CPUID checked). Only the entry no page of
    // this kernel selects is changed (see the module notes), so no existing
    // mapping changes type and no cached line becomes inconsistent; only
    // this processor runs. Stale TLB entries carry types resolved with the
    // old PAT, so the TLB is flushed after the write.
    unsafe {
        let old = msr.read();
        let shift = 8 * WRITE_COMBINING_SLOT;
        let new = (old & !(0xff << shift)) | (u64::from(MemoryType::WriteCombining as u8) << shift);
        if new != old {
            msr.write(new);
            x86_64::instructions::tlb::flush_all();
        }
    }
    Ok(())
}

/// The page-table flags that select [`WRITE_COMBINING_SLOT`] (PWT set, PCD
/// clear; the PAT bit is left as the mapping had it, clear for any page
/// this kernel or the bootloader makes).
fn write_combining_flags(flags: PageTableFlags) -> PageTableFlags {
    (flags - PageTableFlags::NO_CACHE) | PageTableFlags::WRITE_THROUGH
}

impl Memory {
    /// Switch the already-mapped range `start..start + len` to write-
    /// combining: programs the PAT entry, then updates each page's flags.
    /// Pages of any size are handled; a huge page that also maps memory
    /// outside the range is left as it is. Meant for the framebuffer (and
    /// any other memory only ever written, never read).
    pub fn map_write_combining(
        &self,
        start: VirtAddr,
        len: usize,
    ) -> Result<Switched, WriteCombiningError> {
        program_pat()?;
        let end = start.as_u64().saturating_add(len as u64);
        let mut tables = self.tables.lock();
        let mut switched = Switched::default();
        let mut at = start.align_down(Size4KiB::SIZE).as_u64();
        while at < end {
            let addr = VirtAddr::new(at);
            let TranslateResult::Mapped { frame, flags, .. } = tables.translate(addr) else {
                return Err(WriteCombiningError::NotMapped(addr));
            };
            let new_flags = write_combining_flags(flags);
            let page_size = match frame {
                MappedFrame::Size4KiB(_) => {
                    let page = Page::<Size4KiB>::containing_address(addr);
                    switch(&mut tables, page, new_flags)?;
                    switched.small += 1;
                    Size4KiB::SIZE
                }
                MappedFrame::Size2MiB(_) => {
                    let page = Page::<Size2MiB>::containing_address(addr);
                    if covers(page, start.as_u64(), end) {
                        switch(&mut tables, page, new_flags)?;
                        switched.large += 1;
                    } else {
                        switched.skipped += 1;
                    }
                    Size2MiB::SIZE
                }
                MappedFrame::Size1GiB(_) => {
                    let page = Page::<Size1GiB>::containing_address(addr);
                    if covers(page, start.as_u64(), end) {
                        switch(&mut tables, page, new_flags)?;
                        switched.huge += 1;
                    } else {
                        switched.skipped += 1;
                    }
                    Size1GiB::SIZE
                }
            };
            at = (at / page_size + 1) * page_size;
        }
        Ok(switched)
    }

    /// The memory type the PAT assigns to the page mapping `virt` (None if
    /// unmapped or the processor has no PAT). The PAT bit of huge pages is
    /// not visible through the page-table crate and taken as clear.
    pub fn memory_type(&self, virt: VirtAddr) -> Option<MemoryType> {
        let TranslateResult::Mapped { frame, flags, .. } = self.tables.lock().translate(virt)
        else {
            return None;
        };
        // In a 4 KiB entry bit 7 is the PAT bit (the crate calls it
        // HUGE_PAGE, its meaning in upper-level entries).
        let pat =
            matches!(frame, MappedFrame::Size4KiB(_)) && flags.contains(PageTableFlags::HUGE_PAGE);
        let slot = u64::from(pat) * 4
            + u64::from(flags.contains(PageTableFlags::NO_CACHE)) * 2
            + u64::from(flags.contains(PageTableFlags::WRITE_THROUGH));
        pat_entry(slot)
    }
}

/// Give `page` the caching bits in `flags` (the rest as they were).
fn switch<S: PageSize>(
    tables: &mut OffsetPageTable<'static>,
    page: Page<S>,
    flags: PageTableFlags,
) -> Result<(), WriteCombiningError>
where
    for<'a> OffsetPageTable<'a>: Mapper<S>,
{
    // SAFETY: `flags` differs from the page's flags only in its caching
    // bits; the page stays present, writable and mapped to the same frame,
    // so no reference into it becomes invalid. The caller of
    // `map_write_combining` gives a range it only writes (the framebuffer),
    // where write-combining's weak ordering cannot be observed by a read.
    let flush = unsafe { tables.update_flags(page, flags) }
        .map_err(|_| WriteCombiningError::FlagUpdate(page.start_address()))?;
    flush.flush();
    Ok(())
}

/// True if `page` lies wholly inside `start..end`.
fn covers<S: PageSize>(page: Page<S>, start: u64, end: u64) -> bool {
    let first = page.start_address().as_u64();
    first >= start && first + S::SIZE <= end
}
