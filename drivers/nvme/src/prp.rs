//! Physical Region Page entries: PRP1, PRP2 and PRP lists.
//!
//! NVMe 1.4 §4.3: PRP1 points at the first byte and may carry an offset
//! within a memory page (dword aligned); every further entry is page aligned
//! with offset zero. A transfer that touches one page uses PRP1 only (PRP2
//! must be zero here); two pages put the second page in PRP2; more pages make
//! PRP2 point at a PRP list holding pages 2..n. "Page" is the controller's
//! memory page size (CC.MPS), not the CPU's.
//!
//! The driver never chains PRP lists: each queue slot owns one list page
//! (allocated at queue creation), and transfers are capped so that the list
//! of the remaining pages fits in that one page
//! ([`max_transfer_without_chaining`]). Building PRPs allocates nothing.

#![forbid(unsafe_code)]

use crate::error::Error;
use crate::hal::{DmaRegion, PhysAddr};

/// Bytes per PRP entry (a 64-bit address).
const ENTRY_BYTES: usize = 8;
/// Alignment of PRP1 and of a data pointer: a dword (§4.3).
const DATA_ALIGN: u64 = 4;
/// Entries that fit PRP1 and PRP2 without a list.
const ENTRIES_WITHOUT_LIST: usize = 2;

/// A controller memory page size (CC.MPS, 2^(12 + MPS) bytes): a power of
/// two, checked once when made rather than at every transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageSize(usize);

impl PageSize {
    /// `bytes`, if it is a power of two.
    pub(crate) const fn new(bytes: usize) -> Option<PageSize> {
        if bytes.is_power_of_two() {
            Some(PageSize(bytes))
        } else {
            None
        }
    }

    /// The size in bytes.
    #[inline]
    pub(crate) const fn bytes(self) -> usize {
        self.0
    }
}

/// PRP1 and PRP2 of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prps {
    /// PRP Entry 1.
    pub(crate) prp1: u64,
    /// PRP Entry 2 (page, list pointer, or zero).
    pub(crate) prp2: u64,
}

/// Largest transfer (bytes) whose PRP list fits in a single list page of
/// `page` bytes, whatever the offset of the first byte.
pub(crate) const fn max_transfer_without_chaining(page: usize) -> usize {
    (page / ENTRY_BYTES) * page
}

/// Number of PRP entries (pages touched) for `len` bytes starting at page
/// offset `offset`.
pub(crate) const fn pages_touched(offset: usize, len: usize, page: usize) -> usize {
    (offset + len).div_ceil(page)
}

/// Fills in PRP1/PRP2 (and the list) from `n` entries given by `entry(i)`.
fn assemble(
    n: usize,
    list: &mut DmaRegion,
    page: usize,
    mut entry: impl FnMut(usize) -> Option<u64>,
) -> Option<Prps> {
    let prp1 = entry(0)?;
    match n {
        0 => None,
        1 => Some(Prps { prp1, prp2: 0 }),
        ENTRIES_WITHOUT_LIST => Some(Prps {
            prp1,
            prp2: entry(1)?,
        }),
        _ => {
            let capacity = list.len().min(page) / ENTRY_BYTES;
            if n - 1 > capacity || !list.phys().is_aligned(ENTRY_BYTES as u64) {
                return None;
            }
            for i in 1..n {
                list.write_volatile_u64((i - 1) * ENTRY_BYTES, entry(i)?);
            }
            Some(Prps {
                prp1,
                prp2: list.phys().as_u64(),
            })
        }
    }
}

/// PRPs for `len` bytes of physically contiguous memory starting at `phys`
/// (an application's buffer or a bounce buffer). `page` is the controller's
/// memory page size.
#[inline]
pub(crate) fn contiguous(
    phys: PhysAddr,
    len: usize,
    page: PageSize,
    list: &mut DmaRegion,
) -> Result<Prps, Error> {
    let page = page.bytes();
    if len == 0 {
        return Err(Error::InvalidLength);
    }
    if !phys.is_aligned(DATA_ALIGN) {
        return Err(Error::Misaligned);
    }
    let offset = (phys.as_u64() & (page as u64 - 1)) as usize;
    if len <= page - offset {
        // One page: PRP1 alone, no list (the common 4 KiB request).
        return Ok(Prps {
            prp1: phys.as_u64(),
            prp2: 0,
        });
    }
    let n = pages_touched(offset, len, page);
    let page_base = phys.as_u64() - offset as u64;
    assemble(n, list, page, |i| {
        Some(if i == 0 {
            phys.as_u64()
        } else {
            page_base + (i * page) as u64
        })
    })
    .ok_or(Error::InvalidLength)
}

/// CPU page granularity at which translations are checked for contiguity.
const CPU_PAGE: usize = 4096;

/// PRPs for a caller's buffer at `virt`, translating every CPU page;
/// `None` when any part is not DMA-able, not dword aligned, not contiguous
/// within a controller page, or too long (the caller then bounces).
pub(crate) fn translated(
    virt: *const u8,
    len: usize,
    page: usize,
    list: &mut DmaRegion,
    translate: impl Fn(*const u8) -> Option<PhysAddr>,
) -> Option<Prps> {
    if len == 0 || page == 0 {
        return None;
    }
    let first = translate(virt)?;
    if !first.is_aligned(DATA_ALIGN) {
        return None;
    }
    let offset = (first.as_u64() % page as u64) as usize;
    let n = pages_touched(offset, len, page);
    // Byte offset (in the buffer) where PRP entry `i` starts, and its length.
    let piece = |i: usize| -> (usize, usize) {
        let start = if i == 0 {
            0
        } else {
            page - offset + (i - 1) * page
        };
        let end = if i == 0 {
            (page - offset).min(len)
        } else {
            (start + page).min(len)
        };
        (start, end - start)
    };
    let virt_addr = virt as usize;
    assemble(n, list, page, |i| {
        let (start, piece_len) = piece(i);
        let base_virt = virt.wrapping_add(start);
        let base = if i == 0 { first } else { translate(base_virt)? };
        if i > 0 && !base.is_aligned(page as u64) {
            return None;
        }
        // Every CPU page boundary inside the piece must continue the same
        // physical run.
        let mut boundary = (virt_addr + start).next_multiple_of(CPU_PAGE);
        while boundary < virt_addr + start + piece_len {
            let delta = boundary - (virt_addr + start);
            if translate(virt.wrapping_add(boundary - virt_addr))? != base.offset(delta as u64) {
                return None;
            }
            boundary += CPU_PAGE;
        }
        Some(base.as_u64())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::test_support::leaked_region;

    fn list_entries(list: &DmaRegion, n: usize) -> std::vec::Vec<u64> {
        (0..n)
            .map(|i| {
                let mut b = [0u8; 8];
                list.copy_out(i * 8, &mut b);
                u64::from_le_bytes(b)
            })
            .collect()
    }

    const PAGE: PageSize = PageSize(4096);

    #[test]
    fn one_two_and_many_pages() {
        assert_eq!(PageSize::new(4096), Some(PAGE));
        assert_eq!(PageSize::new(4095), None);
        assert_eq!(PageSize::new(0), None);
        let mut list = leaked_region(4096);
        let p = contiguous(PhysAddr(0x10_0000), 4096, PAGE, &mut list).unwrap();
        assert_eq!(
            p,
            Prps {
                prp1: 0x10_0000,
                prp2: 0
            }
        );
        let p = contiguous(PhysAddr(0x10_0000), 8192, PAGE, &mut list).unwrap();
        assert_eq!(
            p,
            Prps {
                prp1: 0x10_0000,
                prp2: 0x10_1000
            }
        );
        // Odd offset crossing one boundary: two pages.
        let p = contiguous(PhysAddr(0x10_0200), 4096, PAGE, &mut list).unwrap();
        assert_eq!(
            p,
            Prps {
                prp1: 0x10_0200,
                prp2: 0x10_1000
            }
        );
        // Offset buffer over three pages: list.
        let p = contiguous(PhysAddr(0x10_0200), 8192, PAGE, &mut list).unwrap();
        assert_eq!(p.prp1, 0x10_0200);
        assert_eq!(p.prp2, list.phys().as_u64());
        assert_eq!(list_entries(&list, 2), [0x10_1000, 0x10_2000]);
        assert_eq!(
            contiguous(PhysAddr(0x10_0002), 512, PAGE, &mut list),
            Err(Error::Misaligned)
        );
        assert_eq!(
            contiguous(PhysAddr(0x10_0000), 0, PAGE, &mut list),
            Err(Error::InvalidLength)
        );
        let max = max_transfer_without_chaining(4096);
        assert!(contiguous(PhysAddr(0x10_0200), max, PAGE, &mut list).is_ok());
        assert!(contiguous(PhysAddr(0x10_0000), max + 2 * 4096, PAGE, &mut list).is_err());
    }

    #[test]
    fn translation_must_be_contiguous() {
        let mut list = leaked_region(4096);
        let virt = 0x4000_0000usize as *const u8;
        // Identity: fine.
        let id = |v: *const u8| Some(PhysAddr(v as u64));
        let p = translated(virt.wrapping_add(8), 3 * 4096, 4096, &mut list, id).unwrap();
        assert_eq!(p.prp1, 0x4000_0008);
        assert_eq!(
            list_entries(&list, 3),
            [0x4000_1000, 0x4000_2000, 0x4000_3000]
        );
        // Scattered CPU pages with 8 KiB controller pages: not contiguous.
        let scatter = |v: *const u8| {
            let v = v as u64;
            Some(PhysAddr(((v >> 12) * 0x3000) + (v & 0xFFF)))
        };
        assert!(translated(virt, 8192, 8192, &mut list, scatter).is_none());
        // Contiguous inside each page but the second page starts at an
        // offset: not expressible as PRP entries.
        let shifted = |v: *const u8| {
            let v = v as u64;
            Some(PhysAddr(if v >= 0x4000_1000 { v + 0x10 } else { v }))
        };
        assert!(translated(virt, 8192, 4096, &mut list, shifted).is_none());
        // Not DMA-able.
        assert!(translated(virt, 512, 4096, &mut list, |_| None).is_none());
        // Unaligned start.
        assert!(translated(virt.wrapping_add(1), 512, 4096, &mut list, id).is_none());
    }
}
