//! DMA regions and the allocator trait that hands them out.
//!
//! A [`DmaRegion`] is physically contiguous, aligned to at least 4 KiB and
//! owned by exactly one driver object (a queue, a buffer pool), so the
//! driver never aliases it. Entries the device reads or writes while the
//! driver works on the same region (queue rings, PRP and descriptor lists)
//! are accessed one dword (or qword) at a time through [`VolatilePtr`];
//! data buffers are copied with plain copies, because the driver touches
//! them only while the device does not (see [`crate::Lent`]). A queue ring
//! is a [`DmaRing`]: how many entries fit is found once, so an entry's
//! bounds check is one comparison of its index.

use crate::PhysAddr;
use core::marker::PhantomData;
use core::ptr::NonNull;
use volatile::VolatilePtr;

/// The DMA allocator could not provide memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaError;

/// A physically contiguous, page-aligned (at least 4 KiB), zeroed DMA region.
///
/// Dropping a region does not free it: memory goes back through
/// [`DmaAllocator::deallocate`], and drivers leak regions the device might
/// still access rather than free them too early.
#[derive(Debug)]
pub struct DmaRegion {
    virt: NonNull<u8>,
    phys: PhysAddr,
    len: usize,
}

// SAFETY: a `DmaRegion` is the exclusive owner of its memory (contract of
// `DmaRegion::new`), like a `Box<[u8]>`; nothing in it is tied to a thread.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// Wraps memory the allocator handed out.
    ///
    /// # Safety
    ///
    /// `virt` must point to `len` bytes that are valid for reads and writes
    /// for as long as the region (or anything moved out of it) exists, that
    /// nothing else accesses while the region owns them (the device only
    /// while the driver lets it), that are physically contiguous starting at
    /// `phys` and reachable by the device's DMA, and that are aligned to at
    /// least 4 KiB.
    pub unsafe fn new(virt: NonNull<u8>, phys: PhysAddr, len: usize) -> DmaRegion {
        DmaRegion { virt, phys, len }
    }

    /// Physical address of the first byte.
    #[inline]
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Virtual address of the first byte.
    #[inline]
    pub fn virt(&self) -> NonNull<u8> {
        self.virt
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The contents as bytes. Only meaningful while the device is not
    /// writing the region (memory lent to it is out of reach, see
    /// [`crate::Lent`]).
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `new`'s contract: `len` valid bytes owned by this region.
        unsafe { core::slice::from_raw_parts(self.virt.as_ptr(), self.len) }
    }

    /// The contents as mutable bytes (same caveat as [`Self::as_slice`]).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `new`'s contract; `&mut self` makes the borrow exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.virt.as_ptr(), self.len) }
    }

    /// Sets every byte to zero.
    #[inline]
    pub fn zero(&mut self) {
        self.as_mut_slice().fill(0);
    }

    /// The dword at `offset`, if it lies inside the region and `offset` is
    /// a multiple of 4 (so, the region being page aligned, it is aligned).
    #[inline]
    fn dword(&self, offset: usize) -> Option<*mut u32> {
        self.dwords(offset, 1)
    }

    /// Volatile read of the dword at `offset` (a multiple of 4); 0 when out
    /// of bounds. For entries the device writes (completion queue).
    #[inline]
    pub fn read_volatile_u32(&self, offset: usize) -> u32 {
        let Some(dword) = self.dword(offset) else {
            return 0;
        };
        // SAFETY: in bounds and 4-byte aligned (`dword`), so not null and
        // valid for reads per `new`'s contract; the pointer lives for this
        // read.
        unsafe { VolatilePtr::new_read_only(NonNull::new_unchecked(dword)) }.read()
    }

    /// Volatile write of the dword at `offset`; ignored when out of bounds.
    /// For entries the device reads (submission queue, PRP lists).
    #[inline]
    pub fn write_volatile_u32(&mut self, offset: usize, value: u32) {
        if let Some(dword) = self.dword(offset) {
            // SAFETY: as in `read_volatile_u32`; `&mut self` makes this the
            // only access from the CPU side.
            unsafe { VolatilePtr::new(NonNull::new_unchecked(dword)) }.write(value);
        }
    }

    /// Volatile write of a little-endian qword as two dwords, low first.
    #[inline]
    pub fn write_volatile_u64(&mut self, offset: usize, value: u64) {
        self.write_volatile_u32(offset, value as u32);
        self.write_volatile_u32(offset.wrapping_add(4), (value >> 32) as u32);
    }

    /// Volatile writes of `N` consecutive dwords from `offset` (a multiple
    /// of 4), bounds-checked once; nothing is written when they do not all
    /// fit. For whole entries the device reads (a submission entry).
    #[inline]
    pub fn write_volatile_dwords<const N: usize>(&mut self, offset: usize, values: &[u32; N]) {
        let Some(first) = self.dwords(offset, N) else {
            return;
        };
        for (i, value) in values.iter().enumerate() {
            // SAFETY: `dwords` checked that all `N` dwords from `first` lie
            // inside the region and are aligned (so none is null); `&mut
            // self` makes this the only access from the CPU side (as in
            // `write_volatile_u32`).
            unsafe { VolatilePtr::new(NonNull::new_unchecked(first.add(i))) }.write(*value);
        }
    }

    /// Volatile reads of `N` consecutive dwords from `offset`, bounds-checked
    /// once; all zero when they do not all fit. For whole entries the device
    /// writes (a completion entry).
    #[inline]
    pub fn read_volatile_dwords<const N: usize>(&self, offset: usize) -> [u32; N] {
        let mut values = [0u32; N];
        if let Some(first) = self.dwords(offset, N) {
            for (i, value) in values.iter_mut().enumerate() {
                // SAFETY: as in `write_volatile_dwords`; reads only.
                let dword = unsafe { NonNull::new_unchecked(first.add(i)) };
                // SAFETY: in bounds, aligned and valid for reads (above).
                *value = unsafe { VolatilePtr::new_read_only(dword) }.read();
            }
        }
        values
    }

    /// The first of `count` dwords at `offset`, if all of them lie inside
    /// the region and `offset` is a multiple of 4. A raw pointer rather
    /// than a `NonNull`, so that testing the `Option` is the bounds test
    /// alone (a `NonNull` would hide the tag in a null test).
    #[inline]
    fn dwords(&self, offset: usize, count: usize) -> Option<*mut u32> {
        let end = count
            .checked_mul(4)
            .and_then(|bytes| offset.checked_add(bytes))?;
        if end > self.len || !offset.is_multiple_of(4) {
            return None;
        }
        // SAFETY: `offset + 4 * count <= len`, so the pointer stays inside
        // the region's memory (`new`'s contract).
        Some(unsafe { self.virt.as_ptr().add(offset) }.cast::<u32>())
    }

    /// Copies `src` into the region at `offset`; false (nothing copied) when
    /// it does not fit.
    #[inline]
    pub fn copy_in(&mut self, offset: usize, src: &[u8]) -> bool {
        match offset.checked_add(src.len()) {
            Some(end) if end <= self.len => {
                self.as_mut_slice()[offset..end].copy_from_slice(src);
                true
            }
            _ => false,
        }
    }

    /// Copies from the region at `offset` into `dst`; false when out of
    /// bounds.
    #[inline]
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        match offset.checked_add(dst.len()) {
            Some(end) if end <= self.len => {
                dst.copy_from_slice(&self.as_slice()[offset..end]);
                true
            }
            _ => false,
        }
    }

    /// Hands the region to the device (see [`crate::Lent`]).
    #[inline]
    pub fn lend(self) -> crate::Lent<DmaRegion> {
        crate::Lent::new(self)
    }
}

/// `N` dwords of a [`DmaRing`]'s entry, checked to lie inside it
/// ([`DmaRing::read_entry`]), read with volatile reads; borrows the ring,
/// so it cannot outlive it.
#[derive(Clone, Copy, Debug)]
pub struct VolatileDwords<'a, const N: usize> {
    first: *mut u32,
    _ring: PhantomData<&'a DmaRegion>,
}

impl<const N: usize> VolatileDwords<'_, N> {
    /// Volatile read of dword `i`; 0 when `i` is not below `N`.
    #[inline]
    pub fn read(&self, i: usize) -> u32 {
        if i >= N {
            return 0;
        }
        // SAFETY: `DmaRing::read_entry` checked that all `N` dwords from
        // `first` lie inside one entry of the borrowed ring and are aligned
        // (so not null), and `i < N`; reads only (as in
        // `DmaRegion::read_volatile_dwords`).
        unsafe { VolatilePtr::new_read_only(NonNull::new_unchecked(self.first.add(i))) }.read()
    }
}

/// A [`DmaRegion`] holding a ring of entries of `ENTRY` bytes (a queue's
/// submission or completion ring). How many whole entries fit is found
/// once, when it is made, so that reaching an entry checks its index
/// alone.
#[derive(Debug)]
pub struct DmaRing<const ENTRY: usize> {
    region: DmaRegion,
    /// Whole entries in the region.
    entries: usize,
}

impl<const ENTRY: usize> DmaRing<ENTRY> {
    /// The ring over `region`: as many entries as fit whole.
    pub fn new(region: DmaRegion) -> DmaRing<ENTRY> {
        let entries = region.len().checked_div(ENTRY).unwrap_or(0);
        DmaRing { region, entries }
    }

    /// The region.
    #[inline]
    pub fn region(&self) -> &DmaRegion {
        &self.region
    }

    /// The region, for writing (zeroing it, tests posting entries).
    #[inline]
    pub fn region_mut(&mut self) -> &mut DmaRegion {
        &mut self.region
    }

    /// Whole entries in the ring.
    #[inline]
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The first byte of entry `index`, if the ring has it.
    #[inline]
    fn entry(&self, index: usize) -> Option<*mut u8> {
        if index >= self.entries {
            return None;
        }
        // SAFETY: `index < entries` and `entries * ENTRY <= len` (`new`),
        // so the entry lies inside the region's memory (`DmaRegion::new`'s
        // contract) and the offset does not overflow.
        Some(unsafe { self.region.virt.as_ptr().add(index * ENTRY) })
    }

    /// The first `N` dwords of entry `index`, to be read one at a time in
    /// the order the caller needs (a completion entry: the dword with the
    /// phase tag first, the others only after it); `None` when the ring has
    /// no such entry or `N` dwords do not fit in one.
    #[inline]
    pub fn read_entry<const N: usize>(&self, index: usize) -> Option<VolatileDwords<'_, N>> {
        if N * 4 > ENTRY || !ENTRY.is_multiple_of(4) {
            return None;
        }
        Some(VolatileDwords {
            first: self.entry(index)?.cast::<u32>(),
            _ring: PhantomData,
        })
    }

    /// Volatile writes of entry `index` as `N` qwords, each landing as its
    /// two dwords, low first (the host is little-endian, as the device),
    /// in half the stores of dword writes; nothing is written when the ring
    /// has no such entry, or the qwords do not fit in one or are not
    /// aligned.
    #[inline]
    pub fn write_entry_qwords<const N: usize>(&mut self, index: usize, values: &[u64; N]) {
        if N * 8 > ENTRY || !ENTRY.is_multiple_of(8) {
            return;
        }
        let Some(first) = self.entry(index) else {
            return;
        };
        let first = first.cast::<u64>();
        for (i, value) in values.iter().enumerate() {
            // SAFETY: the `N` qwords lie inside entry `index` (`N * 8 <=
            // ENTRY`), which lies inside the region (`entry`); entries are
            // a multiple of 8 bytes apart from a page-aligned start, so
            // each qword is aligned (and not null); `&mut self` makes this
            // the only access from the CPU side.
            unsafe { VolatilePtr::new(NonNull::new_unchecked(first.add(i))) }.write(*value);
        }
    }
}

/// Source of DMA memory; the kernel's implementation hands out physically
/// contiguous, zeroed frames.
///
/// Drivers ask for the alignment their device needs: for NVMe its memory
/// page size (CC.MPS, NVMe 1.4 §3.1.5), which is above 4 KiB on controllers
/// whose CAP.MPSMIN is not 0.
pub trait DmaAllocator {
    /// Allocates `len` bytes (rounded up by the allocator as it likes) whose
    /// physical address is a multiple of `align` (a power of two, at least
    /// 4096).
    fn allocate(&self, len: usize, align: usize) -> Result<DmaRegion, DmaError>;
    /// Returns a region obtained from [`Self::allocate`].
    fn deallocate(&self, region: DmaRegion);
    /// Physical address of a virtual address, if the memory is DMA-able
    /// (used for zero-copy of caller buffers; `None` => bounce buffer).
    fn translate(&self, virt: *const u8) -> Option<PhysAddr>;
}

impl<T: DmaAllocator + ?Sized> DmaAllocator for &T {
    fn allocate(&self, len: usize, align: usize) -> Result<DmaRegion, DmaError> {
        (**self).allocate(len, align)
    }
    fn deallocate(&self, region: DmaRegion) {
        (**self).deallocate(region)
    }
    fn translate(&self, virt: *const u8) -> Option<PhysAddr> {
        (**self).translate(virt)
    }
}

#[cfg(test)]
mod tests {
    use crate::host::leaked_region;

    #[test]
    fn volatile_dwords_are_little_endian_and_bounds_checked() {
        let mut region = leaked_region(4096);
        region.write_volatile_u64(8, 0x1122_3344_5566_7788);
        assert_eq!(region.read_volatile_u32(8), 0x5566_7788);
        assert_eq!(region.read_volatile_u32(12), 0x1122_3344);
        assert_eq!(region.as_slice()[8], 0x88);
        // Out of bounds or misaligned: reads give 0, writes do nothing.
        region.write_volatile_u32(4094, 0xFFFF_FFFF);
        region.write_volatile_u32(4096, 0xFFFF_FFFF);
        region.write_volatile_u32(usize::MAX - 1, 0xFFFF_FFFF);
        region.write_volatile_u32(2, 0xFFFF_FFFF);
        assert_eq!(region.read_volatile_u32(4096), 0);
        assert_eq!(region.read_volatile_u32(2), 0);
        assert!(
            region
                .as_slice()
                .iter()
                .enumerate()
                .all(|(i, &b)| b == 0 || (8..16).contains(&i))
        );
    }

    #[test]
    fn dword_runs_are_checked_once_as_a_whole() {
        let mut region = leaked_region(4096);
        region.write_volatile_dwords(4080, &[1, 2, 3, 4]);
        assert_eq!(region.read_volatile_dwords::<4>(4080), [1, 2, 3, 4]);
        assert_eq!(region.read_volatile_u32(4092), 4);
        // A run that does not fit whole, or starts misaligned, is refused
        // whole: nothing written, zeroes read.
        region.write_volatile_dwords(4084, &[9, 9, 9, 9]);
        region.write_volatile_dwords(2, &[9]);
        region.write_volatile_dwords(usize::MAX - 3, &[9, 9]);
        assert_eq!(region.read_volatile_dwords::<4>(4080), [1, 2, 3, 4]);
        assert_eq!(region.read_volatile_dwords::<4>(4084), [0; 4]);
        assert_eq!(region.read_volatile_dwords::<1>(2), [0]);
        assert!(region.as_slice()[..4080].iter().all(|&b| b == 0));
    }

    #[test]
    fn ring_entries_are_checked_by_index() {
        // 4096 bytes: 256 entries of 16, and one more byte that holds none.
        let mut ring = super::DmaRing::<16>::new(leaked_region(4096 + 1));
        assert_eq!(ring.entries(), 256);
        ring.write_entry_qwords(255, &[0x2_0000_0001, 0x4_0000_0003]);
        assert_eq!(ring.region().read_volatile_dwords::<4>(4080), [1, 2, 3, 4]);
        let entry = ring.read_entry::<4>(255).unwrap();
        assert_eq!((entry.read(3), entry.read(0), entry.read(4)), (4, 1, 0));
        // Beyond the ring, or more than an entry holds: refused.
        assert!(ring.read_entry::<4>(256).is_none());
        assert!(ring.read_entry::<5>(0).is_none());
        ring.write_entry_qwords(256, &[9, 9]);
        ring.write_entry_qwords(0, &[9, 9, 9]);
        assert!(ring.region().as_slice()[..4080].iter().all(|&b| b == 0));
        assert_eq!(super::DmaRing::<0>::new(leaked_region(4096)).entries(), 0);
    }

    #[test]
    fn copies_refuse_what_does_not_fit() {
        let mut region = leaked_region(4096);
        assert!(region.copy_in(4092, &[1, 2, 3, 4]));
        assert!(!region.copy_in(4093, &[1, 2, 3, 4]));
        assert!(!region.copy_in(usize::MAX, &[1]));
        let mut out = [0u8; 4];
        assert!(region.copy_out(4092, &mut out));
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(!region.copy_out(4093, &mut out));
        region.zero();
        assert!(region.as_slice().iter().all(|&b| b == 0));
    }
}
