//! What a benchmark job measured ([`JobResult`], with its `BENCH-RESULT`
//! JSON), the jobs' random offsets ([`Rng`]) and the latency summary.

use alloc::string::String;

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
    /// Ticks (TSC cycles in the image) per I/O.
    pub cycles_per_io: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Why the job did not run, if it did not.
    pub skipped: Option<&'static str>,
    /// The namespace (`SERIAL/NSID`), or `sum`, of a job run on every
    /// namespace at once.
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

/// The jobs' random offsets (xorshift; the seed must not be zero).
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    #[allow(
        clippy::should_implement_trait,
        reason = "an endless generator, not an iterator"
    )]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Mean, p50, p99 and p99.9 of `latencies` (nanoseconds) into `result`
/// (left as it is when there are none); `latencies` ends up sorted.
pub fn latency_summary(latencies: &mut [u32], result: &mut JobResult) {
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
