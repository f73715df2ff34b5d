//! The benchmark on every namespace at once (`bench_all_namespaces = yes`):
//! each selected job runs on all the namespaces it may touch at the same
//! time, each namespace with an `IoQueue` of its own, all driven from one
//! loop that fills and polls the queues in turn.
//!
//! A read job runs on every namespace handed in (owned ones, and the others
//! when `bench_unowned_reads` allows); a write job only on those owned,
//! neither zoned nor write-protected. One window, bracketed by
//! `BENCH-BEGIN` / `BENCH-END`, covers them all. Each job gives one row
//! per namespace and a `sum` row: I/Os, IOPS and MB/s added up, latency
//! percentiles over every I/O of every namespace. Cycles per I/O are the
//! window's TSC ticks over all those I/Os, on every row (one CPU drives
//! every namespace). Each row is also a
//! `BENCH-RESULT` line, with the key `namespace` (`SERIAL/NSID`, or `sum`).

use alloc::string::String;
use alloc::vec::Vec;

use kernel::arch::tsc;
use kernel::console::serial;
use kernel::println;
use kernel::storage::{Attached, Bar0, KernelDma, TscClock};
use nvme::{DmaBuffer, IoQueue, Namespace};

use crate::bench::{Job, name_at_depth};
use crate::figures::{JobResult, Rng, latency_summary, print_result};

/// A namespace the benchmark may use.
pub struct Target {
    /// Index of its controller.
    pub controller: usize,
    /// Its NSID.
    pub nsid: u32,
    /// `SERIAL/NSID`.
    pub label: String,
    /// Owned: write jobs may run on it.
    pub owned: bool,
    /// Seen refusing writes (write jobs are skipped), or found so here.
    pub write_protected: bool,
}

/// One namespace in the loop: its queue, where it may write, and what the
/// current job measured there.
struct Lane {
    target: usize,
    queue: IoQueue<Bar0, TscClock>,
    ns: Namespace,
    dma: KernelDma,
    first: u64,
    buffers: Vec<DmaBuffer>,
    depth: usize,
    span: u64,
    io_blocks: u64,
    rng: Rng,
    sequential: u64,
    latencies: Vec<u32>,
    /// A write completed (a write job sends one before going deep, so a
    /// namespace refusing writes sees only that one).
    writes_confirmed: bool,
    /// The namespace refused a write as write-protected: no more I/O.
    refused: bool,
    result: JobResult,
}

/// Runs `jobs` on every namespace of `targets` at once, touching only
/// bytes from `data_start`; returns each job's rows (one per namespace
/// that ran it, then `sum`). The queues are taken for the run and given
/// back after.
pub fn run(
    controllers: &mut [Attached],
    targets: &mut [Target],
    data_start: u64,
    window_ms: u64,
    jobs: &[Job],
) -> Vec<JobResult> {
    let mut lanes = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let Some(attached) = controllers.get_mut(target.controller) else {
            continue;
        };
        let ns = match attached.controller.namespace_handle(target.nsid) {
            Ok(ns) => ns,
            Err(error) => {
                println!("  bench: {}: {error}; left out", target.label);
                continue;
            }
        };
        let mut queue = match attached.controller.take_io_queue() {
            Ok(queue) => queue,
            Err(error) => {
                println!(
                    "  bench: {}: no I/O queue to spare ({error}); left out",
                    target.label
                );
                continue;
            }
        };
        queue.set_doorbell_batching(true);
        lanes.push(Lane {
            target: index,
            queue,
            ns,
            dma: attached.dma,
            first: data_start.div_ceil(ns.block_size() as u64),
            buffers: Vec::new(),
            depth: 0,
            span: 0,
            io_blocks: 1,
            rng: Rng(0x1234_5678_9abc_def1 ^ tsc::now() ^ (u64::from(target.nsid) << 40)),
            sequential: 0,
            latencies: Vec::with_capacity(1 << 18),
            writes_confirmed: false,
            refused: false,
            result: JobResult::default(),
        });
    }
    let hz = crate::bench::measure_hz();
    println!(
        "  bench: {} job(s) on {} namespace(s) at once, {window_ms} ms each after a warm-up",
        jobs.len(),
        lanes.len(),
    );
    let mut rows = Vec::new();
    for job in jobs {
        rows.extend(run_job(job, &mut lanes, targets, hz, window_ms));
    }
    for mut lane in lanes {
        lane.queue.set_doorbell_batching(false);
        let controller = targets[lane.target].controller;
        if let Some(attached) = controllers.get_mut(controller)
            && attached.controller.return_io_queue(lane.queue).is_err()
        {
            log::warn!("bench: an I/O queue could not be returned");
        }
    }
    rows
}

/// Prepares `lane` for `job` (its area, its buffers, a fresh result);
/// the reason it sits the job out, if it does.
fn prepare(lane: &mut Lane, target: &Target, job: &Job) -> Option<&'static str> {
    let bs = lane.ns.block_size() as u64;
    lane.io_blocks = (job.block_bytes as u64 / bs).max(1);
    lane.depth = job.depth.min(lane.queue.depth());
    lane.span = lane.ns.block_count().saturating_sub(lane.first) / lane.io_blocks;
    lane.sequential = 0;
    lane.latencies.clear();
    lane.writes_confirmed = !job.write;
    lane.refused = false;
    lane.buffers.clear();
    lane.result = JobResult {
        name: name_at_depth(job, lane.depth),
        depth: lane.depth,
        block_bytes: (lane.io_blocks * bs) as usize,
        namespace: Some(target.label.clone()),
        ..JobResult::default()
    };
    if job.write && lane.ns.zoned().is_some() {
        return Some("zoned namespace (no random writes are sent to it)");
    } else if job.write && target.write_protected {
        return Some("namespace write-protected (no writes are sent to it)");
    } else if job.write && !target.owned {
        return Some("namespace not owned (writes are never sent to it)");
    } else if lane.span == 0 {
        return Some("namespace too small");
    }
    for _ in 0..lane.depth {
        let Ok(mut buffer) = lane.dma.buffer(lane.result.block_bytes) else {
            return Some("no DMA memory for the buffers");
        };
        if job.write {
            buffer.as_mut_slice().fill(0x5a);
        }
        lane.buffers.push(buffer);
    }
    None
}

/// Fills `lane`'s queue up to its depth (one request until a write job's
/// first write completed).
fn submit(lane: &mut Lane, job: &Job) {
    let allowed = if lane.writes_confirmed { lane.depth } else { 1 };
    while !lane.refused
        && lane.depth - lane.buffers.len() < allowed
        && let Some(buffer) = lane.buffers.pop()
    {
        let slot = if job.random {
            lane.rng.next() % lane.span
        } else {
            lane.sequential % lane.span
        };
        lane.sequential += 1;
        let lba = lane.first + slot * lane.io_blocks;
        let tag = tsc::now();
        let submitted = if job.write {
            lane.queue.submit_write(&lane.ns, lba, buffer, tag)
        } else {
            lane.queue.submit_read(&lane.ns, lba, buffer, tag)
        };
        if let Err(rejected) = submitted {
            lane.buffers.push(rejected.buffer);
            match rejected.error {
                // A request over more commands than are free: after a poll.
                nvme::Error::QueueFull => {}
                error if error.refuses_writes() => lane.refused = true,
                _ => lane.result.errors += 1,
            }
            return;
        }
    }
}

/// Moves `lane`'s completions: buffers back, errors, and the I/Os
/// submitted and completed inside the window `(start, end)`.
fn poll(lane: &mut Lane, window: Option<(u64, u64)>) {
    let Lane {
        queue,
        buffers,
        latencies,
        writes_confirmed,
        refused,
        result,
        ..
    } = lane;
    queue.poll(|completion| {
        let done = tsc::now();
        buffers.extend(completion.buffer);
        match completion.result {
            Ok(()) => *writes_confirmed = true,
            Err(error) if error.refuses_writes() => *refused = true,
            Err(_) => result.errors += 1,
        }
        if let Some((start, end)) = window
            && completion.tag >= start
            && done <= end
        {
            result.ios += 1;
            if latencies.len() < latencies.capacity() {
                let ns = tsc::ticks_to_ns(done - completion.tag);
                latencies.push(ns.min(u64::from(u32::MAX)) as u32);
            }
        }
    });
}

/// Runs `job` on every lane that may take it, in one loop; its rows.
fn run_job(
    job: &Job,
    lanes: &mut [Lane],
    targets: &mut [Target],
    hz: u64,
    window_ms: u64,
) -> Vec<JobResult> {
    let mut active = Vec::new();
    let mut rows = Vec::new();
    for (index, lane) in lanes.iter_mut().enumerate() {
        let target = &targets[lane.target];
        match prepare(lane, target, job) {
            None => active.push(index),
            Some(reason) => {
                println!(
                    "  bench: {:<20} {}: skipped: {reason}",
                    job.name, target.label
                );
                lane.result.skipped = Some(reason);
                rows.push(core::mem::take(&mut lane.result));
            }
        }
    }
    if active.is_empty() {
        return rows;
    }
    let warmup_end = tsc::now() + (hz * window_ms / 10_000).max(hz / 50);
    let window_ticks = hz * window_ms / 1000;
    let mut window: Option<(u64, u64)> = None;
    let mut ended = false;
    loop {
        let now = tsc::now();
        if window.is_none() && now >= warmup_end {
            serial::print(format_args!("BENCH-BEGIN {}\n", job.name));
            let start = tsc::now();
            window = Some((start, start + window_ticks));
        }
        let submitting = window.is_none_or(|(_, end)| now < end);
        if !submitting && !ended {
            serial::print(format_args!("BENCH-END {}\n", job.name));
            ended = true;
        }
        let mut in_flight = 0;
        for &index in &active {
            let lane = &mut lanes[index];
            if submitting {
                submit(lane, job);
            }
            poll(lane, window);
            in_flight += lane.queue.in_flight();
        }
        if !submitting && in_flight == 0 {
            break;
        }
    }

    let seconds = window_ms as f64 / 1000.0;
    let mut sum = JobResult {
        name: String::from(job.name),
        depth: 0,
        namespace: Some(String::from("sum")),
        ..JobResult::default()
    };
    let mut all_latencies = Vec::new();
    for &index in &active {
        let lane = &mut lanes[index];
        let mut result = core::mem::take(&mut lane.result);
        if lane.refused {
            targets[lane.target].write_protected = true;
            println!(
                "  bench: {:<20} {}: stopped: namespace refused writes (write-protected)",
                result.name, targets[lane.target].label
            );
            result.skipped = Some("namespace refused writes as write-protected; stopped");
            rows.push(result);
            continue;
        }
        result.iops = result.ios as f64 / seconds;
        result.mb_per_s = result.iops * result.block_bytes as f64 / 1e6;
        all_latencies.extend_from_slice(&lane.latencies);
        latency_summary(&mut lane.latencies, &mut result);
        sum.depth += result.depth;
        sum.block_bytes = result.block_bytes;
        sum.ios += result.ios;
        sum.iops += result.iops;
        sum.mb_per_s += result.mb_per_s;
        sum.errors += result.errors;
        rows.push(result);
        // Buffers go back to DMA memory between jobs.
        lane.buffers.clear();
    }
    let cycles = window_ticks.checked_div(sum.ios).unwrap_or(0);
    latency_summary(&mut all_latencies, &mut sum);
    rows.push(sum);
    for row in rows.iter_mut().filter(|r| r.skipped.is_none()) {
        row.cycles_per_io = cycles;
        print_result(row);
    }
    rows
}
