//! The benchmark's job on the `async` path: the same random 4 KiB reads as
//! `randread-4k-qd32`, issued by 32 tasks of the kernel's executor, each
//! awaiting one `AsyncQueue::read` at a time, so the two can be compared
//! (`bench_jobs = randread-4k-qd32,randread-4k-qd32-async`).
//!
//! The queue is the raw job's, wrapped for the job and unwrapped after.
//! Each task owns one DMA buffer, made before the clock starts, which every
//! completion hands back. The executor's idle step polls the completions
//! and, through a second poller, prints `BENCH-BEGIN` / `BENCH-END` when the
//! window opens and closes; latency is from just before a task submits to
//! the moment it runs again with the result (scheduling included).

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use kernel::arch::tsc;
use kernel::console::serial;
use kernel::executor::{Executor, join_all};
use kernel::storage::{Bar0, TscClock};
use nvme::{AsyncQueue, DmaBuffer, IoQueue, Namespace};

use crate::figures::{JobResult, Rng, latency_summary};

/// Where the job reads: `span` units of `io_blocks` blocks from `first`.
pub struct Area {
    /// First block the job may touch.
    pub first: u64,
    /// Units of `io_blocks` blocks to pick from.
    pub span: u64,
    /// Blocks per read.
    pub io_blocks: u64,
}

/// The job's clock.
pub struct Window {
    /// TSC ticks per second.
    pub hz: u64,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

/// What every task adds to.
#[derive(Default)]
struct Tally {
    ios: Cell<u64>,
    errors: Cell<u64>,
    latencies: RefCell<Vec<u32>>,
}

/// Runs the job on `queue` with one task per buffer; the queue comes back
/// unless a request is still held by the device (then it is lost to later
/// jobs).
pub fn run(
    queue: IoQueue<Bar0, TscClock>,
    ns: Namespace,
    buffers: Vec<DmaBuffer>,
    area: &Area,
    window: &Window,
    mut result: JobResult,
) -> (Option<IoQueue<Bar0, TscClock>>, JobResult) {
    let io_bytes = (area.io_blocks as usize) * ns.block_size();
    let queue = AsyncQueue::new(queue);
    let executor = Executor::new();
    let q = queue.clone();
    executor.add_poller(Rc::new(move || q.poll_completions()));

    let hz = window.hz;
    let warmup_end = tsc::now() + (hz * window.window_ms / 10_000).max(hz / 50);
    let window_ticks = hz * window.window_ms / 1000;
    // Set when the window opens: (start, end) in TSC ticks.
    let bounds = Rc::new(Cell::new((u64::MAX, u64::MAX)));
    let name = result.name.clone();
    let b = bounds.clone();
    let ended = Cell::new(false);
    executor.add_poller(Rc::new(move || {
        let now = tsc::now();
        let (start, end) = b.get();
        if start == u64::MAX && now >= warmup_end {
            serial::print(format_args!("BENCH-BEGIN {name}\n"));
            let start = tsc::now();
            b.set((start, start + window_ticks));
        } else if now >= end && !ended.get() {
            serial::print(format_args!("BENCH-END {name}\n"));
            ended.set(true);
        }
        0
    }));

    let tally = Rc::new(Tally::default());
    tally.latencies.borrow_mut().reserve(1 << 20);
    let seed = 0x1234_5678_9abc_def1 ^ tsc::now();
    let (first, span, io_blocks) = (area.first, area.span, area.io_blocks);
    let tasks: Vec<_> = buffers
        .into_iter()
        .enumerate()
        .map(|(i, buffer)| {
            let (queue, tally, bounds) = (queue.clone(), tally.clone(), bounds.clone());
            executor.spawn(async move {
                let mut rng = Rng(seed.wrapping_add(i as u64 * 0x9E37_79B9_7F4A_7C15) | 1);
                // Moved from read to read, not kept in an `Option`: no drop
                // glue per read. A failed read ends the task.
                let mut buffer = buffer;
                loop {
                    let submitted = tsc::now();
                    if submitted >= bounds.get().1 {
                        break;
                    }
                    let lba = first + rng.next() % span * io_blocks;
                    let outcome = queue.read(&ns, lba, buffer).await;
                    let done = tsc::now();
                    let (start, end) = bounds.get();
                    if submitted >= start && done <= end {
                        tally.ios.set(tally.ios.get() + 1);
                        let mut latencies = tally.latencies.borrow_mut();
                        if latencies.len() < latencies.capacity() {
                            let ns = tsc::ticks_to_ns(done - submitted);
                            latencies.push(ns.min(u64::from(u32::MAX)) as u32);
                        }
                    }
                    match outcome {
                        Ok(buf) => buffer = buf,
                        Err(_) => {
                            tally.errors.set(tally.errors.get() + 1);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    if executor.block_on(join_all(tasks)).is_err() {
        result.errors += 1;
    }
    drop(executor);

    let ios = tally.ios.get();
    result.ios = ios;
    result.errors += tally.errors.get();
    let seconds = window.window_ms as f64 / 1000.0;
    result.iops = ios as f64 / seconds;
    result.mb_per_s = result.iops * io_bytes as f64 / 1e6;
    result.cycles_per_io = window_ticks.checked_div(ios).unwrap_or(0);
    latency_summary(&mut tally.latencies.borrow_mut(), &mut result);
    match queue.into_io_queue() {
        Ok(raw) => (Some(raw), result),
        Err(_) => {
            log::warn!("bench: the async job left requests with the device");
            (None, result)
        }
    }
}
