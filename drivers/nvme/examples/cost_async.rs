//! The `async` path's own cost per 4 KiB read, counted on the host: the
//! `cost` example's reads, each an `AsyncQueue::read` future.
//!
//! Each read is one future, polled once to submit ([`driver_submit`]), then
//! the completions are polled and the future polled again for its result
//! ([`driver_poll`]), with a waker that does nothing: what is counted is
//! the async layer and the raw queue under it, not an executor. Under
//! `valgrind --tool=callgrind` (as `./run.sh cost` runs it) collection is
//! on inside those two functions and off inside the register accesses,
//! which stand for single MMIO instructions on hardware:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='*driver_submit*' --toggle-collect='*driver_poll*' \
//!     --toggle-collect='*Registers*read32*' --toggle-collect='*Registers*write32*' \
//!     target/release/examples/cost_async 20000
//! ```
//!
//! Without valgrind it simply runs the reads and checks they all succeed.

use nvme::{AsyncQueue, DmaBuffer, Error, Transfer};
use nvme_sim::FakeClock;
use nvme_sim::cost::{self, CountedRegisters as Registers};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

type Queue = AsyncQueue<Registers, FakeClock>;
type Read<'a> = Transfer<'a, Registers, FakeClock>;

/// Everything the async path does to start a 4 KiB read into `buffer`:
/// the future made in `slot` (the caller's frame, where it stays until its
/// result is taken, as in a task) and polled once (it takes a tag and
/// submits).
#[inline(never)]
fn driver_submit<'a>(
    slot: &mut Option<Read<'a>>,
    queue: &'a Queue,
    ns: &'a nvme::Namespace,
    lba: u64,
    buffer: DmaBuffer,
) -> Poll<Result<DmaBuffer, Error>> {
    let read = slot.insert(queue.read(ns, lba, buffer));
    Pin::new(read).poll(&mut Context::from_waker(Waker::noop()))
}

/// Everything it does to finish one: the completions polled (the idle
/// step), then the future polled for its buffer.
#[inline(never)]
fn driver_poll(queue: &Queue, read: &mut Read<'_>) -> Poll<Result<DmaBuffer, Error>> {
    queue.poll_completions();
    Pin::new(read).poll(&mut Context::from_waker(Waker::noop()))
}

fn main() {
    let (reads, rig, queue) = cost::start("cost_async");
    let queue = AsyncQueue::new(queue);
    let tally = rig.reads_at_depth_one(reads, |buffer, lba| {
        cost::read_to_end(
            |slot| driver_submit(slot, &queue, &rig.ns, lba, buffer),
            |read| driver_poll(&queue, read),
        )
    });
    cost::finish("cost_async", reads, tally);
}
