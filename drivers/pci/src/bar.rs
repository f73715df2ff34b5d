//! Base address registers: probing their size with decoding off, and decoding them.
//!
//! Probing (PCI Local Bus Specification 3.0, section 6.2.5.1): for each BAR slot, save it, write
//! all-ones, read back which address bits are writable, and write the saved value back. While
//! that happens the BAR briefly holds an all-ones address, so the function's I/O and memory
//! decode bits (command register bits 0 and 1) are cleared first and the command register is
//! restored afterwards; otherwise the device could claim, for a moment, whatever address range
//! the all-ones value lands on. The one exception is a host bridge (class 06h/00h), as in
//! Linux's `quirk_mmio_always_on`: on some chipsets turning off its decoding cuts the CPU off
//! from memory, including the code doing the probing.
//!
//! Every slot is probed, including the upper halves of 64-bit BARs (their writable bits are the
//! upper size bits), and decoding works on the saved values only, so a BAR that turns out to be
//! malformed never leaves the hardware changed.
//!
//! Decoding: the size is the lowest writable address bit. A slot that reads zero and whose
//! probe reads zero is unimplemented and not listed. A BAR whose writable bits are not
//! contiguous up to the top of its address space, that has no writable bits, a reserved memory
//! type, an address not aligned to its size, an I/O size over 64 KiB, or a 64-bit BAR in the
//! last slot is recorded as a [`Problem`] and skipped. Memory type 0b01 ("below 1 MiB", PCI 2.x)
//! is decoded as a 32-bit BAR, as Linux does. An I/O BAR whose upper 16 bits are not writable
//! belongs to a device that decodes only 16 address bits; its size comes from the low 16 bits.
//!
//! A memory BAR with address 0 is listed (it is implemented, just not assigned by firmware);
//! callers should check [`DecodedBar::address`] before mapping it.

use alloc::vec::Vec;
use core::fmt;

use pci_types::{CommandRegister, PciAddress};

use crate::config::{BAR0, COMMAND_STATUS, Config, ConfigurationAccess};
use crate::error::{BarDefect, Problem};

/// The number of BAR slots in a type 0 (endpoint) header.
pub(crate) const MAX_SLOTS: usize = 6;

/// What a BAR maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O port space.
    Io,
    /// Memory space below 4 GiB, one slot.
    Memory32,
    /// Memory space anywhere in 64 bits; the upper half occupies the next slot.
    Memory64,
}

/// One decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedBar {
    /// The slot (0..6); a 64-bit BAR also occupies slot `index + 1`.
    pub index: u8,
    /// I/O or memory, and the memory BAR's width.
    pub kind: BarKind,
    /// The base address (port number for I/O), as firmware assigned it; 0 if unassigned.
    pub address: u64,
    /// The size in bytes, a power of two.
    pub size: u64,
    /// Memory BARs: whether the range is prefetchable. Always false for I/O.
    pub prefetchable: bool,
}

impl DecodedBar {
    /// Whether the BAR maps memory (32- or 64-bit), as opposed to I/O ports.
    pub fn is_memory(&self) -> bool {
        matches!(self.kind, BarKind::Memory32 | BarKind::Memory64)
    }

    /// The first address after the range, or `None` if the range ends at the top of the
    /// 64-bit address space.
    pub fn end(&self) -> Option<u64> {
        self.address.checked_add(self.size)
    }
}

/// Writes a size the way lspci does: bytes, then K, M, G for exact multiples.
pub(crate) struct Size(pub(crate) u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const K: u64 = 1 << 10;
        let units = [("G", K * K * K), ("M", K * K), ("K", K)];
        for (suffix, unit) in units {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for DecodedBar {
    /// `BAR0: Memory at fe000000 (64-bit, non-prefetchable) [size=16K]` or
    /// `BAR4: I/O ports at c000 [size=32]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = match self.kind {
            BarKind::Io => {
                return write!(
                    f,
                    "BAR{}: I/O ports at {:x} [size={}]",
                    self.index,
                    self.address,
                    Size(self.size)
                );
            }
            BarKind::Memory32 => "32-bit",
            BarKind::Memory64 => "64-bit",
        };
        let prefetch = if self.prefetchable {
            "prefetchable"
        } else {
            "non-prefetchable"
        };
        write!(
            f,
            "BAR{}: Memory at {:08x} ({width}, {prefetch}) [size={}]",
            self.index,
            self.address,
            Size(self.size)
        )
    }
}

/// One slot's saved value and its all-ones probe.
#[derive(Clone, Copy, Default)]
struct RawSlot {
    original: u32,
    probed: u32,
}

/// Probes and decodes the first `slots` BARs of a function.
///
/// `keep_decoding` is set for host bridges (see the module notes).
pub(crate) fn read_bars<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    slots: usize,
    keep_decoding: bool,
    problems: &mut Vec<Problem>,
) -> Vec<DecodedBar> {
    let slots = slots.min(MAX_SLOTS);
    let raw = probe(config, slots, keep_decoding);
    decode(config.address(), &raw[..slots], problems)
}

/// The address `bar`'s registers hold now (the firmware's, unless something reset them).
pub(crate) fn current_address<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    bar: &DecodedBar,
) -> u64 {
    let index = usize::from(bar.index).min(MAX_SLOTS - 1);
    let low = config.read(slot_offset(index));
    match bar.kind {
        BarKind::Io => u64::from(low & !IO_FLAGS),
        BarKind::Memory32 => u64::from(low & !MEMORY_FLAGS),
        BarKind::Memory64 => {
            let high = match index + 1 {
                upper if upper < MAX_SLOTS => config.read(slot_offset(upper)),
                _ => 0,
            };
            u64::from(high) << 32 | u64::from(low & !MEMORY_FLAGS)
        }
    }
}

/// Writes `bar`'s decoded address back to its registers (the flag bits are read-only, so the
/// address alone is written), as after a reset that cleared them; decoding must be off.
pub(crate) fn write_address<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    bar: &DecodedBar,
) {
    let index = usize::from(bar.index).min(MAX_SLOTS - 1);
    config.write(slot_offset(index), bar.address as u32);
    if bar.kind == BarKind::Memory64 && index + 1 < MAX_SLOTS {
        config.write(slot_offset(index + 1), (bar.address >> 32) as u32);
    }
}

/// Offset of BAR slot `index` (below 6, so this cannot overflow).
fn slot_offset(index: usize) -> u16 {
    BAR0 + 4 * index as u16
}

/// Saves and size-probes every slot, with I/O and memory decoding off unless `keep_decoding`.
fn probe<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    slots: usize,
    keep_decoding: bool,
) -> [RawSlot; MAX_SLOTS] {
    let decode_bits = CommandRegister::IO_ENABLE | CommandRegister::MEMORY_ENABLE;
    let command = CommandRegister::from_bits_retain(config.read(COMMAND_STATUS) as u16);
    let turn_off = !keep_decoding && command.intersects(decode_bits);
    if turn_off {
        config.write(COMMAND_STATUS, u32::from((command - decode_bits).bits()));
    }

    let mut raw = [RawSlot::default(); MAX_SLOTS];
    for (index, slot) in raw.iter_mut().enumerate().take(slots) {
        let offset = slot_offset(index);
        let original = config.read(offset);
        config.write(offset, u32::MAX);
        let probed = config.read(offset);
        config.write(offset, original);
        *slot = RawSlot { original, probed };
    }

    if turn_off {
        config.write(COMMAND_STATUS, u32::from(command.bits()));
    }
    raw
}

/// Bit 0 of a BAR: set for I/O space.
const IO_SPACE: u32 = 1 << 0;
/// Memory BAR type field (bits 1..3).
const MEMORY_TYPE_MASK: u32 = 0b110;
const MEMORY_TYPE_32: u32 = 0b000;
const MEMORY_TYPE_BELOW_1M: u32 = 0b010;
const MEMORY_TYPE_64: u32 = 0b100;
/// Memory BAR prefetchable bit.
const PREFETCHABLE: u32 = 1 << 3;
/// Flag bits of an I/O and of a memory BAR.
const IO_FLAGS: u32 = 0b11;
const MEMORY_FLAGS: u32 = 0b1111;
/// The x86 I/O port space.
const IO_SPACE_SIZE: u64 = 1 << 16;

/// Decodes probed slots without touching hardware.
fn decode(address: PciAddress, raw: &[RawSlot], problems: &mut Vec<Problem>) -> Vec<DecodedBar> {
    let mut bars = Vec::new();
    let mut index = 0;
    while index < raw.len() {
        let slot = raw[index];
        let (result, used) = decode_slot(raw, index);
        match result {
            Ok(Some(bar)) => bars.push(bar),
            Ok(None) => {}
            Err(defect) => {
                log::warn!(
                    "pci {address}: BAR{index} value {:#010x} probe {:#010x}: {defect:?}, skipped",
                    slot.original,
                    slot.probed
                );
                problems.push(Problem::BarInvalid {
                    address,
                    index: index as u8,
                    original: slot.original,
                    probed: slot.probed,
                    defect,
                });
            }
        }
        index += used;
    }
    bars
}

/// Decodes the BAR starting at slot `index`; returns it (`None` if unimplemented) and the
/// number of slots it uses.
fn decode_slot(raw: &[RawSlot], index: usize) -> (Result<Option<DecodedBar>, BarDefect>, usize) {
    let RawSlot { original, probed } = raw[index];
    if original == 0 && probed == 0 {
        return (Ok(None), 1);
    }
    let slot = index as u8;

    if original & IO_SPACE != 0 {
        let mut mask = probed & !IO_FLAGS;
        if mask & 0xffff_0000 == 0 && mask != 0 {
            // A 16-bit decoder: the upper address bits are hard-wired to zero.
            mask |= 0xffff_0000;
        }
        let result = size_from_mask(u64::from(mask), 32).and_then(|size| {
            if size > IO_SPACE_SIZE {
                return Err(BarDefect::SizeExceedsAddressSpace);
            }
            let base = u64::from(original & !IO_FLAGS);
            aligned(base, size)?;
            Ok(Some(DecodedBar {
                index: slot,
                kind: BarKind::Io,
                address: base,
                size,
                prefetchable: false,
            }))
        });
        return (result, 1);
    }

    let prefetchable = original & PREFETCHABLE != 0;
    match original & MEMORY_TYPE_MASK {
        MEMORY_TYPE_32 | MEMORY_TYPE_BELOW_1M => {
            let mask = u64::from(probed & !MEMORY_FLAGS);
            let base = u64::from(original & !MEMORY_FLAGS);
            let result = size_from_mask(mask, 32).and_then(|size| {
                aligned(base, size)?;
                Ok(Some(DecodedBar {
                    index: slot,
                    kind: BarKind::Memory32,
                    address: base,
                    size,
                    prefetchable,
                }))
            });
            (result, 1)
        }
        MEMORY_TYPE_64 => {
            let Some(upper) = raw.get(index + 1) else {
                return (Err(BarDefect::Upper64BitHalfMissing), 1);
            };
            let mask = u64::from(upper.probed) << 32 | u64::from(probed & !MEMORY_FLAGS);
            let base = u64::from(upper.original) << 32 | u64::from(original & !MEMORY_FLAGS);
            let result = size_from_mask(mask, 64).and_then(|size| {
                aligned(base, size)?;
                Ok(Some(DecodedBar {
                    index: slot,
                    kind: BarKind::Memory64,
                    address: base,
                    size,
                    prefetchable,
                }))
            });
            (result, 2)
        }
        _ => (Err(BarDefect::ReservedType), 1),
    }
}

/// The size a mask of writable address bits describes, within a `width`-bit address space:
/// the lowest set bit, provided every bit above it is set too.
fn size_from_mask(mask: u64, width: u32) -> Result<u64, BarDefect> {
    if mask == 0 {
        return Err(BarDefect::ZeroSizeMask);
    }
    let size = 1u64 << mask.trailing_zeros();
    let all = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    if mask | (size - 1) != all {
        return Err(BarDefect::NonContiguousSizeMask);
    }
    Ok(size)
}

/// Checks that `base` has no bits set below `size`.
fn aligned(base: u64, size: u64) -> Result<(), BarDefect> {
    if base & (size - 1) != 0 {
        Err(BarDefect::MisalignedAddress)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_from_mask_accepts_contiguous_masks_only() {
        assert_eq!(size_from_mask(0xffff_c000, 32), Ok(0x4000));
        assert_eq!(size_from_mask(0x8000_0000, 32), Ok(0x8000_0000));
        assert_eq!(
            size_from_mask(0xffff_ff00_ffff_c000, 64),
            Err(BarDefect::NonContiguousSizeMask)
        );
        assert_eq!(size_from_mask(0xffff_ffff_0000_0000, 64), Ok(1 << 32));
        assert_eq!(size_from_mask(0, 32), Err(BarDefect::ZeroSizeMask));
        assert_eq!(
            size_from_mask(0x7fff_c000, 32),
            Err(BarDefect::NonContiguousSizeMask)
        );
    }

    #[test]
    fn address_bits_below_the_size_are_rejected() {
        // Only reachable with hardware whose value and probe disagree about read-only bits.
        let raw = [RawSlot {
            original: 0xfe00_1000,
            probed: 0xffff_c000,
        }];
        assert_eq!(decode_slot(&raw, 0).0, Err(BarDefect::MisalignedAddress));
        let raw = [RawSlot {
            original: 0xfe00_0000,
            probed: 0xffff_c000,
        }];
        assert_eq!(
            decode_slot(&raw, 0).0.map(|bar| bar.map(|bar| bar.size)),
            Ok(Some(0x4000))
        );
    }

    #[test]
    fn sizes_print_like_lspci() {
        assert_eq!(Size(32).to_string(), "32");
        assert_eq!(Size(16 * 1024).to_string(), "16K");
        assert_eq!(Size(256 << 20).to_string(), "256M");
        assert_eq!(Size(8 << 30).to_string(), "8G");
        assert_eq!(Size(1536).to_string(), "1536");
    }
}
