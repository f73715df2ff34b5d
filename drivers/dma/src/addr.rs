//! Physical (bus) addresses as the device sees them.

/// Physical (bus) address as seen by the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// The address as a plain integer (for command fields).
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The address `offset` bytes further on (wrapping; the caller stays
    /// within one region).
    #[inline]
    pub const fn offset(self, offset: u64) -> PhysAddr {
        PhysAddr(self.0.wrapping_add(offset))
    }

    /// Whether the address is a multiple of `align` (a power of two).
    #[inline]
    pub const fn is_aligned(self, align: u64) -> bool {
        align != 0 && self.0 & (align - 1) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_and_offsets() {
        assert!(PhysAddr(0x2000).is_aligned(0x1000));
        assert!(!PhysAddr(0x2008).is_aligned(0x10));
        assert!(!PhysAddr(0x2000).is_aligned(0), "zero alignment is refused");
        assert_eq!(PhysAddr(0x1000).offset(8).as_u64(), 0x1008);
        assert_eq!(PhysAddr(u64::MAX).offset(1), PhysAddr(0));
    }
}
