//! The queued request path: one I/O queue pair owned by one user.
//!
//! [`IoQueue`] is one I/O queue pair: no lock, no allocation per I/O. The
//! data travels in the caller's own [`DmaBuffer`]s, never copied: a read or
//! write moves the buffer into the queue, which lends it to the device
//! (`dma::Lent`: dropping it leaks, it is never freed while the device may
//! use it) and hands it back in the request's [`Completion`]. Each slot
//! keeps its PRP list page (allocated when the queue is taken), lent to
//! the device (`dma::Custody`) for one command at a time (memory a
//! shut-down controller never handed back is not reused), and the record
//! of a request of one command (see `in_flight`).
//!
//! Every `submit_*` takes a [`Namespace`] handle (made once by
//! `Controller::namespace_handle`; the queue only checks it is one of its
//! own controller's, with no lookup). A read or write is checked once
//! against the handle (`Request::check`: the buffer's length a non-zero
//! multiple of the block size, the LBA range, write permission, zone
//! boundary); a refused one comes back with its buffer in [`Rejected`],
//! and nothing reaches the device. The transfer is split at the
//! controller's limit ([`IoQueue::max_transfer_bytes`], from MDTS and the
//! PRP list page) into commands, one slot each, whose PRPs point into
//! consecutive parts of the buffer (`prp::contiguous`); all of them are
//! prepared before the first is written into the ring (`QueuePair::push`),
//! and, unless doorbells are batched, one tail doorbell announces them
//! (`QueuePair::ring_submissions`). The request completes once, when its
//! last command does, with the first error of its commands.
//!
//! [`IoQueue::poll`] (in `poll`; the request records in `in_flight`) is
//! the completion walk: it takes entries
//! (`QueuePair::take`) until the ring is empty, rings the head doorbell
//! once, and reports expired requests: once, as a timeout without their
//! buffer, which the queue keeps until the late completion or a finished
//! controller reset hands it back, and then frees. After a reset, every
//! request in flight completes as [`Error::Reset`] with its buffer (the
//! device dropped it); after shutdown, as [`Error::ShutDown`] without it
//! (a buffer the controller never gave back is leaked, never freed).
//!
//! A queued write the device refuses with a write-protect status completes
//! as [`Error::WriteProtected`] and marks the namespace write-protected
//! for every handle (see `namespace`). A queued read crossing a zone
//! boundary of a zoned namespace that forbids it is refused
//! ([`Error::ZoneBoundary`]).

#![forbid(unsafe_code)]

mod in_flight;
mod poll;

pub use in_flight::{Completion, Rejected};

use crate::command::{DsmRange, MAX_BLOCKS_PER_COMMAND};
use crate::error::Error;
use crate::hal::{Clock, DmaRegion, RegisterAccess};
use crate::namespace::{ControllerId, Namespace};
use crate::prp::{self, PageSize, Prps};
use crate::queue::QueuePair;
use crate::request::{Epoch, IoOp, Limits, Operation, Request, Shared, deadline_after, timeout_ns};
use alloc::sync::Arc;
use alloc::vec::Vec;
use dma::{Custody, DmaBuffer, Lent, Returned, ordering};
use in_flight::{Record, RecordId, Requests};

/// One slot: its PRP list page, the command it carries and, for a request
/// of one command, the request's record.
#[derive(Debug)]
struct SlotData {
    /// With the CPU between commands, lent to the device during one.
    prp_list: Custody<DmaRegion>,
    /// The record of the request the slot's command is part of (see
    /// `Requests`).
    request: RecordId,
    /// The command's data pointers, between preparing and pushing it.
    prps: Prps,
    /// The record of a request of one command in this slot (see
    /// `Requests`).
    record: Record,
}

/// One I/O queue pair for queued I/O (see the module documentation).
pub struct IoQueue<R: RegisterAccess, C: Clock> {
    regs: R,
    clock: C,
    pair: QueuePair,
    slots: Vec<SlotData>,
    requests: Requests,
    /// Slots taken for the request being submitted (capacity: depth).
    claimed: Vec<u16>,
    shared: Arc<Shared>,
    /// The generation the queue runs under (never with the shutdown flag).
    generation: Epoch,
    /// The controller whose namespace handles the queue takes.
    controller: ControllerId,
    page_size: PageSize,
    max_transfer_bytes: usize,
    /// Deadline of every command after its submission.
    timeout_ns: u64,
    write_zeroes: bool,
    deallocate: bool,
    unknown: u64,
    timed_out: usize,
    batch_doorbells: bool,
    next_deadline_ns: u64,
}

/// How a taken queue is set up (see `Controller::take_io_queue`).
pub(crate) struct IoQueueSetup {
    /// Memory page size of the controller.
    pub(crate) page_size: PageSize,
    /// Largest transfer of one command (MDTS, PRP list capacity).
    pub(crate) max_transfer_bytes: usize,
    /// Deadline of every command.
    pub(crate) timeout_ms: u64,
    /// Write Zeroes usable.
    pub(crate) write_zeroes: bool,
    /// Dataset Management deallocate usable.
    pub(crate) deallocate: bool,
}

impl<R: RegisterAccess, C: Clock> IoQueue<R, C> {
    /// A queue over `pair` with one PRP list page per slot.
    pub(crate) fn new(
        regs: R,
        clock: C,
        pair: QueuePair,
        prp_lists: Vec<DmaRegion>,
        shared: Arc<Shared>,
        setup: IoQueueSetup,
    ) -> Self {
        let generation = shared.epoch().generation();
        let slots = prp_lists
            .into_iter()
            .map(|prp_list| SlotData {
                prp_list: Custody::new(prp_list),
                request: 0,
                prps: Prps { prp1: 0, prp2: 0 },
                record: Record::free(),
            })
            .collect();
        let depth = pair.depth();
        let controller = shared.id;
        IoQueue {
            regs,
            clock,
            pair,
            slots,
            requests: Requests::new(depth),
            claimed: Vec::with_capacity(depth),
            shared,
            generation,
            controller,
            page_size: setup.page_size,
            max_transfer_bytes: setup.max_transfer_bytes,
            timeout_ns: timeout_ns(setup.timeout_ms),
            write_zeroes: setup.write_zeroes,
            deallocate: setup.deallocate,
            unknown: 0,
            timed_out: 0,
            batch_doorbells: false,
            next_deadline_ns: 0,
        }
    }

    /// With batching on, `submit_*` only queue the request in the ring; the
    /// device is told (one doorbell write for all of them) at the next
    /// [`Self::poll`] or [`Self::ring`]. Off by default: every submission
    /// rings the doorbell at once. In a virtual machine each doorbell is a
    /// trapped MMIO write, so batching saves time at depth above one.
    pub fn set_doorbell_batching(&mut self, on: bool) {
        self.batch_doorbells = on;
        if !on {
            self.ring();
        }
    }

    /// Tells the device about every request queued since the last doorbell.
    pub fn ring(&mut self) {
        if self.shared.epoch().generation() == self.generation {
            self.pair.ring_submissions(&self.regs);
        }
    }

    /// Maximum commands in flight (a request longer than
    /// [`Self::max_transfer_bytes`] takes several).
    pub fn depth(&self) -> usize {
        self.pair.depth()
    }

    /// Commands in flight (including timed-out ones); 0 once every request
    /// was reported and every buffer is back.
    pub fn in_flight(&self) -> usize {
        self.pair.in_flight()
    }

    /// Commands that can be submitted now.
    pub fn free_slots(&self) -> usize {
        self.pair.free_slots()
    }

    /// Largest transfer of one command, in bytes; a longer request is split
    /// into several commands (one slot each) and completes once.
    pub fn max_transfer_bytes(&self) -> usize {
        self.max_transfer_bytes
    }

    /// The NVMe queue identifier.
    pub fn queue_id(&self) -> u16 {
        self.pair.qid()
    }

    /// Completions seen with an unknown command identifier (ignored).
    pub fn unknown_completions(&self) -> u64 {
        self.unknown
    }

    /// Whether a request timed out; the kernel should call
    /// `Controller::recover`, after which the queue starts afresh.
    pub fn needs_recovery(&self) -> bool {
        self.timed_out > 0
    }

    /// Whether this queue was handed out by the controller owning `shared`.
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Splits the queue into its ring pair (in a state matching the device)
    /// and its PRP list pages.
    pub(crate) fn into_parts(mut self) -> (QueuePair, Vec<DmaRegion>) {
        let generation = self.shared.epoch().generation();
        if generation != self.generation {
            // The device recreated the queue empty after a reset.
            self.start_afresh(generation);
        }
        // Memory still lent (to a controller that shut down without
        // handing it back) is left to the device.
        let lists = self
            .slots
            .into_iter()
            .filter_map(|s| s.prp_list.into_host())
            .collect();
        (self.pair, lists)
    }

    /// After a finished controller reset (a new generation), with every
    /// request in flight already reported: the device dropped every
    /// command, so it is done with all memory; the buffers of timed-out
    /// requests are freed.
    fn start_afresh(&mut self, generation: Epoch) {
        let returned = ordering::after_device_signal();
        self.requests
            .drain(&mut self.slots, Some(&returned), Error::Reset, &mut |_| {});
        self.pair.reset();
        self.reclaim_prp_lists(&returned);
        self.generation = generation;
        self.timed_out = 0;
        self.next_deadline_ns = 0;
    }

    /// Takes back every slot's PRP list page.
    fn reclaim_prp_lists(&mut self, returned: &Returned) {
        for s in &mut self.slots {
            s.prp_list.reclaim(returned);
        }
    }

    /// Checks shutdown, starts afresh after a controller reset if nothing
    /// is in flight that was not reported (otherwise `poll` must report
    /// the lost requests first), and checks that `ns` is a handle of this
    /// queue's controller.
    #[inline]
    fn ready(&mut self, ns: &Namespace) -> Result<(), Error> {
        let epoch = self.shared.epoch();
        if epoch != self.generation {
            if epoch.shut_down() {
                return Err(Error::ShutDown);
            }
            if self.pair.in_flight() > self.timed_out {
                return Err(Error::Reset);
            }
            self.start_afresh(epoch);
        }
        if ns.belongs_to(self.controller) {
            Ok(())
        } else {
            Err(Error::ForeignNamespace)
        }
    }

    /// Queues a read of `buffer.len()` bytes (whole blocks) at `lba` of
    /// `ns` into `buffer`, which comes back in the request's
    /// [`Completion`] (or at once in [`Rejected`]).
    pub fn submit_read(
        &mut self,
        ns: &Namespace,
        lba: u64,
        buffer: DmaBuffer,
        tag: u64,
    ) -> Result<(), Rejected> {
        self.submit_transfer(ns, Operation::Read, lba, buffer, tag)
    }

    /// As [`Self::submit_read`], never inlined: the async path's reads
    /// call this copy, in which the operation is known (its writes share
    /// another, where it is not).
    #[inline(never)]
    pub(crate) fn submit_read_outlined(
        &mut self,
        ns: &Namespace,
        lba: u64,
        buffer: DmaBuffer,
        tag: u64,
    ) -> Result<(), Rejected> {
        self.submit_transfer(ns, Operation::Read, lba, buffer, tag)
    }

    /// Queues a write of `buffer` (whole blocks) at `lba` of `ns`; the
    /// buffer comes back in the request's [`Completion`] (or at once in
    /// [`Rejected`]).
    pub fn submit_write(
        &mut self,
        ns: &Namespace,
        lba: u64,
        buffer: DmaBuffer,
        tag: u64,
    ) -> Result<(), Rejected> {
        self.submit_transfer(ns, Operation::Write { fua: false }, lba, buffer, tag)
    }

    /// As [`Self::submit_write`], with Force Unit Access.
    pub fn submit_write_fua(
        &mut self,
        ns: &Namespace,
        lba: u64,
        buffer: DmaBuffer,
        tag: u64,
    ) -> Result<(), Rejected> {
        self.submit_transfer(ns, Operation::Write { fua: true }, lba, buffer, tag)
    }

    /// Queues a flush of `ns`.
    pub fn submit_flush(&mut self, ns: &Namespace, tag: u64) -> Result<(), Error> {
        self.submit_command(ns, &Request::blocks(Operation::Flush, 0, 0), tag)
    }

    /// Queues a Write Zeroes of `blocks` (1..=65536) blocks at `lba` of
    /// `ns`.
    pub fn submit_write_zeroes(
        &mut self,
        ns: &Namespace,
        lba: u64,
        blocks: u32,
        tag: u64,
    ) -> Result<(), Error> {
        let request = Request::blocks(Operation::WriteZeroes, lba, u64::from(blocks));
        self.submit_command(ns, &request, tag)
    }

    /// Queues a discard (Dataset Management, deallocate) of `blocks`
    /// blocks at `lba` of `ns`: one range, built in the slot's PRP list
    /// page. [`Error::Unsupported`] if the controller lacks it.
    pub fn submit_discard(
        &mut self,
        ns: &Namespace,
        lba: u64,
        blocks: u32,
        tag: u64,
    ) -> Result<(), Error> {
        let request = Request::blocks(Operation::Deallocate, lba, u64::from(blocks));
        self.submit_command(ns, &request, tag)
    }

    /// A read or write: checked, split into commands at the transfer limit,
    /// the buffer lent to the device; refused with the buffer back.
    #[inline]
    fn submit_transfer(
        &mut self,
        ns: &Namespace,
        op: Operation,
        lba: u64,
        buffer: DmaBuffer,
        tag: u64,
    ) -> Result<(), Rejected> {
        let request = Request::bytes(op, ns, lba, buffer.len());
        let plan = match self.ready(ns).and_then(|()| self.plan(ns, &request)) {
            Ok(plan) => plan,
            Err(error) => return Err(Rejected { error, buffer }),
        };
        if plan.parts == 1 {
            return self.submit_one(ns, &request, plan.bytes, buffer, tag);
        }
        let id = match self.claim(plan.parts, |part, list, page_size| {
            let offset = part * plan.part_bytes;
            let len = plan.part_bytes.min(plan.bytes - offset);
            prp::contiguous(buffer.phys().offset(offset as u64), len, page_size, list)
        }) {
            Ok(id) => id,
            Err(error) => return Err(Rejected { error, buffer }),
        };
        let part_blocks = (plan.part_bytes / ns.info.block_size) as u64;
        let deadline = deadline_after(self.clock.now_ns(), self.timeout_ns);
        for (part, &slot) in self.claimed.iter().enumerate() {
            let Some(s) = self.slots.get_mut(usize::from(slot)) else {
                continue;
            };
            let first = part as u64 * part_blocks;
            // At most 65536 blocks per command (`plan`).
            let blocks = part_blocks.min(request.blocks - first) as u32;
            let entry = request
                .entry(ns.info.nsid, request.lba + first, blocks)
                .with_prps(s.prps.prp1, s.prps.prp2);
            s.prp_list.lend();
            self.pair.push(slot, &entry, deadline);
        }
        let op = if matches!(op, Operation::Read) {
            IoOp::Read
        } else {
            IoOp::Write
        };
        self.requests.start(
            &mut self.slots,
            id,
            tag,
            op,
            ns.index,
            plan.parts,
            Some(Lent::new(buffer)),
        );
        if !self.batch_doorbells {
            self.pair.ring_submissions(&self.regs);
        }
        Ok(())
    }

    /// A read or write in one command (the common case, kept short): a
    /// slot (whose record is the request's), its PRPs, the entry, the
    /// doorbell.
    #[inline]
    fn submit_one(
        &mut self,
        ns: &Namespace,
        request: &Request,
        bytes: usize,
        buffer: DmaBuffer,
        tag: u64,
    ) -> Result<(), Rejected> {
        let prepared = match self.pair.alloc_slot() {
            None => Err(Error::QueueFull),
            Some(slot) => match self
                .slots
                .get_mut(usize::from(slot))
                .and_then(|s| s.prp_list.host_mut())
            {
                // Memory a shut-down controller kept is never reused.
                None => Err(Error::Dma),
                Some(list) => prp::contiguous(buffer.phys(), bytes, self.page_size, list)
                    .map(|prps| (slot, prps)),
            }
            .inspect_err(|_| self.pair.release_slot(slot)),
        };
        let (slot, prps) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return Err(Rejected { error, buffer }),
        };
        let op = if matches!(request.op, Operation::Read) {
            IoOp::Read
        } else {
            IoOp::Write
        };
        // Lent before anything else: were it not kept, it would leak, never
        // be freed under the device.
        let lent = Lent::new(buffer);
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            // One command: the request's record is its slot's.
            s.request = Requests::single(slot);
            s.record = Record::started(tag, op, ns.index, 1, Some(lent));
            s.prp_list.lend();
        }
        // One command: at most 65536 blocks (`plan`).
        let entry = request
            .entry(ns.info.nsid, request.lba, request.blocks as u32)
            .with_prps(prps.prp1, prps.prp2);
        let deadline = deadline_after(self.clock.now_ns(), self.timeout_ns);
        self.pair.push(slot, &entry, deadline);
        if !self.batch_doorbells {
            self.pair.ring_submissions(&self.regs);
        }
        Ok(())
    }

    /// The one check of a read or write, and how it is split.
    #[inline]
    fn plan(&self, ns: &Namespace, request: &Request) -> Result<Plan, Error> {
        let limits = Limits {
            max_blocks: None,
            max_bytes: None,
            refuse_zone_crossing: true,
            write_zeroes: self.write_zeroes,
            deallocate: self.deallocate,
        };
        let bytes = request.check(ns, &self.shared, &limits)?;
        if bytes <= self.max_transfer_bytes && request.blocks <= MAX_BLOCKS_PER_COMMAND {
            // One command: the common case, without a division.
            return Ok(Plan {
                bytes,
                part_bytes: bytes,
                parts: 1,
            });
        }
        let block_size = ns.info.block_size;
        let part_blocks =
            (self.max_transfer_bytes / block_size).min(MAX_BLOCKS_PER_COMMAND as usize);
        if part_blocks == 0 {
            return Err(Error::Unsupported);
        }
        let part_bytes = part_blocks * block_size;
        let parts = bytes.div_ceil(part_bytes);
        if parts > self.pair.depth() {
            return Err(Error::RequestTooLarge);
        }
        Ok(Plan {
            bytes,
            part_bytes,
            parts,
        })
    }

    /// Takes `parts` slots (into `self.claimed`) and a request record (the
    /// slot's own for one command, a split request's otherwise), preparing
    /// each slot's PRPs with `prps(part, list, page_size)`; on any failure
    /// gives everything back and nothing was written to the ring.
    #[inline]
    fn claim(
        &mut self,
        parts: usize,
        mut prps: impl FnMut(usize, &mut DmaRegion, PageSize) -> Result<Prps, Error>,
    ) -> Result<RecordId, Error> {
        let split = if parts > 1 {
            if self.pair.free_slots() < parts {
                return Err(Error::QueueFull);
            }
            Some(self.requests.claim_split().ok_or(Error::QueueFull)?)
        } else {
            None
        };
        self.claimed.clear();
        let mut result = Err(Error::QueueFull);
        for part in 0..parts {
            let Some(slot) = self.pair.alloc_slot() else {
                result = Err(Error::QueueFull);
                break;
            };
            self.claimed.push(slot);
            let id = split.unwrap_or(Requests::single(slot));
            let prepared = match self.slots.get_mut(usize::from(slot)) {
                // Memory a shut-down controller kept is never reused.
                Some(s) => match s.prp_list.host_mut() {
                    Some(list) => prps(part, list, self.page_size).map(|p| {
                        s.prps = p;
                        s.request = id;
                    }),
                    None => Err(Error::Dma),
                },
                None => Err(Error::QueueFull),
            };
            result = prepared.map(|()| id);
            if result.is_err() {
                break;
            }
        }
        if result.is_err() {
            for &slot in &self.claimed {
                self.pair.release_slot(slot);
            }
            self.claimed.clear();
            if let Some(id) = split {
                self.requests.release_split(id);
            }
        }
        result
    }

    /// A command without data from the caller (flush, Write Zeroes,
    /// discard): checked, one slot, rung unless doorbells are batched.
    fn submit_command(&mut self, ns: &Namespace, request: &Request, tag: u64) -> Result<(), Error> {
        self.ready(ns)?;
        let limits = Limits {
            max_blocks: match request.op {
                Operation::WriteZeroes => Some(MAX_BLOCKS_PER_COMMAND),
                _ => None,
            },
            max_bytes: None,
            refuse_zone_crossing: true,
            write_zeroes: self.write_zeroes,
            deallocate: self.deallocate,
        };
        request.check(ns, &self.shared, &limits)?;
        let discard = matches!(request.op, Operation::Deallocate);
        // One range of at most 2^32 - 1 blocks (`blocks` is a u32).
        let range = DsmRange::new(request.lba, request.blocks as u32);
        let id = self.claim(1, |_, list, _| {
            if !discard {
                return Ok(Prps { prp1: 0, prp2: 0 });
            }
            if !list.copy_in(0, &range.to_bytes()) {
                return Err(Error::Dma);
            }
            Ok(Prps {
                prp1: list.phys().as_u64(),
                prp2: 0,
            })
        })?;
        let (entry, op) = match request.op {
            Operation::Deallocate => (request.entry(ns.info.nsid, 0, 1), IoOp::Discard),
            Operation::WriteZeroes => (
                // At most 65536 blocks (checked above).
                request.entry(ns.info.nsid, request.lba, request.blocks as u32),
                IoOp::WriteZeroes,
            ),
            _ => (request.entry(ns.info.nsid, 0, 0), IoOp::Flush),
        };
        let deadline = deadline_after(self.clock.now_ns(), self.timeout_ns);
        if let Some(&slot) = self.claimed.first()
            && let Some(s) = self.slots.get_mut(usize::from(slot))
        {
            let entry = if discard {
                s.prp_list.lend();
                entry.with_prps(s.prps.prp1, s.prps.prp2)
            } else {
                entry
            };
            self.pair.push(slot, &entry, deadline);
        }
        self.requests
            .start(&mut self.slots, id, tag, op, ns.index, 1, None);
        if !self.batch_doorbells {
            self.pair.ring_submissions(&self.regs);
        }
        Ok(())
    }
}

/// How a read or write is sent: `bytes` in `parts` commands of
/// `part_bytes` (the last one shorter).
#[derive(Clone, Copy, Debug)]
struct Plan {
    bytes: usize,
    part_bytes: usize,
    parts: usize,
}
