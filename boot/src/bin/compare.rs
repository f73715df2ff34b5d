//! `compare`: the unikernel's benchmark against Linux + fio on the same
//! emulated NVMe device (see `boot::compare`).
//!
//! ```text
//! compare [--runs N] [--seconds S] [--ramp S] [--jobs all|LIST]
//!         [--backend file|null] [--systems unikernel,io_uring,libaio]
//!         [--results PATH] [--page-only] [--host-halt-poll-ns NS]
//! ```
//! `--page-only --results PATH` rewrites the page and its plots from the
//! runs file beside it, without booting anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use boot::compare::{self, ALL_JOBS, Backend, Options, System, report};

const USAGE: &str = "usage: compare [--runs N] [--seconds S] [--ramp S] [--jobs all|short|LIST] \
                     [--backend file|null] [--systems unikernel,io_uring,libaio] [--results PATH] \
                     [--page-only] [--host-halt-poll-ns NS]";
/// The default application's short set.
const SHORT_JOBS: [&str; 5] = [
    "randread-4k-qd1",
    "randread-4k-qd32",
    "randwrite-4k-qd32",
    "read-128k-qd8",
    "write-128k-qd8",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compare: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let mut options = Options {
        runs: 3,
        seconds: 3,
        ramp: 1,
        jobs: ALL_JOBS.iter().map(|s| s.to_string()).collect(),
        backend: Backend::File,
        systems: System::ALL.to_vec(),
        results: None,
        workspace,
        target_dir,
        host_halt_poll_ns: None,
    };
    let mut rest = args.iter();
    let mut page_only = false;
    while let Some(flag) = rest.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        if flag == "--page-only" {
            page_only = true;
            continue;
        }
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value ({USAGE})"))?;
        let number = || -> Result<u32> {
            match value.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!("{flag} needs a positive whole number, not {value:?}"),
            }
        };
        match flag.as_str() {
            "--runs" => options.runs = number()?,
            "--seconds" => options.seconds = number()?,
            "--ramp" => options.ramp = number()?,
            "--jobs" => options.jobs = jobs(value)?,
            "--backend" => {
                options.backend = match value.as_str() {
                    "file" => Backend::File,
                    "null" => Backend::Null,
                    other => bail!("--backend is file or null, not {other:?}"),
                }
            }
            "--systems" => {
                options.systems = Vec::new();
                for name in value.split(',') {
                    let system = System::ALL
                        .into_iter()
                        .find(|s| s.name() == name)
                        .with_context(|| {
                            format!("--systems takes unikernel, io_uring, libaio; not {name:?}")
                        })?;
                    options.systems.push(system);
                }
            }
            "--results" => options.results = Some(PathBuf::from(value)),
            "--host-halt-poll-ns" => options.host_halt_poll_ns = Some(u64::from(number()?)),
            other => bail!("unknown option {other} ({USAGE})"),
        }
    }
    let work = options.target_dir.join("compare").join("plot");
    if page_only {
        let page = options
            .results
            .as_ref()
            .context("--page-only needs --results PATH")?;
        report::rewrite_page(page, &work)?;
        println!("Results page: {} (from its runs file)", page.display());
        return Ok(());
    }
    let comparison = compare::run(&options)?;
    let summaries = report::summarize(&comparison);
    println!(
        "\n{} backend, {} rounds, {} s per job; medians (min–max)\n",
        comparison.backend.name(),
        options.runs,
        options.seconds
    );
    println!("{}", report::tables(&summaries));
    println!(
        "The comparison took {:.0} s.",
        comparison.environment.total_seconds
    );
    if let Some(page) = &options.results {
        report::write_results(page, comparison, &work)?;
        println!("Results page: {}", page.display());
    }
    Ok(())
}

fn jobs(list: &str) -> Result<Vec<String>> {
    match list {
        "all" => return Ok(ALL_JOBS.iter().map(|s| s.to_string()).collect()),
        "short" => return Ok(SHORT_JOBS.iter().map(|s| s.to_string()).collect()),
        _ => {}
    }
    let mut jobs = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !ALL_JOBS.contains(&name) {
            bail!("unknown job {name:?}; jobs are: {}", ALL_JOBS.join(", "));
        }
        jobs.push(name.to_owned());
    }
    if jobs.is_empty() {
        bail!("--jobs names no job");
    }
    Ok(jobs)
}
