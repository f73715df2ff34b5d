//! Page-aligned host memory as DMA regions, for tests (feature `host`).

use crate::{DmaRegion, PhysAddr};
use alloc::alloc::{Layout, alloc_zeroed};
use core::ptr::NonNull;

/// Leaks a zeroed, 4 KiB-aligned allocation of `len` bytes as a region
/// whose physical address equals its host address; `None` when the host
/// allocator fails.
pub fn try_leaked_region(len: usize) -> Option<DmaRegion> {
    let layout = Layout::from_size_align(len.max(1), 4096).ok()?;
    // SAFETY: the layout has a non-zero size.
    let virt = NonNull::new(unsafe { alloc_zeroed(layout) })?;
    // SAFETY: freshly allocated, zeroed, aligned to 4 KiB, never freed
    // (leaked), owned only by the returned region; host memory stands for
    // physical memory with an identity mapping.
    Some(unsafe { DmaRegion::new(virt, PhysAddr(virt.as_ptr() as u64), len) })
}

/// As [`try_leaked_region`]; panics if the host is out of memory (tests).
pub fn leaked_region(len: usize) -> DmaRegion {
    match try_leaked_region(len) {
        Some(region) => region,
        None => panic!("host allocator refused {len} bytes"),
    }
}
