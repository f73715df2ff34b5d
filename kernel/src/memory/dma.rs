//! DMA memory: physically contiguous, page-aligned, zeroed, with its
//! physical address known.
//!
//! Regions come straight from the frame allocator and are used through the
//! physical-memory mapping, which is write-back cached; x86 DMA is cache
//! coherent, so no flushing is needed.

use core::ptr::NonNull;

use x86_64::PhysAddr;

use super::frames::FrameError;
use super::{Memory, PAGE_SIZE};

/// A DMA region owned by whoever allocated it; return it with
/// [`Memory::free_dma`].
#[derive(Debug)]
pub struct DmaBuffer {
    virt: NonNull<u8>,
    phys: PhysAddr,
    len: usize,
}

// SAFETY: a DmaBuffer is the unique owner of its frames (the frame allocator
// hands each out once), so moving it to another context moves that
// ownership; the kernel has a single CPU and no preemption.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// Virtual address of the first byte.
    pub fn virt(&self) -> NonNull<u8> {
        self.virt
    }

    /// Physical address of the first byte (page-aligned).
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Length in bytes (a whole number of pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length region (never produced by the allocator).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Give up the handle: the caller becomes responsible for the frames
    /// (and returns them with [`Memory::free_dma_frames`]).
    pub fn into_raw(self) -> (NonNull<u8>, PhysAddr, usize) {
        (self.virt, self.phys, self.len)
    }

    /// The region as bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `virt` points at `len` bytes owned by this buffer, mapped
        // and initialised (zeroed at allocation).
        unsafe { core::slice::from_raw_parts(self.virt.as_ptr(), self.len) }
    }

    /// The region as mutable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.virt.as_ptr(), self.len) }
    }
}

impl Memory {
    /// Allocate `len` bytes (rounded up to pages) of zeroed DMA memory.
    pub fn allocate_dma(&self, len: usize) -> Result<DmaBuffer, FrameError> {
        self.allocate_dma_aligned(len, PAGE_SIZE as usize)
    }

    /// Allocate `len` bytes (rounded up to pages) of zeroed DMA memory whose
    /// physical address is a multiple of `align`: a power of two (anything
    /// up to 4 KiB gives page alignment; an NVMe controller whose CAP.MPSMIN
    /// is above 4 KiB wants its memory page size). Any other `align` is
    /// refused with [`FrameError::BadAlignment`].
    pub fn allocate_dma_aligned(&self, len: usize, align: usize) -> Result<DmaBuffer, FrameError> {
        if !align.is_power_of_two() {
            return Err(FrameError::BadAlignment);
        }
        let pages = len.div_ceil(PAGE_SIZE as usize).max(1);
        let align_frames = (align / PAGE_SIZE as usize).max(1);
        let phys = self.frames.lock().allocate_aligned(pages, align_frames)?;
        let virt = self.map.virt(phys).as_mut_ptr::<u8>();
        let len = pages * PAGE_SIZE as usize;
        // SAFETY: the frames were just allocated for this buffer alone and
        // are mapped at `virt` by the physical-memory mapping.
        unsafe { core::ptr::write_bytes(virt, 0, len) };
        let virt = NonNull::new(virt).ok_or(FrameError::OutOfMemory)?;
        Ok(DmaBuffer { virt, phys, len })
    }

    /// Return a DMA region's frames.
    pub fn free_dma(&self, buffer: DmaBuffer) -> Result<(), FrameError> {
        self.free_dma_frames(buffer.phys, buffer.len)
    }

    /// Return the frames of a DMA region that was handed out as
    /// [`DmaBuffer`] and has since changed hands (the NVMe driver's regions).
    pub fn free_dma_frames(&self, start: PhysAddr, len: usize) -> Result<(), FrameError> {
        let pages = len.div_ceil(PAGE_SIZE as usize);
        self.frames.lock().free_contiguous(start, pages)
    }
}
