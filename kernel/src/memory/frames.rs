//! The physical frame allocator: two bitmaps over the bootloader's memory map.
//!
//! One bit per 4 KiB frame, up to the end of the highest usable region, in
//! each of two bitmaps:
//!
//! - `managed`: the frame is usable RAM that this allocator hands out. Set
//!   once, at construction, for every frame of every region the map calls
//!   `Usable`, except the bitmaps' own frames and frame 0.
//! - `used`: the frame is not free (allocated, or not managed at all).
//!
//! Why a second bitmap rather than a list of usable ranges: UEFI memory maps
//! on real PCs have hundreds of descriptors, and the allocator exists before
//! the heap, so a list would need a fixed bound that some machine exceeds
//! (frees of frames past it would then be refused and leak). The allocation
//! bits alone cannot tell an allocated frame from a reserved one, so a free
//! of firmware or device memory would be accepted and that memory handed
//! out later. A second bitmap has no bound, answers "may this frame be
//! freed?" in O(1), and costs what the first does: 32 KiB per GiB of
//! physical address space below the top of RAM. Both bitmaps live in the
//! first usable region large enough, reached through the physical-memory
//! mapping, and their frames are withdrawn from the allocator.
//!
//! Contiguous allocations (for DMA) are first-fit searches from a moving
//! hint, so repeated small allocations stay cheap; aligned runs (a device
//! page larger than 4 KiB) start only on a multiple of the alignment.

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};

use super::{PAGE_SIZE, PhysicalMap};

/// Why the frame allocator could not be built or could not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The memory map has no usable region.
    NoUsableMemory,
    /// No usable region can hold the bitmaps (or the storage given for them
    /// is smaller than [`FrameBitmap::storage_words`]).
    NoRoomForBitmap,
    /// No run of free frames is long enough (or none was asked for).
    OutOfMemory,
    /// The alignment asked for is not a power of two.
    BadAlignment,
    /// A frame being freed was not allocated, or lies outside usable memory.
    NotAllocated,
}

/// Bitmap frame allocator over usable memory.
pub struct FrameBitmap<'a> {
    /// 1: allocated or not managed; 0: free.
    used: &'a mut [u64],
    /// 1: usable RAM this allocator hands out.
    managed: &'a mut [u64],
    frames: usize,
    free: usize,
    usable: usize,
    hint: usize,
}

/// The usable regions of a memory map as page-aligned `(start, end)` byte
/// ranges (partial frames at either end are left out).
fn usable_ranges(regions: &[MemoryRegion]) -> impl Iterator<Item = (u64, u64)> + '_ {
    regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .filter_map(|r| {
            let start = r.start.checked_next_multiple_of(PAGE_SIZE)?;
            let end = r.end & !(PAGE_SIZE - 1);
            (end > start).then_some((start, end))
        })
}

/// Frames covered by the bitmaps of `regions`: up to the highest usable end.
fn frames_covered(regions: &[MemoryRegion]) -> Result<usize, FrameError> {
    usable_ranges(regions)
        .map(|(_, end)| (end / PAGE_SIZE) as usize)
        .max()
        .ok_or(FrameError::NoUsableMemory)
}

impl FrameBitmap<'static> {
    /// Build the allocator from the bootloader's memory map, keeping the
    /// bitmaps in the first usable region large enough.
    pub fn new(regions: &[MemoryRegion], map: PhysicalMap) -> Result<Self, FrameError> {
        let words = FrameBitmap::storage_words(regions)?;
        let bytes = (words as u64 * 8).next_multiple_of(PAGE_SIZE);
        let (home, _) = usable_ranges(regions)
            .find(|(start, end)| end - start >= bytes)
            .ok_or(FrameError::NoRoomForBitmap)?;
        let pointer = map.virt(PhysAddr::new(home)).as_mut_ptr::<u64>();
        // SAFETY: `home` starts a usable region of at least `bytes` that
        // nothing else uses yet (the heap and DMA allocate from this bitmap
        // later, and its own frames are withdrawn below before anything is
        // handed out); the physical-memory mapping makes it writable at
        // `pointer`, which is page-aligned and so aligned for u64.
        let storage = unsafe { core::slice::from_raw_parts_mut(pointer, words) };
        // SAFETY: the bootloader's usable regions are RAM that nothing else
        // owns once the kernel runs; the storage is withdrawn just below.
        let mut bitmap = unsafe { FrameBitmap::with_storage(regions, storage) }?;
        let first = (home / PAGE_SIZE) as usize;
        for frame in first..first + (bytes / PAGE_SIZE) as usize {
            bitmap.withdraw(frame);
        }
        Ok(bitmap)
    }
}

impl<'a> FrameBitmap<'a> {
    /// How many `u64` words of storage [`FrameBitmap::with_storage`] needs
    /// for `regions`.
    pub fn storage_words(regions: &[MemoryRegion]) -> Result<usize, FrameError> {
        Ok(frames_covered(regions)?.div_ceil(64) * 2)
    }

    /// Build an allocator over the usable regions of `regions` (any number,
    /// in any order, overlapping or not), keeping its bitmaps in `storage`
    /// (at least [`FrameBitmap::storage_words`] words). Frame 0 is never
    /// handed out: a zero physical address is too easily mistaken for
    /// "none" by devices and by people.
    ///
    /// # Safety
    /// Every frame of every usable region must be RAM that nothing else
    /// uses for as long as the allocator (or anything it hands out) lives,
    /// reachable through the physical-memory mapping; `storage` must not
    /// lie in any of them.
    pub unsafe fn with_storage(
        regions: &[MemoryRegion],
        storage: &'a mut [u64],
    ) -> Result<Self, FrameError> {
        let frames = frames_covered(regions)?;
        let words = frames.div_ceil(64);
        if storage.len() < words * 2 {
            return Err(FrameError::NoRoomForBitmap);
        }
        let (used, rest) = storage.split_at_mut(words);
        let managed = &mut rest[..words];
        used.fill(u64::MAX);
        managed.fill(0);
        let mut bitmap = FrameBitmap {
            used,
            managed,
            frames,
            free: 0,
            usable: 0,
            hint: 0,
        };
        for (start, end) in usable_ranges(regions) {
            bitmap.admit((start / PAGE_SIZE) as usize, (end / PAGE_SIZE) as usize);
        }
        bitmap.withdraw(0);
        Ok(bitmap)
    }

    /// Make frames `first..end` managed and free (those not already so).
    fn admit(&mut self, first: usize, end: usize) {
        let mut frame = first;
        while frame < end {
            let word = frame / 64;
            if frame.is_multiple_of(64) && frame + 64 <= end && self.managed[word] == 0 {
                self.managed[word] = u64::MAX;
                self.used[word] = 0;
                self.free += 64;
                self.usable += 64;
                frame += 64;
                continue;
            }
            let bit = 1u64 << (frame % 64);
            if self.managed[word] & bit == 0 {
                self.managed[word] |= bit;
                self.used[word] &= !bit;
                self.free += 1;
                self.usable += 1;
            }
            frame += 1;
        }
    }

    /// Take `frame` out of the allocator for good (it stays counted as
    /// usable RAM).
    fn withdraw(&mut self, frame: usize) {
        if frame >= self.frames || !self.is_managed(frame) {
            return;
        }
        if self.is_free(frame) {
            self.set_free(frame, false);
        }
        self.managed[frame / 64] &= !(1 << (frame % 64));
    }

    fn is_managed(&self, frame: usize) -> bool {
        self.managed[frame / 64] & (1 << (frame % 64)) != 0
    }

    fn is_free(&self, frame: usize) -> bool {
        self.used[frame / 64] & (1 << (frame % 64)) == 0
    }

    fn set_free(&mut self, frame: usize, free: bool) {
        let (word, bit) = (frame / 64, 1u64 << (frame % 64));
        let was_free = self.used[word] & bit == 0;
        if free && !was_free {
            self.used[word] &= !bit;
            self.free += 1;
        } else if !free && was_free {
            self.used[word] |= bit;
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
        if !align_frames.is_power_of_two() {
            return Err(FrameError::BadAlignment);
        }
        if count == 0 || count > self.free {
            return Err(FrameError::OutOfMemory);
        }
        // From the hint to the end, then from the start up to where a run
        // that crosses the hint would end.
        let passes = [
            (self.hint, self.frames),
            (0, self.hint.saturating_add(count).min(self.frames)),
        ];
        for (from, to) in passes {
            if let Some(first) = self.find_run(from, to, count, align_frames) {
                for frame in first..first + count {
                    self.set_free(frame, false);
                }
                self.hint = first + count;
                return Ok(PhysAddr::new(first as u64 * PAGE_SIZE));
            }
        }
        Err(FrameError::OutOfMemory)
    }

    /// First run of `count` free frames in `from..to` starting on a
    /// multiple of `align` (a power of two).
    fn find_run(&self, from: usize, to: usize, count: usize, align: usize) -> Option<usize> {
        let mut run = 0;
        let mut frame = from.checked_next_multiple_of(align)?;
        while frame < to {
            // A run may only start on an aligned frame; skip whole used
            // words quickly while looking for one.
            if run == 0 && frame.is_multiple_of(64) && self.used[frame / 64] == u64::MAX {
                frame = (frame + 64).checked_next_multiple_of(align)?;
                continue;
            }
            if self.is_free(frame) {
                run += 1;
                if run == count {
                    return Some(frame + 1 - count);
                }
                frame += 1;
            } else {
                run = 0;
                frame = (frame + 1).checked_next_multiple_of(align)?;
            }
        }
        None
    }

    /// Return `count` frames starting at `start`, allocated earlier. All or
    /// nothing: if any frame was not allocated (or is not usable RAM this
    /// allocator manages), nothing is freed.
    pub fn free_contiguous(&mut self, start: PhysAddr, count: usize) -> Result<(), FrameError> {
        let first = (start.as_u64() / PAGE_SIZE) as usize;
        let in_range = first
            .checked_add(count)
            .is_some_and(|end| end <= self.frames);
        if !start.is_aligned(PAGE_SIZE) || !in_range {
            return Err(FrameError::NotAllocated);
        }
        let all_allocated = (first..first + count).all(|f| self.is_managed(f) && !self.is_free(f));
        if !all_allocated {
            return Err(FrameError::NotAllocated);
        }
        for frame in first..first + count {
            self.set_free(frame, true);
        }
        self.hint = self.hint.min(first);
        Ok(())
    }

    /// True if `address` lies in usable RAM that this allocator hands out
    /// (a usable region of the map, other than the bitmaps and frame 0).
    pub fn is_usable(&self, address: u64) -> bool {
        let frame = address / PAGE_SIZE;
        frame < self.frames as u64 && self.is_managed(frame as usize)
    }

    /// Free frames now.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Frames the memory map called usable (the bitmaps' own included).
    pub fn usable_frames(&self) -> usize {
        self.usable
    }
}

// SAFETY: `allocate_contiguous` hands out each frame at most once until it
// is freed, and only frames of usable RAM nobody else uses (the contract of
// `with_storage`, which `new` meets for the bootloader's map), which is what
// page tables need.
unsafe impl FrameAllocator<Size4KiB> for FrameBitmap<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.allocate_contiguous(1)
            .ok()
            .map(PhysFrame::containing_address)
    }
}
