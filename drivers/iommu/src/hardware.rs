//! The two things the VT-d logic needs from the machine: register access and
//! a clock for deadlines.

/// 32- and 64-bit access to one remapping unit's register page (VT-d 11.4).
/// The kernel implements it with volatile loads and stores over an uncached
/// mapping; tests implement it with a fake register file.
pub trait RegisterAccess {
    /// Read the 32-bit register at byte `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Write the 32-bit register at byte `offset`.
    fn write32(&self, offset: usize, value: u32);
    /// Read the 64-bit register at byte `offset`: as two 32-bit reads, low
    /// half first, unless the implementation does better. The 64-bit
    /// registers read here (CAP, ECAP) do not change at run time.
    fn read64(&self, offset: usize) -> u64 {
        let low = u64::from(self.read32(offset));
        let high = u64::from(self.read32(offset + 4));
        high << 32 | low
    }
    /// Write the 64-bit register at byte `offset`: low half, then high half.
    fn write64(&self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }
}

/// Monotonic time, for the deadline of every wait on a unit.
pub trait Clock {
    /// Nanoseconds since an arbitrary start; never goes backwards.
    fn now_ns(&self) -> u64;
}
