//! Mapping device memory (PCI BARs) uncached into a dedicated window.
//!
//! BARs can sit anywhere in the physical address space, including above the
//! end of RAM where the bootloader's physical mapping may not reach, and
//! that mapping is write-back cached, which device registers must never be.
//! So each BAR gets its own pages in a window of its own, with caching disabled (PCD and PWT) and no
//! execute. The window is handed out by a bump pointer; mappings live as long
//! as the kernel. The window is a level-4 entry of the higher half that the
//! bootloader left empty, found at boot.

use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTableFlags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use super::PAGE_SIZE;

/// Size of the MMIO window: one level-4 entry, 512 GiB of virtual space.
pub const MMIO_WINDOW_SIZE: u64 = 512 << 30;

/// x86_64 physical addresses have at most 52 bits.
const MAX_PHYSICAL: u64 = 1 << 52;

/// Why a device region could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// Length zero, or the region wraps around the physical address space.
    BadRegion,
    /// The MMIO window is used up.
    WindowFull,
    /// No frame was left for a page table.
    OutOfMemory,
    /// A page in the window was already mapped (a bug in the bump logic).
    AlreadyMapped,
}

/// A device register region mapped uncached.
#[derive(Clone, Copy, Debug)]
pub struct MmioRegion {
    /// Where the region starts in virtual memory.
    pub virt: VirtAddr,
    /// Where the region starts physically.
    pub phys: PhysAddr,
    /// Length in bytes (as asked; the mapping is rounded to pages).
    pub len: u64,
}

/// Bump allocator over the MMIO window.
pub struct MmioWindow {
    start: u64,
    next: u64,
}

impl MmioWindow {
    /// A window over the first unused higher-half level-4 entry of `tables`.
    pub fn find(tables: &mut OffsetPageTable<'static>) -> Option<MmioWindow> {
        let level4 = tables.level_4_table_mut();
        let index = (256..512).rev().find(|&i| level4[i].is_unused())?;
        let start = VirtAddr::new_truncate((index as u64) << 39).as_u64();
        Some(MmioWindow { start, next: start })
    }

    /// Map `len` bytes of device memory at `phys`, uncached.
    pub fn map(
        &mut self,
        tables: &mut OffsetPageTable<'static>,
        frames: &mut impl FrameAllocator<Size4KiB>,
        phys: PhysAddr,
        len: u64,
    ) -> Result<MmioRegion, MmioError> {
        let first = phys.align_down(PAGE_SIZE);
        let end = phys
            .as_u64()
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(MmioError::BadRegion)?;
        let end = end
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(MmioError::BadRegion)?;
        if end > MAX_PHYSICAL {
            return Err(MmioError::BadRegion);
        }
        let span = end - first.as_u64();
        if (self.next - self.start) + span > MMIO_WINDOW_SIZE {
            return Err(MmioError::WindowFull);
        }
        let base = self.next;
        let flags = PageTableFlags::PRESENT
            | PageTableFlags::WRITABLE
            | PageTableFlags::NO_CACHE
            | PageTableFlags::WRITE_THROUGH
            | PageTableFlags::NO_EXECUTE;
        for offset in (0..span).step_by(PAGE_SIZE as usize) {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(base + offset));
            let frame = PhysFrame::containing_address(first + offset);
            // SAFETY: the page lies in the MMIO window, which nothing else
            // maps, and is fresh from the bump pointer; the frame is device
            // memory the caller got from a BAR, so no Rust object aliases it.
            let mapping = unsafe { tables.map_to(page, frame, flags, frames) };
            match mapping {
                Ok(flush) => flush.flush(),
                Err(x86_64::structures::paging::mapper::MapToError::FrameAllocationFailed) => {
                    return Err(MmioError::OutOfMemory);
                }
                Err(_) => return Err(MmioError::AlreadyMapped),
            }
        }
        self.next += span + PAGE_SIZE; // one unmapped guard page between regions
        Ok(MmioRegion {
            virt: VirtAddr::new(base + (phys.as_u64() - first.as_u64())),
            phys,
            len,
        })
    }
}
