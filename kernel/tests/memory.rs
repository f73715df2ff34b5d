//! Frames, DMA memory and MMIO mappings on the real memory map.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use bootloader_api::{BootInfo, entry_point};
use kernel::Kernel;
use spin::Once;
use x86_64::{PhysAddr, VirtAddr};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

static KERNEL: Once<&'static Kernel> = Once::new();

fn kernel() -> &'static Kernel {
    KERNEL.get().expect("initialised before the tests")
}

fn main(boot_info: &'static mut BootInfo) -> ! {
    KERNEL.call_once(|| kernel::init(boot_info, "warn"));
    test_main();
    kernel::exit(kernel::ExitStatus::Success)
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
