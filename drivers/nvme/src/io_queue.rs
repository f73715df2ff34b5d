//! The queued request path: one I/O queue pair owned by one user.
//!
//! [`IoQueue`] is one I/O queue pair: no lock, no allocation per I/O.
//! Buffers in flight are owned by the queue: each slot has its own DMA
//! buffer (allocated when the queue is taken) and PRP list page, lent to
//! the device (`dma::Custody`) from submission until the completion (or a
//! finished controller reset) hands them back; memory a shut-down
//! controller never handed back is not reused.
//! `submit_write` copies the caller's data into a free slot's buffer; read
//! data is handed to the `poll` callback as a slice of the slot's buffer,
//! valid only during the callback. So no caller memory is ever exposed to
//! the device after a call returns, and a timed-out command can only
//! scribble on memory the queue still owns.
//!
//! Every `submit_*` takes a [`Namespace`] handle (made once by
//! `Controller::namespace_handle`; the queue only checks it is one of its
//! own controller's, with no lookup) and goes through `IoQueue::submit`:
//! the request is checked once against the handle (`Request::check`), a
//! slot and its PRPs are
//! prepared, the entry is written into the ring with its deadline
//! (`QueuePair::push`) and, unless doorbells are batched, the tail
//! doorbell is rung (`QueuePair::ring_submissions`). [`IoQueue::poll`] is
//! the completion walk: it takes entries (`QueuePair::take`) until the
//! ring is empty, rings the head doorbell once, and reports expired
//! requests. A queued write the device refuses with a write-protect status
//! completes as [`Error::WriteProtected`] and marks the namespace
//! write-protected for every handle (see `namespace`). A queued read
//! crossing a zone boundary of a zoned namespace that forbids it is refused
//! ([`Error::ZoneBoundary`]).

#![forbid(unsafe_code)]

use crate::command::MAX_BLOCKS_PER_COMMAND;
use crate::error::{Error, Stage};
use crate::hal::{Clock, DmaRegion, RegisterAccess};
use crate::namespace::{ControllerId, Namespace};
use crate::prp;
use crate::queue::{Polled, QueuePair};
use crate::request::{IoOp, Limits, Operation, Request, Shared, controller_fatal, deadline_ns};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use dma::{Custody, ordering};

/// The outcome of a queued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's tag given at submission.
    pub tag: u64,
    /// What was requested.
    pub op: IoOp,
    /// Success, or why not.
    pub result: Result<(), Error>,
}

/// A slot's DMA memory: the data buffer and the PRP list page.
#[derive(Debug)]
struct SlotMemory {
    buffer: DmaRegion,
    prp_list: DmaRegion,
}

#[derive(Debug)]
struct SlotData {
    /// With the CPU between requests, lent to the device during one.
    memory: Custody<SlotMemory>,
    tag: u64,
    op: IoOp,
    bytes: usize,
    /// Namespace index of the request (for write-protect refusals).
    namespace: usize,
}

/// One I/O queue pair for queued I/O (see the module documentation).
pub struct IoQueue<R: RegisterAccess, C: Clock> {
    regs: R,
    clock: C,
    pair: QueuePair,
    slots: Vec<SlotData>,
    shared: Arc<Shared>,
    generation: u32,
    /// The controller whose namespace handles the queue takes.
    controller: ControllerId,
    page_size: usize,
    buffer_size: usize,
    timeout_ms: u64,
    write_zeroes: bool,
    unknown: u64,
    timed_out: usize,
    batch_doorbells: bool,
    next_deadline_ns: u64,
}

/// How a taken queue is set up (see `Controller::take_io_queue`).
pub(crate) struct IoQueueSetup {
    /// Memory page size of the controller.
    pub(crate) page_size: usize,
    /// Bytes of each slot's buffer.
    pub(crate) buffer_size: usize,
    /// Deadline of every command.
    pub(crate) timeout_ms: u64,
    /// Write Zeroes usable.
    pub(crate) write_zeroes: bool,
}

impl<R: RegisterAccess, C: Clock> IoQueue<R, C> {
    /// A queue over `pair` with one (buffer, PRP list) per slot.
    pub(crate) fn new(
        regs: R,
        clock: C,
        pair: QueuePair,
        buffers: Vec<(DmaRegion, DmaRegion)>,
        shared: Arc<Shared>,
        setup: IoQueueSetup,
    ) -> Self {
        let generation = shared.generation.load(Ordering::Acquire);
        let slots = buffers
            .into_iter()
            .map(|(buffer, prp_list)| SlotData {
                memory: Custody::new(SlotMemory { buffer, prp_list }),
                tag: 0,
                op: IoOp::Read,
                bytes: 0,
                namespace: 0,
            })
            .collect();
        let controller = shared.id;
        IoQueue {
            regs,
            clock,
            pair,
            slots,
            shared,
            generation,
            controller,
            page_size: setup.page_size,
            buffer_size: setup.buffer_size,
            timeout_ms: setup.timeout_ms,
            write_zeroes: setup.write_zeroes,
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
        if self.shared.generation.load(Ordering::Acquire) == self.generation {
            self.pair.ring_submissions(&self.regs);
        }
    }

    /// Maximum requests in flight.
    pub fn depth(&self) -> usize {
        self.pair.depth()
    }

    /// Requests in flight (including timed-out ones).
    pub fn in_flight(&self) -> usize {
        self.pair.in_flight()
    }

    /// Largest transfer of one request, in bytes.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
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
    /// and its slot buffers.
    pub(crate) fn into_parts(mut self) -> (QueuePair, Vec<(DmaRegion, DmaRegion)>) {
        if self.shared.generation.load(Ordering::Acquire) != self.generation {
            // The device recreated the queue empty after a reset.
            self.pair.reset();
            self.reclaim_after_reset();
        }
        // Memory still lent (to a controller that shut down without
        // handing it back) is left to the device.
        let buffers = self
            .slots
            .into_iter()
            .filter_map(|s| s.memory.into_host())
            .map(|m| (m.buffer, m.prp_list))
            .collect();
        (self.pair, buffers)
    }

    /// After a finished controller reset (a new generation): the device
    /// dropped every command, so it is done with every slot's memory.
    fn reclaim_after_reset(&mut self) {
        let returned = ordering::after_device_signal();
        for s in &mut self.slots {
            s.memory.reclaim(&returned);
        }
    }

    /// Checks shutdown, starts afresh after a controller reset if nothing
    /// is in flight (otherwise `poll` must report the lost requests first),
    /// and checks that `ns` is a handle of this queue's controller.
    #[inline]
    fn ready(&mut self, ns: &Namespace) -> Result<(), Error> {
        if self.shared.shut_down.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            // Requests already reported (timed out) need no further report.
            if self.pair.in_flight() > self.timed_out {
                return Err(Error::Reset);
            }
            self.pair.reset();
            self.reclaim_after_reset();
            self.generation = generation;
            self.timed_out = 0;
        }
        if ns.belongs_to(self.controller) {
            Ok(())
        } else {
            Err(Error::ForeignNamespace)
        }
    }

    /// Queues a read of `blocks` blocks at `lba` of `ns`; the data arrives
    /// in the `poll` callback. At most [`Self::buffer_size`] bytes.
    pub fn submit_read(
        &mut self,
        ns: &Namespace,
        lba: u64,
        blocks: u32,
        tag: u64,
    ) -> Result<(), Error> {
        let request = Request::blocks(Operation::Read, lba, u64::from(blocks));
        self.submit(ns, &request, &[], tag)
    }

    /// Queues a write of `data` (whole blocks, at most
    /// [`Self::buffer_size`] bytes) at `lba` of `ns`; the data is copied
    /// into the slot's buffer before this returns.
    pub fn submit_write(
        &mut self,
        ns: &Namespace,
        lba: u64,
        data: &[u8],
        tag: u64,
    ) -> Result<(), Error> {
        let request = Request::bytes(Operation::Write { fua: false }, ns, lba, data.len());
        self.submit(ns, &request, data, tag)
    }

    /// As [`Self::submit_write`], with Force Unit Access.
    pub fn submit_write_fua(
        &mut self,
        ns: &Namespace,
        lba: u64,
        data: &[u8],
        tag: u64,
    ) -> Result<(), Error> {
        let request = Request::bytes(Operation::Write { fua: true }, ns, lba, data.len());
        self.submit(ns, &request, data, tag)
    }

    /// Queues a flush of `ns`.
    pub fn submit_flush(&mut self, ns: &Namespace, tag: u64) -> Result<(), Error> {
        self.submit(ns, &Request::blocks(Operation::Flush, 0, 0), &[], tag)
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
        self.submit(ns, &request, &[], tag)
    }

    /// Checks `request`, writes its entry into a free slot (with `data`
    /// copied into the slot's buffer for a write) and rings unless
    /// doorbells are batched.
    fn submit(
        &mut self,
        ns: &Namespace,
        request: &Request,
        data: &[u8],
        tag: u64,
    ) -> Result<(), Error> {
        self.ready(ns)?;
        let limits = Limits {
            max_blocks: match request.op {
                Operation::WriteZeroes => Some(MAX_BLOCKS_PER_COMMAND),
                _ => None,
            },
            max_bytes: match request.op {
                Operation::Read | Operation::Write { .. } => Some(self.buffer_size),
                _ => None,
            },
            refuse_zone_crossing: true,
            write_zeroes: self.write_zeroes,
            deallocate: false,
        };
        let bytes = request.check(ns, &self.shared, &limits)?;
        let slot = self.pair.alloc_slot().ok_or(Error::QueueFull)?;
        let page_size = self.page_size;
        let Some(s) = self.slots.get_mut(usize::from(slot)) else {
            self.pair.release_slot(slot);
            return Err(Error::QueueFull);
        };
        // The request fits one command: its blocks fit the buffer (or the
        // Write Zeroes limit), both far below 2^32.
        let mut entry = request.entry(ns.info.nsid, request.lba, request.blocks as u32);
        let op = match request.op {
            Operation::Read => IoOp::Read,
            Operation::Write { .. } => IoOp::Write,
            Operation::WriteZeroes | Operation::Deallocate => IoOp::WriteZeroes,
            Operation::Flush => IoOp::Flush,
        };
        if matches!(op, IoOp::Read | IoOp::Write) {
            // Memory a shut-down controller kept is never reused.
            let prps = match s.memory.host_mut() {
                None => Err(Error::Dma),
                Some(m) => {
                    if op == IoOp::Write && !m.buffer.copy_in(0, data) {
                        Err(Error::InvalidLength)
                    } else {
                        prp::contiguous(m.buffer.phys(), bytes, page_size, &mut m.prp_list)
                    }
                }
            };
            match prps {
                Ok(prps) => {
                    entry = entry.with_prps(prps.prp1, prps.prp2);
                    // The device owns the slot's memory until the command
                    // completes.
                    s.memory.lend();
                }
                Err(e) => {
                    self.pair.release_slot(slot);
                    return Err(e);
                }
            }
        }
        s.tag = tag;
        s.op = op;
        s.bytes = if op == IoOp::Read { bytes } else { 0 };
        s.namespace = ns.index;
        let deadline = deadline_ns(self.clock.now_ns(), self.timeout_ms);
        self.pair.push(slot, &entry, deadline);
        if !self.batch_doorbells {
            self.pair.ring_submissions(&self.regs);
        }
        Ok(())
    }

    /// Reports finished requests to `on_complete` (with the read data for
    /// successful reads, an empty slice otherwise) and returns how many.
    /// Requests past their deadline are reported once as
    /// `Timeout { stage: IoCommand }` (or `ControllerFatal`); their slots
    /// stay busy until they complete late or the controller is recovered.
    /// After a controller reset or shutdown, every request in flight is
    /// reported as `Reset` / `ShutDown`.
    pub fn poll(&mut self, mut on_complete: impl FnMut(Completion, &[u8])) -> usize {
        let shut_down = self.shared.shut_down.load(Ordering::Acquire);
        let generation = self.shared.generation.load(Ordering::Acquire);
        if shut_down || generation != self.generation {
            let err = if shut_down {
                Error::ShutDown
            } else {
                Error::Reset
            };
            let mut n = 0;
            for slot in self.pair.unreported_slots() {
                if let Some(s) = self.slots.get(slot as usize) {
                    on_complete(
                        Completion {
                            tag: s.tag,
                            op: s.op,
                            result: Err(err),
                        },
                        &[],
                    );
                    n += 1;
                }
            }
            self.pair.reset();
            if !shut_down {
                self.reclaim_after_reset();
            }
            self.generation = generation;
            self.timed_out = 0;
            self.next_deadline_ns = 0;
            return n;
        }
        if self.pair.has_unrung_submissions() {
            self.pair.ring_submissions(&self.regs);
        }
        let mut n = 0;
        loop {
            match self.pair.take() {
                Polled::Empty => break,
                Polled::Unknown(entry) => {
                    self.unknown += 1;
                    log::warn!(
                        "nvme: queue {}: unknown cid {:#x} ignored",
                        self.pair.qid(),
                        entry.cid
                    );
                }
                Polled::Done {
                    slot,
                    was_timed_out,
                    entry,
                    returned,
                } => {
                    let Some(s) = self.slots.get_mut(slot as usize) else {
                        continue;
                    };
                    s.memory.reclaim(&returned);
                    if was_timed_out {
                        // Already reported as a timeout; the slot is free again.
                        self.timed_out = self.timed_out.saturating_sub(1);
                        continue;
                    }
                    let result = if entry.status.is_success() {
                        if matches!(s.op, IoOp::Write | IoOp::WriteZeroes) {
                            self.shared.after_write_ok(s.namespace);
                        }
                        Ok(())
                    } else if matches!(s.op, IoOp::Write | IoOp::WriteZeroes) {
                        Err(self
                            .shared
                            .after_write_error(s.namespace, Error::Device(entry.status)))
                    } else {
                        Err(Error::Device(entry.status))
                    };
                    let data = if result.is_ok() && s.op == IoOp::Read {
                        s.memory
                            .host()
                            .and_then(|m| m.buffer.as_slice().get(..s.bytes))
                            .unwrap_or(&[])
                    } else {
                        &[]
                    };
                    on_complete(
                        Completion {
                            tag: s.tag,
                            op: s.op,
                            result,
                        },
                        data,
                    );
                    n += 1;
                }
            }
        }
        // One head doorbell for every entry this call consumed.
        self.pair.ring_completions(&self.regs);
        if n == 0 && self.pair.in_flight() > self.timed_out {
            let now = self.clock.now_ns();
            if now <= self.next_deadline_ns {
                // Nothing can have expired yet: skip the scan of every slot.
                return 0;
            }
            while let Some(slot) = self.pair.take_expired(now) {
                self.timed_out += 1;
                let err = if controller_fatal(&self.regs) {
                    Error::ControllerFatal
                } else {
                    Error::Timeout {
                        stage: Stage::IoCommand,
                    }
                };
                if let Some(s) = self.slots.get(slot as usize) {
                    log::warn!(
                        "nvme: queue {}: request {:#x} failed: {err}",
                        self.pair.qid(),
                        s.tag
                    );
                    on_complete(
                        Completion {
                            tag: s.tag,
                            op: s.op,
                            result: Err(err),
                        },
                        &[],
                    );
                    n += 1;
                }
            }
            self.next_deadline_ns = self.pair.earliest_deadline().unwrap_or(0);
        }
        n
    }
}
