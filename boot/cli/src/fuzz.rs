//! `fuzz`: libFuzzer over the code that trusts device data.

use std::io::{Read, Seek, SeekFrom};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use boot::progress::{Progress, Unit};

use crate::workspace::{self, run_step};

/// Seconds per target when none are given.
const DEFAULT_SECONDS: u64 = 180;
/// The targets (drivers/fuzz/fuzz_targets) and the largest input each needs.
pub const TARGETS: [(&str, usize); 6] = [
    ("identify", 4096),
    ("log_pages", 1024),
    ("bringup", 13312),
    ("completions", 2048),
    ("pci_function", 280),
    ("pci_topology", 4096),
];

/// One positional argument of `fuzz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Argument {
    /// Seconds per target.
    Seconds(u64),
    /// A target to fuzz.
    Target(&'static str),
}

/// A number is the time per target; anything else must name a target.
pub fn parse_argument(text: &str) -> Result<Argument, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Argument::Seconds(seconds));
    }
    TARGETS
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(name, _)| Argument::Target(name))
        .ok_or_else(|| {
            let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            format!(
                "not a number of seconds nor a fuzz target ({})",
                names.join(", ")
            )
        })
}

/// Fuzz the chosen targets for the chosen time each.
pub fn run(arguments: &[Argument]) -> Result<i32> {
    let mut seconds = DEFAULT_SECONDS;
    let mut chosen = Vec::new();
    for argument in arguments {
        match argument {
            Argument::Seconds(s) => seconds = *s,
            Argument::Target(t) => chosen.push(*t),
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|(name, _)| *name).collect();
    }
    let fuzz_dir = workspace::root().join("drivers/fuzz");
    if !Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("run.sh: installing cargo-fuzz from crates.io");
        run_step(
            Command::new("cargo").args(["install", "--locked", "--quiet", "cargo-fuzz"]),
            "installing cargo-fuzz",
        )?;
    }
    eprintln!("run.sh: building the fuzz targets");
    let built = Command::new("cargo")
        .current_dir(&fuzz_dir)
        .args(["fuzz", "build", "--fuzz-dir", "."])
        .output()
        .context("running cargo fuzz")?;
    if !built.status.success() {
        bail!(
            "building the fuzz targets failed (cd drivers/fuzz && cargo fuzz build --fuzz-dir .)"
        );
    }
    let mut failed = 0;
    let total = seconds * chosen.len() as u64;
    let progress = Progress::new("fuzz", total, Unit::Seconds);
    for (done, target) in chosen.iter().enumerate() {
        let target = *target;
        let max_len = TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .map_or(4096, |(_, l)| *l);
        let corpus = workspace::target_dir().join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        progress.step(&format!("fuzzing {target} for {seconds} s"));
        let mut stdout = tempfile::tempfile()?;
        let mut stderr = tempfile::tempfile()?;
        let mut child = Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["fuzz", "run", "--fuzz-dir", ".", target])
            .arg(&corpus)
            .arg(format!("seeds/{target}"))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-max_len={max_len}"))
            .args(["-timeout=10", "-print_final_stats=1"])
            .stdout(stdout.try_clone()?)
            .stderr(stderr.try_clone()?)
            .spawn()
            .context("running cargo fuzz")?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            let elapsed = started.elapsed().as_secs().min(seconds);
            progress.set_position(done as u64 * seconds + elapsed);
            thread::sleep(Duration::from_millis(250));
        };
        progress.set_position((done as u64 + 1) * seconds);
        let output = Output {
            status,
            stdout: read_all(&mut stdout)?,
            stderr: read_all(&mut stderr)?,
        };
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            failed += 1;
            progress.println(&crash_report(&log));
            progress.println(&format!(
                "run.sh: {target}: crash or timeout; the input is in drivers/fuzz/artifacts/{target}"
            ));
        }
        let executions = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map_or("?".to_owned(), |n| n.trim().to_owned());
        progress.print_result(&format!(
            "{target:<14} {executions:>12} executions in {seconds} s"
        ));
    }
    progress.finish();
    if failed > 0 {
        bail!("{failed} fuzz target(s) failed");
    }
    Ok(0)
}

/// Everything written to `file`, from its start.
fn read_all(file: &mut std::fs::File) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The part of libFuzzer's output that says what went wrong: from the
/// first sanitizer error or panic, at most 40 lines; else the last 20.
fn crash_report(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| {
        (l.starts_with("==") && l.contains("ERROR"))
            || (l.starts_with("thread ") && l.contains("panicked"))
    });
    match start {
        Some(at) => lines[at..]
            .iter()
            .take(40)
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
        None => lines[lines.len().saturating_sub(20)..].join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_seconds_and_names_are_targets() {
        assert_eq!(parse_argument("30"), Ok(Argument::Seconds(30)));
        assert_eq!(parse_argument("identify"), Ok(Argument::Target("identify")));
        assert!(parse_argument("floppy").is_err());
    }
}
