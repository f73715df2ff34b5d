//! The commands that build a kernel and boot or write it: run, bench, soak,
//! image, flash; and compare, which boots the unikernel and Linux in turn.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use boot::progress::{Progress, Unit};
use boot::qemu::{self, Firmware, Machine, NvmeDisk};
use boot::{disk, flash, image, runner};

use crate::{BackendArg, BenchArgs, BuildArgs, CompareArgs, FlashArgs, ImageArgs, MachineArgs};
use crate::{RunArgs, SoakArgs};
use crate::{bench_runs, workspace};
use compare::parse::SerialLine;

/// Where the disks live when none is named.
const SCRATCH_DISK: &str = "disks/scratch.img";
/// The benchmark's own disk, re-created every run.
const BENCH_DISK: &str = "disks/bench.img";
/// Timeout of a plain run.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// How the disks of one boot are made.
#[derive(Clone, Copy)]
enum Disks<'a> {
    /// These files (made and stamped when missing).
    Files { paths: &'a [PathBuf], fresh: bool },
    /// One controller on QEMU's null-co driver.
    Null,
    /// One controller holding these files as namespaces 1, 2, ...,
    /// re-created and stamped.
    Namespaces(&'a [PathBuf]),
}

/// `run`: the default application on the scratch disk(s).
pub fn run(args: &RunArgs) -> Result<i32> {
    let kernel = kernel_elf(&args.build, false)?;
    let settings = read_settings(args.build.settings.as_deref(), "")?;
    let default = [PathBuf::from(SCRATCH_DISK)];
    let paths = if args.disk.is_empty() {
        &default[..]
    } else {
        &args.disk
    };
    let timeout = args
        .machine
        .timeout
        .map_or(RUN_TIMEOUT, Duration::from_secs);
    boot(
        &kernel,
        settings,
        &args.machine,
        Disks::Files {
            paths,
            fresh: false,
        },
        timeout,
        &[],
        Box::new(std::io::stdout()),
    )
}

/// `soak`: the long mixed read/write run with verification.
pub fn soak(args: &SoakArgs) -> Result<i32> {
    let kernel = kernel_elf(&args.run.build, false)?;
    let generated = format!(
        "steps = identify,soak\nsoak_ms = {}\nsoak_span = 256M\n",
        args.seconds * 1000
    );
    let settings = read_settings(args.run.build.settings.as_deref(), &generated)?;
    let default = [PathBuf::from(SCRATCH_DISK)];
    let paths = if args.run.disk.is_empty() {
        &default[..]
    } else {
        &args.run.disk
    };
    let timeout = args.run.machine.timeout.unwrap_or(args.seconds + 300);
    let disks = Disks::Files {
        paths,
        fresh: false,
    };
    // The guest is quiet while it soaks: from its first line on, the bar
    // follows the clock.
    let progress = Progress::new("soak", args.seconds, Unit::Seconds);
    let seconds = args.seconds;
    let mut booted = false;
    let echo = progress.serial_writer(move |progress, _| {
        if !std::mem::replace(&mut booted, true) {
            progress.follow_clock(seconds);
        }
    });
    let timeout = Duration::from_secs(timeout);
    let status = boot(
        &kernel,
        settings,
        &args.run.machine,
        disks,
        timeout,
        &[],
        echo,
    );
    progress.finish();
    status
}

/// `bench`: the benchmark alone, on a fresh disk or the null backend.
pub fn bench(args: &BenchArgs) -> Result<i32> {
    if args.namespaces > 1 && args.backend == BackendArg::Null {
        bail!("--namespaces above 1 needs --backend file (null-co holds one namespace)");
    }
    let kernel = kernel_elf(&args.build, !args.build.debug)?;
    let ms = (args.seconds * 1000.0).round() as u64;
    let mut generated = format!(
        "steps = identify,bench\nbench_ms = {ms}\nbench_jobs = {}\n",
        args.jobs
    );
    if args.backend == BackendArg::Null {
        generated.push_str("bench_unowned_reads = yes\n");
    }
    if args.namespaces > 1 {
        generated.push_str("bench_all_namespaces = yes\n");
    }
    let settings = read_settings(args.build.settings.as_deref(), &generated)?;
    let jobs = if args.jobs == "all" {
        compare::ALL_JOBS.len()
    } else {
        args.jobs.split(',').count()
    };
    let timeout = args
        .machine
        .timeout
        .unwrap_or(jobs as u64 * (ms / 1000 + 2) + 120);
    let bench_disks: Vec<PathBuf> = (1..=args.namespaces)
        .map(|nsid| match nsid {
            1 => PathBuf::from(BENCH_DISK),
            n => PathBuf::from(BENCH_DISK.replace(".img", &format!("-ns{n}.img"))),
        })
        .collect();
    let disks = match args.backend {
        BackendArg::File if args.namespaces > 1 => Disks::Namespaces(&bench_disks),
        BackendArg::File => Disks::Files {
            paths: &bench_disks,
            fresh: true,
        },
        BackendArg::Null => Disks::Null,
    };
    let names = [
        "-name".to_owned(),
        "unikernel-bench,debug-threads=on".to_owned(),
    ];
    // One step per job: the guest brackets each timed window with markers.
    let progress = Progress::new("bench", jobs as u64 * u64::from(args.runs), Unit::Steps);
    let timeout = Duration::from_secs(timeout);
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        if args.runs > 1 {
            progress.println(&format!("bench: run {run} of {}", args.runs));
        }
        let results = Arc::new(Mutex::new(Vec::new()));
        let sink = results.clone();
        let echo = progress.serial_writer(move |progress, line| match compare::parse::serial_line(
            line,
        ) {
            Some(SerialLine::Begin(job)) => progress.step(job.trim()),
            Some(SerialLine::End(_)) => progress.inc(1),
            Some(SerialLine::Result(json)) => {
                if let (Ok(m), Ok(mut sink)) = (compare::parse::bench_result(json), sink.lock()) {
                    sink.push(m);
                }
            }
            _ => {}
        });
        let status = boot(
            &kernel,
            settings.clone(),
            &args.machine,
            disks,
            timeout,
            &names,
            echo,
        )?;
        if status != 0 {
            progress.finish();
            return Ok(status);
        }
        let measured = results.lock().map(|mut r| std::mem::take(&mut *r));
        runs.push(measured.unwrap_or_default());
    }
    progress.finish();
    if args.runs > 1 {
        print!("{}", bench_runs::summary(&runs));
    }
    Ok(0)
}

/// `image`: build the bootable image and print its path.
pub fn image(args: &ImageArgs) -> Result<i32> {
    let kernel = kernel_elf(&args.build, false)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let name = kernel.file_name().unwrap_or_default().to_string_lossy();
        workspace::target_dir().join(format!("unikernel-{name}.img"))
    });
    let settings = read_settings(args.build.settings.as_deref(), "")?;
    image::build(&kernel, &out, &image::ImageSpec { settings })?;
    println!("{}", out.display());
    Ok(0)
}

/// `flash`: the optimised image onto a USB stick or into a file.
pub fn flash(args: &FlashArgs) -> Result<i32> {
    let kernel = workspace::build_kernel(&args.app, true)?;
    let image_path = PathBuf::from(format!("{}.usb.img", kernel.display()));
    let settings = read_settings(args.settings.as_deref(), "")?;
    image::build(&kernel, &image_path, &image::ImageSpec { settings })?;
    let options = flash::FlashOptions {
        yes: args.yes,
        allow_non_removable: args.allow_non_removable,
        to_file: args.to_file.is_some(),
    };
    let target = match (&args.to_file, &args.device) {
        (Some(file), None) => file,
        (None, Some(device)) => device,
        _ => bail!("give a DEVICE or --to-file PATH, not both"),
    };
    flash::flash(&image_path, target, &options, &mut std::io::stdin().lock())?;
    Ok(0)
}

/// `compare`: the unikernel against Linux + fio.
pub fn compare(args: &CompareArgs) -> Result<i32> {
    let options = compare::Options {
        runs: args.runs,
        seconds: args.seconds,
        ramp: args.ramp,
        jobs: args.jobs.0.clone(),
        backend: match args.backend {
            BackendArg::File => compare::Backend::File,
            BackendArg::Null => compare::Backend::Null,
        },
        systems: args
            .systems
            .iter()
            .filter_map(|name| compare::System::ALL.into_iter().find(|s| s.name() == name))
            .collect(),
        results: args.results.clone(),
        workspace: workspace::root(),
        target_dir: workspace::target_dir(),
        host_halt_poll_ns: args.host_halt_poll_ns,
    };
    let work = options.target_dir.join("compare").join("plot");
    if args.page_only {
        let page = options
            .results
            .as_ref()
            .context("--page-only needs --results PATH")?;
        compare::report::rewrite_page(page, &work)?;
        println!("Results page: {} (from its runs file)", page.display());
        return Ok(0);
    }
    let comparison = compare::run(&options)?;
    let summaries = compare::report::summarize(&comparison);
    println!(
        "\n{} backend, {} rounds, {} s per job; medians (min–max)\n",
        comparison.backend.name(),
        options.runs,
        options.seconds
    );
    println!("{}", compare::report::tables(&summaries));
    println!(
        "The comparison took {:.0} s.",
        comparison.environment.total_seconds
    );
    if let Some(page) = &options.results {
        compare::report::write_results(page, comparison, &work)?;
        println!("Results page: {}", page.display());
    }
    Ok(0)
}

/// The kernel ELF to boot: `--kernel`, or `--app` built now.
fn kernel_elf(build: &BuildArgs, release_by_default: bool) -> Result<PathBuf> {
    match &build.kernel {
        Some(kernel) => Ok(kernel.clone()),
        None => workspace::build_kernel(&build.app, build.release || release_by_default),
    }
}

/// The settings handed to the application: `generated` lines, then the
/// user's file (whose keys come later and so win).
fn read_settings(file: Option<&Path>, generated: &str) -> Result<Option<Vec<u8>>> {
    let mut settings = generated.as_bytes().to_vec();
    if let Some(path) = file {
        let text =
            std::fs::read(path).with_context(|| format!("reading settings {}", path.display()))?;
        settings.extend_from_slice(&text);
    }
    Ok((!settings.is_empty()).then_some(settings))
}

/// Build the image, attach the disks, boot, and pass on the kernel's status.
fn boot(
    kernel: &Path,
    settings: Option<Vec<u8>>,
    args: &MachineArgs,
    disks: Disks<'_>,
    timeout: Duration,
    extra: &[String],
    echo: Box<dyn Write + Send>,
) -> Result<i32> {
    let firmware = if args.uefi {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    qemu::check_installed(firmware)?;
    let image_path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.img", kernel.display())));
    image::build(kernel, &image_path, &image::ImageSpec { settings })?;
    let scratch = tempfile::Builder::new()
        .prefix("unikernel-run-")
        .tempdir()?;
    let mut machine = Machine::new(image_path, scratch.path().to_path_buf());
    machine.firmware = firmware;
    machine.window = args.window;
    machine.machine = args.machine.clone();
    machine.memory = args.memory.clone();
    machine.extra = extra.to_vec();
    machine
        .extra
        .extend(args.qemu_arg.iter().chain(&args.qemu_args).cloned());
    match disks {
        // null-co: zeroes, never signed, so the guest treats it as foreign.
        Disks::Null => machine
            .disks
            .push(NvmeDisk::null(args.disk_size, "UNIKERNEL0")),
        Disks::Namespaces(paths) => {
            let serial = "UNIKERNEL0";
            let mut controller = qemu::NvmeController {
                id: "bench0".into(),
                serial: serial.into(),
                properties: Vec::new(),
                namespaces: Vec::new(),
            };
            for (nsid, path) in (1..).zip(paths) {
                if path.exists() {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing {} to re-create it", path.display()))?;
                }
                disk::create_if_missing(path, args.disk_size)?;
                disk::stamp(path, serial, nsid)?;
                eprintln!(
                    "created disk {} ({} bytes), stamped as namespace {nsid} of controller {serial}",
                    path.display(),
                    args.disk_size
                );
                controller.namespaces.push(qemu::NvmeNamespace {
                    path: path.clone(),
                    properties: Vec::new(),
                });
            }
            machine.controllers.push(controller);
        }
        Disks::Files { paths, fresh } => {
            for (index, path) in paths.iter().enumerate() {
                let serial = format!("UNIKERNEL{index}");
                if fresh && path.exists() {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing {} to re-create it", path.display()))?;
                }
                if disk::create_if_missing(path, args.disk_size)? {
                    disk::stamp(path, &serial, 1)?;
                    eprintln!(
                        "created scratch disk {} ({} bytes), stamped as owned by controller {serial}",
                        path.display(),
                        args.disk_size
                    );
                }
                machine.disks.push(NvmeDisk::new(path.clone(), serial));
            }
        }
    }
    let result = qemu::run(&machine, timeout, Some(echo))?;
    if let Err(reason) = runner::judge(&result) {
        eprintln!("\n{reason}");
    }
    Ok(result.outcome.exit_code())
}
