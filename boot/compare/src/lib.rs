//! Side-by-side benchmark: the unikernel against Linux + fio on exactly the
//! same emulated NVMe device.
//!
//! Each round boots three machines, one after the other, each on a fresh
//! 1 GiB raw file (or QEMU's null driver): the unikernel (its default
//! application with `steps = identify,bench`), then Linux running fio with
//! `io_uring` + `hipri` (polled completions on a poll queue), then Linux
//! running fio with `libaio`. One engine per Linux boot keeps the disk's
//! history the same for every system: each sees a fresh file and the jobs
//! in the same order. The QEMU command line is the same for all three except
//! for what is booted (protocol: `/work/notes/protocol.txt`, summarised in
//! [`protocol_machine`]).
//!
//! Both guests print `BENCH-BEGIN <job>` / `BENCH-END <job>` around each
//! job's timed window. At each marker the harness reads the CPU time of
//! every QEMU thread from `/proc/<pid>/task/<tid>/stat` (threads named with
//! `-name ...,debug-threads=on`), giving the busy percentage of the vCPU,
//! the main loop and the I/O workers per job.

pub mod linux;
pub mod parse;
pub mod report;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use boot::progress::{Progress, Unit};
use boot::qemu::{BootDevice, DirectKernel, Machine, NvmeDisk, Outcome};
use boot::{disk, image};
use linux::Guest;
use parse::{Measurement, SerialLine, ThreadGroup, ThreadTime};

/// Every job of the protocol, in the order both guests run them.
pub const ALL_JOBS: [&str; 10] = [
    "randread-4k-qd1",
    "randread-4k-qd8",
    "randread-4k-qd32",
    "randread-4k-qd128",
    "randwrite-4k-qd1",
    "randwrite-4k-qd8",
    "randwrite-4k-qd32",
    "randwrite-4k-qd128",
    "read-128k-qd8",
    "write-128k-qd8",
];
/// The default application's short set (`--jobs short`).
pub const SHORT_JOBS: [&str; 5] = [
    "randread-4k-qd1",
    "randread-4k-qd32",
    "randwrite-4k-qd32",
    "read-128k-qd8",
    "write-128k-qd8",
];
/// Controller serial: the unikernel's disk is stamped for it.
const SERIAL: &str = "UNIKERNEL0";
/// Size of the NVMe namespace.
const DISK_BYTES: u64 = 1 << 30;

/// What backs the emulated NVMe namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A fresh sparse raw file per boot.
    File,
    /// QEMU's `null-co` driver: reads return zeroes, writes are dropped.
    Null,
}

impl Backend {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::Null => "null",
        }
    }
}

/// The three systems measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum System {
    /// The unikernel's own benchmark.
    Unikernel,
    /// Linux, fio with `ioengine=io_uring`, `hipri=1`.
    LinuxIoUring,
    /// Linux, fio with `ioengine=libaio`.
    LinuxLibaio,
}

impl System {
    /// All of them, in boot order.
    pub const ALL: [System; 3] = [System::Unikernel, System::LinuxIoUring, System::LinuxLibaio];

    /// The name on the command line (`--systems`).
    pub fn name(self) -> &'static str {
        match self {
            System::Unikernel => "unikernel",
            System::LinuxIoUring => "io_uring",
            System::LinuxLibaio => "libaio",
        }
    }

    /// A label for tables.
    pub fn label(self) -> &'static str {
        match self {
            System::Unikernel => "unikernel",
            System::LinuxIoUring => "Linux io_uring-hipri",
            System::LinuxLibaio => "Linux libaio",
        }
    }

    fn fio_engine(self) -> Option<&'static str> {
        match self {
            System::Unikernel => None,
            System::LinuxIoUring => Some("io_uring"),
            System::LinuxLibaio => Some("libaio"),
        }
    }
}

/// The comparison's settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rounds (each boots every system once).
    pub runs: u32,
    /// Timed window per job, in seconds.
    pub seconds: u32,
    /// Linux warm-up per job (fio `ramp_time`), in seconds.
    pub ramp: u32,
    /// Jobs to run.
    pub jobs: Vec<String>,
    /// Backing store.
    pub backend: Backend,
    /// Systems to boot each round (all three for a comparison).
    pub systems: Vec<System>,
    /// Markdown page to (re)write, with its plots and runs file beside it.
    pub results: Option<PathBuf>,
    /// Workspace root.
    pub workspace: PathBuf,
    /// Cargo's target directory (guest cache, images, logs).
    pub target_dir: PathBuf,
    /// Set the host's idle halt-polling window (cpuidle `haltpoll`,
    /// `guest_halt_poll_ns`) to this for the run, restoring it afterwards.
    pub host_halt_poll_ns: Option<u64>,
}

/// One job of one boot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRun {
    /// The guest's figures.
    pub measurement: Measurement,
    /// Seconds between the BEGIN and END markers, as the host saw them.
    pub window_seconds: f64,
    /// Busy percentage per QEMU thread group over that window.
    pub busy: BTreeMap<ThreadGroup, f64>,
    /// Percentage of the window each group waited for a host CPU.
    #[serde(default)]
    pub waiting: BTreeMap<ThreadGroup, f64>,
    /// The name the job ran under when the guest capped its depth (the
    /// unikernel names a job by the depth its queue allowed).
    #[serde(default)]
    pub ran_as: Option<String>,
    /// NVMe interrupts the Linux guest took during the job (fio run).
    pub nvme_irqs: Option<u64>,
}

/// One boot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BootRun {
    /// Round number, from 1.
    pub round: u32,
    /// Which system.
    pub system: System,
    /// Wall seconds from starting QEMU to its exit.
    pub boot_seconds: f64,
    /// The unikernel's time from kernel entry to the first completed I/O.
    pub first_io_ms: Option<f64>,
    /// `GUEST-INFO` lines of the Linux guest.
    pub guest_info: BTreeMap<String, String>,
    /// The jobs, in the order they ran.
    pub jobs: Vec<JobRun>,
}

/// Where the measurements were taken.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Environment {
    /// UTC date and time of the run.
    pub date: String,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu_version: String,
    /// Host CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Host logical CPUs.
    pub cpu_count: usize,
    /// The QEMU command line shared by every boot.
    pub qemu_common: String,
    /// What the unikernel boots add.
    pub qemu_unikernel: String,
    /// What the Linux boots add.
    pub qemu_linux: String,
    /// Linux kernel release and Debian package version.
    pub linux_kernel: String,
    /// fio version (guest `fio --version`, Debian package version).
    pub fio_version: String,
    /// How the host's idle CPUs wait (cpuidle driver, halt-polling window):
    /// with no polling an idle core halts and every wake-up of QEMU's main
    /// loop costs a round trip through the hypervisor below.
    #[serde(default)]
    pub host_idle: String,
    /// The unikernel's settings file.
    pub unikernel_settings: String,
    /// Wall seconds of the whole comparison.
    pub total_seconds: f64,
}

/// A whole comparison on one backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    /// Backing store.
    pub backend: Backend,
    /// Timed window per job, in seconds.
    pub seconds: u32,
    /// Linux warm-up per job, in seconds.
    pub ramp: u32,
    /// Jobs, in order.
    pub jobs: Vec<String>,
    /// Where and with what.
    pub environment: Environment,
    /// Every boot.
    pub boots: Vec<BootRun>,
}

/// Run the comparison: build both guests, boot them alternately, collect.
pub fn run(options: &Options) -> Result<Comparison> {
    let started = Instant::now();
    let halt_poll = match options.host_halt_poll_ns {
        Some(ns) => Some(HaltPoll::set(ns)?),
        None => None,
    };
    let host_idle = host_idle(halt_poll.as_ref());
    let work = options.target_dir.join("compare");
    fs::create_dir_all(work.join("logs"))?;
    let jobs: Vec<String> = match options.backend {
        Backend::File => options.jobs.clone(),
        // null-co can never carry the ownership signature: the unikernel
        // only reads there, so both systems run the read jobs only.
        Backend::Null => options
            .jobs
            .iter()
            .filter(|j| !j.contains("write"))
            .cloned()
            .collect(),
    };
    if jobs.is_empty() {
        bail!("no jobs to run on the {} backend", options.backend.name());
    }
    let mut settings = format!(
        "steps = identify,bench\nbench_ms = {}\nbench_jobs = {}\n",
        options.seconds * 1000,
        jobs.join(",")
    );
    if options.backend == Backend::Null {
        settings.push_str("bench_unowned_reads = yes\n");
    }
    let unikernel_image = if options.systems.contains(&System::Unikernel) {
        build_unikernel(options, &work, &settings)?
    } else {
        PathBuf::new()
    };
    let guest = linux::ensure(&work.join("linux-guest"))?;
    let disk_path = work.join("nvme.img");
    let ticks = clock_ticks_per_second();

    let mut boots = Vec::new();
    let mut linux_info = BTreeMap::new();
    let boots_total = u64::from(options.runs) * options.systems.len() as u64;
    let progress = Progress::new("compare", boots_total, Unit::Steps);
    for round in 1..=options.runs {
        for &system in &options.systems {
            let boot = Boot {
                system,
                options,
                jobs: &jobs,
                disk: &disk_path,
                unikernel_image: &unikernel_image,
                guest: &guest,
                log: work.join("logs").join(format!(
                    "{}-round{round}-{system:?}.log",
                    options.backend.name()
                )),
                scratch: work.clone(),
                ticks,
            };
            progress.step(&format!(
                "round {round}/{} {} ({} backend, {} jobs)",
                options.runs,
                system.label(),
                options.backend.name(),
                jobs.len()
            ));
            let mut result = boot.run()?;
            progress.inc(1);
            result.round = round;
            if system != System::Unikernel && linux_info.is_empty() {
                linux_info = result.guest_info.clone();
            }
            for job in &result.jobs {
                progress.println(&format!(
                    "compare:   {:<20} {:>9.0} IOPS  p50 {:>8.1} us  p99 {:>8.1} us  vCPU {:>3.0}%",
                    job.measurement.job,
                    job.measurement.iops,
                    job.measurement.lat_p50_us,
                    job.measurement.lat_p99_us,
                    job.busy.get(&ThreadGroup::Vcpu).copied().unwrap_or(0.0)
                ));
            }
            boots.push(result);
        }
    }
    progress.finish();
    let _ = fs::remove_file(&disk_path);
    let common = protocol_machine(
        "<name>",
        options.backend,
        Path::new("<fresh-1GiB-raw-file>"),
        &work,
    )
    .common_arguments()?;
    let environment = Environment {
        date: utc_now(),
        qemu_version: first_line(&command_output("qemu-system-x86_64", &["--version"])),
        cpu_model: cpu_model(),
        cpu_count: thread::available_parallelism().map_or(0, |n| n.get()),
        qemu_common: shell_words(&common),
        qemu_unikernel: "-drive format=raw,media=disk,file=<unikernel image>".into(),
        qemu_linux: format!(
            "-kernel vmlinuz -initrd initramfs.gz -append \"{} fio_engine=<engine> fio_jobs=<jobs> fio_seconds={} fio_ramp={}\"",
            linux::KERNEL_COMMAND_LINE,
            options.seconds,
            options.ramp
        ),
        linux_kernel: format!(
            "{} (Debian package linux-image-{} {})",
            linux_info
                .get("kernel")
                .cloned()
                .unwrap_or_else(|| guest.kernel_release.clone()),
            guest.kernel_release,
            guest.kernel_package_version
        ),
        fio_version: format!(
            "{} (Debian package fio {})",
            linux_info.get("fio").cloned().unwrap_or_default(),
            guest.fio_package_version
        ),
        host_idle,
        unikernel_settings: settings,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Comparison {
        backend: options.backend,
        seconds: options.seconds,
        ramp: options.ramp,
        jobs,
        environment,
        boots,
    })
}

/// The machine every boot shares (the protocol's command line), called
/// `name`, with its namespace on `disk`; what boots is added per system.
/// QEMU's NVMe trace stays off: it would cost the device model time.
pub fn protocol_machine(name: &str, backend: Backend, disk: &Path, scratch: &Path) -> Machine {
    let mut machine = Machine::new(PathBuf::new(), scratch.to_path_buf());
    machine.name = Some(name.to_owned());
    machine.trace = false;
    machine.disks.push(match backend {
        Backend::File => NvmeDisk::new(disk.to_path_buf(), SERIAL),
        Backend::Null => NvmeDisk::null(DISK_BYTES, SERIAL),
    });
    machine
}

fn shell_words(words: &[String]) -> String {
    let mut line = String::from("qemu-system-x86_64");
    for word in words {
        line.push(' ');
        if word.contains(' ') {
            line.push_str(&format!("\"{word}\""));
        } else {
            line.push_str(word);
        }
    }
    line
}

fn build_unikernel(options: &Options, work: &Path, settings: &str) -> Result<PathBuf> {
    eprintln!("compare: building the unikernel (release)");
    let build = boot::app::BuildOptions {
        workspace: options.workspace.clone(),
        release: true,
        target_dir: Some(options.target_dir.clone()),
    };
    let elf = boot::app::build(&options.workspace.join("apps/inspector"), &build)?;
    image::build(
        &elf,
        &work.join("unikernel.img"),
        &image::ImageSpec {
            settings: Some(settings.as_bytes().to_vec()),
        },
    )
}

struct Boot<'a> {
    system: System,
    options: &'a Options,
    jobs: &'a [String],
    disk: &'a Path,
    unikernel_image: &'a Path,
    guest: &'a Guest,
    log: PathBuf,
    scratch: PathBuf,
    ticks: f64,
}

/// The host's view of one job's timed window.
#[derive(Clone, Debug)]
pub struct Window {
    /// Wall seconds between the BEGIN and END markers.
    pub seconds: f64,
    /// Busy percentage per QEMU thread group.
    pub busy: BTreeMap<ThreadGroup, f64>,
    /// Percentage of the window each group waited for a host CPU.
    pub waiting: BTreeMap<ThreadGroup, f64>,
}

/// What a boot's serial output says, gathered line by line.
#[derive(Debug, Default)]
pub struct Collected {
    /// The whole serial output.
    pub log: String,
    begins: BTreeMap<String, (Instant, Vec<ThreadTime>)>,
    /// Timed windows per job, as the host saw them.
    pub windows: BTreeMap<String, Window>,
    /// Figures per job: `BENCH-RESULT` lines or fio reports.
    pub measurements: Vec<Measurement>,
    /// `GUEST-IRQS` per job.
    pub irqs: BTreeMap<String, u64>,
    /// `GUEST-INFO` facts.
    pub info: BTreeMap<String, String>,
    /// `BENCH-FIRST-IO-MS`.
    pub first_io_ms: Option<f64>,
    /// `GUEST-ERROR` lines and reports that did not parse.
    pub errors: Vec<String>,
    /// `GUEST-DONE` seen.
    pub done: bool,
    fio: Option<String>,
}

impl Collected {
    /// Take one line of serial output (without line end), seen at `now`,
    /// with the thread times `sample` the caller took for a BEGIN or END
    /// marker.
    pub fn feed(&mut self, line: &str, now: Instant, sample: Option<Vec<ThreadTime>>, ticks: f64) {
        let event = parse::serial_line(line);
        self.log.push_str(line);
        self.log.push('\n');
        if let Some(text) = self.fio.as_mut() {
            if matches!(event, Some(SerialLine::FioEnd)) {
                match parse::fio_json(text) {
                    Ok(m) => self.measurements.push(m),
                    Err(e) => self.errors.push(format!("fio report: {e}")),
                }
                self.fio = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            return;
        }
        match event {
            Some(SerialLine::Begin(job)) => {
                self.begins
                    .insert(job.to_owned(), (now, sample.unwrap_or_default()));
            }
            Some(SerialLine::End(job)) => {
                if let Some((start, before)) = self.begins.remove(job) {
                    let wall = now.duration_since(start).as_secs_f64();
                    let after = sample.unwrap_or_default();
                    let window = Window {
                        seconds: wall,
                        busy: parse::busy_percent(&before, &after, wall, ticks),
                        waiting: parse::waiting_percent(&before, &after, wall),
                    };
                    self.windows.insert(job.to_owned(), window);
                }
            }
            Some(SerialLine::Result(text)) => match parse::bench_result(text) {
                Ok(m) => self.measurements.push(m),
                Err(e) => self.errors.push(format!("BENCH-RESULT: {e}")),
            },
            Some(SerialLine::FirstIoMs(ms)) => self.first_io_ms = Some(ms),
            Some(SerialLine::FioBegin(_)) => self.fio = Some(String::new()),
            Some(SerialLine::Info(key, value)) => {
                self.info.insert(key.to_owned(), value.to_owned());
            }
            Some(SerialLine::Irqs(job, count)) => {
                self.irqs.insert(job.to_owned(), count);
            }
            Some(SerialLine::Error(text)) => self.errors.push(text.to_owned()),
            Some(SerialLine::Done) => self.done = true,
            Some(SerialLine::FioEnd) | None => {}
        }
    }
}

impl Boot<'_> {
    fn run(&self) -> Result<BootRun> {
        if self.options.backend == Backend::File {
            fresh_disk(self.disk, self.system == System::Unikernel)?;
        }
        let name = match self.system {
            System::Unikernel => "unikernel",
            _ => "linux",
        };
        let mut machine = protocol_machine(name, self.options.backend, self.disk, &self.scratch);
        machine.boot_device = match self.system.fio_engine() {
            None => {
                machine.image = self.unikernel_image.to_path_buf();
                BootDevice::Disk
            }
            Some(engine) => BootDevice::Kernel(DirectKernel {
                kernel: self.guest.kernel.clone(),
                initrd: self.guest.initramfs.clone(),
                append: format!(
                    "{} fio_engine={engine} fio_jobs={} fio_seconds={} fio_ramp={}",
                    linux::KERNEL_COMMAND_LINE,
                    self.jobs.join(","),
                    self.options.seconds,
                    self.options.ramp
                ),
            }),
        };
        let mut command = machine.command()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let per_job = 2 * (self.options.seconds + self.options.ramp) as u64 + 20;
        let timeout = Duration::from_secs(300 + per_job * self.jobs.len() as u64);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .context("starting qemu-system-x86_64 (Debian package qemu-system-x86)")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("QEMU's standard output")?;
        let ticks = self.ticks;
        let reader = thread::spawn(move || read_serial(stdout, pid, ticks));
        let stderr = child.stderr.take();
        let stderr_reader = thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            }
            text
        });
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(50));
        };
        let boot_seconds = started.elapsed().as_secs_f64();
        let collected = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the serial reader failed"))?;
        let qemu_stderr = stderr_reader.join().unwrap_or_default();
        fs::write(&self.log, format!("{}{qemu_stderr}", collected.log))
            .with_context(|| format!("writing {}", self.log.display()))?;
        let where_ = format!(
            "{} (serial log: {})",
            self.system.label(),
            self.log.display()
        );
        let Some(status) = status else {
            bail!(
                "{where_}: no end within {} s; QEMU was killed",
                timeout.as_secs()
            );
        };
        match self.system {
            System::Unikernel => {
                let outcome = Outcome::from_exit(status);
                if !outcome.is_success() {
                    bail!("{where_}: {outcome}");
                }
            }
            _ => {
                if !status.success() || !collected.done {
                    bail!("{where_}: Linux did not finish its jobs ({status})");
                }
            }
        }
        if !collected.errors.is_empty() {
            bail!("{where_}: {}", collected.errors.join("; "));
        }
        let mut jobs = Vec::new();
        for job in self.jobs {
            let mut measurement = find_result(&collected.measurements, job, self.jobs)
                .with_context(|| format!("{where_}: no result for {job}"))?;
            if measurement.errors != 0 {
                bail!("{where_}: {job} reported {} errors", measurement.errors);
            }
            let ran_as = (&measurement.job != job).then(|| measurement.job.clone());
            let window = collected
                .windows
                .get(&measurement.job)
                .cloned()
                .with_context(|| format!("{where_}: no BENCH-BEGIN/END pair for {job}"))?;
            measurement.job = job.clone();
            jobs.push(JobRun {
                measurement,
                window_seconds: window.seconds,
                busy: window.busy,
                waiting: window.waiting,
                ran_as,
                nvme_irqs: collected.irqs.get(job).copied(),
            });
        }
        Ok(BootRun {
            round: 0,
            system: self.system,
            boot_seconds,
            first_io_ms: collected.first_io_ms,
            guest_info: collected.info,
            jobs,
        })
    }
}

/// The result for `job`: the one of that name, or else one of the same
/// kind and block size at a depth no requested job has (the guest capped
/// the depth and named the job by what it ran).
fn find_result(results: &[Measurement], job: &str, requested: &[String]) -> Option<Measurement> {
    if let Some(exact) = results.iter().find(|m| m.job == job) {
        return Some(exact.clone());
    }
    let (rw, block, _) = parse::job_terms(job)?;
    results
        .iter()
        .find(|m| {
            parse::job_terms(&m.job).is_some_and(|(r, b, _)| r == rw && b == block)
                && !requested.contains(&m.job)
        })
        .cloned()
}

fn fresh_disk(path: &Path, stamped: bool) -> Result<()> {
    let _ = fs::remove_file(path);
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(DISK_BYTES)?;
    drop(file);
    if stamped {
        disk::stamp(path, SERIAL, 1)?;
    }
    Ok(())
}

/// Read QEMU's serial output to its end, snapshotting thread CPU times at
/// each BEGIN and END marker.
fn read_serial(stdout: std::process::ChildStdout, pid: u32, ticks: f64) -> Collected {
    let mut collected = Collected::default();
    let mut reader = BufReader::new(stdout);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let now = Instant::now();
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches(['\r', '\n']);
        // Snapshot first: the marker's moment matters, not the bookkeeping.
        let sample = (line.starts_with("BENCH-BEGIN ") || line.starts_with("BENCH-END "))
            .then(|| thread_times(pid));
        collected.feed(line, now, sample, ticks);
    }
    collected
}

/// CPU time of every thread of process `pid` now.
fn thread_times(pid: u32) -> Vec<ThreadTime> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let mut time = parse::thread_stat(stat.trim_end()).ok()?;
            time.wait_ns = fs::read_to_string(e.path().join("schedstat"))
                .ok()
                .and_then(|s| parse::schedstat_wait_ns(&s))
                .unwrap_or(0);
            Some(time)
        })
        .collect()
}

fn clock_ticks_per_second() -> f64 {
    let text = command_output("getconf", &["CLK_TCK"]);
    text.trim().parse().unwrap_or(100.0)
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The host kernel's halt-polling window for idle CPUs.
const HALT_POLL_NS: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

/// The halt-polling window set for a run; the old value comes back on drop.
struct HaltPoll {
    previous: String,
}

impl HaltPoll {
    fn set(ns: u64) -> Result<HaltPoll> {
        let previous = fs::read_to_string(HALT_POLL_NS)
            .with_context(|| format!("--host-halt-poll-ns: reading {HALT_POLL_NS}"))?
            .trim()
            .to_owned();
        fs::write(HALT_POLL_NS, ns.to_string())
            .with_context(|| format!("--host-halt-poll-ns: writing {HALT_POLL_NS} (needs root)"))?;
        Ok(HaltPoll { previous })
    }
}

impl Drop for HaltPoll {
    fn drop(&mut self) {
        if let Err(error) = fs::write(HALT_POLL_NS, &self.previous) {
            eprintln!(
                "compare: could not restore {HALT_POLL_NS} to {}: {error}",
                self.previous
            );
        }
    }
}

fn host_idle(set: Option<&HaltPoll>) -> String {
    let driver = fs::read_to_string("/sys/devices/system/cpu/cpuidle/current_driver")
        .map(|d| d.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    match fs::read_to_string(HALT_POLL_NS) {
        Ok(ns) => match set {
            Some(halt_poll) => format!(
                "cpuidle driver `{driver}`, `guest_halt_poll_ns` = {} for this run (normally {})",
                ns.trim(),
                halt_poll.previous
            ),
            None => format!(
                "cpuidle driver `{driver}`, `guest_halt_poll_ns` = {}",
                ns.trim()
            ),
        },
        Err(_) => format!("cpuidle driver `{driver}`"),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_owned()
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn utc_now() -> String {
    first_line(&command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]))
}
