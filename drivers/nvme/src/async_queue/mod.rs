//! The `async` request path: futures over one I/O queue pair, shared by
//! many tasks on one core.
//!
//! [`AsyncQueue`] wraps an [`IoQueue`] in a cheap, clonable handle; every
//! clone submits to the same queue pair. Each request is a future
//! ([`Transfer`] for reads and writes, which gives the buffer back;
//! [`Command`] for flush, Write Zeroes and discard), which borrows the
//! handle and the namespace it was made from (nothing is copied or
//! counted per request). Nothing happens until it is polled: it then
//! takes one of the queue's tags (one per slot, all made when the handle
//! is made, so no request allocates), submits, and waits. [`AsyncQueue::poll_completions`], called by the executor's idle
//! step, walks the completion queue, hands each result to its tag and
//! wakes the future waiting on it.
//!
//! A request beyond the queue's depth waits for a tag instead of failing
//! with `QueueFull` (first come, first served: a freed tag goes straight to
//! the oldest waiter, so requests reach the device in the order they were
//! first polled). One the raw queue refuses for want of slots (a request
//! over the transfer limit takes several) waits again at the head of the
//! line until a completion frees a tag. A request that could never fit
//! fails with `RequestTooLarge`.
//!
//! Buffers move into the queue with the request and come back with the
//! completion. A future dropped while its request is in flight gives up
//! only its claim: the tag is marked abandoned, the queue keeps the buffer
//! until the completion (or the reset) hands it back, and frees it then.
//! A request past its deadline completes as `Timeout` (or
//! `ControllerFatal`) at once, but its tag stays out of use while the
//! device may still own the slot, until the raw queue no longer
//! [`needs_recovery`](IoQueue::needs_recovery); an `AsyncController`
//! recovers the controller at that point without the application's help.
//!
//! Wakers are woken after the queue's state is released, so a waker may
//! do anything (even drop another request of this queue). Single-threaded:
//! the handle is `!Send` (an `Rc`), as are its futures.

#![forbid(unsafe_code)]

mod book;
mod submit;

use crate::error::Error;
use crate::hal::{Clock, DmaBuffer, RegisterAccess};
use crate::io_queue::IoQueue;
use crate::namespace::Namespace;
use alloc::rc::Rc;
use book::{Book, Outcome, Stage};
use core::cell::{RefCell, RefMut};
use core::fmt;
use core::future::Future;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::task::{Context, Poll};
use submit::{Op, Phase, submit, submitted};

struct Inner<R: RegisterAccess, C: Clock> {
    raw: IoQueue<R, C>,
    book: Book,
}

/// A clonable `async` handle over one [`IoQueue`] (see the module
/// documentation).
pub struct AsyncQueue<R: RegisterAccess, C: Clock> {
    inner: Rc<RefCell<Inner<R, C>>>,
}

impl<R: RegisterAccess, C: Clock> Clone for AsyncQueue<R, C> {
    fn clone(&self) -> Self {
        AsyncQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<R: RegisterAccess, C: Clock> fmt::Debug for AsyncQueue<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.try_borrow();
        let mut d = f.debug_struct("AsyncQueue");
        if let Ok(i) = inner {
            d.field("queue_id", &i.raw.queue_id())
                .field("depth", &i.book.tags.len())
                .field("in_flight", &i.raw.in_flight())
                .field("waiting", &i.book.waiting());
        }
        d.finish_non_exhaustive()
    }
}

impl<R: RegisterAccess, C: Clock> AsyncQueue<R, C> {
    /// Wraps `queue`, with one tag per slot (the only allocation: requests
    /// allocate nothing). Doorbell batching stays as set on `queue`: with
    /// it on, requests submitted in one round of the executor reach the
    /// device together at the next [`Self::poll_completions`].
    pub fn new(queue: IoQueue<R, C>) -> AsyncQueue<R, C> {
        // Tags travel as `u16` (the raw queue's slots are CIDs, below 2^16).
        let depth = queue.depth().min(usize::from(u16::MAX));
        AsyncQueue {
            inner: Rc::new(RefCell::new(Inner {
                raw: queue,
                book: Book::new(depth),
            })),
        }
    }

    /// Reads `buf.len()` bytes (whole blocks) at `lba` of `ns` into `buf`,
    /// which comes back filled.
    #[inline]
    pub fn read<'a>(&'a self, ns: &'a Namespace, lba: u64, buf: DmaBuffer) -> Transfer<'a, R, C> {
        Transfer(self.request(ns, Op::Read { lba }, Some(buf)))
    }

    /// Writes `buf` (whole blocks) at `lba` of `ns`; the buffer comes back.
    pub fn write<'a>(&'a self, ns: &'a Namespace, lba: u64, buf: DmaBuffer) -> Transfer<'a, R, C> {
        Transfer(self.request(ns, Op::Write { lba, fua: false }, Some(buf)))
    }

    /// As [`Self::write`], with Force Unit Access.
    pub fn write_fua<'a>(
        &'a self,
        ns: &'a Namespace,
        lba: u64,
        buf: DmaBuffer,
    ) -> Transfer<'a, R, C> {
        Transfer(self.request(ns, Op::Write { lba, fua: true }, Some(buf)))
    }

    /// Flushes the volatile write cache of `ns`.
    pub fn flush<'a>(&'a self, ns: &'a Namespace) -> Command<'a, R, C> {
        Command(self.request(ns, Op::Flush, None))
    }

    /// Zeroes `blocks` blocks at `lba` of `ns` (Write Zeroes).
    pub fn write_zeroes<'a>(
        &'a self,
        ns: &'a Namespace,
        lba: u64,
        blocks: u32,
    ) -> Command<'a, R, C> {
        Command(self.request(ns, Op::WriteZeroes { lba, blocks }, None))
    }

    /// Deallocates `blocks` blocks at `lba` of `ns` (Dataset Management).
    pub fn discard<'a>(&'a self, ns: &'a Namespace, lba: u64, blocks: u32) -> Command<'a, R, C> {
        Command(self.request(ns, Op::Discard { lba, blocks }, None))
    }

    #[inline]
    fn request<'a>(
        &'a self,
        ns: &'a Namespace,
        op: Op,
        buffer: Option<DmaBuffer>,
    ) -> Request<'a, R, C> {
        Request {
            inner: &self.inner,
            ns,
            op,
            buffer: ManuallyDrop::new(buffer),
            phase: Phase::Start,
        }
    }

    /// Moves finished completions to the futures waiting for them and
    /// wakes them (the executor's idle step); returns how many completions
    /// were handled. Requests past their deadline complete here as
    /// `Timeout`; after a controller reset or shutdown the requests in
    /// flight complete as `Reset` / `ShutDown`.
    #[inline]
    pub fn poll_completions(&self) -> usize {
        // The first waker is taken under the same borrow (usually there is
        // one, or none); any others are woken after it, as one batch.
        let (n, first, more) = {
            let Ok(mut guard) = self.inner.try_borrow_mut() else {
                return 0;
            };
            let Inner { raw, book } = &mut *guard;
            let n = raw.poll(|c| book.complete(c));
            if book.has_stuck() {
                book.unstick(raw.needs_recovery());
            }
            (n, book.first_to_wake(), book.has_to_wake())
        };
        if let Some(waker) = first {
            waker.wake();
        }
        if more {
            self.wake();
        }
        n
    }

    /// Whether the raw queue has a request past its deadline (see
    /// [`IoQueue::needs_recovery`]).
    pub fn needs_recovery(&self) -> bool {
        self.inner
            .try_borrow()
            .is_ok_and(|inner| inner.raw.needs_recovery())
    }

    /// Requests submitted and not yet completed (timed-out ones included).
    pub fn in_flight(&self) -> usize {
        self.inner
            .try_borrow()
            .map_or(0, |inner| inner.raw.in_flight())
    }

    /// Requests waiting for a tag.
    pub fn waiting(&self) -> usize {
        self.inner
            .try_borrow()
            .map_or(0, |inner| inner.book.waiting())
    }

    /// Requests in flight at most (the raw queue's depth).
    pub fn depth(&self) -> usize {
        self.inner
            .try_borrow()
            .map_or(0, |inner| inner.book.tags.len())
    }

    /// Whether `self` and `other` are handles of the same queue.
    pub fn same_queue(&self, other: &AsyncQueue<R, C>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// The raw queue back, if this is the last handle and no request is in
    /// flight or waiting; otherwise the handle back.
    #[allow(
        clippy::result_large_err,
        reason = "a refused handle goes back by value, as IoQueue's do"
    )]
    pub fn into_io_queue(self) -> Result<IoQueue<R, C>, AsyncQueue<R, C>> {
        let busy = self.inner.try_borrow().map_or(true, |inner| {
            inner.raw.in_flight() != 0 || !inner.book.is_idle()
        });
        if busy {
            return Err(self);
        }
        match Rc::try_unwrap(self.inner) {
            Ok(cell) => Ok(cell.into_inner().raw),
            Err(inner) => Err(AsyncQueue { inner }),
        }
    }

    /// Wakes what the last operation made ready, one waker at a time
    /// with the state released (usually there is none, or one).
    #[inline]
    fn wake(&self) {
        wake(&self.inner);
    }
}

/// Wakes what the last operation on `inner` made ready, with the state
/// released: the oldest waker, then the others as one batch, whose room
/// goes back to the queue after. A waker that makes more to wake wakes
/// them itself (every path that queues a waker wakes once the state is
/// released).
#[inline]
fn wake<R: RegisterAccess, C: Clock>(inner: &RefCell<Inner<R, C>>) {
    let (first, batch) = match inner.try_borrow_mut() {
        Ok(mut inner) => (inner.book.first_to_wake(), inner.book.take_to_wake()),
        Err(_) => return,
    };
    if let Some(waker) = first {
        waker.wake();
    }
    let Some(mut batch) = batch else {
        return;
    };
    // Each waker is woken and dropped with the state released.
    for waker in batch.drain(..) {
        waker.wake();
    }
    if let Ok(mut inner) = inner.try_borrow_mut() {
        inner.book.give_back(batch);
    }
}

/// One request of an [`AsyncQueue`]: the shared state machine of
/// [`Transfer`] and [`Command`].
struct Request<'a, R: RegisterAccess, C: Clock> {
    inner: &'a RefCell<Inner<R, C>>,
    ns: &'a Namespace,
    op: Op,
    /// The request's buffer until it is submitted (or refused). Freed by
    /// `Drop` (taken there, so that no drop glue runs for the common
    /// empty case).
    buffer: ManuallyDrop<Option<DmaBuffer>>,
    phase: Phase,
}

impl<R: RegisterAccess, C: Clock> Request<'_, R, C> {
    /// Polls the request; `finish` makes its output from its outcome (the
    /// buffer back, or the error). The common first poll (a tag free) and
    /// last poll (the result is in, nobody else needs the tag) are done in
    /// place; every other goes through the whole state machine.
    #[inline(always)]
    fn poll_with<T>(&mut self, cx: &mut Context<'_>, finish: Finish<T>) -> Poll<Result<T, Error>> {
        if let Phase::InFlight { tag } = self.phase
            && let Ok(mut inner) = self.inner.try_borrow_mut()
            && let Some(outcome) = inner.book.take_done(tag)
        {
            self.phase = Phase::Finished;
            return Poll::Ready(finish(outcome));
        }
        // The common first poll: a tag free and nobody waiting for one.
        if let Phase::Start = self.phase {
            let queue = self.inner;
            if let Ok(mut inner) = queue.try_borrow_mut()
                && let Some(tag) = inner.book.take_tag()
            {
                let Inner { raw, book } = &mut *inner;
                let sent = submit(raw, self.ns, self.op, &mut self.buffer, tag);
                if sent.is_ok() {
                    book.sent(tag, None, cx.waker());
                    self.phase = Phase::InFlight { tag };
                    return Poll::Pending;
                }
                return refused(
                    queue,
                    inner,
                    sent,
                    tag,
                    &mut self.buffer,
                    &mut self.phase,
                    cx,
                );
            }
        }
        self.poll_request(cx, finish)
    }

    /// One poll through the whole state machine.
    #[inline(never)]
    fn poll_request<T>(
        &mut self,
        cx: &mut Context<'_>,
        finish: Finish<T>,
    ) -> Poll<Result<T, Error>> {
        let Request {
            inner: queue,
            ns,
            op,
            buffer,
            phase,
        } = self;
        let poll = {
            let Ok(mut inner) = queue.try_borrow_mut() else {
                // Only a waker polling from inside the queue gets here.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            };
            let poll = step(&mut inner, ns, *op, buffer, phase, cx, finish);
            if !inner.book.has_to_wake() {
                // The common case: nothing to wake.
                return poll;
            }
            poll
        };
        wake(queue);
        poll
    }
}

/// How a request's output is made from its outcome.
type Finish<T> = fn(Outcome) -> Result<T, Error>;

/// One step of a request's state machine with the queue's state borrowed.
#[inline]
fn step<R: RegisterAccess, C: Clock, T>(
    inner: &mut Inner<R, C>,
    ns: &Namespace,
    op: Op,
    buffer: &mut Option<DmaBuffer>,
    phase: &mut Phase,
    cx: &mut Context<'_>,
    finish: Finish<T>,
) -> Poll<Result<T, Error>> {
    let Inner { raw, book } = inner;
    let (tag, ticket) = match *phase {
        // The common case first: a request in flight.
        Phase::InFlight { tag } => return collect(book, tag, phase, cx, finish),
        Phase::Start => match book.take_tag() {
            Some(tag) => (tag, None),
            None => {
                *phase = Phase::Waiting {
                    ticket: book.wait(cx.waker()),
                };
                return Poll::Pending;
            }
        },
        Phase::Waiting { ticket } => match book.granted(ticket, cx.waker()) {
            Some(tag) => (tag, Some(ticket)),
            None => return Poll::Pending,
        },
        Phase::Finished => return Poll::Ready(Err(Error::UnknownCommandId)),
    };
    let sent = submit(raw, ns, op, buffer, tag);
    submitted(raw, book, sent, tag, ticket, buffer, phase, cx)
}

/// What follows a new request's refusal by the raw queue (see
/// [`submitted`]), wakers woken once the queue's state is released;
/// kept apart from the common path.
#[cold]
#[inline(never)]
fn refused<R: RegisterAccess, C: Clock, T>(
    queue: &RefCell<Inner<R, C>>,
    mut inner: RefMut<'_, Inner<R, C>>,
    sent: Result<(), Error>,
    tag: u16,
    buffer: &mut Option<DmaBuffer>,
    phase: &mut Phase,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Error>> {
    let Inner { raw, book } = &mut *inner;
    let poll = submitted(raw, book, sent, tag, None, buffer, phase, cx);
    if book.has_to_wake() {
        drop(inner);
        wake(queue);
    }
    poll
}

/// The result of the request in flight under `tag`, or its waker
/// registered (a clone only when the task polling is another one).
#[inline]
fn collect<T>(
    book: &mut Book,
    tag: u16,
    phase: &mut Phase,
    cx: &mut Context<'_>,
    finish: Finish<T>,
) -> Poll<Result<T, Error>> {
    let Some(t) = book.tags.get_mut(usize::from(tag)) else {
        *phase = Phase::Finished;
        return Poll::Ready(Err(Error::UnknownCommandId));
    };
    match t.stage {
        Stage::InFlight => {
            if !t.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                t.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        }
        Stage::Done | Stage::Expired => {
            *phase = Phase::Finished;
            let expired = t.stage == Stage::Expired;
            t.stage = Stage::Free;
            let outcome = t.outcome();
            book.retire_taken(tag, expired);
            Poll::Ready(finish(outcome))
        }
        Stage::Free | Stage::Abandoned | Stage::Stuck => {
            *phase = Phase::Finished;
            Poll::Ready(Err(Error::UnknownCommandId))
        }
    }
}

impl<R: RegisterAccess, C: Clock> Drop for Request<'_, R, C> {
    #[inline]
    fn drop(&mut self) {
        // The common case, a request that gave its output (or never
        // started), has nothing to do.
        if !matches!(self.phase, Phase::Start | Phase::Finished) {
            self.abandon();
        }
        // A buffer is held only before submission or after a refusal; the
        // field has no drop glue of its own, so the common case (none)
        // costs this test alone.
        if let Some(buffer) = self.buffer.take() {
            free_buffer(buffer);
        }
    }
}

impl<R: RegisterAccess, C: Clock> Request<'_, R, C> {
    /// Gives up a request dropped while waiting or in flight (see the
    /// module documentation).
    #[cold]
    #[inline(never)]
    fn abandon(&mut self) {
        let phase = self.phase;
        self.phase = Phase::Finished;
        let wake = {
            let Ok(mut inner) = self.inner.try_borrow_mut() else {
                log::warn!("nvme: a request dropped while its queue was busy is left behind");
                return;
            };
            let book = &mut inner.book;
            match phase {
                Phase::Waiting { ticket } => book.leave(ticket),
                Phase::InFlight { tag } => book.abandon(tag),
                Phase::Start | Phase::Finished => {}
            }
            book.has_to_wake()
        };
        if wake {
            self::wake(self.inner);
        }
    }
}

/// Frees the buffer of a request dropped before it was submitted (kept
/// out of the common path).
#[cold]
#[inline(never)]
fn free_buffer(buffer: DmaBuffer) {
    drop(buffer);
}

/// A read or write of an [`AsyncQueue`]: its buffer back, or why not (the
/// buffer is then freed, or kept by the queue while the device may own
/// it). Dropping it before it completes abandons the request (see the
/// module documentation).
pub struct Transfer<'a, R: RegisterAccess, C: Clock>(Request<'a, R, C>);

impl<R: RegisterAccess, C: Clock> Future for Transfer<'_, R, C> {
    type Output = Result<DmaBuffer, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .0
            // The raw queue hands every successful transfer's buffer back.
            .poll_with(cx, |outcome| outcome?.ok_or(Error::Dma))
    }
}

/// A flush, Write Zeroes or discard of an [`AsyncQueue`]. Dropping it
/// before it completes abandons the request.
pub struct Command<'a, R: RegisterAccess, C: Clock>(Request<'a, R, C>);

impl<R: RegisterAccess, C: Clock> Future for Command<'_, R, C> {
    type Output = Result<(), Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_with(cx, |outcome| outcome.map(drop))
    }
}

impl<R: RegisterAccess, C: Clock> fmt::Debug for Transfer<'_, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transfer")
    }
}

impl<R: RegisterAccess, C: Clock> fmt::Debug for Command<'_, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Command")
    }
}
