//! Physical and virtual memory: frames, page tables, MMIO, heap and DMA.
//!
//! The bootloader maps all physical memory at a fixed offset, so any frame
//! is reachable at `physical + offset`. That mapping is write-back cached
//! and only guaranteed to cover RAM (and the first 4 GiB), so device memory
//! is mapped separately, uncached, in its own virtual window ([`mmio`]).

pub mod dma;
pub mod frames;
pub mod heap;
pub mod mmio;
pub mod paging;
pub mod write_combining;

use x86_64::{PhysAddr, VirtAddr};

/// Size of a page and of a frame.
pub const PAGE_SIZE: u64 = 4096;

/// The bootloader's physical-memory mapping: `virtual = physical + offset`.
#[derive(Clone, Copy, Debug)]
pub struct PhysicalMap {
    offset: u64,
}

impl PhysicalMap {
    /// Wrap the offset the bootloader reported.
    pub const fn new(offset: u64) -> PhysicalMap {
        PhysicalMap { offset }
    }

    /// The mapping's offset.
    pub const fn offset(&self) -> VirtAddr {
        VirtAddr::new_truncate(self.offset)
    }

    /// Where physical address `physical` is visible.
    pub fn virt(&self, physical: PhysAddr) -> VirtAddr {
        VirtAddr::new(self.offset + physical.as_u64())
    }
}

use spin::Mutex;
use x86_64::structures::paging::OffsetPageTable;

/// Everything the kernel knows about memory after boot.
pub struct Memory {
    map: PhysicalMap,
    frames: Mutex<frames::FrameBitmap<'static>>,
    tables: Mutex<OffsetPageTable<'static>>,
    mmio: Mutex<mmio::MmioWindow>,
}

impl Memory {
    /// Gather the pieces built during boot; None if no level-4 entry is
    /// free for the MMIO window.
    pub fn new(
        map: PhysicalMap,
        frames: frames::FrameBitmap<'static>,
        mut tables: OffsetPageTable<'static>,
    ) -> Option<Memory> {
        let mmio = mmio::MmioWindow::find(&mut tables)?;
        Some(Memory {
            map,
            frames: Mutex::new(frames),
            tables: Mutex::new(tables),
            mmio: Mutex::new(mmio),
        })
    }

    /// The physical-memory mapping.
    pub fn physical_map(&self) -> PhysicalMap {
        self.map
    }

    /// Run `f` with the frame allocator (tests and diagnostics).
    pub fn with_frames<R>(&self, f: impl FnOnce(&mut frames::FrameBitmap<'static>) -> R) -> R {
        f(&mut self.frames.lock())
    }

    /// Physical address behind a virtual one, by walking the page tables.
    pub fn translate(&self, virt: VirtAddr) -> Option<PhysAddr> {
        paging::translate(&self.tables.lock(), virt)
    }

    /// Map device memory uncached (see [`mmio`]).
    pub fn map_mmio(&self, phys: PhysAddr, len: u64) -> Result<mmio::MmioRegion, mmio::MmioError> {
        let mut tables = self.tables.lock();
        let mut frames = self.frames.lock();
        self.mmio.lock().map(&mut tables, &mut *frames, phys, len)
    }
}
