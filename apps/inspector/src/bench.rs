//! The fio-like benchmark on one namespace, through an `IoQueue` of its own:
//! the image's side of `inspector_core::bench` (which holds the jobs, what
//! may run where, and the loop that keeps the requests in flight).
//!
//! Here the queue is taken from the controller and given back, the TSC's
//! frequency is measured again before the jobs, and what the jobs report is
//! printed: the window is bracketed on serial by `BENCH-BEGIN <job>` and
//! `BENCH-END <job>` so a host can sample QEMU's CPU time exactly around
//! it, and each job ends with one `BENCH-RESULT {json}` line. The `async`
//! job runs here (`async_bench`); `bench_all` runs the same jobs on every
//! namespace at once.

use alloc::vec::Vec;

pub use inspector_core::bench::{Job, name_at_depth, select};
use inspector_core::bench::{Mark, Plan, Target, plan, run_job};
use inspector_core::figures::JobResult;
use inspector_core::ticks::Ticks;
use kernel::arch::tsc;
use kernel::console::serial;
use kernel::println;
use kernel::storage::Attached;
use kernel::time;

use crate::async_bench;
use crate::figures::print_result;

/// Each of the three windows measuring the TSC before the jobs (the boot
/// measures 2 ms windows; the PIT allows at most 54 ms).
const CALIBRATION_WINDOW_NS: u64 = 50_000_000;

/// The TSC at the frequency measured for the jobs (latencies are converted
/// with the boot's calibration, as everywhere else in the image).
struct TscTicks {
    hz: u64,
}

impl Ticks for TscTicks {
    fn now(&self) -> u64 {
        tsc::now()
    }

    fn hz(&self) -> u64 {
        self.hz
    }

    fn to_ns(&self, ticks: u64) -> u64 {
        tsc::ticks_to_ns(ticks)
    }
}

/// The window's marks on serial.
fn print_mark(mark: Mark<'_>) {
    match mark {
        Mark::Begin(name) => serial::print(format_args!("BENCH-BEGIN {name}\n")),
        Mark::End(name) => serial::print(format_args!("BENCH-END {name}\n")),
    }
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
/// then skipped too), and is set when a write job sees it here.
pub fn run_all(
    attached: &mut Attached,
    nsid: u32,
    data_start: u64,
    window_ms: u64,
    jobs: &[Job],
    writable: bool,
    write_protected: &mut bool,
) -> Vec<JobResult> {
    let home = attached.dma.home();
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
    let target = Target {
        block_size: bs,
        block_count: ns.block_count,
        first: data_start.div_ceil(bs),
        zoned: ns.zoned.is_some(),
        writable,
    };
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut results = Vec::new();
    // Refills after each poll go to the device with one doorbell write.
    queue.set_doorbell_batching(true);
    let ticks = TscTicks { hz: measure_hz() };
    println!(
        "  bench: {} job(s), {} ms each after a warm-up, queue depth up to {}",
        jobs.len(),
        window_ms,
        queue.depth()
    );
    for job in jobs {
        let ready = match plan(job, &target, queue.depth(), *write_protected, &home) {
            Plan::Run(ready) => ready,
            Plan::Skip(result) => {
                if let Some(reason) = result.skipped {
                    println!("  bench: {:<20} skipped: {reason}", result.name);
                }
                results.push(result);
                continue;
            }
        };
        if job.asynchronous {
            let area = async_bench::Area {
                first: ready.area.first,
                span: ready.area.span,
                io_blocks: ready.area.io_blocks,
            };
            let window = async_bench::Window {
                hz: ticks.hz,
                window_ms,
            };
            let (back, result) =
                async_bench::run(queue, handle, ready.buffers, &area, &window, ready.result);
            print_result(&result);
            results.push(result);
            match back {
                Some(raw) => queue = raw,
                // The queue is gone with requests the device holds.
                None => return results,
            }
            continue;
        }
        let result = run_job(
            &mut queue,
            &handle,
            ready,
            &ticks,
            window_ms,
            &mut latencies,
            &mut print_mark,
        );
        if result.skipped.is_some() {
            *write_protected = true;
            println!(
                "  bench: {:<20} stopped: namespace refused writes (write-protected)",
                result.name
            );
        } else {
            print_result(&result);
        }
        results.push(result);
    }
    queue.set_doorbell_batching(false);
    if controller.return_io_queue(queue).is_err() {
        log::warn!("bench: the I/O queue could not be returned");
    }
    results
}
