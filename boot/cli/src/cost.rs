//! `cost`: the driver's own instructions per 4 KiB read, from callgrind.
//!
//! Two runs of the `cost` example against the simulated controller, N and
//! 2N reads: the difference leaves out bring-up exactly. The driver's part
//! is `driver_submit` + `driver_poll` (inclusive) minus the simulated
//! device behind the register calls. The same for the `cost_async`
//! example, whose reads are `AsyncQueue` futures: the raw queue's figure
//! and the async path's are printed one under the other.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::workspace::{self, cargo, run_step};

/// Reads of the measured run when none is given.
pub const DEFAULT_READS: u64 = 20_000;

/// Measure and print the instructions per read.
pub fn run(reads: u64) -> Result<i32> {
    if !workspace::installed("valgrind") {
        workspace::apt_install(&["valgrind"])?;
    }
    for (example, path) in [
        ("cost", "raw queue, submit to completion"),
        ("cost_async", "async path, future to its result"),
    ] {
        let per_read = per_read(example, reads)?;
        println!("driver instructions per 4 KiB read ({path}, depth 1): {per_read:.0}");
    }
    Ok(0)
}

/// The driver's instructions per read of the example `example`.
fn per_read(example: &str, reads: u64) -> Result<f64> {
    run_step(
        cargo().args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "nvme",
            "--example",
            example,
        ]),
        &format!("building the {example} example"),
    )?;
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

/// Instructions of the driver's submit and poll in the example `example`,
/// less the simulated device's register accesses, from
/// `callgrind_annotate --inclusive=yes`.
pub fn driver_instructions(annotated: &str, example: &str) -> i64 {
    let submit = format!(":{example}::driver_submit [");
    let poll = format!(":{example}::driver_poll [");
    let read = format!(":<{example}::Registers as nvme::hal::RegisterAccess>::read32 [");
    let write = format!(":<{example}::Registers as nvme::hal::RegisterAccess>::write32 [");
    let mut total = 0i64;
    for line in annotated.lines().filter(|l| !l.contains("=>")) {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(count) = first.replace(',', "").parse::<i64>() else {
            continue;
        };
        if line.contains(&submit) || line.contains(&poll) {
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
  300 (10.0%)  src/cost.rs:<cost::Registers as nvme::hal::RegisterAccess>::write32 [/t/cost]
  999  => src/cost.rs:cost::driver_poll [/t/cost]
   50          src/other.rs:main [/t/cost]
";
        assert_eq!(driver_instructions(annotated, "cost"), 1100);
        assert_eq!(driver_instructions(annotated, "cost_async"), 0);
    }
}
