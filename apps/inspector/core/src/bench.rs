//! A fio-like benchmark job on one namespace, through a raw `IoQueue`.
//!
//! Jobs carry fio's names (`randread-4k-qd1` ... `write-128k-qd8`, the ten
//! of the shared benchmark protocol); [`select`] picks them from the
//! `bench_jobs` setting. [`plan`] decides whether a job may run (and at
//! what depth) and makes its buffers; [`run_job`] keeps `depth` requests in
//! flight, warms up for a tenth of the window (at least 20 ms), then counts
//! the requests submitted and completed inside a timed window. The window
//! opens and closes with a [`Mark`] handed to the caller (the image prints
//! `BENCH-BEGIN <job>` and `BENCH-END <job>` on serial, so a host can
//! sample QEMU's CPU time exactly around it).
//!
//! A depth above what the queue allows is capped, and the job is then named
//! with the depth it really ran at (`randread-4k-qd127`). Write jobs run only
//! on a namespace the caller owns; on any other namespace they are skipped
//! with the reason (the data-safety rule). Write jobs are skipped the same
//! way on a zoned namespace (it takes no random writes) and on a
//! write-protected one; a namespace that refuses a write as write-protected
//! during a job stops that job at once (the requests in flight drain, the
//! refusals are not counted as errors) and the caller learns it, so every
//! later write job is skipped.
//!
//! Latency is submit-to-completion in [`Ticks`] converted to nanoseconds;
//! ticks per I/O are the window's ticks divided by the I/Os completed (in
//! the image the CPU does nothing but submit and poll, so they are cycles).
//! The buffers are made once per job (a write job's filled once) and handed
//! back by each completion for the next request: nothing is copied per I/O.

use alloc::string::String;
use alloc::vec::Vec;

use nvme::{Clock, DmaBuffer, DmaHome, IoQueue, Namespace, RegisterAccess};

use crate::figures::{JobResult, Rng, latency_summary};
use crate::ticks::Ticks;

/// Alignment of the jobs' buffers: one page.
const BUFFER_ALIGN: usize = 4096;

/// One benchmark job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// fio-style name.
    pub name: &'static str,
    /// Write (true) or read.
    pub write: bool,
    /// Random (true) or sequential offsets.
    pub random: bool,
    /// Bytes per I/O.
    pub block_bytes: usize,
    /// Requests kept in flight.
    pub depth: usize,
    /// Through the `async` path (tasks awaiting an `AsyncQueue`) rather
    /// than the raw queue; the image runs those itself.
    pub asynchronous: bool,
}

const fn job(name: &'static str, write: bool, random: bool, kib: usize, depth: usize) -> Job {
    Job {
        name,
        write,
        random,
        block_bytes: kib * 1024,
        depth,
        asynchronous: false,
    }
}

/// Every job the benchmark knows, in the order they run.
pub const ALL_JOBS: [Job; 10] = [
    job("randread-4k-qd1", false, true, 4, 1),
    job("randread-4k-qd8", false, true, 4, 8),
    job("randread-4k-qd32", false, true, 4, 32),
    job("randread-4k-qd128", false, true, 4, 128),
    job("randwrite-4k-qd1", true, true, 4, 1),
    job("randwrite-4k-qd8", true, true, 4, 8),
    job("randwrite-4k-qd32", true, true, 4, 32),
    job("randwrite-4k-qd128", true, true, 4, 128),
    job("read-128k-qd8", false, false, 128, 8),
    job("write-128k-qd8", true, false, 128, 8),
];

/// Jobs run only when named: the `async` path next to the raw queue's.
pub const NAMED_JOBS: [Job; 1] = [Job {
    asynchronous: true,
    ..job("randread-4k-qd32-async", false, true, 4, 32)
}];

/// The default application's short run.
pub const DEFAULT_JOBS: [&str; 5] = [
    "randread-4k-qd1",
    "randread-4k-qd32",
    "randwrite-4k-qd32",
    "read-128k-qd8",
    "write-128k-qd8",
];

/// Why a job that ran was stopped: the namespace refused a write as
/// write-protected.
pub const STOPPED_WRITE_PROTECTED: &str = "namespace refused writes as write-protected; stopped";

/// The jobs named in `names` (the `bench_jobs` setting; `all` for every
/// job, nothing for the default five), in the canonical order, and the
/// names that match no job.
pub fn select(names: &[String]) -> (Vec<Job>, Vec<String>) {
    let all = names.iter().any(|n| n == "all");
    let wanted = |job: &Job| {
        all || if names.is_empty() {
            DEFAULT_JOBS.contains(&job.name)
        } else {
            names.iter().any(|n| n == job.name)
        }
    };
    let named = |job: &&Job| names.iter().any(|n| n == job.name);
    let jobs = ALL_JOBS
        .iter()
        .filter(|j| wanted(j))
        .chain(NAMED_JOBS.iter().filter(named))
        .copied()
        .collect();
    let known = |n: &str| ALL_JOBS.iter().chain(&NAMED_JOBS).any(|j| j.name == n);
    let unknown = names
        .iter()
        .filter(|n| *n != "all" && !known(n.as_str()))
        .cloned()
        .collect();
    (jobs, unknown)
}

/// The job's name with its depth replaced by `depth` (`...-qdN`).
pub fn name_at_depth(job: &Job, depth: usize) -> String {
    if depth == job.depth {
        return String::from(job.name);
    }
    let stem = job
        .name
        .rsplit_once("-qd")
        .map_or(job.name, |(stem, _)| stem);
    alloc::format!("{stem}-qd{depth}")
}

/// The namespace a job runs on, as far as the job is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Bytes per block.
    pub block_size: u64,
    /// Blocks in the namespace.
    pub block_count: u64,
    /// First block a job may touch.
    pub first: u64,
    /// The namespace is zoned (it takes no random writes).
    pub zoned: bool,
    /// The namespace is owned: writes may be sent to it.
    pub writable: bool,
}

/// Where a job does I/O: `span` units of `io_blocks` blocks from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// First block the job may touch.
    pub first: u64,
    /// Units of `io_blocks` blocks to pick from.
    pub span: u64,
    /// Blocks per request.
    pub io_blocks: u64,
}

/// A job ready to run: its area, one buffer per request in flight (made
/// before the clock starts) and its result so far (name, depth, bytes).
pub struct Ready {
    /// The job.
    pub job: Job,
    /// Where it does I/O.
    pub area: Area,
    /// Its buffers.
    pub buffers: Vec<DmaBuffer>,
    /// Its result, filled in by the run.
    pub result: JobResult,
}

/// What [`plan`] decided.
pub enum Plan {
    /// The job runs.
    Run(Ready),
    /// The job does not run: `skipped` says why.
    Skip(JobResult),
}

/// Whether `job` may run on `target` through a queue of `queue_depth`
/// requests (`write_protected`: an earlier step saw the namespace refuse
/// writes), and if so its buffers from `home`.
pub fn plan(
    job: &Job,
    target: &Target,
    queue_depth: usize,
    write_protected: bool,
    home: &DmaHome,
) -> Plan {
    let bs = target.block_size.max(1);
    let io_blocks = (job.block_bytes as u64 / bs).max(1);
    let io_bytes = io_blocks * bs;
    let depth = job.depth.min(queue_depth);
    let mut result = JobResult {
        name: name_at_depth(job, depth),
        depth,
        block_bytes: io_bytes as usize,
        ..JobResult::default()
    };
    let span = target.block_count.saturating_sub(target.first) / io_blocks;
    if job.write && target.zoned {
        result.skipped = Some("zoned namespace (no random writes are sent to it)");
    } else if job.write && write_protected {
        result.skipped = Some("namespace write-protected (no writes are sent to it)");
    } else if job.write && !target.writable {
        result.skipped = Some("namespace not owned (writes are never sent to it)");
    } else if span == 0 {
        result.skipped = Some("namespace too small");
    } else if depth == 0 {
        result.skipped = Some("no request slots on the queue");
    }
    if result.skipped.is_some() {
        return Plan::Skip(result);
    }
    let mut buffers = Vec::with_capacity(depth);
    for _ in 0..depth {
        match DmaBuffer::allocate(home, io_bytes as usize, BUFFER_ALIGN) {
            Ok(mut buffer) => {
                if job.write {
                    buffer.as_mut_slice().fill(0x5a);
                }
                buffers.push(buffer);
            }
            Err(_) => {
                result.skipped = Some("no DMA memory for the buffers");
                return Plan::Skip(result);
            }
        }
    }
    Plan::Run(Ready {
        job: *job,
        area: Area {
            first: target.first,
            span,
            io_blocks,
        },
        buffers,
        result,
    })
}

/// The timed window opening or closing, named with the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark<'a> {
    /// The warm-up is over: requests completed from now on count.
    Begin(&'a str),
    /// The window has closed (or the job stopped inside it).
    End(&'a str),
}

/// Run the job `ready` on `queue` against namespace `ns` for a window of
/// `window_ms` after its warm-up, timed by `ticks`. `latencies` is the
/// caller's scratch for the latencies (its capacity is the most kept;
/// cleared first). The result says what was measured; a job stopped by a
/// namespace that refuses writes comes back with `skipped` set to
/// [`STOPPED_WRITE_PROTECTED`].
pub fn run_job<R: RegisterAccess, C: Clock>(
    queue: &mut IoQueue<R, C>,
    ns: &Namespace,
    ready: Ready,
    ticks: &dyn Ticks,
    window_ms: u64,
    latencies: &mut Vec<u32>,
    mark: &mut dyn FnMut(Mark<'_>),
) -> JobResult {
    let Ready {
        job,
        area,
        mut buffers,
        mut result,
    } = ready;
    let depth = buffers.len();
    let hz = ticks.hz();
    let window_ticks = hz * window_ms / 1000;
    let mut rng = Rng((0x1234_5678_9abc_def1 ^ ticks.now()) | 1);
    let mut sequential = 0u64;
    let warmup_ticks = (hz * window_ms / 10_000).max(hz / 50);
    let warmup_end = ticks.now() + warmup_ticks;
    let mut window_start = 0;
    let mut window_end = u64::MAX;
    let mut measuring = false;
    let mut ended = false;
    let mut ios = 0u64;
    let mut refused = false;
    // A write job sends one write and waits for it before going deep, so a
    // namespace that refuses writes sees only that one.
    let mut writes_confirmed = !job.write;
    latencies.clear();
    loop {
        if refused && queue.in_flight() == 0 {
            if measuring && !ended {
                mark(Mark::End(&result.name));
            }
            break;
        }
        let now = ticks.now();
        if !measuring && now >= warmup_end {
            measuring = true;
            mark(Mark::Begin(&result.name));
            window_start = ticks.now();
            window_end = window_start + window_ticks;
        }
        let submitting = now < window_end && !refused;
        if measuring && !submitting && !ended {
            // Once, as soon as the window has closed.
            mark(Mark::End(&result.name));
            ended = true;
        }
        let allowed = if writes_confirmed { depth } else { 1 };
        // Requests in flight: the buffers out (one each).
        while submitting
            && depth - buffers.len() < allowed
            && let Some(buffer) = buffers.pop()
        {
            let slot = if job.random {
                rng.next() % area.span
            } else {
                sequential % area.span
            };
            sequential += 1;
            let lba = area.first + slot * area.io_blocks;
            let tag = ticks.now();
            let submitted = if job.write {
                queue.submit_write(ns, lba, buffer, tag)
            } else {
                queue.submit_read(ns, lba, buffer, tag)
            };
            if let Err(rejected) = submitted {
                buffers.push(rejected.buffer);
                match rejected.error {
                    // A request split over more commands than are free now:
                    // again after the next poll.
                    nvme::Error::QueueFull => {}
                    error if error.refuses_writes() => refused = true,
                    _ => result.errors += 1,
                }
                break;
            }
        }
        if !submitting && queue.in_flight() == 0 {
            break;
        }
        queue.poll(|completion| {
            let done = ticks.now();
            // Back for the next request (a timed-out one's stays with the
            // queue, which frees it).
            buffers.extend(completion.buffer);
            match completion.result {
                Ok(()) => writes_confirmed = true,
                Err(error) if error.refuses_writes() => refused = true,
                Err(_) => result.errors += 1,
            }
            if measuring && completion.tag >= window_start && done <= window_end {
                ios += 1;
                if latencies.len() < latencies.capacity() {
                    let ns = ticks.to_ns(done - completion.tag);
                    latencies.push(ns.min(u64::from(u32::MAX)) as u32);
                }
            }
        });
    }
    if refused {
        result.skipped = Some(STOPPED_WRITE_PROTECTED);
        return result;
    }
    let seconds = window_ms as f64 / 1000.0;
    result.ios = ios;
    result.iops = ios as f64 / seconds;
    result.mb_per_s = result.iops * result.block_bytes as f64 / 1e6;
    result.cycles_per_io = window_ticks.checked_div(ios).unwrap_or(0);
    latency_summary(latencies, &mut result);
    result
}
