//! A short fio-like benchmark on one owned namespace, through an `IoQueue`:
//! random 4 KiB reads at depth 1 and 32, random 4 KiB writes at depth 32,
//! sequential 128 KiB reads and writes at depth 8. Each job warms up for a
//! tenth of its time, then counts completions in a timed window.
//!
//! Latency is submit-to-completion in TSC ticks converted with the
//! calibrated frequency; cycles per I/O are the window's TSC ticks divided
//! by the I/Os completed (the CPU does nothing but poll).

use alloc::string::String;
use alloc::vec::Vec;

use kernel::arch::tsc;
use kernel::println;
use kernel::storage::NvmeController;

/// One benchmark job.
#[derive(Clone, Copy, Debug)]
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
}

/// The default job list.
pub const JOBS: [Job; 5] = [
    Job {
        name: "randread-4k-qd1",
        write: false,
        random: true,
        block_bytes: 4096,
        depth: 1,
    },
    Job {
        name: "randread-4k-qd32",
        write: false,
        random: true,
        block_bytes: 4096,
        depth: 32,
    },
    Job {
        name: "randwrite-4k-qd32",
        write: true,
        random: true,
        block_bytes: 4096,
        depth: 32,
    },
    Job {
        name: "read-128k-qd8",
        write: false,
        random: false,
        block_bytes: 128 * 1024,
        depth: 8,
    },
    Job {
        name: "write-128k-qd8",
        write: true,
        random: false,
        block_bytes: 128 * 1024,
        depth: 8,
    },
];

/// What one job measured.
#[derive(Clone, Debug, Default)]
pub struct JobResult {
    /// Job name (with the depth actually used).
    pub name: String,
    /// I/Os completed in the window.
    pub ios: u64,
    /// I/Os per second.
    pub iops: f64,
    /// Megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Latency mean, p50, p99, p99.9 in microseconds.
    pub latency_us: [f64; 4],
    /// TSC cycles per I/O.
    pub cycles_per_io: u64,
    /// Requests that ended in an error.
    pub errors: u64,
}

impl JobResult {
    /// The job as a JSON object.
    pub fn json(&self) -> String {
        alloc::format!(
            "{{\"job\":\"{}\",\"ios\":{},\"iops\":{:.0},\"mb_per_s\":{:.2},\"lat_mean_us\":{:.2},\"lat_p50_us\":{:.2},\"lat_p99_us\":{:.2},\"lat_p999_us\":{:.2},\"cycles_per_io\":{},\"errors\":{}}}",
            self.name,
            self.ios,
            self.iops,
            self.mb_per_s,
            self.latency_us[0],
            self.latency_us[1],
            self.latency_us[2],
            self.latency_us[3],
            self.cycles_per_io,
            self.errors
        )
    }
}

/// Print results as a table.
pub fn print_table(results: &[JobResult]) {
    println!(
        "  {:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "job", "IOPS", "MB/s", "mean us", "p50 us", "p99 us", "p99.9 us", "cyc/IO"
    );
    for r in results {
        println!(
            "  {:<20} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8}",
            r.name,
            r.iops,
            r.mb_per_s,
            r.latency_us[0],
            r.latency_us[1],
            r.latency_us[2],
            r.latency_us[3],
            r.cycles_per_io
        );
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Run every job on namespace `nsid`, touching only bytes from `data_start`.
pub fn run_all(
    controller: &mut NvmeController,
    nsid: u32,
    data_start: u64,
    window_ms: u64,
) -> Vec<JobResult> {
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
    let bs = ns.block_size as u64;
    let first = data_start.div_ceil(bs);
    let blocks = ns.block_count.saturating_sub(first);
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut results = Vec::new();
    let write_data = alloc::vec![0x5au8; queue.buffer_size()];
    println!("  bench: {} ms per job after a warm-up", window_ms);
    for job in JOBS {
        let io_bytes = job.block_bytes.min(queue.buffer_size()) as u64;
        let io_blocks = (io_bytes / bs).max(1);
        let depth = job.depth.min(queue.depth());
        let span = blocks / io_blocks;
        if span == 0 {
            continue;
        }
        let mut rng = Rng(0x1234_5678_9abc_def1 ^ tsc::now());
        let mut sequential = 0u64;
        let mut result = JobResult {
            name: String::from(job.name),
            ..JobResult::default()
        };
        let hz = tsc::frequency_hz();
        let warmup_end = tsc::now() + hz * window_ms / 10_000;
        let mut window_start = 0;
        let mut window_end = u64::MAX;
        let mut measuring = false;
        let mut ios = 0u64;
        latencies.clear();
        loop {
            let now = tsc::now();
            if !measuring && now >= warmup_end {
                measuring = true;
                window_start = now;
                window_end = now + hz * window_ms / 1000;
            }
            let submitting = now < window_end;
            while submitting && queue.in_flight() < depth {
                let slot = if job.random {
                    rng.next() % span
                } else {
                    sequential % span
                };
                sequential += 1;
                let lba = first + slot * io_blocks;
                let tag = tsc::now();
                let submitted = if job.write {
                    queue.submit_write(nsid, lba, &write_data[..io_bytes as usize], tag)
                } else {
                    queue.submit_read(nsid, lba, io_blocks as u32, tag)
                };
                if submitted.is_err() {
                    result.errors += 1;
                    break;
                }
            }
            if !submitting && queue.in_flight() == 0 {
                break;
            }
            queue.poll(|completion, _| {
                let done = tsc::now();
                if completion.result.is_err() {
                    result.errors += 1;
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
        let seconds = window_ms as f64 / 1000.0;
        result.ios = ios;
        result.iops = ios as f64 / seconds;
        result.mb_per_s = result.iops * io_bytes as f64 / 1e6;
        result.cycles_per_io = (window_end - window_start).checked_div(ios).unwrap_or(0);
        if !latencies.is_empty() {
            latencies.sort_unstable();
            let pick =
                |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
            let mean = latencies.iter().map(|&l| u64::from(l)).sum::<u64>() as f64
                / latencies.len() as f64
                / 1000.0;
            result.latency_us = [mean, pick(0.50), pick(0.99), pick(0.999)];
        }
        if depth != job.depth {
            result.name = alloc::format!("{} (qd{depth})", job.name);
        }
        println!("  bench: {:<20} {:>9.0} IOPS", result.name, result.iops);
        results.push(result);
    }
    results
}
