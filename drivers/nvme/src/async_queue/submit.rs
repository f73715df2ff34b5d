//! What a request asks for and where it stands, and its submission to
//! the raw queue: the parts of an `AsyncQueue` request that touch the
//! device.

#![forbid(unsafe_code)]

use super::book::Book;
use crate::error::Error;
use crate::hal::{Clock, DmaBuffer, RegisterAccess};
use crate::io_queue::{IoQueue, Rejected};
use crate::namespace::Namespace;
use core::task::{Context, Poll};

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Read { lba: u64 },
    Write { lba: u64, fua: bool },
    Flush,
    WriteZeroes { lba: u64, blocks: u32 },
    Discard { lba: u64, blocks: u32 },
}

/// Submits `op` under `tag` to `raw`, with the request's buffer (if it
/// carries one). On refusal the error comes back and the buffer is put
/// back in `buffer`; nothing reached the device.
#[inline(always)]
pub(super) fn submit<R: RegisterAccess, C: Clock>(
    raw: &mut IoQueue<R, C>,
    ns: &Namespace,
    op: Op,
    buffer: &mut Option<DmaBuffer>,
    tag: u16,
) -> Result<(), Error> {
    let t = u64::from(tag);
    // Reads and writes tested one by one, the rest out of line: a match of
    // all five would be a jump table, an indirect jump on every request
    // (under QEMU's TCG, a lookup of the next translated block each time).
    let (lba, write, fua) = match op {
        Op::Read { lba } => (lba, false, false),
        Op::Write { lba, fua } => (lba, true, fua),
        _ => return submit_command(raw, ns, op, t),
    };
    let Some(b) = buffer.take() else {
        return Err(Error::InvalidLength);
    };
    // Reads go through a copy of the raw path of their own, in which the
    // operation is a constant; writes share the other.
    let sent = match (write, fua) {
        (false, _) => raw.submit_read_outlined(ns, lba, b, t),
        (true, false) => raw.submit_write(ns, lba, b, t),
        (true, true) => raw.submit_write_fua(ns, lba, b, t),
    };
    sent.map_err(|Rejected { error, buffer: b }| {
        *buffer = Some(b);
        error
    })
}

/// Submits a request without a buffer (flush, Write Zeroes, discard),
/// placed away from the read and write path, which is by far the busier.
#[cold]
#[inline(never)]
fn submit_command<R: RegisterAccess, C: Clock>(
    raw: &mut IoQueue<R, C>,
    ns: &Namespace,
    op: Op,
    tag: u64,
) -> Result<(), Error> {
    match op {
        Op::Flush => raw.submit_flush(ns, tag),
        Op::WriteZeroes { lba, blocks } => raw.submit_write_zeroes(ns, lba, blocks, tag),
        Op::Discard { lba, blocks } => raw.submit_discard(ns, lba, blocks, tag),
        // Reads and writes carry a buffer: `submit` sends them.
        Op::Read { .. } | Op::Write { .. } => Err(Error::InvalidLength),
    }
}

/// Where a request stands (small and `Copy`: what the request carries,
/// its operation and buffer, stays in place while it moves on).
#[derive(Clone, Copy)]
pub(super) enum Phase {
    /// Not yet polled.
    Start,
    /// Waiting for a tag.
    Waiting { ticket: u64 },
    /// Submitted under `tag`.
    InFlight { tag: u16 },
    /// Its output was given.
    Finished,
}

/// What follows the submission of `tag` (by `ticket`, if it waited):
/// the request in flight, waiting again for slots, or failed.
#[inline]
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of a request and of the queue's state, borrowed apart"
)]
pub(super) fn submitted<R: RegisterAccess, C: Clock, T>(
    raw: &IoQueue<R, C>,
    book: &mut Book,
    sent: Result<(), Error>,
    tag: u16,
    ticket: Option<u64>,
    buffer: &mut Option<DmaBuffer>,
    phase: &mut Phase,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Error>> {
    match sent {
        Ok(()) => {
            // The completion cannot be in before the next walk of the
            // completion queue: the waker is kept now, and that is all.
            book.sent(tag, ticket, cx.waker());
            *phase = Phase::InFlight { tag };
            Poll::Pending
        }
        // Not enough free slots for a request of several commands: it
        // waits, blocking the line, for the tags completions free.
        Err(Error::QueueFull) if raw.in_flight() > 0 => {
            *phase = Phase::Waiting {
                ticket: book.refused(ticket, tag, cx.waker()),
            };
            Poll::Pending
        }
        Err(error) => {
            // The buffer is freed.
            *buffer = None;
            book.release(tag);
            if let Some(t) = ticket {
                book.leave(t);
            }
            *phase = Phase::Finished;
            Poll::Ready(Err(error))
        }
    }
}
