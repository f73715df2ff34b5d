//! `test` (every check the project has, in order) and `setup`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use boot::qemu::{self, Firmware};

use crate::workspace::{self, StepFailed, cargo, run_step};

/// Miri's flags: the simulator hands out host memory as DMA addresses and
/// turns them back into pointers, hence permissive provenance; unit tests
/// leak their DMA regions on purpose.
const MIRI_FLAGS: &str = "-Zmiri-permissive-provenance -Zmiri-ignore-leaks";

/// `test`: format, lints, host tests, Miri, kernel tests in QEMU. The
/// first failing step ends the run with its exit status.
pub fn run_tests() -> Result<i32> {
    match every_check() {
        Err(error) => match error.downcast_ref::<StepFailed>() {
            Some(step) => {
                eprintln!("run.sh: {step}");
                Ok(step.code.max(1))
            }
            None => Err(error),
        },
        Ok(()) => Ok(0),
    }
}

fn every_check() -> Result<()> {
    let started = Instant::now();
    let mut log = String::new();
    say("checking format");
    run_step(
        cargo().args(["fmt", "--all", "--", "--check"]),
        "the format check",
    )?;
    say("linting host crates, the kernel and the applications");
    let host_clippy = [
        "clippy",
        "--quiet",
        "--workspace",
        "--exclude",
        "kernel",
        "--exclude",
        "inspector",
        "--exclude",
        "log-store",
        "--all-targets",
    ];
    run_step(
        cargo().args(host_clippy).args(["--", "-D", "warnings"]),
        "clippy (host)",
    )?;
    let kernel_clippy = [
        "clippy",
        "--quiet",
        "--package",
        "kernel",
        "--package",
        "inspector",
        "--package",
        "log-store",
        "--target",
        "x86_64-unknown-none",
    ];
    run_step(
        cargo()
            .args(kernel_clippy)
            .args(["--all-targets", "--", "-D", "warnings"]),
        "clippy (kernel and applications)",
    )?;
    // The kernel's one host program (`./run.sh cost` runs it).
    run_step(
        cargo().args([
            "clippy",
            "--quiet",
            "--package",
            "kernel",
            "--features",
            "host-cost",
            "--example",
            "cost_executor",
            "--",
            "-D",
            "warnings",
        ]),
        "clippy (the kernel's host example)",
    )?;
    say("host tests: boot, drivers");
    logged(
        cargo().args([
            "test",
            "--workspace",
            "--exclude",
            "kernel",
            "--exclude",
            "inspector",
            "--exclude",
            "log-store",
        ]),
        "host tests",
        &mut log,
    )?;
    say("Miri: the drivers' logic and property tests, checked for undefined behaviour");
    for command in miri_commands() {
        let mut command = command;
        logged(&mut command, "Miri", &mut log)?;
    }
    say("kernel tests in QEMU");
    let kernel_tests = [
        "test",
        "--package",
        "kernel",
        "--target",
        "x86_64-unknown-none",
    ];
    logged(cargo().args(kernel_tests), "kernel tests", &mut log)?;
    let (passed, failed) = count_results(&log);
    say(&format!(
        "all tests passed in {} s",
        started.elapsed().as_secs()
    ));
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// Miri over the pure-logic parts (a few minutes): the unit tests of nvme
/// (rings and phase tags, PRP lists, Identify and log parsing), pci,
/// iommu, dma (volatile accesses, custody of lent memory, buffers) and ownership,
/// and the property tests (the block API over the
/// simulator, queued requests split at the transfer limit, the `async`
/// path's requests, random configuration spaces; few cases under Miri).
/// Skipped:
/// the ownership bit-flip sweep and the simulator scenario suites (minutes
/// each when interpreted).
pub fn miri_commands() -> Vec<Command> {
    let miri = |args: &[&str]| {
        let mut command = cargo();
        command
            .args(["miri", "test"])
            .args(args)
            .env("MIRIFLAGS", MIRI_FLAGS);
        command
    };
    vec![
        miri(&[
            "--package",
            "nvme",
            "--package",
            "pci",
            "--lib",
            "--test",
            "props",
            "--test",
            "split_props",
            "--test",
            "async_props",
        ]),
        miri(&["--package", "iommu"]),
        miri(&["--package", "dma"]),
        miri(&[
            "--package",
            "ownership",
            "--lib",
            "--",
            "--skip",
            "no_single_bit_flip_goes_unnoticed",
        ]),
    ]
}

/// Run `command`, echoing its standard output and keeping it in `log`
/// (standard error goes straight through).
fn logged(command: &mut Command, what: &str, log: &mut String) -> Result<()> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let _ = writeln!(out, "{line}");
            log.push_str(&line);
            log.push('\n');
        }
    }
    let status = child.wait()?;
    if !status.success() {
        anyhow::bail!(StepFailed {
            what: what.to_owned(),
            code: status.code().unwrap_or(1)
        });
    }
    Ok(())
}

/// Add up the `test result:` lines every suite printed.
pub fn count_results(log: &str) -> (u64, u64) {
    let mut passed = 0;
    let mut failed = 0;
    for line in log.lines() {
        let Some((_, result)) = line.split_once("test result: ") else {
            continue;
        };
        let Some((_, counts)) = result.split_once(". ") else {
            continue;
        };
        for part in counts.split(';').map(str::trim) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match kind {
                "passed" => passed += n,
                "failed" => failed += n,
                _ => {}
            }
        }
    }
    (passed, failed)
}

/// `setup`: run.sh installed what was missing; check it is all there.
pub fn setup() -> Result<i32> {
    qemu::check_installed(Firmware::Uefi)?;
    if !workspace::installed("cargo") {
        anyhow::bail!("cargo not found: run ./run.sh setup, which installs the toolchain");
    }
    say("set-up complete");
    Ok(0)
}

fn say(message: &str) {
    eprintln!("run.sh: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_of_every_suite_add_up() {
        let log = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured\n\
                   noise\n\
                   test result: FAILED. 3 passed; 2 failed; 0 ignored\n";
        assert_eq!(count_results(log), (15, 2));
        assert_eq!(count_results(""), (0, 0));
    }
}
