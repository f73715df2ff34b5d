//! The least a future per read can add to the raw queue: a reference
//! figure for `./run.sh cost`, next to the async path's.
//!
//! Each read is a bare future over the raw queue ([`BareRead`]): its first
//! poll takes a tag, submits and keeps the waker; the completion walk puts
//! the result in the tag and wakes the waker; the second poll takes the
//! result and frees the tag. Nothing else: none of the guarantees the
//! async path (`AsyncQueue`) gives, which is why it is a probe and not an
//! API:
//! - no line of waiters: a read beyond the queue depth fails at once;
//! - no abandonment: a future dropped while its read is in flight leaves
//!   its tag out of use for good;
//! - nothing for a read past its deadline, nor for a controller reset.
//!
//! Counted as the `cost_async` example is ([`driver_submit`] and
//! [`driver_poll`], the same harness), so the two figures differ only by
//! what the async path does beyond this floor.

use nvme::{DmaBuffer, Error, Namespace};
use nvme_sim::cost::{self, CountedQueue};
use std::cell::RefCell;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One tag: the waker of the read in flight, then its result.
#[derive(Default)]
struct Tag {
    waker: Option<Waker>,
    done: Option<(Result<(), Error>, Option<DmaBuffer>)>,
}

/// The raw queue and one tag per slot.
struct Bare {
    raw: CountedQueue,
    tags: Vec<Tag>,
    free: Vec<u16>,
}

/// A read not yet submitted has no tag.
const NO_TAG: u16 = u16::MAX;

/// A 4 KiB read as a bare future (see the module documentation).
struct BareRead<'a> {
    queue: &'a RefCell<Bare>,
    ns: &'a Namespace,
    lba: u64,
    buffer: Option<DmaBuffer>,
    tag: u16,
}

impl Future for BareRead<'_> {
    type Output = Result<DmaBuffer, Error>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let read = self.get_mut();
        let Ok(mut queue) = read.queue.try_borrow_mut() else {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        let Bare { raw, tags, free } = &mut *queue;
        if read.tag == NO_TAG {
            let (Some(tag), Some(buffer)) = (free.pop(), read.buffer.take()) else {
                return Poll::Ready(Err(Error::QueueFull));
            };
            if let Err(rejected) = raw.submit_read(read.ns, read.lba, buffer, u64::from(tag)) {
                free.push(tag);
                return Poll::Ready(Err(rejected.error));
            }
            if let Some(t) = tags.get_mut(usize::from(tag)) {
                t.waker = Some(cx.waker().clone());
            }
            read.tag = tag;
            return Poll::Pending;
        }
        let Some(done) = tags
            .get_mut(usize::from(read.tag))
            .and_then(|t| t.done.take())
        else {
            return Poll::Pending;
        };
        free.push(read.tag);
        Poll::Ready(match done {
            (Ok(()), Some(buffer)) => Ok(buffer),
            (Ok(()), None) => Err(Error::Dma),
            (Err(error), _) => Err(error),
        })
    }
}

/// The completion walk: each result to its tag, the waker woken once the
/// queue is released (at depth 1 there is one).
#[inline(always)]
fn poll_completions(queue: &RefCell<Bare>) {
    let waker = {
        let Ok(mut queue) = queue.try_borrow_mut() else {
            return;
        };
        let Bare { raw, tags, .. } = &mut *queue;
        let mut waker = None;
        raw.poll(|c| {
            let Some(t) = usize::try_from(c.tag).ok().and_then(|i| tags.get_mut(i)) else {
                return;
            };
            // A tag's result is always taken before the tag is reused: no
            // drop is paid for here.
            mem::forget(t.done.replace((c.result, c.buffer)));
            waker = t.waker.take();
        });
        waker
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The future made in `slot` (the caller's frame, as in a task) and
/// polled once: it takes a tag and submits.
#[inline(never)]
fn driver_submit<'a>(
    slot: &mut Option<BareRead<'a>>,
    queue: &'a RefCell<Bare>,
    ns: &'a Namespace,
    lba: u64,
    buffer: DmaBuffer,
) -> Poll<Result<DmaBuffer, Error>> {
    let read = slot.insert(BareRead {
        queue,
        ns,
        lba,
        buffer: Some(buffer),
        tag: NO_TAG,
    });
    Pin::new(read).poll(&mut Context::from_waker(Waker::noop()))
}

/// The completions walked, then the future polled for its buffer.
#[inline(never)]
fn driver_poll(queue: &RefCell<Bare>, read: &mut BareRead<'_>) -> Poll<Result<DmaBuffer, Error>> {
    poll_completions(queue);
    Pin::new(read).poll(&mut Context::from_waker(Waker::noop()))
}

fn main() {
    let (reads, rig, raw) = cost::start("cost_floor");
    let depth = raw.depth().min(usize::from(NO_TAG));
    let queue = RefCell::new(Bare {
        raw,
        tags: (0..depth).map(|_| Tag::default()).collect(),
        free: (0..depth as u16).rev().collect(),
    });
    let tally = rig.reads_at_depth_one(reads, |buffer, lba| {
        cost::read_to_end(
            |slot| driver_submit(slot, &queue, &rig.ns, lba, buffer),
            |read| driver_poll(&queue, read),
        )
    });
    cost::finish("cost_floor", reads, tally);
}
