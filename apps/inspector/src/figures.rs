//! How what a benchmark job measured is shown: the table on screen, one
//! summary line per job and its `BENCH-RESULT` line on serial. The figures
//! themselves, the jobs' random offsets and the latency summary are
//! inspector-core's (`inspector_core::figures`).

use alloc::string::String;

pub use inspector_core::figures::{JobResult, Rng, latency_summary};
use kernel::console::serial;
use kernel::println;

/// Print results as a table. Rows that name their namespace (the
/// benchmark on every namespace at once) get a namespace column after the
/// job's name.
pub fn print_table(results: &[JobResult]) {
    let namespace_column = results.iter().any(|r| r.namespace.is_some());
    // The job's name, and its namespace where the table has that column.
    let lead = |job: &str, namespace: &str| {
        if namespace_column {
            alloc::format!("{job:<20} {namespace:<16}")
        } else {
            alloc::format!("{job:<20}")
        }
    };
    println!(
        "  {} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        lead("job", "namespace"),
        "IOPS",
        "MB/s",
        "mean us",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "cyc/IO"
    );
    for r in results {
        let lead = lead(&r.name, r.namespace.as_deref().unwrap_or(""));
        if let Some(reason) = r.skipped {
            println!("  {lead} skipped: {reason}");
            continue;
        }
        println!(
            "  {lead} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8}",
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
