//! The block API: a synchronous device per namespace and a queue for depth.
//!
//! [`BlockDevice`] borrows the controller mutably and does one command at a
//! time on I/O queue 1. Caller buffers are used in place (zero-copy) when
//! `DmaAllocator::translate` maps every page and the start is dword
//! aligned; otherwise data goes through the queue's bounce buffer. Transfers
//! above the transfer limit (MDTS, PRP list capacity, bounce size, 65536
//! blocks) are split into several commands.
//!
//! [`IoQueue`] is one I/O queue pair owned by one user: no lock, no
//! allocation per I/O. Buffers in flight are owned by the queue: each slot
//! has its own DMA buffer (allocated when the queue is taken) and PRP list
//! page, lent to the device (`dma::Custody`) from submission until the
//! completion (or a finished controller reset) hands them back; memory a
//! shut-down controller never handed back is not reused. `submit_write` copies the caller's data into a free slot's buffer;
//! read data is handed to the `poll` callback as a slice of the slot's
//! buffer, valid only during the callback. So no caller memory is ever
//! exposed to the device after a call returns, and a timed-out command can
//! only scribble on memory the queue still owns.
//!
//! Validation happens before anything reaches the device: unknown
//! namespace, zero or non-multiple lengths, LBA ranges beyond the namespace
//! (including overflow), writes to a namespace not marked writable, to a
//! write-protected one ([`Error::WriteProtected`]) or to a zoned one
//! ([`Error::ZonedNamespace`]). A queued write the device refuses with a
//! write-protect status completes as [`Error::WriteProtected`] and marks
//! the namespace write-protected for every handle (see `namespace`). On a
//! zoned namespace whose reads may not cross zone boundaries, synchronous
//! reads are split at them and a queued read crossing one is refused
//! ([`Error::ZoneBoundary`]).

#![forbid(unsafe_code)]

use crate::command::SubmissionEntry;
use crate::controller::{Controller, Data, NamespaceInfo, Shared, check_range};
use crate::error::{Error, Stage};
use crate::hal::{Clock, DmaAllocator, DmaRegion, RegisterAccess};
use crate::identify::AsciiField;
use crate::prp;
use crate::queue::{Polled, QueuePair};
use crate::registers::{Csts, offset};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use dma::{Custody, ordering};

/// Who a namespace is: the controller's identity plus the namespace ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Controller model number.
    pub model: AsciiField<40>,
    /// Controller serial number.
    pub serial: AsciiField<20>,
    /// Controller firmware revision.
    pub firmware: AsciiField<8>,
    /// Namespace identifier.
    pub nsid: u32,
}

/// Synchronous block device over one namespace.
pub struct BlockDevice<'c, R: RegisterAccess, D: DmaAllocator, C: Clock> {
    ctrl: &'c mut Controller<R, D, C>,
    index: usize,
}

impl<'c, R: RegisterAccess, D: DmaAllocator, C: Clock> BlockDevice<'c, R, D, C> {
    pub(crate) fn new(ctrl: &'c mut Controller<R, D, C>, index: usize) -> Self {
        BlockDevice { ctrl, index }
    }

    /// Namespace details.
    pub fn info(&self) -> NamespaceInfo {
        self.ctrl.namespace_info(self.index)
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.info().block_size
    }

    /// Number of blocks.
    pub fn block_count(&self) -> u64 {
        self.info().block_count
    }

    /// Model, serial, firmware and namespace ID.
    pub fn identity(&self) -> Identity {
        let i = self.ctrl.info();
        Identity {
            model: i.model,
            serial: i.serial,
            firmware: i.firmware,
            nsid: self.info().nsid,
        }
    }

    /// Allows or forbids writes (including Write Zeroes and discard) to
    /// this namespace, through this handle and every `IoQueue`. The kernel
    /// decides ownership (a signature on disk); the default is read-only.
    /// A write-protected or zoned namespace stays read-only whatever this
    /// says.
    pub fn set_writable(&mut self, writable: bool) {
        self.ctrl.set_writable(self.index, writable);
    }

    /// Whether writes are allowed (owned, not write-protected, not zoned).
    pub fn is_writable(&self) -> bool {
        self.ctrl.is_writable(self.index)
    }

    /// Reads whole blocks starting at `lba` into `buf`.
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.ctrl.transfer(self.index, lba, Data::Read(buf))
    }

    /// Writes whole blocks starting at `lba`.
    pub fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        self.ctrl.transfer(self.index, lba, Data::Write(buf, false))
    }

    /// Writes with Force Unit Access (data on media when this returns).
    pub fn write_fua(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        self.ctrl.transfer(self.index, lba, Data::Write(buf, true))
    }

    /// Flushes the volatile write cache.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.ctrl.flush_namespace(self.index)
    }

    /// Zeroes `count` blocks from `lba` (Write Zeroes; `Unsupported` if the
    /// controller lacks it).
    pub fn write_zeroes(&mut self, lba: u64, count: u64) -> Result<(), Error> {
        self.ctrl.write_zeroes_namespace(self.index, lba, count)
    }

    /// Deallocates `count` blocks from `lba` (Dataset Management;
    /// `Unsupported` if the controller lacks it).
    pub fn discard(&mut self, lba: u64, count: u64) -> Result<(), Error> {
        self.ctrl.discard_namespace(self.index, lba, count)
    }
}

/// A namespace as an `IoQueue` sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NamespaceLimits {
    pub(crate) index: usize,
    pub(crate) info: NamespaceInfo,
}

/// Kind of a queued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Read into the slot buffer.
    Read,
    /// Write from the slot buffer.
    Write,
    /// Flush.
    Flush,
    /// Write Zeroes.
    WriteZeroes,
}

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
    namespaces: Vec<NamespaceLimits>,
    page_size: usize,
    buffer_size: usize,
    timeout_ms: u64,
    write_zeroes: bool,
    unknown: u64,
    timed_out: usize,
    batch_doorbells: bool,
    next_deadline_ns: u64,
}

impl<R: RegisterAccess, C: Clock> IoQueue<R, C> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        regs: R,
        clock: C,
        pair: QueuePair,
        buffers: Vec<(DmaRegion, DmaRegion)>,
        shared: Arc<Shared>,
        namespaces: Vec<NamespaceLimits>,
        page_size: usize,
        buffer_size: usize,
        timeout_ms: u64,
        write_zeroes: bool,
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
        IoQueue {
            regs,
            clock,
            pair,
            slots,
            shared,
            generation,
            namespaces,
            page_size,
            buffer_size,
            timeout_ms,
            write_zeroes,
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

    /// Checks shutdown and resets after a controller reset if nothing is
    /// in flight (otherwise `poll` must report the lost requests first).
    fn ready_to_submit(&mut self) -> Result<(), Error> {
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
        Ok(())
    }

    /// After a finished controller reset (a new generation): the device
    /// dropped every command, so it is done with every slot's memory.
    fn reclaim_after_reset(&mut self) {
        let returned = ordering::after_device_signal();
        for s in &mut self.slots {
            s.memory.reclaim(&returned);
        }
    }

    fn namespace(&self, nsid: u32) -> Result<NamespaceLimits, Error> {
        let ns = *self
            .namespaces
            .iter()
            .find(|n| n.info.nsid == nsid)
            .ok_or(Error::NoSuchNamespace)?;
        ns.info.usable()?;
        Ok(ns)
    }

    fn writable(&self, ns: &NamespaceLimits) -> Result<(), Error> {
        self.shared
            .writable
            .get(ns.index)
            .map_or(Err(Error::NotOwned), |gate| gate.check())
    }

    /// Remembers which namespace the request in `slot` is for.
    fn note_namespace(&mut self, slot: u16, ns: &NamespaceLimits) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.namespace = ns.index;
        }
    }

    fn submit(&mut self, slot: u16, cmd: SubmissionEntry, tag: u64, op: IoOp, bytes: usize) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.tag = tag;
            s.op = op;
            s.bytes = bytes;
        }
        let deadline = self
            .clock
            .now_ns()
            .saturating_add(self.timeout_ms.saturating_mul(1_000_000));
        self.pair.push(slot, &cmd, deadline);
        if !self.batch_doorbells {
            self.pair.ring_submissions(&self.regs);
        }
    }

    fn data_command(
        &mut self,
        slot: u16,
        bytes: usize,
        cmd: SubmissionEntry,
    ) -> Result<SubmissionEntry, Error> {
        let page = self.page_size;
        let s = self.slots.get_mut(slot as usize).ok_or(Error::QueueFull)?;
        // Memory a shut-down controller kept is never reused.
        let memory = s.memory.host_mut().ok_or(Error::Dma)?;
        let prps = prp::contiguous(memory.buffer.phys(), bytes, page, &mut memory.prp_list)?;
        // The device owns the slot's memory until the command completes.
        s.memory.lend();
        Ok(cmd.with_prps(prps.prp1, prps.prp2))
    }

    fn bytes_for(&self, ns: &NamespaceLimits, lba: u64, blocks: u32) -> Result<usize, Error> {
        let bytes = (blocks as usize)
            .checked_mul(ns.info.block_size)
            .ok_or(Error::InvalidLength)?;
        check_range(&ns.info, lba, bytes)?;
        if bytes > self.buffer_size {
            return Err(Error::InvalidLength);
        }
        Ok(bytes)
    }

    /// Queues a read of `blocks` blocks at `lba`; the data arrives in the
    /// `poll` callback. At most [`Self::buffer_size`] bytes.
    pub fn submit_read(&mut self, nsid: u32, lba: u64, blocks: u32, tag: u64) -> Result<(), Error> {
        self.ready_to_submit()?;
        let ns = self.namespace(nsid)?;
        let bytes = self.bytes_for(&ns, lba, blocks)?;
        if ns
            .info
            .zoned
            .and_then(|zone| zone.blocks_to_boundary(lba))
            .is_some_and(|left| u64::from(blocks) > left)
        {
            return Err(Error::ZoneBoundary);
        }
        let slot = self.pair.alloc_slot().ok_or(Error::QueueFull)?;
        match self.data_command(slot, bytes, SubmissionEntry::read(nsid, lba, blocks)) {
            Ok(cmd) => {
                self.submit(slot, cmd, tag, IoOp::Read, bytes);
                Ok(())
            }
            Err(e) => {
                self.pair.release_slot(slot);
                Err(e)
            }
        }
    }

    fn write_inner(
        &mut self,
        nsid: u32,
        lba: u64,
        data: &[u8],
        tag: u64,
        fua: bool,
    ) -> Result<(), Error> {
        self.ready_to_submit()?;
        let ns = self.namespace(nsid)?;
        check_range(&ns.info, lba, data.len())?;
        self.writable(&ns)?;
        if data.len() > self.buffer_size {
            return Err(Error::InvalidLength);
        }
        let blocks = (data.len() / ns.info.block_size) as u32;
        let slot = self.pair.alloc_slot().ok_or(Error::QueueFull)?;
        let copied = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.memory.host_mut())
            .is_some_and(|m| m.buffer.copy_in(0, data));
        let cmd = if copied {
            self.data_command(
                slot,
                data.len(),
                SubmissionEntry::write(nsid, lba, blocks, fua),
            )
        } else {
            Err(Error::InvalidLength)
        };
        match cmd {
            Ok(cmd) => {
                self.note_namespace(slot, &ns);
                self.submit(slot, cmd, tag, IoOp::Write, data.len());
                Ok(())
            }
            Err(e) => {
                self.pair.release_slot(slot);
                Err(e)
            }
        }
    }

    /// Queues a write of `data` (whole blocks, at most
    /// [`Self::buffer_size`] bytes) at `lba`; the data is copied into the
    /// slot's buffer before this returns.
    pub fn submit_write(
        &mut self,
        nsid: u32,
        lba: u64,
        data: &[u8],
        tag: u64,
    ) -> Result<(), Error> {
        self.write_inner(nsid, lba, data, tag, false)
    }

    /// As [`Self::submit_write`], with Force Unit Access.
    pub fn submit_write_fua(
        &mut self,
        nsid: u32,
        lba: u64,
        data: &[u8],
        tag: u64,
    ) -> Result<(), Error> {
        self.write_inner(nsid, lba, data, tag, true)
    }

    /// Queues a flush.
    pub fn submit_flush(&mut self, nsid: u32, tag: u64) -> Result<(), Error> {
        self.ready_to_submit()?;
        self.namespace(nsid)?;
        let slot = self.pair.alloc_slot().ok_or(Error::QueueFull)?;
        self.submit(slot, SubmissionEntry::flush(nsid), tag, IoOp::Flush, 0);
        Ok(())
    }

    /// Queues a Write Zeroes of `blocks` (1..=65536) blocks.
    pub fn submit_write_zeroes(
        &mut self,
        nsid: u32,
        lba: u64,
        blocks: u32,
        tag: u64,
    ) -> Result<(), Error> {
        self.ready_to_submit()?;
        let ns = self.namespace(nsid)?;
        if blocks == 0 || u64::from(blocks) > crate::controller::MAX_BLOCKS_PER_COMMAND {
            return Err(Error::InvalidLength);
        }
        crate::controller::check_blocks(&ns.info, lba, u64::from(blocks))?;
        self.writable(&ns)?;
        if !self.write_zeroes {
            return Err(Error::Unsupported);
        }
        let slot = self.pair.alloc_slot().ok_or(Error::QueueFull)?;
        self.note_namespace(slot, &ns);
        self.submit(
            slot,
            SubmissionEntry::write_zeroes(nsid, lba, blocks),
            tag,
            IoOp::WriteZeroes,
            0,
        );
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
                        if matches!(s.op, IoOp::Write | IoOp::WriteZeroes)
                            && let Some(gate) = self.shared.writable.get(s.namespace)
                        {
                            gate.after_write_ok();
                        }
                        Ok(())
                    } else if matches!(s.op, IoOp::Write | IoOp::WriteZeroes)
                        && let Some(gate) = self.shared.writable.get(s.namespace)
                    {
                        Err(gate.after_write_error(Error::Device(entry.status)))
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
                let csts = Csts(self.regs.read32(offset::CSTS));
                let err = if csts.is_all_ones() || csts.cfs() {
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
