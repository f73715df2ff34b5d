//! The cost per 4 KiB read with 32 reads in flight, counted on the host:
//! the benchmark's raw queue loop (`randread-4k-qd32`) against its async
//! job (`randread-4k-qd32-async`: 32 tasks of [`kernel::executor`], each
//! awaiting one `AsyncQueue::read` at a time, the idle step polling the
//! queue), both against the simulated controller (`nvme-sim`).
//!
//! A host program, built only with the `host-cost` feature. Under
//! `valgrind --tool=callgrind`, as `./run.sh cost` runs it, what counts is
//! [`driver_loop`] (the whole loop: executor, async queue, driver and the
//! loop's own bookkeeping) less the simulated device behind the register
//! calls, which stand for single MMIO instructions on hardware:
//!
//! ```text
//! cargo build --release --package kernel --features host-cost --example cost_executor
//! valgrind --tool=callgrind target/release/examples/cost_executor async 20000
//! ```
//!
//! Without valgrind it simply runs the reads and checks they all succeed.

use std::cell::Cell;
use std::rc::Rc;

use kernel::executor::{Executor, join_all};
use nvme::{AsyncQueue, DmaBuffer, Namespace};
use nvme_sim::FakeClock;
use nvme_sim::cost::{CostRig, CountedQueue as Queue, CountedRegisters as Registers};

/// Reads in flight.
const DEPTH: usize = 32;

/// Where the `n`th read of a task (or of the raw loop) goes: spread over
/// the disk, 4 KiB aligned.
fn lba(n: u64, blocks: u64) -> u64 {
    (n.wrapping_mul(4104) % (blocks - 8)) & !7
}

/// `reads` reads, `DEPTH` at a time, on the raw queue or through the
/// executor; returns how many succeeded.
#[inline(never)]
fn driver_loop(
    asynchronous: bool,
    queue: Queue,
    ns: &Namespace,
    buffers: Vec<DmaBuffer>,
    reads: u64,
) -> u64 {
    if asynchronous {
        executor_reads(AsyncQueue::new(queue), ns, buffers, reads)
    } else {
        raw_reads(queue, ns, buffers, reads)
    }
}

/// The benchmark's raw loop: every buffer back is a new read, the
/// doorbell rung once per poll.
fn raw_reads(mut queue: Queue, ns: &Namespace, mut buffers: Vec<DmaBuffer>, reads: u64) -> u64 {
    let blocks = ns.block_count();
    let (mut started, mut done) = (0u64, 0u64);
    while done < reads {
        while started < reads
            && let Some(buffer) = buffers.pop()
        {
            if let Err(rejected) = queue.submit_read(ns, lba(started, blocks), buffer, started) {
                buffers.push(rejected.buffer);
                break;
            }
            started += 1;
        }
        if queue.poll(|c| {
            done += u64::from(c.result.is_ok());
            buffers.extend(c.buffer);
        }) == 0
            && queue.in_flight() == 0
        {
            break;
        }
    }
    done
}

/// The async job: one task per buffer, each awaiting one read at a time.
fn executor_reads(
    queue: AsyncQueue<Registers, FakeClock>,
    ns: &Namespace,
    buffers: Vec<DmaBuffer>,
    reads: u64,
) -> u64 {
    let blocks = ns.block_count();
    let executor = Executor::new();
    let q = queue.clone();
    executor.add_poller(Rc::new(move || q.poll_completions()));
    let (next, done) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
    let tasks: Vec<_> = buffers
        .into_iter()
        .map(|buffer| {
            let (queue, ns) = (queue.clone(), *ns);
            let (next, done) = (next.clone(), done.clone());
            executor.spawn(async move {
                // Moved, not kept in an `Option`: no drop glue per read.
                let mut buffer = buffer;
                while next.get() < reads {
                    let n = next.get();
                    next.set(n + 1);
                    match queue.read(&ns, lba(n, blocks), buffer).await {
                        Ok(b) => buffer = b,
                        Err(_) => break,
                    }
                    done.set(done.get() + 1);
                }
            })
        })
        .collect();
    if executor.block_on(join_all(tasks)).is_err() {
        return 0;
    }
    done.get()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let asynchronous = match args.next().as_deref() {
        Some("raw") => false,
        Some("async") => true,
        _ => {
            eprintln!("usage: cost_executor raw|async [READS]");
            std::process::exit(2);
        }
    };
    let reads: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let (rig, mut queue) = match CostRig::new() {
        Ok(parts) => parts,
        Err(error) => {
            eprintln!("cost_executor: bring-up failed: {error}");
            std::process::exit(1);
        }
    };
    let ns = rig.ns;
    // As in the benchmark: one doorbell write per poll for every refill.
    queue.set_doorbell_batching(true);
    let buffers = (0..DEPTH).map(|_| rig.bench.dma.buffer(4096)).collect();
    let done = driver_loop(asynchronous, queue, &ns, buffers, reads);
    let path = if asynchronous { "async" } else { "raw" };
    println!("cost_executor: {reads} reads of 4 KiB, {DEPTH} in flight, {path}: {done} completed");
    if done != reads {
        std::process::exit(1);
    }
}
