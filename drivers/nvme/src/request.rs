//! One I/O request: the check against its namespace, its submission entry,
//! its deadline, and the wait for its completion.
//!
//! Both request paths (the synchronous one in `sync_queue` and the queued
//! one in `io_queue`) describe what the caller asked for as a [`Request`],
//! check it once with [`Request::check`] against the [`Namespace`] handle
//! found when the path was set up, build the command with
//! [`Request::entry`], and compute its deadline with [`deadline_after`]
//! (the timeout converted to nanoseconds once, by [`timeout_ns`]). The
//! order of the checks is part of the API (tests rely on it): length,
//! range, write permission, the path's size limit, zone boundary, support.
//!
//! [`Shared`] is the state the controller shares with the queues it handed
//! out: the reset generation, the shutdown flag and who may write to each
//! namespace.

#![forbid(unsafe_code)]

use crate::command::{CompletionEntry, SubmissionEntry};
use crate::error::{Error, Stage};
use crate::hal::{Clock, RegisterAccess};
use crate::namespace::{ControllerId, Namespace, WriteGate};
use crate::queue::{Polled, QueuePair};
use crate::registers::{Csts, offset};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// Nanoseconds per millisecond.
const NS_PER_MS: u64 = 1_000_000;
/// While a synchronous command is awaited, CSTS is read for fatal status
/// at most this often (nanoseconds): an MMIO read, which a virtual machine
/// traps (under QEMU's TCG it takes the lock the device model needs).
const FATAL_CHECK_INTERVAL_NS: u64 = 1_000_000;

/// The deadline `timeout_ms` after `now_ns` (saturating), for a path that
/// converts its timeout at each command.
pub(crate) const fn deadline_ns(now_ns: u64, timeout_ms: u64) -> u64 {
    deadline_after(now_ns, timeout_ns(timeout_ms))
}

/// A timeout in nanoseconds (saturating), for a path that computes it once
/// and then uses [`deadline_after`] per command.
pub(crate) const fn timeout_ns(timeout_ms: u64) -> u64 {
    timeout_ms.saturating_mul(NS_PER_MS)
}

/// The deadline `timeout_ns` after `now_ns` (saturating): the one place
/// where a command's deadline is computed.
#[inline]
pub(crate) const fn deadline_after(now_ns: u64, timeout_ns: u64) -> u64 {
    now_ns.saturating_add(timeout_ns)
}

/// Kind of a queued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Read into the caller's buffer.
    Read,
    /// Write from the caller's buffer.
    Write,
    /// Flush.
    Flush,
    /// Write Zeroes.
    WriteZeroes,
    /// Discard (Dataset Management, deallocate).
    Discard,
}

impl IoOp {
    /// Whether the request changes the namespace's contents.
    pub(crate) const fn writes(self) -> bool {
        matches!(self, IoOp::Write | IoOp::WriteZeroes | IoOp::Discard)
    }
}

/// What a request does to the namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Read (§6.9).
    Read,
    /// Write (§6.15), with Force Unit Access or not.
    Write {
        /// Force Unit Access.
        fua: bool,
    },
    /// Flush (§6.8).
    Flush,
    /// Write Zeroes (§6.16).
    WriteZeroes,
    /// Dataset Management, deallocate (§6.7).
    Deallocate,
}

impl Operation {
    /// Whether the operation changes the namespace's contents.
    pub(crate) const fn writes(self) -> bool {
        matches!(
            self,
            Operation::Write { .. } | Operation::WriteZeroes | Operation::Deallocate
        )
    }
}

/// What a path allows beyond the namespace's own bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Most blocks one request may name (checked with the length), if the
    /// path sends it as one command without splitting it.
    pub(crate) max_blocks: Option<u64>,
    /// Most bytes one request may carry (checked last), if the path has a
    /// fixed buffer.
    pub(crate) max_bytes: Option<usize>,
    /// Whether a read crossing a zone boundary is refused (a path that
    /// cannot split it) rather than split.
    pub(crate) refuse_zone_crossing: bool,
    /// Write Zeroes usable on this controller.
    pub(crate) write_zeroes: bool,
    /// Dataset Management deallocate usable on this controller.
    pub(crate) deallocate: bool,
}

/// One request as the caller gave it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    /// What to do.
    pub(crate) op: Operation,
    /// First logical block.
    pub(crate) lba: u64,
    /// Logical blocks (0 for a flush).
    pub(crate) blocks: u64,
    /// The length of a transfer in bytes (`None`: a command naming
    /// blocks only, whose length [`Self::check`] computes).
    len: Option<usize>,
    /// False for a transfer whose length is zero or not whole blocks
    /// (refused by [`Self::check`]).
    whole_blocks: bool,
}

impl Request {
    /// A transfer of `len` bytes at `lba`, which must be whole blocks of
    /// `ns` ([`Self::check`] says so). A block size is a power of two
    /// (2^LBADS, see `identify`), so the division is the handle's shift;
    /// with an unusable block size no length is whole blocks.
    #[inline]
    pub(crate) fn bytes(op: Operation, ns: &Namespace, lba: u64, len: usize) -> Request {
        Request {
            op,
            lba,
            blocks: (len >> ns.block_shift) as u64,
            len: Some(len),
            whole_blocks: len != 0 && len & ns.block_mask == 0,
        }
    }

    /// `blocks` blocks at `lba`.
    pub(crate) const fn blocks(op: Operation, lba: u64, blocks: u64) -> Request {
        Request {
            op,
            lba,
            blocks,
            len: None,
            whole_blocks: true,
        }
    }

    /// The one check of a request before anything reaches the device (see
    /// the module documentation for the order); returns its length in
    /// bytes.
    #[inline]
    pub(crate) fn check(
        &self,
        ns: &Namespace,
        shared: &Shared,
        limits: &Limits,
    ) -> Result<usize, Error> {
        if matches!(self.op, Operation::Flush) {
            return Ok(0);
        }
        // A transfer of whole blocks has at least one.
        if !self.whole_blocks
            || (self.len.is_none() && self.blocks == 0)
            || limits.max_blocks.is_some_and(|max| self.blocks > max)
        {
            return Err(Error::InvalidLength);
        }
        match self.lba.checked_add(self.blocks) {
            Some(end) if end <= ns.info.block_count => {}
            _ => return Err(Error::OutOfRange),
        }
        if self.op.writes() {
            shared.check_write(ns.index)?;
        }
        let bytes = match self.len {
            // Whole blocks (checked above): the length is blocks * size.
            Some(len) => len,
            None => self
                .blocks
                .checked_mul(ns.info.block_size as u64)
                .and_then(|bytes| usize::try_from(bytes).ok())
                .ok_or(Error::InvalidLength)?,
        };
        if limits.max_bytes.is_some_and(|max| bytes > max) {
            return Err(Error::InvalidLength);
        }
        if limits.refuse_zone_crossing
            && matches!(self.op, Operation::Read)
            && let Some(left) = ns
                .info
                .zoned
                .and_then(|zone| zone.blocks_to_boundary(self.lba))
            && self.blocks > left
        {
            return Err(Error::ZoneBoundary);
        }
        let supported = match self.op {
            Operation::WriteZeroes => limits.write_zeroes,
            Operation::Deallocate => limits.deallocate,
            _ => true,
        };
        if !supported {
            return Err(Error::Unsupported);
        }
        Ok(bytes)
    }

    /// The submission entry for `blocks` blocks of this request from block
    /// `lba` (a part of it when the path splits), without data pointers.
    /// A deallocate names its range count instead (see
    /// [`SubmissionEntry::deallocate`]).
    #[inline]
    pub(crate) const fn entry(&self, nsid: u32, lba: u64, blocks: u32) -> SubmissionEntry {
        match self.op {
            Operation::Read => SubmissionEntry::read(nsid, lba, blocks),
            Operation::Write { fua } => SubmissionEntry::write(nsid, lba, blocks, fua),
            Operation::Flush => SubmissionEntry::flush(nsid),
            Operation::WriteZeroes => SubmissionEntry::write_zeroes(nsid, lba, blocks),
            Operation::Deallocate => SubmissionEntry::deallocate(nsid, blocks),
        }
    }
}

/// Bit of [`Epoch`] set once shutdown started; the bits below count
/// controller resets.
const SHUT_DOWN: u32 = 1 << 31;

/// The reset generation and the shutdown flag in one word, so that a queue
/// learns with one load and one comparison that neither changed since it
/// last looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch(u32);

impl Epoch {
    /// Whether shutdown started.
    #[inline]
    pub(crate) const fn shut_down(self) -> bool {
        self.0 & SHUT_DOWN != 0
    }

    /// The generation alone (the shutdown flag clear): what a queue keeps
    /// as the one it runs under.
    #[inline]
    pub(crate) const fn generation(self) -> Epoch {
        Epoch(self.0 & !SHUT_DOWN)
    }
}

/// State shared between the controller and the I/O queues it handed out.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Which controller this is (the identity in its namespace handles).
    pub(crate) id: ControllerId,
    /// The generation, bumped after every controller reset, and the
    /// shutdown flag, set once shutdown started (an [`Epoch`]).
    epoch: AtomicU32,
    /// Per namespace (index into the controller's list): who may write.
    pub(crate) writable: Vec<WriteGate>,
}

impl Shared {
    /// Generation 0, running, with these write gates and a fresh
    /// controller identity.
    pub(crate) fn new(writable: Vec<WriteGate>) -> Shared {
        Shared {
            id: ControllerId::fresh(),
            epoch: AtomicU32::new(0),
            writable,
        }
    }

    /// The generation and shutdown flag now.
    #[inline]
    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Shutdown started: every queue fails from now on.
    pub(crate) fn start_shutdown(&self) {
        self.epoch.fetch_or(SHUT_DOWN, Ordering::Release);
    }

    /// A controller reset finished: a new generation (the shutdown flag
    /// kept).
    pub(crate) fn next_generation(&self) {
        self.epoch.update(Ordering::AcqRel, Ordering::Acquire, |e| {
            (e.wrapping_add(1) & !SHUT_DOWN) | (e & SHUT_DOWN)
        });
    }

    /// Whether a write to namespace `index` may be sent, and why not.
    pub(crate) fn check_write(&self, index: usize) -> Result<(), Error> {
        self.writable
            .get(index)
            .map_or(Err(Error::NotOwned), WriteGate::check)
    }

    /// A write to namespace `index` completed successfully: write faults
    /// are no longer in a row (see `namespace`).
    pub(crate) fn after_write_ok(&self, index: usize) {
        if let Some(gate) = self.writable.get(index) {
            gate.after_write_ok();
        }
    }

    /// A write to namespace `index` failed with `error`: notes a
    /// write-protect refusal (see `namespace`) and returns the error to
    /// report.
    pub(crate) fn after_write_error(&self, index: usize, error: Error) -> Error {
        self.writable
            .get(index)
            .map_or(error, |gate| gate.after_write_error(error))
    }
}

/// Waits until the command in `slot` on `pair` completes or `deadline_ns`
/// passes: the synchronous completion walk (admin commands and the
/// synchronous I/O path). Completions with identifiers not in flight are
/// counted in `unknown` and ignored; CSTS is checked for fatal status every
/// [`FATAL_CHECK_INTERVAL_NS`] while it waits. The wait spins without PAUSE,
/// as the executor's idle step does (see `kernel::executor`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn wait_for_slot<R: RegisterAccess, C: Clock>(
    pair: &mut QueuePair,
    regs: &R,
    clock: &C,
    slot: u16,
    deadline_ns: u64,
    stage: Stage,
    unknown: &mut u64,
) -> Result<CompletionEntry, Error> {
    let mut next_fatal_check = clock.now_ns().saturating_add(FATAL_CHECK_INTERVAL_NS);
    loop {
        match pair.poll(regs) {
            Polled::Done {
                slot: s, dwords, ..
            } if s == slot => {
                let entry = CompletionEntry::from_dwords(dwords);
                return if entry.status.is_success() {
                    Ok(entry)
                } else {
                    Err(Error::Device(entry.status))
                };
            }
            Polled::Done { dwords, .. } => {
                log::warn!(
                    "nvme: unexpected completion for cid {:#x} on queue {}",
                    CompletionEntry::cid_of(dwords[CompletionEntry::STATUS_DWORD]),
                    pair.qid()
                );
            }
            Polled::Unknown(entry) => {
                *unknown += 1;
                log::warn!(
                    "nvme: completion with unknown cid {:#x} (sq {}) on queue {} ignored",
                    entry.cid,
                    entry.sq_id,
                    pair.qid()
                );
            }
            Polled::Empty => {
                let now = clock.now_ns();
                if now >= next_fatal_check {
                    if controller_fatal(regs) {
                        return Err(Error::ControllerFatal);
                    }
                    next_fatal_check = now.saturating_add(FATAL_CHECK_INTERVAL_NS);
                }
                if now > deadline_ns {
                    return Err(Error::Timeout { stage });
                }
            }
        }
    }
}

/// Whether CSTS says the controller is gone (all ones) or fatal (CFS).
pub(crate) fn controller_fatal<R: RegisterAccess>(regs: &R) -> bool {
    let csts = Csts(regs.read32(offset::CSTS));
    csts.is_all_ones() || csts.cfs()
}
