//! Page-table access through the physical-memory mapping.

use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{OffsetPageTable, PageTable, Translate};
use x86_64::{PhysAddr, VirtAddr};

use super::PhysicalMap;

/// The active level-4 page table, reached through the physical mapping.
///
/// # Safety
/// Call once: the returned table aliases the active page tables, so a second
/// live `OffsetPageTable` would allow two `&mut` to the same tables. `map`
/// must be the bootloader's complete physical-memory mapping.
pub unsafe fn active(map: PhysicalMap) -> OffsetPageTable<'static> {
    let (frame, _) = Cr3::read();
    let table = map.virt(frame.start_address()).as_mut_ptr::<PageTable>();
    // SAFETY: CR3 holds the physical address of the active level-4 table,
    // visible at `table` through the physical mapping; the caller guarantees
    // this is the only reference to it.
    unsafe { OffsetPageTable::new(&mut *table, map.offset()) }
}

/// Physical address behind `virt` in the active tables, if mapped.
pub fn translate(tables: &OffsetPageTable<'static>, virt: VirtAddr) -> Option<PhysAddr> {
    tables.translate_addr(virt)
}
