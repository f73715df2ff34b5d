//! Hardware traits the kernel implements: register access, DMA memory, time.
//!
//! The driver reaches the machine only through these traits, so the same
//! logic runs against real hardware (volatile MMIO over a mapped BAR0, frames
//! from the kernel's DMA allocator, a calibrated TSC) and against the
//! simulated controller of the host tests.
//!
//! DMA memory ([`DmaRegion`], [`DmaBuffer`], [`PhysAddr`], [`DmaAllocator`],
//! [`SharedDwords`]) is the `dma` crate's, re-exported here: that crate
//! holds the `unsafe` of memory shared with the device, its hand-over
//! (`dma::Lent`) and the memory ordering (`dma::ordering`), so this crate
//! forbids `unsafe` code.

pub use dma::{
    DmaAllocator, DmaBuffer, DmaError, DmaHome, DmaRegion, Lent, PhysAddr, Returned, SharedDwords,
};

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

/// Page-aligned host memory as DMA regions, for unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    pub(crate) use dma::host::leaked_region;
}
