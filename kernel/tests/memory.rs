//! Frames, DMA memory and MMIO mappings on the real memory map, and the
//! frame allocator over a fragmented map of hundreds of regions.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use bootloader_api::{BootInfo, entry_point};
use common::kernel;
use kernel::memory::frames::{FrameBitmap, FrameError};
use x86_64::{PhysAddr, VirtAddr};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_and_test(boot_info, test_main)
}

#[test_case]
fn frames_are_unique_and_usable() {
    let memory = &kernel().memory;
    let mut seen = BTreeSet::new();
    let mut taken = Vec::new();
    memory.with_frames(|frames| {
        let free_before = frames.free_frames();
        for _ in 0..4096 {
            let frame = frames.allocate_contiguous(1).expect("frame");
            assert!(frame.is_aligned(4096u64));
            assert!(
                frames.is_usable(frame.as_u64()),
                "{frame:?} is not usable RAM"
            );
            assert!(seen.insert(frame.as_u64()), "{frame:?} handed out twice");
            taken.push(frame);
        }
        assert_eq!(frames.free_frames(), free_before - 4096);
        for frame in &taken {
            frames.free_contiguous(*frame, 1).expect("free");
        }
        assert_eq!(frames.free_frames(), free_before);
        // Freeing twice, or freeing what was never ours, is refused.
        assert!(frames.free_contiguous(taken[0], 1).is_err());
        assert!(
            frames
                .free_contiguous(PhysAddr::new(0xfee0_0000), 1)
                .is_err()
        );
    });
}

#[test_case]
fn frame_allocator_refuses_impossible_requests() {
    kernel().memory.with_frames(|frames| {
        assert!(frames.allocate_contiguous(0).is_err());
        assert!(
            frames
                .allocate_contiguous(frames.free_frames() + 1)
                .is_err()
        );
    });
}

#[test_case]
fn dma_regions_are_aligned_zeroed_and_translate_to_their_physical_address() {
    let memory = &kernel().memory;
    let mut regions = Vec::new();
    for pages in [1usize, 2, 3, 16, 64] {
        let mut region = memory.allocate_dma(pages * 4096 - 100).expect("dma");
        assert_eq!(region.len(), pages * 4096);
        assert!(region.phys().is_aligned(4096u64));
        assert!(region.as_slice().iter().all(|&b| b == 0), "not zeroed");
        for page in 0..pages {
            let virt = VirtAddr::from_ptr(region.virt().as_ptr()) + (page * 4096) as u64;
            let walked = memory.translate(virt).expect("mapped");
            assert_eq!(
                walked,
                region.phys() + (page * 4096) as u64,
                "not contiguous at page {page}"
            );
        }
        region.as_mut_slice().fill(0xa5);
        regions.push(region);
    }
    // No two regions overlap.
    let mut spans: Vec<(u64, u64)> = regions
        .iter()
        .map(|r| (r.phys().as_u64(), r.phys().as_u64() + r.len() as u64))
        .collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
        "DMA regions overlap: {spans:?}"
    );
    for region in regions {
        assert!(region.as_slice().iter().all(|&b| b == 0xa5));
        memory.free_dma(region).expect("free");
    }
    // Freed memory comes back zeroed.
    let again = memory.allocate_dma(4096).expect("dma");
    assert!(again.as_slice().iter().all(|&b| b == 0));
    memory.free_dma(again).expect("free");
}

#[test_case]
fn mmio_mapping_reaches_the_local_apic_uncached() {
    const LAPIC_BASE: u64 = 0xfee0_0000;
    const VERSION: usize = 0x30;
    let memory = &kernel().memory;
    let region = memory
        .map_mmio(PhysAddr::new(LAPIC_BASE), 4096)
        .expect("map");
    assert_eq!(
        memory.translate(region.virt),
        Some(PhysAddr::new(LAPIC_BASE))
    );
    let pointer = (region.virt.as_u64() as usize + VERSION) as *const u32;
    // SAFETY: the LAPIC's register page was just mapped uncached at
    // `region.virt`; the version register is read-only and 32-bit aligned.
    let version = unsafe { core::ptr::read_volatile(pointer) };
    let max_lvt = (version >> 16) & 0xff;
    assert!(
        (0x10..=0x15).contains(&(version & 0xff)),
        "LAPIC version {version:#x}"
    );
    assert!(max_lvt >= 2, "LAPIC max LVT {max_lvt}");
    // A mapping that is not page-aligned keeps its offset.
    let odd = memory
        .map_mmio(PhysAddr::new(LAPIC_BASE + VERSION as u64), 4)
        .expect("map");
    assert_eq!(odd.virt.as_u64() % 4096, VERSION as u64);
    assert!(memory.map_mmio(PhysAddr::new(LAPIC_BASE), 0).is_err());
    assert!(
        memory
            .map_mmio(PhysAddr::new((1 << 52) - 10), 4096)
            .is_err()
    );
}

/// 8 MiB of real RAM for a fake memory map to live in.
const BLOCK_FRAMES: usize = 2048;
const FRAME: u64 = 4096;

/// A small deterministic generator (xorshift64) for region sizes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A memory map that chops `base..base + BLOCK_FRAMES frames` into short
/// usable regions separated by reserved ones of several kinds, some usable
/// ones with partial frames at their ends, plus reserved regions outside
/// the block; returned in reverse address order. Also returns the frames
/// that are wholly usable (frame 0 of the block never is: the block's first
/// region is reserved).
fn fragmented_map(base: u64) -> (Vec<MemoryRegion>, BTreeSet<u64>) {
    let end = base + BLOCK_FRAMES as u64 * FRAME;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut regions = vec![MemoryRegion {
        start: 0,
        end: 0x10_0000,
        kind: MemoryRegionKind::Bootloader,
    }];
    let mut usable = BTreeSet::new();
    let mut at = base;
    let mut index = 0u64;
    while at < end {
        let gap = (1 + rng.below(3)) * FRAME;
        let kind = match index % 3 {
            0 => MemoryRegionKind::Bootloader,
            1 => MemoryRegionKind::UnknownUefi(index as u32 % 15),
            _ => MemoryRegionKind::UnknownBios(2),
        };
        regions.push(MemoryRegion {
            start: at,
            end: (at + gap).min(end),
            kind,
        });
        at += gap;
        let len = (1 + rng.below(5)) * FRAME;
        let (start, stop) = (at, (at + len).min(end));
        if start >= stop {
            break;
        }
        // Every seventh region starts mid-frame and every eleventh ends
        // mid-frame: the partial frames are not usable.
        let start_in = if index % 7 == 3 { start + 0x800 } else { start };
        let stop_in = if index % 11 == 5 { stop - 0x100 } else { stop };
        regions.push(MemoryRegion {
            start: start_in,
            end: stop_in,
            kind: MemoryRegionKind::Usable,
        });
        for frame in
            (start_in.next_multiple_of(FRAME)..stop_in & !(FRAME - 1)).step_by(FRAME as usize)
        {
            usable.insert(frame);
        }
        at = stop;
        index += 1;
    }
    regions.push(MemoryRegion {
        start: end,
        end: end + 0x4000_0000,
        kind: MemoryRegionKind::UnknownUefi(11),
    });
    regions.reverse();
    (regions, usable)
}

/// Allocate single frames until the allocator is empty; each must be one
/// of `usable` and new.
fn drain_singles(frames: &mut FrameBitmap<'_>, usable: &BTreeSet<u64>) -> BTreeSet<u64> {
    let mut taken = BTreeSet::new();
    loop {
        match frames.allocate_contiguous(1) {
            Ok(frame) => {
                let frame = frame.as_u64();
                assert!(usable.contains(&frame), "{frame:#x} is not usable");
                assert!(taken.insert(frame), "{frame:#x} handed out twice");
            }
            Err(FrameError::OutOfMemory) => return taken,
            Err(error) => panic!("allocation failed: {error:?}"),
        }
    }
}

/// Allocate runs of `count` frames aligned to `align` frames until none is
/// left; each run must lie wholly in usable frames, not overlap another,
/// and start aligned. Returns the runs' first frames.
fn drain_runs(
    frames: &mut FrameBitmap<'_>,
    usable: &BTreeSet<u64>,
    count: usize,
    align: usize,
) -> Vec<PhysAddr> {
    let mut seen = BTreeSet::new();
    let mut runs = Vec::new();
    while let Ok(first) = frames.allocate_aligned(count, align) {
        assert!(
            first.is_aligned(align as u64 * FRAME),
            "{first:?} not aligned to {align} frames"
        );
        for i in 0..count as u64 {
            let frame = first.as_u64() + i * FRAME;
            assert!(usable.contains(&frame), "{frame:#x} of a run is not usable");
            assert!(seen.insert(frame), "{frame:#x} handed out twice");
        }
        runs.push(first);
    }
    runs
}

#[test_case]
fn a_fragmented_map_of_hundreds_of_regions_gives_back_every_frame() {
    let memory = &kernel().memory;
    let block = memory
        .allocate_dma_aligned(BLOCK_FRAMES * FRAME as usize, 1 << 21)
        .expect("a block of real RAM");
    let (regions, usable) = fragmented_map(block.phys().as_u64());
    let usable_regions = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .count();
    assert!(
        usable_regions >= 300,
        "only {usable_regions} usable regions"
    );
    let mut storage = vec![0u64; FrameBitmap::storage_words(&regions).expect("words")];
    // SAFETY: every usable region of the map lies inside `block`, which the
    // real allocator gave this test alone and which is freed only after
    // `frames` is gone; the storage is on the heap, outside the block.
    let mut frames = unsafe { FrameBitmap::with_storage(&regions, &mut storage) }.expect("bitmap");
    let start = frames.free_frames();
    assert_eq!(start, usable.len());
    assert_eq!(frames.usable_frames(), usable.len());

    // Single frames: every usable frame exactly once, then all back.
    let singles = drain_singles(&mut frames, &usable);
    assert_eq!(singles, usable, "not every usable frame was handed out");
    assert_eq!(frames.free_frames(), 0);
    for &frame in singles.iter().rev() {
        frames
            .free_contiguous(PhysAddr::new(frame), 1)
            .expect("free");
    }
    assert_eq!(frames.free_frames(), start);

    // Contiguous and aligned runs, freed in several orders.
    for (count, align) in [(2, 1), (3, 1), (1, 2), (2, 4), (4, 4), (1, 8)] {
        let runs = drain_runs(&mut frames, &usable, count, align);
        assert!(!runs.is_empty(), "no run of {count} aligned to {align}");
        // What is left cannot hold another such run, but single frames
        // still come out, and each is usable.
        let rest = drain_singles(&mut frames, &usable);
        assert_eq!(runs.len() * count + rest.len(), usable.len());
        for first in runs.iter().step_by(2) {
            frames.free_contiguous(*first, count).expect("free run");
        }
        for &frame in &rest {
            frames
                .free_contiguous(PhysAddr::new(frame), 1)
                .expect("free");
        }
        for first in runs.iter().skip(1).step_by(2) {
            frames.free_contiguous(*first, count).expect("free run");
        }
        assert_eq!(
            frames.free_frames(),
            start,
            "runs of {count}/{align} leaked"
        );
    }

    // Free every third frame of a full allocator: exactly those come back,
    // wherever the search hint stands.
    let all = drain_singles(&mut frames, &usable);
    let every_third: BTreeSet<u64> = all.iter().copied().step_by(3).collect();
    for &frame in &every_third {
        frames
            .free_contiguous(PhysAddr::new(frame), 1)
            .expect("free");
    }
    assert_eq!(drain_singles(&mut frames, &usable), every_third);
    for &frame in &all {
        frames
            .free_contiguous(PhysAddr::new(frame), 1)
            .expect("free");
    }
    assert_eq!(frames.free_frames(), start);

    // Reserved frames, partial frames and double frees are refused.
    let reserved = (block.phys().as_u64()..block.phys().as_u64() + BLOCK_FRAMES as u64 * FRAME)
        .step_by(FRAME as usize)
        .find(|f| !usable.contains(f))
        .expect("a reserved frame in the block");
    assert_eq!(
        frames.free_contiguous(PhysAddr::new(reserved), 1),
        Err(FrameError::NotAllocated)
    );
    let one = frames.allocate_contiguous(1).expect("frame");
    frames.free_contiguous(one, 1).expect("free");
    assert_eq!(
        frames.free_contiguous(one, 1),
        Err(FrameError::NotAllocated)
    );
    assert_eq!(frames.allocate_aligned(1, 3), Err(FrameError::BadAlignment));
    assert_eq!(frames.free_frames(), start);

    // Every frame is allocatable once more.
    assert_eq!(drain_singles(&mut frames, &usable), usable);
    run_across_the_search_hint(block.phys().as_u64());
    overlapping_regions_count_once(block.phys().as_u64());
    memory.free_dma(block).expect("free the block");
}

/// A free run that starts before the search hint and ends after it is
/// found: four frames A..A+4 (A even), A+1 and A+2 free, the hint at A+2.
fn run_across_the_search_hint(base: u64) {
    let a = base + 2 * FRAME;
    let regions = [MemoryRegion {
        start: a,
        end: a + 4 * FRAME,
        kind: MemoryRegionKind::Usable,
    }];
    let mut storage = vec![0u64; FrameBitmap::storage_words(&regions).expect("words")];
    // SAFETY: the region lies inside the block the caller owns; the
    // storage is on the heap.
    let mut frames = unsafe { FrameBitmap::with_storage(&regions, &mut storage) }.expect("bitmap");
    let at = |i: u64| PhysAddr::new(a + i * FRAME);
    for i in 0..4 {
        assert_eq!(frames.allocate_contiguous(1), Ok(at(i)));
    }
    frames.free_contiguous(at(1), 1).expect("free");
    frames.free_contiguous(at(2), 1).expect("free");
    // An aligned single frame skips A+1 and leaves the hint after A+2;
    // freeing A+2 brings the hint back to A+2, with A+1 free before it.
    assert_eq!(frames.allocate_aligned(1, 2), Ok(at(2)));
    frames.free_contiguous(at(2), 1).expect("free");
    assert_eq!(frames.allocate_contiguous(2), Ok(at(1)));
    assert_eq!(frames.free_frames(), 0);
}

#[test_case]
fn dma_aligned_to_a_device_page_on_a_fragmented_allocator() {
    let memory = &kernel().memory;
    let free_at_start = memory.with_frames(|frames| frames.free_frames());
    for align in [8usize << 10, 64 << 10, 2 << 20] {
        for len in [3 * 4096 + 5, align] {
            // Fragment: hold single frames until the next free frame is one
            // that is not aligned even to 8 KiB.
            let mut held = Vec::new();
            let next_free = memory.with_frames(|frames| {
                loop {
                    let frame = frames.allocate_contiguous(1).expect("frame");
                    if frame.as_u64() % (8 << 10) != 0 {
                        frames.free_contiguous(frame, 1).expect("free");
                        break frame;
                    }
                    held.push(frame);
                }
            });
            let mut buffer = memory
                .allocate_dma_aligned(len, align)
                .expect("aligned DMA");
            let phys = buffer.phys();
            assert!(
                phys.is_aligned(align as u64),
                "{phys:?} not aligned to {align:#x}"
            );
            assert_ne!(phys, next_free);
            assert_eq!(buffer.len(), len.next_multiple_of(4096));
            assert!(buffer.as_slice().iter().all(|&b| b == 0), "not zeroed");
            for page in 0..buffer.len() / 4096 {
                let virt = VirtAddr::from_ptr(buffer.virt().as_ptr()) + (page * 4096) as u64;
                assert_eq!(memory.translate(virt), Some(phys + (page * 4096) as u64));
            }
            // Dirty it, free it, and get the same frames back zeroed.
            buffer.as_mut_slice().fill(0x5a);
            memory.free_dma(buffer).expect("free");
            let again = memory
                .allocate_dma_aligned(len, align)
                .expect("aligned DMA");
            assert_eq!(again.phys(), phys);
            assert!(again.as_slice().iter().all(|&b| b == 0), "not zeroed");
            memory.free_dma(again).expect("free");
            memory.with_frames(|frames| {
                for frame in held {
                    frames.free_contiguous(frame, 1).expect("free");
                }
                assert_eq!(
                    frames.free_frames(),
                    free_at_start,
                    "{align:#x}/{len}: frames leaked"
                );
            });
        }
    }
    for bad in [0, 3 << 12, 6000] {
        assert_eq!(
            memory.allocate_dma_aligned(4096, bad).err(),
            Some(FrameError::BadAlignment),
            "alignment {bad}"
        );
    }
    // Alignments up to a page are page alignment.
    let small = memory.allocate_dma_aligned(100, 512).expect("dma");
    assert!(small.phys().is_aligned(4096u64));
    memory.free_dma(small).expect("free");
    assert_eq!(
        memory.with_frames(|frames| frames.free_frames()),
        free_at_start
    );
}

/// Usable regions that overlap (firmware maps have had them) count once.
fn overlapping_regions_count_once(base: u64) {
    let usable = |start: u64, end: u64| MemoryRegion {
        start: base + start * FRAME,
        end: base + end * FRAME,
        kind: MemoryRegionKind::Usable,
    };
    let regions = [usable(1, 9), usable(5, 12), usable(6, 7), usable(20, 22)];
    let mut storage = vec![0u64; FrameBitmap::storage_words(&regions).expect("words")];
    // SAFETY: the regions lie inside the block the caller owns; the
    // storage is on the heap.
    let mut frames = unsafe { FrameBitmap::with_storage(&regions, &mut storage) }.expect("bitmap");
    assert_eq!(frames.free_frames(), 13);
    assert_eq!(frames.usable_frames(), 13);
    let expected: BTreeSet<u64> = (1..12).chain(20..22).map(|f| base + f * FRAME).collect();
    assert_eq!(drain_singles(&mut frames, &expected), expected);
    // Too little storage is refused, not overrun.
    let mut small = vec![0u64; 1];
    // SAFETY: as above.
    let refused = unsafe { FrameBitmap::with_storage(&regions, &mut small) };
    assert_eq!(refused.err(), Some(FrameError::NoRoomForBitmap));
}
