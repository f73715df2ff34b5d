//! A PCI-to-PCI bridge's memory windows: the address ranges it forwards to its secondary bus.
//!
//! PCI-to-PCI Bridge Architecture Specification 1.2, sections 3.2.5.8 to 3.2.5.10. A type 1
//! header has two memory windows (the I/O window does not matter to a memory BAR):
//! - non-prefetchable: base and limit registers at 0x20/0x22, each holding address bits 31..20
//!   in its bits 15..4; the window is 32-bit, 1 MiB granular, and the limit is inclusive (its
//!   address bits 19..0 are all ones).
//! - prefetchable: base and limit at 0x24/0x26, laid out the same way; their bits 3..0 say
//!   whether the window is 64-bit (0001b), in which case 0x28 and 0x2C hold the upper 32 bits of
//!   the base and of the limit.
//!
//! A window whose base is above its limit is closed: the bridge forwards nothing through it.
//! A bridge forwards a memory transaction downstream if it falls in either window, so a BAR is
//! reachable through a bridge when it lies wholly inside one of the two (Linux places
//! prefetchable BARs in the non-prefetchable window too when it must).

use core::fmt;

use crate::config::{
    BRIDGE_MEMORY_BASE_LIMIT, BRIDGE_PREFETCHABLE_BASE_LIMIT, BRIDGE_PREFETCHABLE_BASE_UPPER,
    BRIDGE_PREFETCHABLE_LIMIT_UPPER, Config, ConfigurationAccess,
};

/// Address bits 19..0 that a window's limit implies (1 MiB granularity).
const WINDOW_GRANULARITY: u64 = 1 << 20;

/// One 16-bit memory base or limit register (section 3.2.5.8 / 3.2.5.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MemoryBoundary(u16);

impl MemoryBoundary {
    /// Bits 15..4: address bits 31..20.
    const ADDRESS_MASK: u16 = 0xfff0;
    /// Bits 3..0 of a prefetchable base or limit: the addressing capability.
    const CAPABILITY_MASK: u16 = 0x000f;
    /// Addressing capability 0001b: 64-bit window, upper halves in 0x28 and 0x2C.
    const CAPABILITY_64_BIT: u16 = 0x0001;

    /// Address bits 31..20 as an address (bits 19..0 zero).
    fn address_low(self) -> u64 {
        u64::from(self.0 & Self::ADDRESS_MASK) << 16
    }

    /// Whether a prefetchable boundary declares a 64-bit window.
    fn is_64_bit(self) -> bool {
        self.0 & Self::CAPABILITY_MASK == Self::CAPABILITY_64_BIT
    }
}

/// A dword holding a base register (bits 0..16) and a limit register (bits 16..32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BaseLimit(u32);

impl BaseLimit {
    fn base(self) -> MemoryBoundary {
        MemoryBoundary(self.0 as u16)
    }

    fn limit(self) -> MemoryBoundary {
        MemoryBoundary((self.0 >> 16) as u16)
    }
}

/// One memory window of a bridge: `base..=limit`, or closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryWindow {
    /// The first address forwarded.
    pub base: u64,
    /// The last address forwarded (inclusive).
    pub limit: u64,
}

impl MemoryWindow {
    /// Builds the window from a base and inclusive limit; `None` if closed (base above limit).
    fn open(base: u64, limit_low: u64) -> Option<MemoryWindow> {
        let limit = limit_low | (WINDOW_GRANULARITY - 1);
        (base <= limit).then_some(MemoryWindow { base, limit })
    }

    /// Whether `size` bytes from `address` lie wholly inside the window.
    pub fn contains(&self, address: u64, size: u64) -> bool {
        let Some(last) = size
            .checked_sub(1)
            .and_then(|offset| address.checked_add(offset))
        else {
            return false;
        };
        self.base <= address && last <= self.limit
    }
}

impl fmt::Display for MemoryWindow {
    /// `[mem 0xfe000000-0xfe1fffff]`, as Linux logs windows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[mem {:#x}-{:#x}]", self.base, self.limit)
    }
}

/// A bridge's memory windows as its registers hold them now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeWindows {
    /// The non-prefetchable window, if open.
    pub memory: Option<MemoryWindow>,
    /// The prefetchable window, if open.
    pub prefetchable: Option<MemoryWindow>,
}

impl BridgeWindows {
    /// Whether the bridge forwards every address of `size` bytes from `address`.
    pub fn forwards(&self, address: u64, size: u64) -> bool {
        [self.memory, self.prefetchable]
            .into_iter()
            .flatten()
            .any(|window| window.contains(address, size))
    }
}

/// Reads the memory windows of the type 1 function behind `config`.
pub(crate) fn read_windows<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
) -> BridgeWindows {
    let memory = BaseLimit(config.read(BRIDGE_MEMORY_BASE_LIMIT));
    let memory = MemoryWindow::open(memory.base().address_low(), memory.limit().address_low());

    let prefetchable = BaseLimit(config.read(BRIDGE_PREFETCHABLE_BASE_LIMIT));
    let (base_upper, limit_upper) = if prefetchable.base().is_64_bit() {
        (
            u64::from(config.read(BRIDGE_PREFETCHABLE_BASE_UPPER)) << 32,
            u64::from(config.read(BRIDGE_PREFETCHABLE_LIMIT_UPPER)) << 32,
        )
    } else {
        (0, 0)
    };
    let prefetchable = MemoryWindow::open(
        base_upper | prefetchable.base().address_low(),
        limit_upper | prefetchable.limit().address_low(),
    );
    BridgeWindows {
        memory,
        prefetchable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_to_the_megabyte() {
        let window = MemoryWindow::open(0xfe00_0000, 0xfe10_0000).unwrap();
        assert_eq!(window.limit, 0xfe1f_ffff);
        assert!(window.contains(0xfe1f_c000, 0x4000));
        assert!(!window.contains(0xfe1f_c000, 0x8000));
        assert!(!window.contains(0xfdff_f000, 0x1000));
        assert!(!window.contains(0xfe00_0000, 0));
        assert!(!window.contains(u64::MAX, 2));
    }

    #[test]
    fn base_above_limit_is_closed() {
        assert_eq!(MemoryWindow::open(0xfff0_0000, 0x0000_0000), None);
    }
}
