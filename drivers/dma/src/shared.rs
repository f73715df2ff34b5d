//! A DMA page that several queues and the device share, one dword each.
//!
//! The shadow doorbell and EventIdx pages of NVMe Doorbell Buffer Config
//! (NVMe 1.4 §5.7): each I/O queue owns the dwords at its doorbells'
//! offsets, but the page itself is shared by every queue of a controller,
//! and queues may run on different cores. Every access is therefore an
//! aligned atomic dword access (`AtomicU32`): sound however the queues are
//! spread over cores, and, like a volatile access, one load or store of the
//! whole dword that the compiler keeps. The fences between a shadow store
//! and the EventIdx load are in [`crate::ordering`].

use crate::{DmaRegion, PhysAddr};
use core::sync::atomic::{AtomicU32, Ordering};

/// A DMA region shared by several queues and the device, accessed only one
/// aligned dword at a time and atomically (see the module documentation).
#[derive(Debug)]
pub struct SharedDwords {
    region: DmaRegion,
}

// SAFETY: every access to the memory goes through `AtomicU32` (no slices
// are handed out after construction), so sharing between threads cannot
// race; the region itself is owned, like a `Box<[AtomicU32]>`.
unsafe impl Sync for SharedDwords {}

impl SharedDwords {
    /// Takes over `region`, zeroed.
    #[inline]
    pub fn new(mut region: DmaRegion) -> SharedDwords {
        region.zero();
        SharedDwords { region }
    }

    /// Physical address of the first byte.
    #[inline]
    pub fn phys(&self) -> PhysAddr {
        self.region.phys()
    }

    #[inline]
    fn dword(&self, offset: usize) -> Option<&AtomicU32> {
        let end = offset.checked_add(4)?;
        if end > self.region.len() || !offset.is_multiple_of(4) {
            return None;
        }
        // `offset + 4 <= len`: the pointer stays inside the region.
        let ptr = self
            .region
            .virt()
            .as_ptr()
            .wrapping_add(offset)
            .cast::<u32>();
        // SAFETY: in bounds and 4-byte aligned (checked above; the region
        // is page aligned), valid for the region's lifetime
        // (`DmaRegion::new`'s contract), and from now on accessed only
        // atomically (this type hands out no slices).
        Some(unsafe { AtomicU32::from_ptr(ptr) })
    }

    /// Reads the dword at `offset` (0 when out of bounds).
    #[inline]
    pub fn load(&self, offset: usize) -> u32 {
        self.dword(offset).map_or(0, |d| d.load(Ordering::Acquire))
    }

    /// Writes the dword at `offset` (ignored when out of bounds).
    #[inline]
    pub fn store(&self, offset: usize, value: u32) {
        if let Some(d) = self.dword(offset) {
            d.store(value, Ordering::Release);
        }
    }

    /// Sets every dword to zero.
    #[inline]
    pub fn zero(&self) {
        for offset in (0..self.region.len()).step_by(4) {
            self.store(offset, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::leaked_region;

    #[test]
    #[inline]
    fn dwords_are_independent_and_bounds_checked() {
        let mut region = leaked_region(4096);
        region.copy_in(0, &[0xFF; 16]);
        let shared = SharedDwords::new(region);
        assert_eq!(shared.load(0), 0, "taken over zeroed");
        shared.store(8, 7);
        shared.store(12, 9);
        assert_eq!((shared.load(8), shared.load(12)), (7, 9));
        shared.store(4096, 1);
        shared.store(6, 1);
        assert_eq!(shared.load(4096), 0);
        assert_eq!(shared.load(6), 0);
        std::thread::scope(|s| {
            s.spawn(|| shared.store(16, 1));
            s.spawn(|| shared.store(20, 2));
        });
        assert_eq!((shared.load(16), shared.load(20)), (1, 2));
        shared.zero();
        assert_eq!(shared.load(8), 0);
    }
}
