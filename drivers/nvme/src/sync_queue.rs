//! The synchronous request path: one command at a time on I/O queue 1.
//!
//! [`SyncQueue::run`] serves every synchronous request of a `BlockDevice`:
//! it checks the request once ([`Request::check`]), splits it into
//! commands the controller takes (transfer limit, 65536 blocks, zone
//! boundaries of zoned namespaces that forbid crossing them, 256 ranges per
//! Dataset Management command), and runs each with [`SyncQueue::execute`]:
//! write the entry ([`QueuePair::push`]), ring ([`QueuePair::ring_submissions`]),
//! wait for its completion ([`wait_for_slot`]).
//!
//! Caller buffers are used in place (zero-copy) when
//! `DmaAllocator::translate` maps every page and the start is dword aligned;
//! otherwise data goes through the queue's bounce buffer. Recovery after a
//! timeout or fatal status is the controller's: errors are returned as they
//! are.

#![forbid(unsafe_code)]

use crate::command::{CompletionEntry, DsmRange, MAX_BLOCKS_PER_COMMAND, SubmissionEntry};
use crate::error::{Error, Stage};
use crate::hal::{Clock, DmaAllocator, DmaRegion, RegisterAccess};
use crate::namespace::Namespace;
use crate::prp::{self, PageSize};
use crate::queue::QueuePair;
use crate::request::{Limits, Operation, Request, Shared, deadline_ns, wait_for_slot};

/// Most ranges in one Dataset Management command (§6.7: NR is 8 bits,
/// 0-based).
const MAX_DSM_RANGES: usize = 256;
/// Most blocks in one Dataset Management range (its length is 32 bits).
const MAX_DSM_RANGE_BLOCKS: u64 = u32::MAX as u64;

/// The data of a synchronous request.
pub(crate) enum Data<'a> {
    /// Device to memory.
    Read(&'a mut [u8]),
    /// Memory to device.
    Write(&'a [u8]),
    /// No data (flush, Write Zeroes, deallocate).
    None,
}

/// What the synchronous path needs from the controller for one request.
pub(crate) struct Device<'a, R, D, C> {
    /// Register access (doorbells, CSTS).
    pub(crate) regs: &'a R,
    /// DMA allocator (translation of caller buffers).
    pub(crate) dma: &'a D,
    /// Time, for deadlines.
    pub(crate) clock: &'a C,
    /// Write gates.
    pub(crate) shared: &'a Shared,
    /// Count of completions with unknown identifiers.
    pub(crate) unknown: &'a mut u64,
}

/// I/O queue 1 with its PRP list page and bounce buffer.
#[derive(Debug)]
pub(crate) struct SyncQueue {
    /// The ring pair.
    pub(crate) pair: QueuePair,
    /// PRP list page of the one command in flight.
    prp_list: DmaRegion,
    /// Bounce buffer (and Dataset Management ranges).
    bounce: DmaRegion,
    /// Controller memory page size.
    page_size: usize,
    /// Largest transfer of one command.
    max_transfer_bytes: usize,
    /// Deadline of every command.
    timeout_ms: u64,
    /// Write Zeroes usable.
    write_zeroes: bool,
    /// Dataset Management deallocate usable.
    deallocate: bool,
}

impl SyncQueue {
    /// The path over `pair`, with its PRP list page and bounce buffer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pair: QueuePair,
        prp_list: DmaRegion,
        bounce: DmaRegion,
        page_size: usize,
        max_transfer_bytes: usize,
        timeout_ms: u64,
        write_zeroes: bool,
        deallocate: bool,
    ) -> SyncQueue {
        SyncQueue {
            pair,
            prp_list,
            bounce,
            page_size,
            max_transfer_bytes,
            timeout_ms,
            write_zeroes,
            deallocate,
        }
    }

    /// Runs `request` on `ns` to completion: checked once, split into
    /// commands, each executed in turn.
    pub(crate) fn run<R: RegisterAccess, D: DmaAllocator, C: Clock>(
        &mut self,
        device: &mut Device<'_, R, D, C>,
        ns: &Namespace,
        request: &Request,
        data: Data<'_>,
    ) -> Result<(), Error> {
        let limits = Limits {
            max_blocks: None,
            max_bytes: None,
            refuse_zone_crossing: false,
            write_zeroes: self.write_zeroes,
            deallocate: self.deallocate,
        };
        request.check(ns, device.shared, &limits)?;
        match request.op {
            Operation::Read | Operation::Write { .. } => self.transfer(device, ns, request, data),
            Operation::Flush => self
                .execute(device, ns, request.entry(ns.info.nsid, 0, 0))
                .map(|_| ()),
            Operation::WriteZeroes => {
                let mut done = 0u64;
                while done < request.blocks {
                    let n = (request.blocks - done).min(MAX_BLOCKS_PER_COMMAND);
                    let entry = request.entry(ns.info.nsid, request.lba + done, n as u32);
                    self.execute(device, ns, entry)?;
                    done += n;
                }
                Ok(())
            }
            Operation::Deallocate => self.deallocate(device, ns, request),
        }
    }

    /// A read or write, split at the transfer limit (and at zone
    /// boundaries of a zoned namespace that forbids crossing them).
    fn transfer<R: RegisterAccess, D: DmaAllocator, C: Clock>(
        &mut self,
        device: &mut Device<'_, R, D, C>,
        ns: &Namespace,
        request: &Request,
        mut data: Data<'_>,
    ) -> Result<(), Error> {
        let block_size = ns.info.block_size;
        let direct_max =
            (self.max_transfer_bytes / block_size).min(MAX_BLOCKS_PER_COMMAND as usize);
        let bounce_max = direct_max.min(self.bounce.len() / block_size);
        if bounce_max == 0 {
            return Err(Error::Unsupported);
        }
        let total = request.blocks as usize;
        let mut done = 0usize;
        while done < total {
            let lba = request.lba + done as u64;
            let mut blocks = (total - done).min(direct_max);
            if let Some(left) = ns.info.zoned.and_then(|zone| zone.blocks_to_boundary(lba)) {
                // Zoned namespace without RAZB: one command per zone.
                blocks = blocks.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            let at = done * block_size;
            // Reads take the pointer from the mutable borrow: the device
            // writes through it.
            let ptr: *const u8 = match &mut data {
                Data::Read(b) => b.as_mut_ptr().wrapping_add(at),
                Data::Write(b) => b.as_ptr().wrapping_add(at),
                Data::None => return Err(Error::InvalidLength),
            };
            let dma = device.dma;
            let direct = prp::translated(
                ptr,
                blocks * block_size,
                self.page_size,
                &mut self.prp_list,
                |v| dma.translate(v),
            );
            let prps = match direct {
                Some(p) => p,
                None => {
                    blocks = blocks.min(bounce_max);
                    let len = blocks * block_size;
                    if let Data::Write(b) = &data {
                        self.bounce.copy_in(0, &b[at..at + len]);
                    }
                    prp::contiguous(self.bounce.phys(), len, self.page()?, &mut self.prp_list)?
                }
            };
            let entry = request
                .entry(ns.info.nsid, lba, blocks as u32)
                .with_prps(prps.prp1, prps.prp2);
            self.execute(device, ns, entry)?;
            if direct.is_none()
                && let Data::Read(b) = &mut data
            {
                self.bounce
                    .copy_out(0, &mut b[at..at + blocks * block_size]);
            }
            done += blocks;
        }
        Ok(())
    }

    /// Dataset Management deallocate: ranges of up to 2^32 - 1 blocks,
    /// up to 256 per command (and one page), built in the bounce buffer.
    /// The controller's memory page size, for PRPs.
    fn page(&self) -> Result<PageSize, Error> {
        PageSize::new(self.page_size).ok_or(Error::InvalidLength)
    }

    fn deallocate<R: RegisterAccess, D: DmaAllocator, C: Clock>(
        &mut self,
        device: &mut Device<'_, R, D, C>,
        ns: &Namespace,
        request: &Request,
    ) -> Result<(), Error> {
        let per_command = MAX_DSM_RANGES.min(self.page_size / DsmRange::SIZE);
        let mut done = 0u64;
        while done < request.blocks {
            let mut ranges = 0usize;
            while ranges < per_command && done < request.blocks {
                let n = (request.blocks - done).min(MAX_DSM_RANGE_BLOCKS);
                let range = DsmRange::new(request.lba + done, n as u32);
                self.bounce
                    .copy_in(ranges * DsmRange::SIZE, &range.to_bytes());
                ranges += 1;
                done += n;
            }
            let prps = prp::contiguous(
                self.bounce.phys(),
                ranges * DsmRange::SIZE,
                self.page()?,
                &mut self.prp_list,
            )?;
            let entry = request
                .entry(ns.info.nsid, 0, ranges as u32)
                .with_prps(prps.prp1, prps.prp2);
            self.execute(device, ns, entry)?;
        }
        Ok(())
    }

    /// Runs one command with a deadline: writes the entry, rings, waits for
    /// its completion. A write refused with a write-protect status marks
    /// the namespace write-protected.
    fn execute<R: RegisterAccess, D: DmaAllocator, C: Clock>(
        &mut self,
        device: &mut Device<'_, R, D, C>,
        ns: &Namespace,
        entry: SubmissionEntry,
    ) -> Result<CompletionEntry, Error> {
        let deadline = deadline_ns(device.clock.now_ns(), self.timeout_ms);
        let slot = self.pair.alloc_slot().ok_or(Error::QueueFull)?;
        self.pair.push(slot, &entry, deadline);
        self.pair.ring_submissions(device.regs);
        let result = wait_for_slot(
            &mut self.pair,
            device.regs,
            device.clock,
            slot,
            deadline,
            Stage::IoCommand,
            device.unknown,
        );
        match result {
            Ok(done) if entry.writes() => {
                device.shared.after_write_ok(ns.index);
                Ok(done)
            }
            Err(error) if entry.writes() => Err(device.shared.after_write_error(ns.index, error)),
            other => other,
        }
    }
}
