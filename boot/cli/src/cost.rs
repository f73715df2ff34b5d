//! `cost`: the driver's own instructions per 4 KiB read, from callgrind.
//!
//! Two runs of the `cost` example against the simulated controller, N and
//! 2N reads: the difference leaves out bring-up exactly. The driver's part
//! is `driver_submit` + `driver_poll` (inclusive) minus the simulated
//! device behind the register calls. The same for the `cost_async`
//! example, whose reads are `AsyncQueue` futures: the raw queue's figure
//! and the async path's are printed one under the other, then the
//! `cost_floor` example's, whose reads are bare futures over the raw queue
//! without the async path's guarantees (the least a future per read can
//! add, for reference). Then the same
//! with 32 reads in flight, the kernel's `cost_executor` example: the
//! benchmark's raw loop and its async job (32 tasks of the executor), each
//! the whole loop (`driver_loop`) less the device.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::workspace::{self, cargo, run_step};

/// The register accesses every example makes through (the simulated
/// device behind them is left out of the count).
const REGISTERS: &str = "nvme_sim::cost::CountedRegisters";

/// Reads of the measured run when none is given.
pub const DEFAULT_READS: u64 = 20_000;

/// One figure `cost` prints: an example, how it is built and run, and
/// what it measures.
struct Measure {
    package: &'static str,
    features: Option<&'static str>,
    example: &'static str,
    /// Arguments before the number of reads.
    args: &'static [&'static str],
    label: &'static str,
}

/// The five figures: depth 1 through the raw queue and the async path
/// (the driver alone), and the floor under the async path's (the least a
/// future per read can add); then 32 reads in flight through the
/// benchmark's raw loop and through 32 tasks of the kernel's executor (the
/// whole loop).
const MEASURES: [Measure; 5] = [
    Measure {
        package: "nvme",
        features: None,
        example: "cost",
        args: &[],
        label: "driver instructions per 4 KiB read (raw queue, submit to completion, depth 1)",
    },
    Measure {
        package: "nvme",
        features: None,
        example: "cost_async",
        args: &[],
        label: "driver instructions per 4 KiB read (async path, future to its result, depth 1)",
    },
    Measure {
        package: "nvme",
        features: None,
        example: "cost_floor",
        args: &[],
        label: "driver instructions per 4 KiB read (floor: a bare future over the raw queue, none of the async path's guarantees, depth 1)",
    },
    Measure {
        package: "kernel",
        features: Some("host-cost"),
        example: "cost_executor",
        args: &["raw"],
        label: "instructions per 4 KiB read, 32 in flight (raw queue, the benchmark's loop)",
    },
    Measure {
        package: "kernel",
        features: Some("host-cost"),
        example: "cost_executor",
        args: &["async"],
        label: "instructions per 4 KiB read, 32 in flight (async path, 32 tasks on the executor)",
    },
];

/// Measure and print the instructions per read.
pub fn run(reads: u64) -> Result<i32> {
    if !workspace::installed("valgrind") {
        workspace::apt_install(&["valgrind"])?;
    }
    for measure in &MEASURES {
        let per_read = per_read(measure, reads)?;
        println!("{}: {per_read:.0}", measure.label);
    }
    Ok(0)
}

/// The instructions per read of one measure.
fn per_read(measure: &Measure, reads: u64) -> Result<f64> {
    let example = measure.example;
    let mut build = cargo();
    build.args([
        "build",
        "--quiet",
        "--release",
        "--package",
        measure.package,
        "--example",
        example,
    ]);
    if let Some(features) = measure.features {
        build.args(["--features", features]);
    }
    run_step(&mut build, &format!("building the {example} example"))?;
    let binary = workspace::target_dir()
        .join("release/examples")
        .join(example);
    let dir = tempfile::tempdir()?;
    let mut counts = Vec::new();
    for (name, n) in [("n.out", reads), ("2n.out", reads * 2)] {
        let out = dir.path().join(name);
        let status = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&binary)
            .args(measure.args)
            .arg(n.to_string())
            .stdout(if n == reads {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::null())
            .status()
            .context("running valgrind")?;
        if !status.success() {
            bail!("the {example} example failed under valgrind");
        }
        let annotated = Command::new("callgrind_annotate")
            .arg("--inclusive=yes")
            .arg(&out)
            .stderr(Stdio::null())
            .output()
            .context("running callgrind_annotate")?;
        counts.push(driver_instructions(
            &String::from_utf8_lossy(&annotated.stdout),
            example,
        ));
    }
    Ok((counts[1] - counts[0]) as f64 / reads as f64)
}

/// Instructions of the driver's submit and poll (or of its whole loop) in
/// the example `example`, less the simulated device's register accesses,
/// from `callgrind_annotate --inclusive=yes`.
pub fn driver_instructions(annotated: &str, example: &str) -> i64 {
    let submit = format!(":{example}::driver_submit [");
    let poll = format!(":{example}::driver_poll [");
    let whole = format!(":{example}::driver_loop [");
    let read = format!(":<{REGISTERS} as nvme::hal::RegisterAccess>::read32 [");
    let write = format!(":<{REGISTERS} as nvme::hal::RegisterAccess>::write32 [");
    let mut total = 0i64;
    for line in annotated.lines().filter(|l| !l.contains("=>")) {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(count) = first.replace(',', "").parse::<i64>() else {
            continue;
        };
        if line.contains(&submit) || line.contains(&poll) || line.contains(&whole) {
            total += count;
        }
        if line.contains(&read) || line.contains(&write) {
            total -= count;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_share_leaves_out_the_device_and_call_arrows() {
        let annotated = "\
1,000 (50.0%)  src/cost.rs:cost::driver_submit [/t/cost]
  400 (20.0%)  src/cost.rs:cost::driver_poll [/t/cost]
  300 (10.0%)  drivers/nvme-sim/src/cost.rs:<nvme_sim::cost::CountedRegisters as nvme::hal::RegisterAccess>::write32 [/t/cost]
  999  => src/cost.rs:cost::driver_poll [/t/cost]
   50          src/other.rs:main [/t/cost]
7,000          src/cost_async.rs:cost_async::driver_submit [/t/cost_async]
";
        // Another example's functions are not this one's.
        assert_eq!(driver_instructions(annotated, "cost"), 1100);
    }

    #[test]
    fn a_whole_loop_counts_once_less_the_device() {
        let annotated = "\
9,000 (90.0%)  kernel/examples/cost_executor.rs:cost_executor::driver_loop [/t/cost_executor]
5,000  => drivers/nvme-sim/src/cost.rs:<nvme_sim::cost::CountedRegisters as nvme::hal::RegisterAccess>::write32 [/t/cost_executor]
5,000 (50.0%)  drivers/nvme-sim/src/cost.rs:<nvme_sim::cost::CountedRegisters as nvme::hal::RegisterAccess>::write32 [/t/cost_executor]
  700 (7.0%)  kernel/src/executor.rs:<kernel::executor::Executor>::block_on [/t/cost_executor]
";
        assert_eq!(driver_instructions(annotated, "cost_executor"), 4000);
    }
}
