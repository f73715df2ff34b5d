//! The requests in flight on an `IoQueue`, and what the caller gets back.
//!
//! A request has one record, made when the queue is taken (no allocation
//! per request). A request of one command (the common case) uses the
//! record kept in its slot: the slot is busy exactly as long as the
//! request is in flight, so that record is always free when the slot is,
//! and nothing is claimed or given back for it. A request split into
//! several commands takes one of the records kept for split requests
//! (`depth - 1` of them: each split request in flight keeps at least one
//! slot busy, and the last one started took two), from their own free
//! list. The record holds the caller's tag, the lent buffer, how many of
//! its commands are still with the device and the first error among those
//! that completed. The request is reported once: when its last command
//! completes ([`Completion`] with the buffer), when one of its commands
//! times out (without the buffer, which the record keeps until every
//! command is back and then frees), or when a reset or shutdown ends it.

#![forbid(unsafe_code)]

use super::SlotData;
use crate::command::Status;
use crate::error::Error;
use crate::request::{IoOp, Shared};
use alloc::vec::Vec;
use core::fmt;
use dma::{DmaBuffer, Lent, Returned};

/// The outcome of a queued request.
#[derive(Debug)]
pub struct Completion {
    /// The caller's tag given at submission.
    pub tag: u64,
    /// What was requested.
    pub op: IoOp,
    /// Success, or why not (the first error among the request's commands).
    pub result: Result<(), Error>,
    /// The buffer of a read or write, handed back (holding the data read,
    /// for a successful read); `None` for requests without one, and for a
    /// request that timed out or was cut by shutdown, whose buffer the
    /// device may still own (the queue frees it once it is handed back).
    pub buffer: Option<DmaBuffer>,
}

/// A read or write refused before anything reached the device: why, and
/// the caller's buffer back.
#[derive(Debug)]
pub struct Rejected {
    /// Why the request was refused.
    pub error: Error,
    /// The buffer given at submission, untouched.
    pub buffer: DmaBuffer,
}

impl From<Rejected> for Error {
    /// The error alone (the buffer is dropped, so freed).
    fn from(rejected: Rejected) -> Error {
        rejected.error
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request refused: {}", self.error)
    }
}

impl core::error::Error for Rejected {}

/// The identifier of a request's record: its slot's index for a request
/// of one command, `depth` and above for a split request.
pub(super) type RecordId = u32;

/// One request's record.
#[derive(Debug)]
pub(super) struct Record {
    active: bool,
    tag: u64,
    op: IoOp,
    /// Whether the request changes the namespace's contents (`op.writes()`,
    /// found at the start rather than at each completion).
    writes: bool,
    /// Namespace index (for write-protect refusals).
    namespace: usize,
    /// Commands still with the device (while active; the last one's
    /// completion leaves it at 1).
    parts: usize,
    /// The first error of a completed command.
    result: Result<(), Error>,
    /// Already reported (timed out): the end is silent.
    reported: bool,
    buffer: Option<Lent<DmaBuffer>>,
}

/// What became of a request when one of its commands completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartDone {
    /// Other commands are still with the device (or the record was not in
    /// use).
    Pending,
    /// It ended without a report (it was reported as timed out).
    Silent,
    /// It ended and was reported.
    Reported,
}

impl Record {
    /// The record of a request just sent as `parts` commands.
    #[inline]
    pub(super) fn started(
        tag: u64,
        op: IoOp,
        namespace: usize,
        parts: usize,
        buffer: Option<Lent<DmaBuffer>>,
    ) -> Record {
        Record {
            active: true,
            tag,
            op,
            writes: op.writes(),
            namespace,
            parts,
            result: Ok(()),
            reported: false,
            buffer,
        }
    }

    /// One command of the request completed (see `Requests::part_done`).
    #[inline(always)]
    fn part_done(
        &mut self,
        outcome: impl FnOnce() -> Result<(), Status>,
        shared: &Shared,
        returned: &Returned,
        on_complete: &mut impl FnMut(Completion),
    ) -> PartDone {
        if !self.active {
            return PartDone::Pending;
        }
        if let Err(status) = outcome()
            && self.result.is_ok()
            && !self.reported
        {
            let error = Error::Device(status);
            self.result = Err(if self.writes {
                shared.after_write_error(self.namespace, error)
            } else {
                error
            });
        }
        if self.parts > 1 {
            self.parts -= 1;
            return PartDone::Pending;
        }
        // The last command: `parts` stays 1, read only while active.
        self.active = false;
        // Every command of the request is back: so is the buffer.
        let buffer = self.buffer.take().map(|lent| lent.reclaim(returned));
        if self.reported {
            // Reported as timed out already; the buffer is freed.
            drop(buffer);
            return PartDone::Silent;
        }
        if self.writes && self.result.is_ok() {
            shared.after_write_ok(self.namespace);
        }
        on_complete(Completion {
            tag: self.tag,
            op: self.op,
            result: self.result,
            buffer,
        });
        PartDone::Reported
    }

    /// A record no request uses.
    pub(super) const fn free() -> Record {
        Record {
            active: false,
            tag: 0,
            op: IoOp::Flush,
            writes: false,
            namespace: 0,
            parts: 0,
            result: Ok(()),
            reported: false,
            buffer: None,
        }
    }
}

/// The split requests' records, and the requests' bookkeeping over them
/// and the slots' own records (see the module documentation).
#[derive(Debug)]
pub(super) struct Requests {
    /// `depth - 1` records for split requests; the record `id` is
    /// `split[id - depth]`.
    split: Vec<Record>,
    /// The queue depth: the first split request's record.
    depth: usize,
    /// Free split request records, lowest on top.
    free_split: Vec<RecordId>,
}

impl Requests {
    /// The split records for a queue of `depth` slots, every one free.
    pub(super) fn new(depth: usize) -> Requests {
        let split = depth.saturating_sub(1);
        let mut requests = Requests {
            split: (0..split).map(|_| Record::free()).collect(),
            depth,
            free_split: Vec::with_capacity(split),
        };
        requests.free_all();
        requests
    }

    fn free_all(&mut self) {
        self.free_split.clear();
        let ids = self.depth..self.depth + self.split.len();
        self.free_split.extend(ids.rev().map(|i| i as RecordId));
    }

    /// The record of a request of one command in `slot`.
    #[inline]
    pub(super) fn single(slot: u16) -> RecordId {
        RecordId::from(slot)
    }

    /// A free record for a split request, if any.
    pub(super) fn claim_split(&mut self) -> Option<RecordId> {
        self.free_split.pop()
    }

    /// Gives back a split request's record claimed but not started.
    pub(super) fn release_split(&mut self, id: RecordId) {
        if self.split_record(id).is_some_and(|r| !r.active) && !self.free_split.contains(&id) {
            self.free_split.push(id);
        }
    }

    /// The split request record `id`, if it is one.
    #[inline]
    fn split_record(&mut self, id: RecordId) -> Option<&mut Record> {
        self.split.get_mut((id as usize).checked_sub(self.depth)?)
    }

    /// The record `id`: that of slot `id` of `slots` below the depth, a
    /// split request's from it.
    #[inline]
    fn record<'a>(&'a mut self, slots: &'a mut [SlotData], id: RecordId) -> Option<&'a mut Record> {
        if (id as usize) < self.depth {
            slots.get_mut(id as usize).map(|s| &mut s.record)
        } else {
            self.split_record(id)
        }
    }

    /// The request in record `id` (a slot's own record, in `slots`, or a
    /// split request's) was sent as `parts` commands.
    #[inline]
    #[allow(
        clippy::too_many_arguments,
        reason = "the record's fields, each given once"
    )]
    pub(super) fn start(
        &mut self,
        slots: &mut [SlotData],
        id: RecordId,
        tag: u64,
        op: IoOp,
        namespace: usize,
        parts: usize,
        buffer: Option<Lent<DmaBuffer>>,
    ) {
        if let Some(r) = self.record(slots, id) {
            *r = Record::started(tag, op, namespace, parts, buffer);
        }
    }

    /// The command in `slot` completed (`outcome` gives its status if not
    /// success, decoded only once the record is found): the slot's PRP
    /// list page is back; if it was the last command of its request and
    /// the request was not reported yet, reports its completion to
    /// `on_complete` and returns true (a reported request's buffer is
    /// freed here).
    #[inline]
    pub(super) fn part_done(
        &mut self,
        slots: &mut [SlotData],
        slot: u16,
        outcome: impl FnOnce() -> Result<(), Status>,
        shared: &Shared,
        returned: &Returned,
        on_complete: &mut impl FnMut(Completion),
    ) -> bool {
        let Some(s) = slots.get_mut(usize::from(slot)) else {
            return false;
        };
        s.prp_list.reclaim(returned);
        let id = s.request;
        if id == Self::single(slot) {
            // A request of one command: the record is the slot's.
            let done = s.record.part_done(outcome, shared, returned, on_complete);
            return done == PartDone::Reported;
        }
        self.split_part_done(id, outcome, shared, returned, on_complete)
    }

    /// [`Self::part_done`] for a command of the split request `id` (kept
    /// apart from the path of a request of one command).
    #[inline(never)]
    fn split_part_done(
        &mut self,
        id: RecordId,
        outcome: impl FnOnce() -> Result<(), Status>,
        shared: &Shared,
        returned: &Returned,
        on_complete: &mut impl FnMut(Completion),
    ) -> bool {
        let Some(r) = self.split.get_mut((id as usize).wrapping_sub(self.depth)) else {
            return false;
        };
        let done = r.part_done(outcome, shared, returned, on_complete);
        if done != PartDone::Pending {
            self.free_split.push(id);
        }
        done == PartDone::Reported
    }

    /// The command in `slot` passed its deadline: its request's report
    /// (`error`, no buffer) unless it was reported already.
    pub(super) fn timed_out(
        &mut self,
        slots: &mut [SlotData],
        slot: u16,
        error: Error,
    ) -> Option<Completion> {
        let id = slots.get(usize::from(slot))?.request;
        let r = self.record(slots, id)?;
        if !r.active || r.reported {
            return None;
        }
        r.reported = true;
        Some(Completion {
            tag: r.tag,
            op: r.op,
            result: Err(error),
            buffer: None,
        })
    }

    /// Ends every request: those not reported yet complete with `error`,
    /// with their buffer if the device handed everything back
    /// (`returned`: a finished reset), without it otherwise (leaked); the
    /// buffers of requests already reported are freed, or leaked without
    /// `returned`. Returns how many were reported.
    pub(super) fn drain(
        &mut self,
        slots: &mut [SlotData],
        returned: Option<&Returned>,
        error: Error,
        on_complete: &mut impl FnMut(Completion),
    ) -> usize {
        let mut n = 0;
        let records = slots.iter_mut().map(|s| &mut s.record);
        for r in records.chain(self.split.iter_mut()).filter(|r| r.active) {
            r.active = false;
            let lent = r.buffer.take();
            // Without `returned`, the `Lent` is dropped: leaked.
            let buffer = returned.and_then(|returned| lent.map(|l| l.reclaim(returned)));
            if r.reported {
                drop(buffer);
                continue;
            }
            on_complete(Completion {
                tag: r.tag,
                op: r.op,
                result: Err(error),
                buffer,
            });
            n += 1;
        }
        self.free_all();
        n
    }
}
