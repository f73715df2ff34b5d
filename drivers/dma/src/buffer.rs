//! Application-owned DMA memory: a region that frees itself.
//!
//! A [`DmaBuffer`] is the memory an application reads into and writes
//! from when it queues I/O: page aligned, physically contiguous, its
//! physical address known, so a driver can point the device at it without
//! copying. It keeps the allocator it came from (a [`DmaHome`]) and gives
//! the region back to it when dropped.
//!
//! While a request is in flight the buffer is moved into the driver as a
//! [`crate::Lent`]`<DmaBuffer>`: the application cannot reach it, and a
//! `Lent` that is dropped leaks the buffer rather than free it (the device
//! may still write to it). Only [`crate::Lent::reclaim`], after the device
//! handed it back, makes it a buffer again, which the driver returns to the
//! application or drops (then it is freed).

use crate::{DmaAllocator, DmaError, DmaRegion, PhysAddr};
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;
use core::mem::ManuallyDrop;

/// Alignment every buffer has at least: one 4 KiB page.
const MIN_ALIGN: usize = 4096;

/// The allocator a [`DmaBuffer`] comes from and goes back to (the kernel's
/// DMA memory on a machine, host memory in tests).
pub type DmaHome = Arc<dyn DmaAllocator + Send + Sync>;

/// DMA memory an application owns (see the module documentation).
///
/// The handle is one pointer wide (its parts live in one heap block made
/// at allocation), so handing it into a request and back out of the
/// completion moves a single word.
pub struct DmaBuffer {
    parts: Box<Parts>,
}

/// What a [`DmaBuffer`] holds.
struct Parts {
    /// Given back to `home` exactly once, in `Drop`.
    region: ManuallyDrop<DmaRegion>,
    /// What was asked for (the region may be rounded up).
    len: usize,
    home: DmaHome,
}

impl DmaBuffer {
    /// Allocates `len` zeroed bytes from `home`, physically contiguous and
    /// aligned to `align` (a power of two; at least 4 KiB is used). Fails
    /// when the allocator has no memory, when `align` is not a power of two,
    /// or when the allocator hands out a region that is too short or not
    /// aligned as asked (it goes straight back).
    pub fn allocate(home: &DmaHome, len: usize, align: usize) -> Result<DmaBuffer, DmaError> {
        if !align.is_power_of_two() {
            return Err(DmaError);
        }
        let align = align.max(MIN_ALIGN);
        let region = home.allocate(len.max(1), align)?;
        if region.len() < len || !region.phys().is_aligned(align as u64) {
            home.deallocate(region);
            return Err(DmaError);
        }
        Ok(DmaBuffer {
            parts: Box::new(Parts {
                region: ManuallyDrop::new(region),
                len,
                home: home.clone(),
            }),
        })
    }

    /// Length in bytes, as asked for at allocation.
    #[inline]
    pub fn len(&self) -> usize {
        self.parts.len
    }

    /// Whether the buffer has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.parts.len == 0
    }

    /// Physical (bus) address of the first byte.
    #[inline]
    pub fn phys(&self) -> PhysAddr {
        self.parts.region.phys()
    }

    /// The contents.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        let bytes = self.parts.region.as_slice();
        bytes.get(..self.parts.len).unwrap_or(bytes)
    }

    /// The contents, for writing.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.parts.len;
        let bytes = self.parts.region.as_mut_slice();
        if len <= bytes.len() {
            &mut bytes[..len]
        } else {
            bytes
        }
    }

    /// The allocator the buffer goes back to.
    #[inline]
    pub fn home(&self) -> &DmaHome {
        &self.parts.home
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `region` is not used after this
        // line; it was never taken before (only `Drop` takes it).
        let region = unsafe { ManuallyDrop::take(&mut self.parts.region) };
        self.parts.home.deallocate(region);
    }
}

impl fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("phys", &self.phys())
            .field("len", &self.parts.len)
            .finish()
    }
}

impl crate::Lent<DmaBuffer> {
    /// Physical address of the buffer's first byte (for the device's
    /// pointers).
    #[inline]
    pub fn phys(&self) -> PhysAddr {
        self.peek().phys()
    }

    /// Length of the buffer in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.peek().len()
    }

    /// Whether the buffer has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.peek().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::try_leaked_region;
    use crate::ordering::after_device_signal;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Host memory that counts what it hands out and takes back, and can
    /// hand out regions shorter or less aligned than asked.
    #[derive(Default)]
    struct Counting {
        allocated: AtomicUsize,
        freed: Mutex<Vec<u64>>,
        short_by: usize,
        misalign: bool,
    }

    impl DmaAllocator for Counting {
        fn allocate(&self, len: usize, align: usize) -> Result<DmaRegion, DmaError> {
            assert!(align.is_power_of_two() && align >= 4096);
            let region =
                try_leaked_region(len + if self.misalign { 4096 } else { 0 }).ok_or(DmaError)?;
            self.allocated.fetch_add(1, Ordering::SeqCst);
            if self.misalign || self.short_by > 0 {
                let (virt, phys) = (region.virt(), region.phys());
                let skip = if self.misalign { 2048 } else { 0 };
                // SAFETY: a part of the region just allocated (`skip` bytes
                // in, `len - short_by` long), owned only by the new region.
                return Ok(unsafe {
                    DmaRegion::new(
                        virt.add(skip),
                        phys.offset(skip as u64),
                        len - self.short_by,
                    )
                });
            }
            Ok(region)
        }
        fn deallocate(&self, region: DmaRegion) {
            self.freed.lock().unwrap().push(region.phys().as_u64());
        }
        fn translate(&self, _: *const u8) -> Option<PhysAddr> {
            None
        }
    }

    impl Counting {
        fn counts(&self) -> (usize, usize) {
            (
                self.allocated.load(Ordering::SeqCst),
                self.freed.lock().unwrap().len(),
            )
        }
    }

    fn home(counting: &Arc<Counting>) -> DmaHome {
        counting.clone()
    }

    #[test]
    fn a_buffer_knows_its_length_address_and_frees_itself_once() {
        let counting = Arc::new(Counting::default());
        let mut buffer = DmaBuffer::allocate(&home(&counting), 1000, 4096).unwrap();
        assert_eq!((buffer.len(), buffer.is_empty()), (1000, false));
        assert!(buffer.phys().is_aligned(4096));
        assert_eq!(buffer.as_slice().len(), 1000);
        assert!(buffer.as_slice().iter().all(|&b| b == 0), "zeroed");
        buffer.as_mut_slice()[999] = 7;
        assert_eq!(buffer.as_slice()[999], 7);
        assert_eq!(buffer.as_mut_slice().len(), 1000);
        assert!(format!("{buffer:?}").contains("len: 1000"));
        let phys = buffer.phys().as_u64();
        assert_eq!(counting.counts(), (1, 0));
        drop(buffer);
        assert_eq!(counting.counts(), (1, 1));
        assert_eq!(*counting.freed.lock().unwrap(), [phys]);
        let empty = DmaBuffer::allocate(&home(&counting), 0, 4096).unwrap();
        assert!(empty.is_empty() && empty.as_slice().is_empty());
    }

    #[test]
    fn unusable_regions_and_alignments_are_refused() {
        let short = Arc::new(Counting {
            short_by: 8,
            ..Counting::default()
        });
        assert_eq!(
            DmaBuffer::allocate(&home(&short), 4096, 4096).err(),
            Some(DmaError)
        );
        assert_eq!(short.counts(), (1, 1), "the short region went back");
        let misaligned = Arc::new(Counting {
            misalign: true,
            ..Counting::default()
        });
        assert!(DmaBuffer::allocate(&home(&misaligned), 4096, 4096).is_err());
        assert_eq!(misaligned.counts(), (1, 1));
        let counting = Arc::new(Counting::default());
        assert!(DmaBuffer::allocate(&home(&counting), 4096, 3000).is_err());
        assert_eq!(counting.counts(), (0, 0), "nothing asked of the allocator");
        // Alignments below a page are raised to a page.
        let small = DmaBuffer::allocate(&home(&counting), 512, 512).unwrap();
        assert!(small.phys().is_aligned(4096));
    }

    #[test]
    fn a_lent_buffer_is_never_freed_by_dropping_it() {
        let counting = Arc::new(Counting::default());
        let buffer = DmaBuffer::allocate(&home(&counting), 8192, 4096).unwrap();
        let phys = buffer.phys();
        let lent = crate::Lent::new(buffer);
        assert_eq!(
            (lent.phys(), lent.len(), lent.is_empty()),
            (phys, 8192, false)
        );
        drop(lent);
        assert_eq!(counting.counts(), (1, 0), "dropping a Lent leaks");
        // Reclaimed, it is a buffer again and frees itself.
        let mut buffer = DmaBuffer::allocate(&home(&counting), 4096, 4096).unwrap();
        buffer.as_mut_slice()[0] = 9;
        let back = crate::Lent::new(buffer).reclaim(&after_device_signal());
        assert_eq!(back.as_slice()[0], 9);
        assert_eq!(counting.counts(), (2, 0));
        drop(back);
        assert_eq!(counting.counts(), (2, 1));
    }
}
