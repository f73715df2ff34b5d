//! A fio-like benchmark on one namespace, through an `IoQueue` of its own.
//!
//! Jobs carry fio's names (`randread-4k-qd1` ... `write-128k-qd8`, the ten
//! of the shared benchmark protocol); `bench_jobs` in the settings picks
//! them. Each job warms up for a tenth of its window (at least 20 ms), then
//! counts the requests submitted and completed inside a timed window. The
//! window is bracketed on serial by `BENCH-BEGIN <job>` and `BENCH-END
//! <job>` so a host can sample QEMU's CPU time exactly around it, and each
//! job ends with one `BENCH-RESULT {json}` line.
//!
//! A depth above what the queue allows is capped, and the job is then named
//! with the depth it really ran at (`randread-4k-qd127`). Write jobs run only
//! on a namespace the image owns; on any other namespace they are reported
//! as skipped with the reason (the data-safety rule), while read jobs may
//! run there when the caller allows it (`bench_unowned_reads`). Write jobs
//! are skipped the same way on a zoned namespace (it takes no random
//! writes) and on a write-protected one; a namespace that refuses a write
//! as write-protected during a job stops that job at once (the requests in
//! flight drain, the refusals are not counted as errors) and every later
//! write job is skipped.
//!
//! Latency is submit-to-completion in TSC ticks converted with the
//! calibrated frequency; cycles per I/O are the window's TSC ticks divided
//! by the I/Os completed (the CPU does nothing but submit and poll).
//! `bench_all` runs the same jobs on every namespace at once.

use alloc::string::String;
use alloc::vec::Vec;

use kernel::arch::tsc;
use kernel::console::serial;
use kernel::println;
use kernel::storage::Attached;
use kernel::time;

use crate::async_bench;
use crate::figures::{JobResult, Rng, latency_summary, print_result};

/// Each of the three windows measuring the TSC before the jobs (the boot
/// measures 2 ms windows; the PIT allows at most 54 ms).
const CALIBRATION_WINDOW_NS: u64 = 50_000_000;

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
    /// than the raw queue.
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

/// Jobs run only when named: the `async` path next to the raw queue's
/// (see `async_bench`).
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
pub(crate) fn name_at_depth(job: &Job, depth: usize) -> String {
    if depth == job.depth {
        return String::from(job.name);
    }
    let stem = job
        .name
        .rsplit_once("-qd")
        .map_or(job.name, |(stem, _)| stem);
    alloc::format!("{stem}-qd{depth}")
}

/// The TSC frequency every figure hangs on: measured again against the
/// boot's source, with windows 25 times longer, and a warning if the two
/// disagree.
pub(crate) fn measure_hz() -> u64 {
    let boot_hz = tsc::frequency_hz();
    match time::remeasure(CALIBRATION_WINDOW_NS) {
        time::Remeasurement::Measured { source, hz } => {
            if !time::select::agree(boot_hz, hz) {
                log::warn!(
                    "bench: TSC {} against the {source} (boot calibration said {})",
                    time::Mhz(hz),
                    time::Mhz(boot_hz)
                );
            }
            hz
        }
        time::Remeasurement::Fixed => boot_hz,
        time::Remeasurement::Failed { source, why } => {
            log::warn!(
                "bench: the {source} failed this time ({why}); keeping the boot's TSC {}",
                time::Mhz(boot_hz)
            );
            boot_hz
        }
    }
}

/// Run `jobs` on namespace `nsid` of `attached`, touching only bytes from
/// `data_start`. `writable` says whether the namespace is owned; when it
/// is not, write jobs are skipped and reported so. `write_protected` says
/// whether an earlier step saw the namespace refuse writes (write jobs are
/// then skipped too), and is set when a write job sees it here. The data
/// travels in buffers from the controller's DMA memory, made once per job
/// (a write job's filled once) and handed back by each completion for the
/// next request: nothing is copied per I/O.
pub fn run_all(
    attached: &mut Attached,
    nsid: u32,
    data_start: u64,
    window_ms: u64,
    jobs: &[Job],
    writable: bool,
    write_protected: &mut bool,
) -> Vec<JobResult> {
    let dma = attached.dma;
    let controller = &mut attached.controller;
    let handle = match controller.namespace_handle(nsid) {
        Ok(handle) => handle,
        Err(error) => {
            println!("  bench: namespace {nsid}: {error}; skipped");
            return Vec::new();
        }
    };
    let mut queue = match controller.take_io_queue() {
        Ok(queue) => queue,
        Err(error) => {
            println!("  bench: no I/O queue to spare ({error}); skipped");
            return Vec::new();
        }
    };
    let Some(ns) = controller
        .namespaces()
        .iter()
        .find(|n| n.nsid == nsid)
        .copied()
    else {
        return Vec::new();
    };
    *write_protected |= ns.write_protected
        || controller
            .namespace(nsid)
            .is_ok_and(|device| device.info().write_protected);
    let bs = ns.block_size as u64;
    let first = data_start.div_ceil(bs);
    let blocks = ns.block_count.saturating_sub(first);
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut results = Vec::new();
    // Refills after each poll go to the device with one doorbell write.
    queue.set_doorbell_batching(true);
    let hz = measure_hz();
    println!(
        "  bench: {} job(s), {} ms each after a warm-up, queue depth up to {}",
        jobs.len(),
        window_ms,
        queue.depth()
    );
    for job in jobs {
        let io_blocks = (job.block_bytes as u64 / bs).max(1);
        let io_bytes = io_blocks * bs;
        let depth = job.depth.min(queue.depth());
        let mut result = JobResult {
            name: name_at_depth(job, depth),
            depth,
            block_bytes: io_bytes as usize,
            ..JobResult::default()
        };
        let span = blocks / io_blocks;
        if job.write && ns.zoned.is_some() {
            result.skipped = Some("zoned namespace (no random writes are sent to it)");
        } else if job.write && *write_protected {
            result.skipped = Some("namespace write-protected (no writes are sent to it)");
        } else if job.write && !writable {
            result.skipped = Some("namespace not owned (writes are never sent to it)");
        } else if span == 0 {
            result.skipped = Some("namespace too small");
        }
        // One buffer per request in flight, made before the clock starts.
        let mut buffers = Vec::with_capacity(depth);
        if result.skipped.is_none() {
            for _ in 0..depth {
                match dma.buffer(io_bytes as usize) {
                    Ok(mut buffer) => {
                        if job.write {
                            buffer.as_mut_slice().fill(0x5a);
                        }
                        buffers.push(buffer);
                    }
                    Err(_) => {
                        result.skipped = Some("no DMA memory for the buffers");
                        break;
                    }
                }
            }
        }
        if let Some(reason) = result.skipped {
            println!("  bench: {:<20} skipped: {reason}", result.name);
            results.push(result);
            continue;
        }
        if job.asynchronous {
            let area = async_bench::Area {
                first,
                span,
                io_blocks,
            };
            let window = async_bench::Window { hz, window_ms };
            let (back, result) = async_bench::run(queue, handle, buffers, &area, &window, result);
            print_result(&result);
            results.push(result);
            match back {
                Some(raw) => queue = raw,
                // The queue is gone with requests the device holds.
                None => return results,
            }
            continue;
        }
        let mut rng = Rng(0x1234_5678_9abc_def1 ^ tsc::now());
        let mut sequential = 0u64;
        let warmup_ticks = (hz * window_ms / 10_000).max(hz / 50);
        let warmup_end = tsc::now() + warmup_ticks;
        let mut window_start = 0;
        let mut window_end = u64::MAX;
        let mut measuring = false;
        let mut ended = false;
        let mut ios = 0u64;
        let mut refused = false;
        // A write job sends one write and waits for it before going deep,
        // so a namespace that refuses writes sees only that one.
        let mut writes_confirmed = !job.write;
        latencies.clear();
        loop {
            if refused && queue.in_flight() == 0 {
                if measuring && !ended {
                    serial::print(format_args!("BENCH-END {}\n", result.name));
                }
                break;
            }
            let now = tsc::now();
            if !measuring && now >= warmup_end {
                measuring = true;
                serial::print(format_args!("BENCH-BEGIN {}\n", result.name));
                window_start = tsc::now();
                window_end = window_start + hz * window_ms / 1000;
            }
            let submitting = now < window_end && !refused;
            if measuring && !submitting && !ended {
                // Printed once, as soon as the window has closed.
                serial::print(format_args!("BENCH-END {}\n", result.name));
                ended = true;
            }
            let allowed = if writes_confirmed { depth } else { 1 };
            // Requests in flight: the buffers out (one each).
            while submitting
                && depth - buffers.len() < allowed
                && let Some(buffer) = buffers.pop()
            {
                let slot = if job.random {
                    rng.next() % span
                } else {
                    sequential % span
                };
                sequential += 1;
                let lba = first + slot * io_blocks;
                let tag = tsc::now();
                let submitted = if job.write {
                    queue.submit_write(&handle, lba, buffer, tag)
                } else {
                    queue.submit_read(&handle, lba, buffer, tag)
                };
                if let Err(rejected) = submitted {
                    buffers.push(rejected.buffer);
                    match rejected.error {
                        // A request split over more commands than are free
                        // now: again after the next poll.
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
                let done = tsc::now();
                // Back for the next request (a timed-out one's stays with
                // the queue, which frees it).
                buffers.extend(completion.buffer);
                match completion.result {
                    Ok(()) => writes_confirmed = true,
                    Err(error) if error.refuses_writes() => refused = true,
                    Err(_) => result.errors += 1,
                }
                if measuring && completion.tag >= window_start && done <= window_end {
                    ios += 1;
                    if latencies.len() < latencies.capacity() {
                        let ns = tsc::ticks_to_ns(done - completion.tag);
                        latencies.push(ns.min(u64::from(u32::MAX)) as u32);
                    }
                }
            });
        }
        if refused {
            *write_protected = true;
            result.skipped = Some("namespace refused writes as write-protected; stopped");
            println!(
                "  bench: {:<20} stopped: namespace refused writes (write-protected)",
                result.name
            );
            results.push(result);
            continue;
        }
        let window_ticks = hz * window_ms / 1000;
        let seconds = window_ms as f64 / 1000.0;
        result.ios = ios;
        result.iops = ios as f64 / seconds;
        result.mb_per_s = result.iops * io_bytes as f64 / 1e6;
        result.cycles_per_io = window_ticks.checked_div(ios).unwrap_or(0);
        latency_summary(&mut latencies, &mut result);
        print_result(&result);
        results.push(result);
    }
    queue.set_doorbell_batching(false);
    if controller.return_io_queue(queue).is_err() {
        log::warn!("bench: the I/O queue could not be returned");
    }
    results
}
