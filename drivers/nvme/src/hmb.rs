//! Host Memory Buffer: host memory lent to drives without DRAM of their own.
//!
//! NVMe 1.4 §5.21.1.13 (Set Features, Host Memory Buffer, FID 0Dh) and
//! Identify Controller HMPRE/HMMIN (NVMe 1.2) and HMMINDS/HMMAXD (NVMe
//! 1.4), all sizes there in 4 KiB units. DRAM-less drives keep their
//! mapping tables in this memory and are much slower without it.
//!
//! The buffer is a set of physically contiguous chunks, each a multiple of
//! the controller memory page size (CC.MPS) and aligned to it, described by
//! a list of 16-byte descriptors (Figure 294: buffer address, then its size
//! in memory pages) which itself lives in DMA memory. Sizing: the preferred
//! size (capped by the configuration) is tried first in chunks as large as
//! the allocator can give, halving the chunk size when it cannot; whatever
//! could be had is used if it reaches the minimum. Below the minimum the
//! drive runs without a buffer.
//!
//! Life cycle: enabled once the I/O queues exist, enabled again after a
//! controller reset (a reset disables it), disabled before shutdown. The
//! chunks and the list are lent to the device (`dma::Lent`) as soon as the
//! list is written; they go back to the allocator only with the proof that
//! the controller confirmed it no longer uses them (or refused to take
//! them), and are leaked otherwise.

#![forbid(unsafe_code)]

use crate::command::{FeatureId, SubmissionEntry, cdw};
use crate::hal::{DmaAllocator, DmaRegion, Lent, Returned};
use crate::identify::IdentifyController;
use alloc::vec::Vec;

/// Unit of HMPRE, HMMIN and HMMINDS.
const IDENTIFY_UNIT: u64 = 4096;
/// Bytes per descriptor list entry (Figure 294).
const DESCRIPTOR_BYTES: usize = 16;
/// Byte offset of a descriptor's size in memory pages (BSIZE), after its
/// 8-byte address (BADD).
const DESCRIPTOR_SIZE_AT: usize = 8;
/// Enable Host Memory (CDW11 bit 0).
const ENABLE_HOST_MEMORY: u32 = 1 << 0;

/// What the controller asks for, in bytes, for one controller memory page
/// size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Size to try first (HMPRE, capped by the configuration).
    pub(crate) preferred: usize,
    /// Smallest total the controller accepts (HMMIN, at least a page).
    pub(crate) minimum: usize,
    /// Smallest chunk the controller accepts (HMMINDS, at least a page).
    pub(crate) min_chunk: usize,
    /// Most descriptors (HMMAXD, and what one list page holds).
    pub(crate) max_entries: usize,
    /// Controller memory page size.
    pub(crate) page: usize,
}

/// Why no buffer is set up although the controller wants one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// The configuration's cap is below the controller's minimum.
    CapBelowMinimum,
    /// The allocator gave only this many bytes, below the minimum.
    NotEnoughMemory(usize),
}

impl Request {
    /// The request from Identify Controller; `None` if the controller wants
    /// no buffer (HMPRE = 0). `cap` is the most the host lends.
    pub(crate) fn new(
        id: &IdentifyController,
        page: usize,
        cap: usize,
    ) -> Option<Result<Request, Skipped>> {
        if id.hmpre == 0 {
            return None;
        }
        let page_u64 = page as u64;
        let bytes = |units: u32| {
            (u64::from(units) * IDENTIFY_UNIT)
                .next_multiple_of(page_u64)
                .max(page_u64)
        };
        let minimum = bytes(id.hmmin);
        let preferred = bytes(id.hmpre).max(minimum);
        let cap = cap as u64 / page_u64 * page_u64;
        if cap < minimum {
            return Some(Err(Skipped::CapBelowMinimum));
        }
        let list_capacity = page / DESCRIPTOR_BYTES;
        let max_entries = match id.hmmaxd {
            0 => list_capacity,
            n => usize::from(n).min(list_capacity),
        };
        Some(Ok(Request {
            preferred: preferred.min(cap) as usize,
            minimum: minimum as usize,
            min_chunk: bytes(id.hmminds) as usize,
            max_entries,
            page,
        }))
    }
}

/// A host memory buffer: its chunks (each with the bytes it lends, a
/// multiple of the page) and descriptor list, lent to the device.
#[derive(Debug)]
pub(crate) struct HostMemoryBuffer {
    chunks: Lent<Vec<(DmaRegion, usize)>>,
    chunk_count: usize,
    list: Lent<DmaRegion>,
    bytes: usize,
    page: usize,
}

impl HostMemoryBuffer {
    /// Allocates chunks for `request` and writes the descriptor list.
    pub(crate) fn allocate<D: DmaAllocator>(
        dma: &D,
        request: &Request,
    ) -> Result<HostMemoryBuffer, Skipped> {
        let page = request.page;
        // The list first (one page at most), so that chunks taking the last
        // free memory do not leave the list without any.
        let list_bytes = (request.max_entries * DESCRIPTOR_BYTES).max(DESCRIPTOR_BYTES);
        let mut list = match dma.allocate(list_bytes, page) {
            Ok(l) if l.phys().is_aligned(page as u64) && l.len() >= list_bytes => l,
            Ok(l) => {
                dma.deallocate(l);
                return Err(Skipped::NotEnoughMemory(0));
            }
            Err(_) => return Err(Skipped::NotEnoughMemory(0)),
        };
        let mut chunks: Vec<(DmaRegion, usize)> = Vec::new();
        let mut total = 0usize;
        let mut chunk = request.preferred;
        while total < request.preferred && chunks.len() < request.max_entries {
            let remaining = request.preferred - total;
            if remaining < request.min_chunk {
                break;
            }
            let want = chunk.min(remaining).max(request.min_chunk);
            match dma.allocate(want, page) {
                Ok(region) if region.phys().is_aligned(page as u64) && region.len() >= want => {
                    total += want;
                    chunks.push((region, want));
                }
                Ok(region) => {
                    log::warn!(
                        "nvme: DMA region at {:#x} not aligned to {page} bytes",
                        region.phys().as_u64()
                    );
                    dma.deallocate(region);
                    break;
                }
                Err(_) if chunk > request.min_chunk => {
                    chunk = (chunk / 2 / page * page).max(request.min_chunk);
                }
                Err(_) => break,
            }
        }
        if total < request.minimum {
            for (region, _) in chunks {
                dma.deallocate(region);
            }
            dma.deallocate(list);
            return Err(Skipped::NotEnoughMemory(total));
        }
        list.zero();
        // Each descriptor: the chunk's address (a multiple of the page, so
        // its low bits are zero), then its size in pages.
        for (i, (region, bytes)) in chunks.iter().enumerate() {
            let at = i * DESCRIPTOR_BYTES;
            list.write_volatile_u64(at, region.phys().as_u64());
            list.write_volatile_u32(at + DESCRIPTOR_SIZE_AT, (bytes / page) as u32);
        }
        Ok(HostMemoryBuffer {
            chunk_count: chunks.len(),
            chunks: Lent::new(chunks),
            list: list.lend(),
            bytes: total,
            page,
        })
    }

    /// Bytes lent to the controller.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of chunks (descriptor list entries).
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunk_count
    }

    /// Set Features Host Memory Buffer enabling this buffer: EHM set,
    /// HSIZE in memory pages, the list's address (16-byte aligned, lower
    /// and upper dwords) and its entry count (CDW11..CDW15).
    pub(crate) fn enable_command(&self) -> SubmissionEntry {
        let mut cmd =
            SubmissionEntry::set_features(FeatureId::HostMemoryBuffer, ENABLE_HOST_MEMORY);
        let list = self.list.phys().as_u64();
        cmd.cdw[cdw::CDW12] = (self.bytes / self.page) as u32;
        cmd.cdw[cdw::CDW13] = list as u32;
        cmd.cdw[cdw::CDW14] = (list >> u32::BITS) as u32;
        cmd.cdw[cdw::CDW15] = self.chunk_count as u32;
        cmd
    }

    /// Set Features Host Memory Buffer with EHM clear: the controller stops
    /// using the buffer.
    pub(crate) fn disable_command() -> SubmissionEntry {
        SubmissionEntry::set_features(FeatureId::HostMemoryBuffer, 0)
    }

    /// Returns every chunk and the list to the allocator, once the
    /// controller has said (`returned`) that it no longer uses them.
    pub(crate) fn free<D: DmaAllocator>(self, dma: &D, returned: &Returned) {
        for (region, _) in self.chunks.reclaim(returned) {
            dma.deallocate(region);
        }
        dma.deallocate(self.list.reclaim(returned));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identify(hmpre: u32, hmmin: u32, hmminds: u32, hmmaxd: u16) -> IdentifyController {
        let mut b = [0u8; 4096];
        b[272..276].copy_from_slice(&hmpre.to_le_bytes());
        b[276..280].copy_from_slice(&hmmin.to_le_bytes());
        b[332..336].copy_from_slice(&hmminds.to_le_bytes());
        b[336..338].copy_from_slice(&hmmaxd.to_le_bytes());
        IdentifyController::parse(&b)
    }

    #[test]
    fn request_from_identify() {
        assert_eq!(Request::new(&identify(0, 16, 0, 0), 4096, 1 << 30), None);
        let r = Request::new(&identify(1024, 256, 0, 0), 4096, 1 << 30)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.preferred, r.minimum, r.min_chunk),
            (4 << 20, 1 << 20, 4096)
        );
        assert_eq!(r.max_entries, 256);
        // The cap wins over the preference, not over the minimum.
        let r = Request::new(&identify(1024, 256, 0, 0), 4096, 2 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(r.preferred, 2 << 20);
        assert_eq!(
            Request::new(&identify(1024, 256, 0, 0), 4096, 1 << 19),
            Some(Err(Skipped::CapBelowMinimum))
        );
        // Device nonsense: a minimum above the preference, sizes that are
        // not whole 8 KiB pages, HMMAXD beyond one list page.
        let r = Request::new(&identify(3, 5, 1, 9999), 8192, usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!((r.preferred, r.minimum, r.min_chunk), (24576, 24576, 8192));
        assert_eq!(r.max_entries, 512);
        // The largest values do not overflow.
        let r = Request::new(&identify(u32::MAX, u32::MAX, u32::MAX, 0), 4096, usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(r.preferred, r.minimum);
    }

    #[test]
    fn disable_command_clears_ehm() {
        let cmd = HostMemoryBuffer::disable_command();
        assert_eq!(cmd.cdw[0], FeatureId::HostMemoryBuffer as u32);
        assert_eq!(cmd.cdw[1] & ENABLE_HOST_MEMORY, 0);
    }
}
