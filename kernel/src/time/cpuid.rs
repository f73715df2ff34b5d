//! The TSC frequency as the CPU enumerates it: CPUID leaf 15h, with leaf 16h
//! as a hint.
//!
//! Leaf 15h (Intel SDM vol. 2A, CPUID, "Time Stamp Counter and Nominal Core
//! Crystal Clock Information Leaf"): EAX / EBX is the TSC / crystal clock
//! ratio (denominator / numerator), ECX the crystal clock in Hz, so the TSC
//! runs at ECX * EBX / EAX. Many parts report the ratio but ECX = 0; then
//! leaf 16h ("Processor Frequency Information Leaf") EAX, the base frequency
//! in MHz, is the TSC frequency to within a MHz, which Linux also uses. That
//! is only a hint: [`super::select`] lets a measurement that disagrees win.
//! `qemu64` stops at leaf 0Dh, so QEMU machines get here with nothing.

use core::arch::x86_64::__cpuid;

use super::select::{Finding, Rejection};

/// Leaf 0: EAX is the highest standard leaf.
const LEAF_VENDOR: u32 = 0;
/// TSC and crystal clock leaf.
const LEAF_TSC: u32 = 0x15;
/// Processor frequency leaf.
const LEAF_FREQUENCY: u32 = 0x16;
/// EAX of leaf 16h holds the base frequency in its low 16 bits.
const BASE_MHZ_MASK: u32 = 0xffff;

/// The leaves that matter, as the CPU answered them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leaves {
    /// Highest standard leaf.
    pub max_leaf: u32,
    /// Leaf 15h: (EAX denominator, EBX numerator, ECX crystal Hz).
    pub tsc: (u32, u32, u32),
    /// Leaf 16h EAX: base frequency in MHz.
    pub base_mhz: u32,
}

/// Ask the CPU.
pub fn read() -> Leaves {
    // Leaves above the maximum are only read after checking it.
    let max_leaf = __cpuid(LEAF_VENDOR).eax;
    let mut leaves = Leaves {
        max_leaf,
        ..Leaves::default()
    };
    if max_leaf >= LEAF_TSC {
        let r = __cpuid(LEAF_TSC);
        leaves.tsc = (r.eax, r.ebx, r.ecx);
    }
    if max_leaf >= LEAF_FREQUENCY {
        leaves.base_mhz = __cpuid(LEAF_FREQUENCY).eax & BASE_MHZ_MASK;
    }
    leaves
}

/// What the leaves say about the TSC frequency.
pub fn decode(leaves: Leaves) -> Finding {
    let (denominator, numerator, crystal_hz) = leaves.tsc;
    if leaves.max_leaf < LEAF_TSC || denominator == 0 || numerator == 0 {
        return Finding::Rejected(Rejection::Absent);
    }
    if crystal_hz != 0 {
        let hz = u64::from(crystal_hz) * u64::from(numerator) / u64::from(denominator);
        return Finding::Hz(hz);
    }
    if leaves.max_leaf >= LEAF_FREQUENCY && leaves.base_mhz != 0 {
        return Finding::Hint(u64::from(leaves.base_mhz) * 1_000_000);
    }
    Finding::Rejected(Rejection::NoCrystalFrequency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test_case]
    fn qemu64_has_no_leaf_15h() {
        let leaves = Leaves {
            max_leaf: 0xd,
            ..Leaves::default()
        };
        assert_eq!(decode(leaves), Finding::Rejected(Rejection::Absent));
    }

    #[test_case]
    fn ratio_and_crystal_give_the_frequency() {
        // A 24 MHz crystal and a 2 / 200 ratio: 2.4 GHz.
        let leaves = Leaves {
            max_leaf: 0x16,
            tsc: (2, 200, 24_000_000),
            base_mhz: 2_300,
        };
        assert_eq!(decode(leaves), Finding::Hz(2_400_000_000));
    }

    #[test_case]
    fn a_missing_crystal_falls_back_to_the_base_frequency_as_a_hint() {
        let mut leaves = Leaves {
            max_leaf: 0x16,
            tsc: (2, 176, 0),
            base_mhz: 2_200,
        };
        assert_eq!(decode(leaves), Finding::Hint(2_200_000_000));
        leaves.base_mhz = 0;
        assert_eq!(
            decode(leaves),
            Finding::Rejected(Rejection::NoCrystalFrequency)
        );
        leaves.max_leaf = 0x15;
        leaves.base_mhz = 2_200;
        assert_eq!(
            decode(leaves),
            Finding::Rejected(Rejection::NoCrystalFrequency)
        );
    }

    #[test_case]
    fn a_zero_ratio_means_not_enumerated() {
        let leaves = Leaves {
            max_leaf: 0x16,
            tsc: (0, 0, 0),
            base_mhz: 2_200,
        };
        assert_eq!(decode(leaves), Finding::Rejected(Rejection::Absent));
    }
}
