//! `./run.sh`'s program: every subcommand and option, parsed by clap.
//!
//! `run.sh` installs what is missing (toolchain, QEMU, OVMF, Miri), builds
//! this program and hands it the command line. Bad options and values are
//! clap's errors, exit status 2. Without a subcommand it runs the default
//! application. `runner` (hidden) is what cargo calls for every kernel
//! binary built for `x86_64-unknown-none` (see `.cargo/config.toml`).

mod bench_runs;
mod boot_kernel;
mod checks;
mod cost;
mod fuzz;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The bare-metal NVMe unikernel: build, boot, test, benchmark, flash.
#[derive(Debug, Parser)]
#[command(
    name = "run.sh",
    bin_name = "./run.sh",
    args_conflicts_with_subcommands = true,
    after_help = after_help()
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot the application in QEMU (the default command)
    ///
    /// Build the application (--app, default apps/inspector) and its bootable image, create the scratch NVMe disk
    /// if there is none (stamped as owned), boot it in QEMU and run the
    /// application; serial output is shown here.
    Run(RunArgs),
    /// Every test: lints, host tests, Miri, kernel tests in QEMU
    ///
    /// Format and lint checks, host tests of the host and driver crates,
    /// the drivers' logic under Miri, then the kernel tests in QEMU.
    Test,
    /// The fio-like benchmark alone, on a fresh owned disk
    ///
    /// The fio-like benchmark alone (optimised build unless --debug) on a
    /// FRESH owned disk (disks/bench.img, re-created and stamped every run);
    /// prints the table, and on serial BENCH-BEGIN/END/RESULT lines per job
    /// and BENCH-FIRST-IO-MS.
    Bench(BenchArgs),
    /// The benchmark against Debian's Linux + fio on the same NVMe device
    ///
    /// The unikernel's benchmark against Debian's Linux + fio (io_uring with
    /// hipri, and libaio) on the same emulated NVMe device, boots alternating
    /// round after round, each on a fresh disk; prints medians, ranges, the
    /// ratio and QEMU's thread load per job. The Linux guest is built once
    /// from Debian packages (apt-get download, no install).
    Compare(CompareArgs),
    /// The driver's own instructions per 4 KiB read (callgrind)
    ///
    /// The driver's own instructions per 4 KiB read, submit to completion,
    /// on the raw queue and on the async path (a future per read), against
    /// the simulated controller, counted with valgrind's callgrind
    /// (installed with apt-get when missing). Also: bench --driver-cost.
    Cost(CostArgs),
    /// Fuzz the code that trusts device data (cargo-fuzz)
    ///
    /// Fuzz the code that trusts device data (Identify and log pages,
    /// completion entries, PCI configuration space) with cargo-fuzz /
    /// libFuzzer; prints executions per target. Seeds in drivers/fuzz/seeds,
    /// the growing corpus in the target directory, crash inputs in
    /// drivers/fuzz/artifacts. Installs cargo-fuzz (crates.io) when missing.
    Fuzz(FuzzArgs),
    /// Long run of verified random reads and writes on the scratch disk
    ///
    /// Random mixed 4 KiB reads and writes at depth 32 on the scratch disk
    /// for SECONDS, every block's content verified; prints I/Os,
    /// verification failures, errors.
    Soak(SoakArgs),
    /// Mark an existing raw disk image as owned by the unikernel
    ///
    /// Writes the ownership signature for controller SERIAL, namespace 1.
    /// Only owned namespaces are ever written.
    Stamp(StampArgs),
    /// Build the bootable image only and print its path.
    Image(ImageArgs),
    /// Write the image to a USB stick (or a file)
    ///
    /// The image boots under BIOS and UEFI. Refuses devices that are
    /// mounted, hold the running system, or are not removable; asks before
    /// writing; verifies after.
    Flash(FlashArgs),
    /// Install what is missing (toolchain, QEMU, OVMF) and stop
    ///
    /// run.sh installs them before handing over; this checks they are there.
    Setup,
    /// Cargo's runner: boot one kernel ELF as a test and judge it.
    #[command(hide = true)]
    Runner {
        /// The kernel ELF cargo built.
        kernel: PathBuf,
        /// Arguments cargo passes on to the test binary (ignored).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
}

/// Which kernel binary to build, and how.
#[derive(Clone, Debug, Args)]
pub struct BuildArgs {
    /// Optimised build (default: debug build; bench: optimised).
    #[arg(long, overrides_with = "debug")]
    release: bool,
    /// Debug build (for bench).
    #[arg(long, overrides_with = "release")]
    debug: bool,
    /// Application crate to build: a directory with a Cargo.toml whose
    /// binary depends on the kernel library, in the workspace or anywhere
    /// else (absolute, or relative to the repository).
    #[arg(long, value_name = "PATH", default_value = "apps/inspector")]
    app: PathBuf,
    /// Boot this kernel ELF instead of building --app.
    #[arg(long, value_name = "PATH", hide = true)]
    kernel: Option<PathBuf>,
    /// Settings file handed to the application (see README: steps, verify
    /// span, benchmark time, log level, claims).
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
}

/// The machine QEMU boots.
#[derive(Clone, Debug, Args)]
pub struct MachineArgs {
    /// Boot through UEFI firmware (OVMF) instead of BIOS.
    #[arg(long, overrides_with = "bios")]
    uefi: bool,
    /// Boot through BIOS (SeaBIOS; the default).
    #[arg(long, overrides_with = "uefi")]
    bios: bool,
    /// Show QEMU's window (the framebuffer console).
    #[arg(long, overrides_with = "headless")]
    window: bool,
    /// No window, serial only (default).
    #[arg(long, overrides_with = "window")]
    headless: bool,
    /// QEMU machine: pc or q35, with options (q35,pit=off).
    #[arg(long, value_name = "TYPE", default_value = "pc")]
    machine: String,
    /// Guest memory.
    #[arg(long, value_name = "SIZE", default_value = "512M")]
    memory: String,
    /// Kill QEMU after this long (default 600; soak and bench: long enough
    /// for their work).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Size of a disk that has to be created (K, M, G, T suffixes).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    disk_size: u64,
    /// Where the bootable image goes (default: beside the kernel ELF).
    #[arg(long, value_name = "PATH", hide = true)]
    out: Option<PathBuf>,
    /// One extra QEMU argument (repeatable); or put them after --.
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    qemu_arg: Vec<String>,
    /// Extra QEMU arguments.
    #[arg(last = true, value_name = "QEMU-ARGS")]
    qemu_args: Vec<String>,
}

/// `run`: the default application.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Scratch NVMe disk image (default disks/scratch.img); repeat for more
    /// disks, one NVMe controller each. Created, sparse, when missing.
    #[arg(long, value_name = "PATH")]
    disk: Vec<PathBuf>,
    #[command(flatten)]
    build: BuildArgs,
    #[command(flatten)]
    machine: MachineArgs,
}

/// What stores the benchmark disk's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// A raw file.
    File,
    /// QEMU's null-co driver: reads return zeroes, no file.
    Null,
}

/// `bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Comma list of randread-4k-qd1|8|32|128, randwrite-4k-qd1|8|32|128,
    /// read-128k-qd8, write-128k-qd8, or all; also randread-4k-qd32-async
    /// (the same reads through the async path, by name only).
    #[arg(long, value_name = "LIST", default_value = "all", value_parser = parse_bench_jobs)]
    jobs: String,
    /// Timed window per job.
    #[arg(long, value_name = "S", default_value = "2", value_parser = parse_seconds)]
    seconds: f64,
    /// null: QEMU's null-co driver (reads return zeroes, no file): read jobs
    /// only, write jobs are reported as skipped.
    #[arg(long, value_enum, default_value = "file")]
    backend: BackendArg,
    /// Namespaces of the benchmark's controller, each a fresh owned disk
    /// (disks/bench.img, disks/bench-ns2.img, ...). Above 1, every job runs
    /// on all of them at once, each with its own queue: one row per
    /// namespace and their sum (setting bench_all_namespaces).
    #[arg(long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=16))]
    namespaces: u32,
    /// Boots of the benchmark, one after the other (each on a fresh disk);
    /// above 1, each job's median IOPS and, for an -async job run with
    /// its twin, their ratio in every run.
    #[arg(long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=50))]
    runs: u32,
    /// Count the driver's instructions per read instead (as `cost`).
    #[arg(long)]
    driver_cost: bool,
    #[command(flatten)]
    build: BuildArgs,
    #[command(flatten)]
    machine: MachineArgs,
}

/// `compare`.
#[derive(Clone, Debug, Args)]
pub struct CompareArgs {
    /// Rounds; each boots every system once.
    #[arg(long, value_name = "N", default_value = "3", value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Timed window per job.
    #[arg(long, value_name = "S", default_value = "3", value_parser = clap::value_parser!(u32).range(1..))]
    seconds: u32,
    /// Warm-up before each timed window.
    #[arg(long, value_name = "S", default_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    ramp: u32,
    /// all (the ten jobs), short (the default application's five) or a
    /// comma list of job names.
    #[arg(long, value_name = "LIST", default_value = "all", value_parser = parse_compare_jobs)]
    jobs: JobList,
    /// What stores the disk's blocks.
    #[arg(long, value_enum, default_value = "file")]
    backend: BackendArg,
    /// Comma list of unikernel, io_uring, libaio.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "unikernel,io_uring,libaio", value_parser = ["unikernel", "io_uring", "libaio"])]
    systems: Vec<String>,
    /// Also write the results page (e.g. docs/benchmark.md), its plots and
    /// the raw runs.
    #[arg(long, value_name = "PATH")]
    results: Option<PathBuf>,
    /// Rewrite the page and its plots from the runs file beside it, without
    /// booting anything.
    #[arg(long, requires = "results")]
    page_only: bool,
    /// (root) Let the host's idle CPUs poll NS before halting during the
    /// run (cpuidle haltpoll), restored after.
    #[arg(long, value_name = "NS", value_parser = clap::value_parser!(u64).range(1..))]
    host_halt_poll_ns: Option<u64>,
}

/// `cost`.
#[derive(Clone, Debug, Args)]
pub struct CostArgs {
    /// Reads in the measured run (a second run does twice as many; the
    /// difference leaves out bring-up).
    #[arg(value_name = "READS", default_value = "20000", value_parser = clap::value_parser!(u64).range(1..))]
    reads: u64,
}

/// `fuzz`.
#[derive(Clone, Debug, Args)]
pub struct FuzzArgs {
    /// SECONDS per target (default 180) and the TARGETs to fuzz (default:
    /// every one), in any order.
    #[arg(value_name = "SECONDS|TARGET", value_parser = fuzz::parse_argument)]
    arguments: Vec<fuzz::Argument>,
}

/// `soak`.
#[derive(Clone, Debug, Args)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(value_name = "SECONDS", default_value = "600", value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    #[command(flatten)]
    run: RunArgs,
}

/// `stamp`.
#[derive(Clone, Debug, Args)]
pub struct StampArgs {
    /// The raw disk image.
    path: PathBuf,
    /// Controller serial the signature is made for (the serial ./run.sh
    /// gives its first disk).
    #[arg(long, default_value = "UNIKERNEL0")]
    serial: String,
}

/// `image`.
#[derive(Clone, Debug, Args)]
pub struct ImageArgs {
    /// Where the image goes (default: in the target directory).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    #[command(flatten)]
    build: BuildArgs,
}

/// `flash`.
#[derive(Clone, Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["device", "to_file"])))]
pub struct FlashArgs {
    /// The USB stick's block device, such as /dev/sdb.
    device: Option<PathBuf>,
    /// Write the same image to a file instead.
    #[arg(long, value_name = "PATH")]
    to_file: Option<PathBuf>,
    /// Do not ask before writing.
    #[arg(long)]
    yes: bool,
    /// Also write a device that does not say it is removable.
    #[arg(long)]
    allow_non_removable: bool,
    /// Application crate to build: a directory with a Cargo.toml whose
    /// binary depends on the kernel library, in the workspace or anywhere
    /// else (absolute, or relative to the repository).
    #[arg(long, value_name = "PATH", default_value = "apps/inspector")]
    app: PathBuf,
    /// Settings file put on the stick.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
}

/// The closing lines of `--help`: the default command, exit statuses.
fn after_help() -> String {
    let statuses: Vec<String> = boot::qemu::EXIT_STATUSES
        .iter()
        .map(|(status, meaning)| format!("{status} {meaning}"))
        .collect();
    format!(
        "Without a command: run. Exit status of run, bench and soak: the kernel's ({}); \
         2 also for a bad command line.\nEnvironment: CARGO_TARGET_DIR is honoured.",
        statuses.join(", ")
    )
}

fn parse_size(text: &str) -> Result<u64, String> {
    boot::disk::parse_size(text).map_err(|e| format!("{e:#}"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err("a positive number of seconds".into()),
    }
}

/// Jobs of `bench` alone (the comparison with Linux has no counterpart):
/// run only when named.
const BENCH_ONLY_JOBS: [&str; 1] = ["randread-4k-qd32-async"];

fn parse_bench_jobs(text: &str) -> Result<String, String> {
    if text == "all" {
        return Ok(text.into());
    }
    let (own, protocol): (Vec<&str>, Vec<&str>) = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .partition(|name| BENCH_ONLY_JOBS.contains(name));
    let mut names = if protocol.is_empty() {
        Vec::new()
    } else {
        check_jobs(&protocol.join(","))?
    };
    names.extend(own.into_iter().map(String::from));
    if names.is_empty() {
        return Err("names no job".into());
    }
    Ok(names.join(","))
}

/// The jobs `compare` runs, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobList(Vec<String>);

fn parse_compare_jobs(text: &str) -> Result<JobList, String> {
    match text {
        "all" => Ok(JobList(compare::ALL_JOBS.map(String::from).to_vec())),
        "short" => Ok(JobList(compare::SHORT_JOBS.map(String::from).to_vec())),
        _ => check_jobs(text).map(JobList),
    }
}

fn check_jobs(text: &str) -> Result<Vec<String>, String> {
    let all = compare::ALL_JOBS;
    let mut jobs = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !all.contains(&name) {
            return Err(format!(
                "unknown job {name:?}; jobs are: {}",
                all.join(", ")
            ));
        }
        jobs.push(name.to_owned());
    }
    if jobs.is_empty() {
        return Err("names no job".into());
    }
    Ok(jobs)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => boot_kernel::run(&cli.run),
        Some(command) => dispatch(command),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(error) => {
            eprintln!("run.sh: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => boot_kernel::run(&args),
        Command::Test => checks::run_tests(),
        Command::Bench(args) if args.driver_cost => cost::run(cost::DEFAULT_READS),
        Command::Bench(args) => boot_kernel::bench(&args),
        Command::Compare(args) => boot_kernel::compare(&args),
        Command::Cost(args) => cost::run(args.reads),
        Command::Fuzz(args) => fuzz::run(&args.arguments),
        Command::Soak(args) => boot_kernel::soak(&args),
        Command::Stamp(args) => {
            boot::disk::stamp(&args.path, &args.serial, 1)?;
            println!(
                "{}: stamped as owned by controller {}, namespace 1",
                args.path.display(),
                args.serial
            );
            Ok(0)
        }
        Command::Image(args) => boot_kernel::image(&args),
        Command::Flash(args) => boot_kernel::flash(&args),
        Command::Setup => checks::setup(),
        Command::Runner { kernel, rest: _ } => boot::runner::main(&kernel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_run_with_its_options() {
        let cli = Cli::try_parse_from(["run.sh", "--uefi", "--disk", "a.img", "--", "-s"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.run.machine.uefi);
        assert_eq!(cli.run.disk, [PathBuf::from("a.img")]);
        assert_eq!(cli.run.machine.qemu_args, ["-s"]);
    }

    #[test]
    fn later_switches_override_earlier_ones() {
        let cli = Cli::try_parse_from([
            "run.sh",
            "run",
            "--uefi",
            "--bios",
            "--window",
            "--headless",
        ])
        .unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!("run")
        };
        assert!(!run.machine.uefi && !run.machine.window);
    }

    #[test]
    fn bench_takes_the_async_job_by_name_only() {
        assert_eq!(
            parse_bench_jobs("randread-4k-qd32, randread-4k-qd32-async").as_deref(),
            Ok("randread-4k-qd32,randread-4k-qd32-async")
        );
        assert_eq!(
            parse_bench_jobs("randread-4k-qd32-async").as_deref(),
            Ok("randread-4k-qd32-async")
        );
        assert!(parse_bench_jobs("randread-4k-qd33").is_err());
        assert!(parse_bench_jobs(",").is_err());
        assert!(parse_compare_jobs("randread-4k-qd32-async").is_err());
    }

    #[test]
    fn compare_job_sets_expand() {
        let cli = Cli::try_parse_from([
            "run.sh",
            "compare",
            "--jobs",
            "short",
            "--systems",
            "unikernel,libaio",
        ])
        .unwrap();
        let Some(Command::Compare(args)) = cli.command else {
            panic!("compare")
        };
        assert_eq!(args.jobs.0, compare::SHORT_JOBS);
        assert_eq!(args.systems, ["unikernel", "libaio"]);
    }
}
