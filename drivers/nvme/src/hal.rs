//! Hardware traits the kernel implements: register access, DMA memory, time.
//!
//! The driver reaches the machine only through these traits, so the same
//! logic runs against real hardware (volatile MMIO over a mapped BAR0, frames
//! from the kernel's DMA allocator, a calibrated TSC) and against the
//! simulated controller of the host tests.
//!
//! This is one of the two modules that contain `unsafe`: [`DmaRegion`] wraps
//! a raw pointer to memory the device may read and write. Its constructor is
//! `unsafe` (the caller promises the memory is valid, exclusive and
//! DMA-able); every access after that is safe and bounds-checked. Queue
//! entries are read and written with volatile accesses because the device
//! changes them behind the compiler's back; data buffers are copied with
//! plain copies because the driver only touches them while the device does
//! not (before submission, after completion).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

/// Physical (bus) address as seen by the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// The address as a plain integer (for command fields).
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The address `offset` bytes further on (wrapping; the caller stays
    /// within one region).
    pub const fn offset(self, offset: u64) -> PhysAddr {
        PhysAddr(self.0.wrapping_add(offset))
    }

    /// Whether the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        align != 0 && self.0 & (align - 1) == 0
    }
}

/// Register access to the controller's BAR0 (offsets in bytes).
///
/// The kernel implements this with volatile MMIO over an uncached mapping of
/// BAR0; the tests implement it with the simulated controller. 64-bit
/// registers default to two 32-bit accesses, low dword first, which the
/// specification allows (NVMe 1.4 §3.1, "registers are accessed ... as 32-bit
/// or 64-bit").
pub trait RegisterAccess {
    /// Reads the 32-bit register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Writes the 32-bit register at `offset`.
    fn write32(&self, offset: usize, value: u32);
    /// Reads the 64-bit register at `offset` (default: low then high).
    fn read64(&self, offset: usize) -> u64 {
        let low = u64::from(self.read32(offset));
        let high = u64::from(self.read32(offset + 4));
        low | (high << 32)
    }
    /// Writes the 64-bit register at `offset` (default: low then high).
    fn write64(&self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }
}

/// The DMA allocator could not provide memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaError;

/// A physically contiguous, page-aligned (at least 4 KiB), zeroed DMA region.
///
/// Owned by exactly one driver object (a queue, a buffer pool), so the
/// driver never aliases it. Dropping a region does not free it: memory goes
/// back through [`DmaAllocator::deallocate`], and the driver leaks regions
/// the device might still access rather than free them too early.
#[derive(Debug)]
pub struct DmaRegion {
    virt: NonNull<u8>,
    phys: PhysAddr,
    len: usize,
}

// SAFETY: a `DmaRegion` is an exclusive owner of its memory (contract of
// `DmaRegion::new`), like a `Box<[u8]>`; nothing in it is tied to a thread.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// Wraps memory the allocator handed out.
    ///
    /// # Safety
    ///
    /// `virt` must point to `len` bytes that are valid for reads and writes
    /// for as long as the region (or anything moved out of it) exists, that
    /// nothing else accesses while the region owns them, that are physically
    /// contiguous starting at `phys` and reachable by the device's DMA, and
    /// that are aligned to at least 4 KiB.
    pub unsafe fn new(virt: NonNull<u8>, phys: PhysAddr, len: usize) -> DmaRegion {
        DmaRegion { virt, phys, len }
    }

    /// Physical address of the first byte.
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Virtual address of the first byte.
    pub fn virt(&self) -> NonNull<u8> {
        self.virt
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The contents as bytes. Only meaningful while the device is not
    /// writing the region (the driver guarantees that for its own buffers).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `new`'s contract: `len` valid bytes owned by this region.
        unsafe { core::slice::from_raw_parts(self.virt.as_ptr(), self.len) }
    }

    /// The contents as mutable bytes (same caveat as [`Self::as_slice`]).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `new`'s contract; `&mut self` makes the borrow exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.virt.as_ptr(), self.len) }
    }

    /// Sets every byte to zero.
    pub fn zero(&mut self) {
        self.as_mut_slice().fill(0);
    }

    fn dword_ptr(&self, offset: usize) -> Option<*mut u32> {
        let end = offset.checked_add(4)?;
        if end > self.len || !offset.is_multiple_of(4) {
            return None;
        }
        // `offset + 4 <= len`, so the pointer stays inside the allocation.
        Some(self.virt.as_ptr().wrapping_add(offset).cast::<u32>())
    }

    /// Volatile read of the dword at `offset` (a multiple of 4); 0 when out
    /// of bounds. Used for entries the device writes (completion queue).
    pub(crate) fn read_volatile_u32(&self, offset: usize) -> u32 {
        match self.dword_ptr(offset) {
            // SAFETY: in bounds and 4-byte aligned (region is page aligned,
            // offset a multiple of 4); memory valid per `new`'s contract.
            Some(ptr) => unsafe { ptr.read_volatile() },
            None => 0,
        }
    }

    /// Volatile write of the dword at `offset`; ignored when out of bounds.
    /// Used for entries the device reads (submission queue, PRP lists).
    pub(crate) fn write_volatile_u32(&mut self, offset: usize, value: u32) {
        if let Some(ptr) = self.dword_ptr(offset) {
            // SAFETY: as in `read_volatile_u32`; `&mut self` is exclusive.
            unsafe { ptr.write_volatile(value) }
        }
    }

    /// Volatile write of a little-endian qword as two dwords.
    pub(crate) fn write_volatile_u64(&mut self, offset: usize, value: u64) {
        self.write_volatile_u32(offset, value as u32);
        self.write_volatile_u32(offset.wrapping_add(4), (value >> 32) as u32);
    }

    /// Copies `src` into the region at `offset`; false (nothing copied) when
    /// it does not fit.
    pub(crate) fn copy_in(&mut self, offset: usize, src: &[u8]) -> bool {
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
    pub(crate) fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        match offset.checked_add(dst.len()) {
            Some(end) if end <= self.len => {
                dst.copy_from_slice(&self.as_slice()[offset..end]);
                true
            }
            _ => false,
        }
    }
}

/// A DMA region shared by several queues and the device, accessed only one
/// aligned dword at a time and atomically: the shadow doorbell and EventIdx
/// pages of Doorbell Buffer Config (NVMe 1.4 §5.7), where each queue owns
/// its own dwords and the device reads or writes them concurrently.
#[derive(Debug)]
pub(crate) struct SharedDwords {
    region: DmaRegion,
}

// SAFETY: every access to the memory goes through `AtomicU32` (no slices
// are handed out after construction), so sharing between threads cannot
// race; the region itself is owned, like a `Box<[AtomicU32]>`.
unsafe impl Sync for SharedDwords {}

impl SharedDwords {
    /// Takes over `region`, zeroed.
    pub(crate) fn new(mut region: DmaRegion) -> SharedDwords {
        region.zero();
        SharedDwords { region }
    }

    /// Physical address of the first byte.
    pub(crate) fn phys(&self) -> PhysAddr {
        self.region.phys()
    }

    fn dword(&self, offset: usize) -> Option<&AtomicU32> {
        let ptr = self.region.dword_ptr(offset)?;
        // SAFETY: in bounds and 4-byte aligned (`dword_ptr`), valid for the
        // region's lifetime (`DmaRegion::new`'s contract), and from now on
        // accessed only atomically (this type hands out no slices).
        Some(unsafe { AtomicU32::from_ptr(ptr) })
    }

    /// Reads the dword at `offset` (0 when out of bounds).
    pub(crate) fn load(&self, offset: usize) -> u32 {
        self.dword(offset).map_or(0, |d| d.load(Ordering::Acquire))
    }

    /// Writes the dword at `offset` (ignored when out of bounds).
    pub(crate) fn store(&self, offset: usize, value: u32) {
        if let Some(d) = self.dword(offset) {
            d.store(value, Ordering::Release);
        }
    }

    /// Sets every dword to zero.
    pub(crate) fn zero(&self) {
        for offset in (0..self.region.len()).step_by(4) {
            self.store(offset, 0);
        }
    }
}

/// Source of DMA memory; the kernel's implementation hands out physically
/// contiguous, zeroed frames.
///
/// The driver asks for the alignment the controller needs: its memory page
/// size (CC.MPS, NVMe 1.4 §3.1.5), which is above 4 KiB on controllers whose
/// CAP.MPSMIN is not 0. Queues, PRP lists, bounce buffers and Host Memory
/// Buffer chunks must start on such a page.
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

/// Time for deadlines.
pub trait Clock {
    /// Monotonic nanoseconds since an arbitrary origin.
    fn now_ns(&self) -> u64;
    /// Busy-waits (or sleeps) for `us` microseconds.
    fn delay_us(&self, us: u64);
}

impl<T: RegisterAccess + ?Sized> RegisterAccess for &T {
    fn read32(&self, offset: usize) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        (**self).write32(offset, value)
    }
    fn read64(&self, offset: usize) -> u64 {
        (**self).read64(offset)
    }
    fn write64(&self, offset: usize, value: u64) {
        (**self).write64(offset, value)
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
    fn delay_us(&self, us: u64) {
        (**self).delay_us(us)
    }
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

/// Page-aligned host memory as DMA regions, for unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{DmaRegion, PhysAddr};
    use core::ptr::NonNull;
    use std::alloc::{Layout, alloc_zeroed};

    /// Leaks a zeroed, 4 KiB-aligned allocation of `len` bytes as a region
    /// whose physical address equals its host address.
    pub(crate) fn leaked_region(len: usize) -> DmaRegion {
        let layout = Layout::from_size_align(len.max(1), 4096).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let virt = NonNull::new(ptr).unwrap();
        // SAFETY: freshly allocated, zeroed, aligned, never freed (leaked),
        // owned only by the returned region; identity "physical" mapping.
        unsafe { DmaRegion::new(virt, PhysAddr(ptr as u64), len) }
    }
}
