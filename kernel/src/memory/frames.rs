//! The physical frame allocator: a bitmap over the bootloader's memory map.
//!
//! Only regions the bootloader marks `Usable` ever become free bits; every
//! other frame (firmware, ACPI, the kernel, the bootloader's page tables,
//! device memory) stays allocated forever. One bit per 4 KiB frame up to the
//! end of the highest usable region: 32 KiB of bitmap per GiB. The bitmap
//! itself lives in the first usable region large enough, reached through
//! the physical-memory mapping, and is marked used.
//!
//! Contiguous allocations (for DMA) are first-fit searches from a moving
//! hint, so repeated small allocations stay cheap.

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};

use super::{PAGE_SIZE, PhysicalMap};

/// Why the frame allocator could not be built or could not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The memory map has no usable region.
    NoUsableMemory,
    /// No usable region can hold the bitmap.
    NoRoomForBitmap,
    /// No run of free frames is long enough.
    OutOfMemory,
    /// A frame being freed was not allocated, or lies outside usable memory.
    NotAllocated,
}

/// Bitmap frame allocator over usable memory.
pub struct FrameBitmap {
    bits: &'static mut [u64],
    frames: usize,
    free: usize,
    usable: usize,
    hint: usize,
    usable_ranges: [(u64, u64); 32],
    usable_range_count: usize,
}

impl FrameBitmap {
    /// Build the allocator from the memory map.
    pub fn new(regions: &MemoryRegions, map: PhysicalMap) -> Result<FrameBitmap, FrameError> {
        let usable = || {
            regions
                .iter()
                .filter(|r| r.kind == MemoryRegionKind::Usable)
                .map(|r| {
                    (
                        r.start.next_multiple_of(PAGE_SIZE),
                        r.end & !(PAGE_SIZE - 1),
                    )
                })
                .filter(|(start, end)| end > start)
        };
        let top = usable()
            .map(|(_, end)| end)
            .max()
            .ok_or(FrameError::NoUsableMemory)?;
        let frames = (top / PAGE_SIZE) as usize;
        let words = frames.div_ceil(64);
        let bitmap_bytes = (words * 8) as u64;
        let (home, _) = usable()
            .find(|(start, end)| end - start >= bitmap_bytes.next_multiple_of(PAGE_SIZE))
            .ok_or(FrameError::NoRoomForBitmap)?;
        let pointer = map.virt(PhysAddr::new(home)).as_mut_ptr::<u64>();
        // SAFETY: `home` starts a usable region of at least `bitmap_bytes`
        // that nothing else uses yet (the heap and DMA allocate from this
        // bitmap later, and the bitmap's own frames are marked used below);
        // the physical-memory mapping makes it writable at `pointer`, which
        // is page-aligned and so aligned for u64.
        let bits = unsafe { core::slice::from_raw_parts_mut(pointer, words) };
        bits.fill(u64::MAX);
        let mut bitmap = FrameBitmap {
            bits,
            frames,
            free: 0,
            usable: 0,
            hint: 0,
            usable_ranges: [(0, 0); 32],
            usable_range_count: 0,
        };
        for (start, end) in usable() {
            if bitmap.usable_range_count < bitmap.usable_ranges.len() {
                bitmap.usable_ranges[bitmap.usable_range_count] = (start, end);
                bitmap.usable_range_count += 1;
            }
            for frame in (start / PAGE_SIZE) as usize..(end / PAGE_SIZE) as usize {
                bitmap.set_free(frame, true);
                bitmap.usable += 1;
            }
        }
        let bitmap_frames = bitmap_bytes.div_ceil(PAGE_SIZE) as usize;
        let first = (home / PAGE_SIZE) as usize;
        for frame in first..first + bitmap_frames {
            bitmap.set_free(frame, false);
        }
        // Frame 0 is never handed out: a zero physical address is too easily
        // mistaken for "none" by devices and by people.
        if bitmap.is_free(0) {
            bitmap.set_free(0, false);
        }
        Ok(bitmap)
    }

    fn is_free(&self, frame: usize) -> bool {
        self.bits[frame / 64] & (1 << (frame % 64)) == 0
    }

    fn set_free(&mut self, frame: usize, free: bool) {
        let (word, bit) = (frame / 64, 1u64 << (frame % 64));
        let was_free = self.bits[word] & bit == 0;
        if free && !was_free {
            self.bits[word] &= !bit;
            self.free += 1;
        } else if !free && was_free {
            self.bits[word] |= bit;
            self.free -= 1;
        }
    }

    /// Allocate `count` physically contiguous frames; returns the first.
    pub fn allocate_contiguous(&mut self, count: usize) -> Result<PhysAddr, FrameError> {
        self.allocate_aligned(count, 1)
    }

    /// Allocate `count` physically contiguous frames whose first frame
    /// number is a multiple of `align_frames` (a power of two; 1 for any
    /// frame): a device page larger than 4 KiB wants its buffers aligned
    /// to that page.
    pub fn allocate_aligned(
        &mut self,
        count: usize,
        align_frames: usize,
    ) -> Result<PhysAddr, FrameError> {
        if count == 0 || count > self.free || !align_frames.is_power_of_two() {
            return Err(FrameError::OutOfMemory);
        }
        for pass in 0..2 {
            let (from, to) = if pass == 0 {
                (self.hint, self.frames)
            } else {
                (0, self.hint)
            };
            let mut run = 0;
            let mut frame = from;
            while frame < to.min(self.frames) {
                // Skip whole used words quickly.
                if frame % 64 == 0 && self.bits[frame / 64] == u64::MAX {
                    run = 0;
                    frame += 64;
                    continue;
                }
                if self.is_free(frame) && (run > 0 || frame.is_multiple_of(align_frames)) {
                    run += 1;
                    if run == count {
                        let first = frame + 1 - count;
                        for f in first..=frame {
                            self.set_free(f, false);
                        }
                        self.hint = frame + 1;
                        return Ok(PhysAddr::new(first as u64 * PAGE_SIZE));
                    }
                } else {
                    run = 0;
                }
                frame += 1;
            }
        }
        Err(FrameError::OutOfMemory)
    }

    /// Return `count` frames starting at `start`, allocated earlier.
    pub fn free_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        let first = (start.as_u64() / PAGE_SIZE) as usize;
        if !start.is_aligned(PAGE_SIZE) || first + count > self.frames {
            return Err(FrameError::NotAllocated);
        }
        let all_allocated_usable = (first..first + count)
            .all(|f| !self.is_free(f) && self.is_usable(f as u64 * PAGE_SIZE));
        if !all_allocated_usable {
            return Err(FrameError::NotAllocated);
        }
        for frame in first..first + count {
            self.set_free(frame, true);
        }
        self.hint = self.hint.min(first);
        Ok(())
    }

    /// True if `address` lies in a region the bootloader marked usable.
    pub fn is_usable(&self, address: u64) -> bool {
        self.usable_ranges[..self.usable_range_count]
            .iter()
            .any(|&(start, end)| (start..end).contains(&address))
    }

    /// Free frames now.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Frames the memory map called usable.
    pub fn usable_frames(&self) -> usize {
        self.usable
    }
}

// SAFETY: `allocate_contiguous` hands out each frame at most once until it
// is freed, and only frames of usable RAM, which is what page tables need.
unsafe impl FrameAllocator<Size4KiB> for FrameBitmap {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.allocate_contiguous(1)
            .ok()
            .map(PhysFrame::containing_address)
    }
}
