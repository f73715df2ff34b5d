//! The High Precision Event Timer's main counter as a TSC reference.
//!
//! IA-PC HPET specification 1.0a: the ACPI `HPET` table (section 3.2.4)
//! gives the register block's base address; the General Capabilities and
//! ID register (2.3.4) gives the counter period in femtoseconds (non-zero,
//! at most 100 ns) and whether the counter is 64 bits wide; bit 0 of the
//! General Configuration register (2.3.5) runs the main counter (2.3.7).
//!
//! Firmware may leave the counter halted. It is started only for the
//! length of a measurement and put back as found afterwards, so nothing
//! this kernel does changes what an OS booted later sees.

use x86_64::{PhysAddr, VirtAddr};

use super::counter::Counter;
use super::select::Rejection;
use crate::memory::Memory;

/// Offset of the base address (an ACPI generic address) in the table.
const TABLE_BASE: usize = 40;
/// Offset of the 64-bit address inside a generic address.
const GAS_ADDRESS: usize = 4;
/// Generic address space ID of system memory.
const SPACE_MEMORY: u8 = 0;
/// Length of the table up to and including the page-protection byte.
const TABLE_LEN: usize = 56;

/// General Capabilities and ID register.
const GENERAL_CAPABILITIES: usize = 0x000;
/// General Configuration register.
const GENERAL_CONFIGURATION: usize = 0x010;
/// Main Counter Value register.
const MAIN_COUNTER: usize = 0x0f0;
/// Length of the register block.
const REGISTER_BLOCK_LEN: u64 = 0x400;

/// Largest counter period the specification allows: 100 ns.
const MAX_PERIOD_FS: u32 = 100_000_000;
const FEMTOSECONDS_PER_SECOND: u64 = 1_000_000_000_000_000;

/// The base address the ACPI HPET table gives (header included in `table`).
pub fn base_from_table(table: &[u8]) -> Result<PhysAddr, Rejection> {
    if table.len() < TABLE_LEN {
        return Err(Rejection::BadDescription);
    }
    if table[TABLE_BASE] != SPACE_MEMORY {
        return Err(Rejection::BadDescription);
    }
    let at = TABLE_BASE + GAS_ADDRESS;
    let mut address = [0u8; 8];
    address.copy_from_slice(&table[at..at + 8]);
    PhysAddr::try_new(u64::from_le_bytes(address))
        .ok()
        .filter(|a| a.as_u64() != 0)
        .ok_or(Rejection::BadDescription)
}

/// General Capabilities and ID (specification 2.3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// COUNTER_CLK_PERIOD: femtoseconds per tick of the main counter.
    pub fn period_fs(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// COUNT_SIZE_CAP: the main counter is 64 bits wide (else 32).
    pub fn counter_is_64_bit(self) -> bool {
        self.0 & (1 << 13) != 0
    }

    /// The counter's frequency and width mask, if the register is sane.
    pub fn check(self) -> Result<(u64, u64), Rejection> {
        if self.0 == u64::MAX {
            return Err(Rejection::AllOnes);
        }
        let period = self.period_fs();
        if period == 0 || period > MAX_PERIOD_FS {
            return Err(Rejection::BadPeriod {
                femtoseconds: period,
            });
        }
        let hz = (FEMTOSECONDS_PER_SECOND + u64::from(period) / 2) / u64::from(period);
        let mask = if self.counter_is_64_bit() {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        Ok((hz, mask))
    }
}

/// General Configuration (specification 2.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Configuration(u64);

impl Configuration {
    /// ENABLE_CNF: the main counter runs.
    const ENABLE: u64 = 1 << 0;

    fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    fn with_enabled(self) -> Configuration {
        Configuration(self.0 | Self::ENABLE)
    }
}

/// A mapped HPET register block whose capabilities checked out.
#[derive(Clone, Copy, Debug)]
pub struct Hpet {
    base: VirtAddr,
    hz: u64,
    mask: u64,
}

impl Hpet {
    /// Map the register block at `base` and check its capabilities.
    pub fn new(memory: &Memory, base: PhysAddr) -> Result<Hpet, Rejection> {
        let region = memory
            .map_mmio(base, REGISTER_BLOCK_LEN)
            .map_err(|_| Rejection::Unmappable)?;
        let mut hpet = Hpet {
            base: region.virt,
            hz: 0,
            mask: 0,
        };
        (hpet.hz, hpet.mask) = Capabilities(hpet.read(GENERAL_CAPABILITIES)).check()?;
        Ok(hpet)
    }

    /// The counter's frequency in Hz.
    pub fn frequency_hz(&self) -> u64 {
        self.hz
    }

    /// Whether the main counter runs (General Configuration ENABLE_CNF).
    pub fn counter_running(&self) -> bool {
        Configuration(self.read(GENERAL_CONFIGURATION)).enabled()
    }

    /// Run `f` with the main counter running, then leave the configuration
    /// as it was.
    pub fn with_counter_running<R>(&self, f: impl FnOnce(&Hpet) -> R) -> R {
        let before = Configuration(self.read(GENERAL_CONFIGURATION));
        if !before.enabled() {
            self.write(GENERAL_CONFIGURATION, before.with_enabled().0);
        }
        let result = f(self);
        if !before.enabled() {
            self.write(GENERAL_CONFIGURATION, before.0);
        }
        result
    }

    fn read(&self, offset: usize) -> u64 {
        let pointer = (self.base + offset as u64).as_ptr::<u64>();
        // SAFETY: `base` is an uncached mapping of the whole register block
        // (`new`), never unmapped; the offsets are the specification's
        // 8-byte-aligned registers inside it.
        unsafe { pointer.read_volatile() }
    }

    fn write(&self, offset: usize, value: u64) {
        let pointer = (self.base + offset as u64).as_mut_ptr::<u64>();
        // SAFETY: as in `read`; only the configuration register is written.
        unsafe { pointer.write_volatile(value) }
    }
}

impl Counter for Hpet {
    fn read(&self) -> u64 {
        Hpet::read(self, MAIN_COUNTER)
    }

    fn mask(&self) -> u64 {
        self.mask
    }

    fn hz(&self) -> u64 {
        self.hz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(space: u8, address: u64) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[TABLE_BASE] = space;
        bytes[TABLE_BASE + GAS_ADDRESS..TABLE_BASE + GAS_ADDRESS + 8]
            .copy_from_slice(&address.to_le_bytes());
        bytes
    }

    #[test_case]
    fn the_table_gives_a_memory_base() {
        let bytes = table(SPACE_MEMORY, 0xfed0_0000);
        assert_eq!(
            base_from_table(&bytes[..56]),
            Ok(PhysAddr::new(0xfed0_0000))
        );
        assert_eq!(
            base_from_table(&bytes[..40]),
            Err(Rejection::BadDescription)
        );
        let io = table(1, 0xfed0_0000);
        assert_eq!(base_from_table(&io[..56]), Err(Rejection::BadDescription));
        let zero = table(SPACE_MEMORY, 0);
        assert_eq!(base_from_table(&zero[..56]), Err(Rejection::BadDescription));
    }

    #[test_case]
    fn capabilities_are_checked() {
        // QEMU: 10 ns period, 64-bit counter.
        let qemu = Capabilities((10_000_000u64 << 32) | (1 << 13) | 0x8086_a201);
        assert_eq!(qemu.check(), Ok((100_000_000, u64::MAX)));
        // A 14.318 MHz chipset HPET with a 32-bit counter.
        let ich = Capabilities(69_841_279u64 << 32);
        assert_eq!(ich.check(), Ok((14_318_180, 0xffff_ffff)));
        assert_eq!(
            Capabilities(0x8086_a201).check(),
            Err(Rejection::BadPeriod { femtoseconds: 0 })
        );
        assert_eq!(
            Capabilities(100_000_001u64 << 32).check(),
            Err(Rejection::BadPeriod {
                femtoseconds: 100_000_001
            })
        );
        assert_eq!(Capabilities(u64::MAX).check(), Err(Rejection::AllOnes));
    }
}
