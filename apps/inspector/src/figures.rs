//! What a benchmark job measured, and how it is shown: the table on
//! screen, one summary line per job and its `BENCH-RESULT` line on serial.

use alloc::string::String;

use kernel::console::serial;
use kernel::println;

/// What one job measured.
#[derive(Clone, Debug, Default)]
pub struct JobResult {
    /// Job name (with the depth actually used).
    pub name: String,
    /// Depth actually used.
    pub depth: usize,
    /// Bytes per I/O.
    pub block_bytes: usize,
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
    /// Why the job did not run, if it did not.
    pub skipped: Option<&'static str>,
    /// The namespace (`SERIAL/NSID`), or `sum`, of a job run on every
    /// namespace at once (see `bench_all`).
    pub namespace: Option<String>,
}

impl JobResult {
    /// The job as a JSON object (the protocol's `BENCH-RESULT` keys).
    pub fn json(&self) -> String {
        let namespace = self
            .namespace
            .as_ref()
            .map_or(String::new(), |n| alloc::format!(",\"namespace\":\"{n}\""));
        alloc::format!(
            "{{\"job\":\"{}\"{namespace},\"depth\":{},\"block_bytes\":{},\"ios\":{},\"iops\":{:.0},\"mb_per_s\":{:.2},\"lat_mean_us\":{:.2},\"lat_p50_us\":{:.2},\"lat_p99_us\":{:.2},\"lat_p999_us\":{:.2},\"cycles_per_io\":{},\"errors\":{}}}",
            self.name,
            self.depth,
            self.block_bytes,
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
        if let Some(reason) = r.skipped {
            println!("  {:<20} skipped: {reason}", r.name);
            continue;
        }
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

/// The jobs' random offsets (xorshift).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One job's `BENCH-RESULT` line on serial and its summary on screen.
pub(crate) fn print_result(result: &JobResult) {
    serial::print(format_args!("BENCH-RESULT {}\n", result.json()));
    println!(
        "  bench: {:<20} {:>9.0} IOPS {:>8.1} MB/s {:>8} cycles/IO{}",
        result.name,
        result.iops,
        result.mb_per_s,
        result.cycles_per_io,
        result
            .namespace
            .as_ref()
            .map_or(String::new(), |n| alloc::format!("  {n}"))
    );
}

/// Mean, p50, p99 and p99.9 of `latencies` (nanoseconds) into `result`.
pub(crate) fn latency_summary(latencies: &mut [u32], result: &mut JobResult) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    let mean = latencies.iter().map(|&l| u64::from(l)).sum::<u64>() as f64
        / latencies.len() as f64
        / 1000.0;
    result.latency_us = [mean, pick(0.50), pick(0.99), pick(0.999)];
}
