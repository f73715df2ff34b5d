//! The requests in flight on an `IoQueue`, and what the caller gets back.
//!
//! A request has one record in a table made when the queue is taken (no
//! allocation per request). A request of one command (the common case)
//! uses the record of its slot: the slot is busy exactly as long as the
//! request is in flight, so that record is always free when the slot is,
//! and nothing is claimed or given back for it. A request split into
//! several commands takes one of the records kept for split requests
//! (another `depth - 1`: each split request in flight keeps at least one
//! slot busy, and the last one started took two), from their own free
//! list. The record holds the caller's tag, the lent buffer, how many of
//! its commands are still with the device and the first error among those
//! that completed. The request is reported once: when its last command
//! completes ([`Completion`] with the buffer), when one of its commands
//! times out (without the buffer, which the record keeps until every
//! command is back and then frees), or when a reset or shutdown ends it.

#![forbid(unsafe_code)]

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
struct Record {
    active: bool,
    tag: u64,
    op: IoOp,
    /// Whether the request changes the namespace's contents (`op.writes()`,
    /// found at the start rather than at each completion).
    writes: bool,
    /// Namespace index (for write-protect refusals).
    namespace: usize,
    /// Commands still with the device.
    parts: usize,
    /// The first error of a completed command.
    result: Result<(), Error>,
    /// Already reported (timed out): the end is silent.
    reported: bool,
    buffer: Option<Lent<DmaBuffer>>,
}

/// The table of request records (see the module documentation).
#[derive(Debug)]
pub(super) struct Requests {
    /// `depth` records of the slots' single-command requests, then
    /// `depth - 1` for split requests.
    records: Vec<Record>,
    /// The queue depth: the first split request's record.
    depth: usize,
    /// Free split request records, lowest on top.
    free_split: Vec<RecordId>,
}

impl Requests {
    /// A table for a queue of `depth` slots, every record free.
    pub(super) fn new(depth: usize) -> Requests {
        let split = depth.saturating_sub(1);
        let records = (0..depth + split)
            .map(|_| Record {
                active: false,
                tag: 0,
                op: IoOp::Flush,
                writes: false,
                namespace: 0,
                parts: 0,
                result: Ok(()),
                reported: false,
                buffer: None,
            })
            .collect();
        let mut requests = Requests {
            records,
            depth,
            free_split: Vec::with_capacity(split),
        };
        requests.free_all();
        requests
    }

    fn free_all(&mut self) {
        self.free_split.clear();
        self.free_split.extend(
            (self.depth..self.records.len())
                .rev()
                .map(|i| i as RecordId),
        );
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
        if (id as usize) >= self.depth
            && self.records.get(id as usize).is_some_and(|r| !r.active)
            && !self.free_split.contains(&id)
        {
            self.free_split.push(id);
        }
    }

    /// The request in record `id` was sent as `parts` commands.
    #[inline]
    pub(super) fn start(
        &mut self,
        id: RecordId,
        tag: u64,
        op: IoOp,
        namespace: usize,
        parts: usize,
        buffer: Option<Lent<DmaBuffer>>,
    ) {
        if let Some(r) = self.records.get_mut(id as usize) {
            *r = Record {
                active: true,
                tag,
                op,
                writes: op.writes(),
                namespace,
                parts,
                result: Ok(()),
                reported: false,
                buffer,
            };
        }
    }

    /// One command of request `id` completed (`outcome` gives its status
    /// if not success, decoded only once the record is found): if it was
    /// the
    /// last one and the request was not reported yet, reports its
    /// completion to `on_complete` and returns true (a reported request's
    /// buffer is freed here).
    #[inline]
    pub(super) fn part_done(
        &mut self,
        id: RecordId,
        outcome: impl FnOnce() -> Result<(), Status>,
        shared: &Shared,
        returned: &Returned,
        on_complete: &mut impl FnMut(Completion),
    ) -> bool {
        let Some(r) = self.records.get_mut(id as usize).filter(|r| r.active) else {
            return false;
        };
        if let Err(status) = outcome()
            && r.result.is_ok()
            && !r.reported
        {
            let error = Error::Device(status);
            r.result = Err(if r.writes {
                shared.after_write_error(r.namespace, error)
            } else {
                error
            });
        }
        if r.parts > 1 {
            r.parts -= 1;
            return false;
        }
        r.parts = 0;
        r.active = false;
        if id as usize >= self.depth {
            self.free_split.push(id);
        }
        // Every command of the request is back: so is the buffer.
        let buffer = r.buffer.take().map(|lent| lent.reclaim(returned));
        if r.reported {
            // Reported as timed out already; the buffer is freed.
            drop(buffer);
            return false;
        }
        if r.writes && r.result.is_ok() {
            shared.after_write_ok(r.namespace);
        }
        on_complete(Completion {
            tag: r.tag,
            op: r.op,
            result: r.result,
            buffer,
        });
        true
    }

    /// A command of request `id` passed its deadline: the request's report
    /// (`error`, no buffer) unless it was reported already.
    pub(super) fn timed_out(&mut self, id: RecordId, error: Error) -> Option<Completion> {
        let r = self
            .records
            .get_mut(id as usize)
            .filter(|r| r.active && !r.reported)?;
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
        returned: Option<&Returned>,
        error: Error,
        on_complete: &mut impl FnMut(Completion),
    ) -> usize {
        let mut n = 0;
        for r in self.records.iter_mut().filter(|r| r.active) {
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
