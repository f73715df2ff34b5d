//! Summaries of a comparison: medians with ranges, the tables printed on the
//! console and written to the results page, the runs file, and the plots
//! (gnuplot, from data files written here).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::parse::{ThreadGroup, job_terms};
use super::{Backend, Comparison, System};

/// Median, minimum and maximum of a set of runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, or `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// One system's figures for one job over all rounds.
#[derive(Clone, Debug)]
pub struct SystemSummary {
    /// IOPS.
    pub iops: Spread,
    /// MB/s.
    pub mb_per_s: Spread,
    /// Latency percentiles, microseconds.
    pub p50: Spread,
    /// 99th percentile.
    pub p99: Spread,
    /// 99.9th percentile.
    pub p999: Spread,
    /// Median busy percentage per QEMU thread group.
    pub busy: BTreeMap<ThreadGroup, f64>,
    /// Median percentage the vCPU thread waited for a host CPU.
    pub vcpu_waiting: f64,
    /// Names the job ran under when the guest capped its depth.
    pub ran_as: Vec<String>,
    /// Median NVMe interrupts per job (Linux only).
    pub nvme_irqs: Option<f64>,
    /// Rounds that contributed.
    pub rounds: usize,
}

/// Every system's summary for one job.
#[derive(Clone, Debug)]
pub struct JobSummary {
    /// Job name.
    pub job: String,
    /// Per system.
    pub systems: BTreeMap<System, SystemSummary>,
}

impl JobSummary {
    /// Unikernel IOPS over the better Linux engine's (medians).
    pub fn ratio_to_best_linux(&self) -> Option<f64> {
        let unikernel = self.systems.get(&System::Unikernel)?.iops.median;
        let best = [System::LinuxIoUring, System::LinuxLibaio]
            .iter()
            .filter_map(|s| self.systems.get(s))
            .map(|s| s.iops.median)
            .fold(f64::NAN, f64::max);
        (best > 0.0).then(|| unikernel / best)
    }
}

/// Summaries per job, in the comparison's job order.
pub fn summarize(comparison: &Comparison) -> Vec<JobSummary> {
    comparison
        .jobs
        .iter()
        .map(|job| {
            let mut systems = BTreeMap::new();
            for system in System::ALL {
                let runs: Vec<_> = comparison
                    .boots
                    .iter()
                    .filter(|b| b.system == system)
                    .filter_map(|b| b.jobs.iter().find(|j| &j.measurement.job == job))
                    .collect();
                let spread = |f: &dyn Fn(&super::JobRun) -> f64| {
                    Spread::of(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
                };
                let (Some(iops), Some(mb_per_s), Some(p50), Some(p99), Some(p999)) = (
                    spread(&|r| r.measurement.iops),
                    spread(&|r| r.measurement.mb_per_s),
                    spread(&|r| r.measurement.lat_p50_us),
                    spread(&|r| r.measurement.lat_p99_us),
                    spread(&|r| r.measurement.lat_p999_us),
                ) else {
                    continue;
                };
                let mut busy = BTreeMap::new();
                for group in [
                    ThreadGroup::Vcpu,
                    ThreadGroup::MainLoop,
                    ThreadGroup::Worker,
                ] {
                    let values: Vec<f64> = runs
                        .iter()
                        .map(|r| r.busy.get(&group).copied().unwrap_or(0.0))
                        .collect();
                    if let Some(s) = Spread::of(&values) {
                        busy.insert(group, s.median);
                    }
                }
                let waiting: Vec<f64> = runs
                    .iter()
                    .map(|r| r.waiting.get(&ThreadGroup::Vcpu).copied().unwrap_or(0.0))
                    .collect();
                let mut ran_as: Vec<String> =
                    runs.iter().filter_map(|r| r.ran_as.clone()).collect();
                ran_as.sort();
                ran_as.dedup();
                let irqs: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.nvme_irqs.map(|n| n as f64))
                    .collect();
                systems.insert(
                    system,
                    SystemSummary {
                        iops,
                        mb_per_s,
                        p50,
                        p99,
                        p999,
                        busy,
                        vcpu_waiting: Spread::of(&waiting).map_or(0.0, |s| s.median),
                        ran_as,
                        nvme_irqs: Spread::of(&irqs).map(|s| s.median),
                        rounds: runs.len(),
                    },
                );
            }
            JobSummary {
                job: job.clone(),
                systems,
            }
        })
        .collect()
}

/// A number with thin grouping, no decimals above 100.
fn figure(value: f64) -> String {
    if value >= 100.0 {
        let digits = format!("{value:.0}");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn spread_cell(spread: &Spread) -> String {
    format!(
        "{} ({}–{})",
        figure(spread.median),
        figure(spread.min),
        figure(spread.max)
    )
}

/// The two Markdown tables for one comparison: throughput with the ratio,
/// then latency and QEMU thread load per system.
pub fn tables(summaries: &[JobSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| job | unikernel IOPS | Linux io_uring-hipri IOPS | Linux libaio IOPS | unikernel / best Linux |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for summary in summaries {
        let cell = |system| {
            summary
                .systems
                .get(&system)
                .map_or("–".to_owned(), |s| spread_cell(&s.iops))
        };
        let ratio = summary
            .ratio_to_best_linux()
            .map_or("–".to_owned(), |r| format!("{r:.2}×"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            summary.job,
            cell(System::Unikernel),
            cell(System::LinuxIoUring),
            cell(System::LinuxLibaio),
            ratio
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| job | system | MB/s | p50 µs | p99 µs | p99.9 µs | vCPU % | main loop % | workers % | vCPU waiting % |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for summary in summaries {
        for (system, s) in &summary.systems {
            let busy = |g| s.busy.get(&g).map_or("–".to_owned(), |v| format!("{v:.0}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                summary.job,
                system.label(),
                figure(s.mb_per_s.median),
                spread_cell(&s.p50),
                spread_cell(&s.p99),
                spread_cell(&s.p999),
                busy(ThreadGroup::Vcpu),
                busy(ThreadGroup::MainLoop),
                busy(ThreadGroup::Worker),
                s.vcpu_waiting
            );
        }
    }
    for summary in summaries {
        for (system, s) in &summary.systems {
            if !s.ran_as.is_empty() {
                let _ = writeln!(
                    out,
                    "\n{} ran {} as {} (its queue's depth limit).",
                    system.label(),
                    summary.job,
                    s.ran_as.join(", ")
                );
            }
        }
    }
    out
}

/// Everything the results page is built from: the latest comparison per
/// backend.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunsFile {
    /// One comparison per backend.
    pub comparisons: Vec<Comparison>,
}

impl RunsFile {
    /// Read `path`, or an empty file when it does not exist.
    pub fn load(path: &Path) -> Result<RunsFile> {
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a runs file", path.display())),
            Err(_) => Ok(RunsFile::default()),
        }
    }

    /// Replace the comparison for `comparison`'s backend.
    pub fn replace(&mut self, comparison: Comparison) {
        self.comparisons.retain(|c| c.backend != comparison.backend);
        self.comparisons.push(comparison);
        self.comparisons.sort_by_key(|c| c.backend != Backend::File);
    }
}

/// Write the page at `page`, its runs file (`<stem>-runs.json`) and plots
/// (`<stem>-iops.png`, `<stem>-latency.png`) beside it, with `comparison`
/// replacing any earlier one on the same backend. Plot data and script go to
/// `work`.
pub fn write_results(page: &Path, comparison: Comparison, work: &Path) -> Result<()> {
    let runs_path = runs_file_for(page);
    let mut runs = RunsFile::load(&runs_path)?;
    runs.replace(comparison);
    if let Some(dir) = runs_path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&runs_path, serde_json::to_string_pretty(&runs)? + "\n")
        .with_context(|| format!("writing {}", runs_path.display()))?;
    render(page, &runs, work)
}

/// The runs file that goes with the page at `page`.
pub fn runs_file_for(page: &Path) -> std::path::PathBuf {
    let dir = page.parent().unwrap_or(Path::new("."));
    let stem = page
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("benchmark");
    dir.join(format!("{stem}-runs.json"))
}

/// Rewrite the page at `page` and its plots from its runs file alone,
/// without booting anything.
pub fn rewrite_page(page: &Path, work: &Path) -> Result<()> {
    let runs_path = runs_file_for(page);
    let runs = RunsFile::load(&runs_path)?;
    if runs.comparisons.is_empty() {
        bail!("{} holds no runs", runs_path.display());
    }
    render(page, &runs, work)
}

fn render(page: &Path, runs: &RunsFile, work: &Path) -> Result<()> {
    let dir = page.parent().unwrap_or(Path::new("."));
    let stem = page
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("benchmark");
    fs::create_dir_all(dir)?;
    let iops_png = format!("{stem}-iops.png");
    let latency_png = format!("{stem}-latency.png");
    plot(runs, work, &dir.join(&iops_png), &dir.join(&latency_png))?;
    let text = page_text(runs, &format!("{stem}-runs.json"), &iops_png, &latency_png);
    fs::write(page, text).with_context(|| format!("writing {}", page.display()))?;
    Ok(())
}

fn page_text(runs: &RunsFile, runs_name: &str, iops_png: &str, latency_png: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark: the unikernel against Linux + fio\n");
    let _ = writeln!(
        out,
        "The same emulated NVMe device, the same QEMU command line, booted in turn: the \
         unikernel's built-in benchmark, then Debian's Linux running fio with `io_uring` + \
         `hipri` (completions polled on a poll queue), then Linux running fio with `libaio`. \
         Every boot gets a fresh 1 GiB namespace, so each system sees the same disk history. \
         Figures are medians over the rounds with the range (min–max) in parentheses; the raw \
         per-run figures are in [{runs_name}]({runs_name}).\n"
    );
    let _ = writeln!(
        out,
        "Regenerate (about the time given below per backend):\n"
    );
    let _ = writeln!(out, "```sh");
    for c in &runs.comparisons {
        let rounds = c
            .boots
            .iter()
            .filter(|b| b.system == System::Unikernel)
            .count();
        // The halt-polling window, when the run set one, is part of the recipe.
        let halt_poll = c
            .environment
            .host_idle
            .split("`guest_halt_poll_ns` = ")
            .nth(1)
            .filter(|rest| rest.contains("for this run"))
            .and_then(|rest| rest.split_whitespace().next())
            .map(|ns| format!(" --host-halt-poll-ns {ns}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "./run.sh compare --backend {} --runs {rounds} --seconds {}{halt_poll} --results docs/benchmark.md",
            c.backend.name(),
            c.seconds
        );
    }
    let _ = writeln!(out, "```\n");
    for c in &runs.comparisons {
        let e = &c.environment;
        let _ = writeln!(out, "## {} backend\n", capitalised(c.backend.name()));
        if c.backend == Backend::Null {
            let _ = writeln!(
                out,
                "QEMU's `null-co` driver: reads return zeroes without touching the host's disk. \
                 It cannot carry the ownership signature, so the unikernel only reads there \
                 (`bench_unowned_reads = yes`) and both systems run the read jobs only.\n"
            );
        }
        let _ = writeln!(out, "- Date: {}", e.date);
        let _ = writeln!(out, "- QEMU: {} (TCG, no KVM)", e.qemu_version);
        let _ = writeln!(
            out,
            "- Host CPU: {}, {} logical CPUs",
            e.cpu_model, e.cpu_count
        );
        if !e.host_idle.is_empty() {
            let _ = writeln!(out, "- Host idle CPUs: {}", e.host_idle);
        }
        let _ = writeln!(out, "- Linux guest: {}", e.linux_kernel);
        let _ = writeln!(out, "- fio: {}", e.fio_version);
        let rounds = c
            .boots
            .iter()
            .filter(|b| b.system == System::Unikernel)
            .count();
        let _ = writeln!(
            out,
            "- {rounds} round(s); each job: a warm-up, then a {} s timed window (Linux: fio \
             `ramp_time={}`, `runtime={}`); the whole comparison took {:.0} s",
            c.seconds, c.ramp, c.seconds, e.total_seconds
        );
        let first_io: Vec<f64> = c.boots.iter().filter_map(|b| b.first_io_ms).collect();
        if let Some(s) = Spread::of(&first_io) {
            let _ = writeln!(
                out,
                "- Unikernel, kernel entry to first completed I/O: {} ms",
                spread_cell(&s)
            );
        }
        let linux_boots: Vec<_> = c
            .boots
            .iter()
            .filter(|b| b.system == System::LinuxIoUring)
            .collect();
        if let Some(boot) = linux_boots.first() {
            let _ = writeln!(
                out,
                "- Linux NVMe queues: `io_poll` = {}, `poll_queues` = {}, scheduler `{}`",
                boot.guest_info.get("io_poll").map_or("?", String::as_str),
                boot.guest_info
                    .get("poll_queues")
                    .map_or("?", String::as_str),
                boot.guest_info.get("scheduler").map_or("?", String::as_str),
            );
        }
        let _ = writeln!(out, "\nQEMU command line, shared by every boot:\n");
        let _ = writeln!(out, "```text\n{}\n```\n", e.qemu_common);
        let _ = writeln!(
            out,
            "plus, for the unikernel, `{}` (settings file: `{}`), and for Linux `{}`.\n",
            e.qemu_unikernel,
            e.unikernel_settings.trim().replace('\n', "; "),
            e.qemu_linux
        );
        let summaries = summarize(c);
        let _ = writeln!(out, "{}", tables(&summaries));
        let _ = writeln!(out, "{}", interrupts_note(&summaries));
    }
    let _ = writeln!(out, "## Plots\n");
    let _ = writeln!(
        out,
        "![IOPS against queue depth]({iops_png})\n\n![Latency percentiles per job]({latency_png})\n"
    );
    let _ = writeln!(out, "## How to read this\n");
    let _ = writeln!(
        out,
        "- Linux jobs are fio with `--direct=1 --time_based --norandommap --randrepeat=0 \
         --lat_percentiles=1` on `/dev/nvme0n1`; latency is fio's total latency (submission \
         to completion), as the unikernel measures it.\n\
         - Busy % is the CPU time QEMU's threads spent between the guest's `BENCH-BEGIN` and \
         `BENCH-END` markers (`/proc/<pid>/task/<tid>/stat`, utime + stime) over the wall time \
         between them: the vCPU thread (`CPU 0/TCG`, guest code under TCG), the main loop \
         (`qemu-system-x86`, the NVMe device model) and the block layer's `worker` threads \
         (file I/O). 100 % is one host core. \"vCPU waiting\" is the time the vCPU thread \
         was runnable but had no host core (`schedstat`): a busy host shows there.\n\
         - Everything runs under TCG: guest instructions are emulated, so the vCPU thread's \
         load, not the device, usually sets the pace. The comparison shows how much guest \
         work each system spends per I/O, not what either would do on hardware.\n\
         - How the host's idle CPUs wait matters at low depth. A host that halts an idle \
         core at once (cpuidle `haltpoll` with `guest_halt_poll_ns` = 0, as these machines \
         boot) makes every wake-up of QEMU's main loop a round trip through the hypervisor \
         below, about 20–25 µs, and at depth 1 that wake-up is most of the latency for both \
         systems. One `./run.sh bench --backend null` on the same image: 4 KiB random read \
         at depth 1 gave 21 817 IOPS with 0 and 58 600 IOPS with 200 µs of halt polling \
         (depth 32: 322 098 and 509 648). `--host-halt-poll-ns` sets it for a run and the \
         page records it."
    );
    out
}

fn interrupts_note(summaries: &[JobSummary]) -> String {
    let mut uring = Vec::new();
    let mut libaio = Vec::new();
    for s in summaries {
        if let Some(n) = s
            .systems
            .get(&System::LinuxIoUring)
            .and_then(|s| s.nvme_irqs)
        {
            uring.push(n);
        }
        if let Some(n) = s
            .systems
            .get(&System::LinuxLibaio)
            .and_then(|s| s.nvme_irqs)
        {
            libaio.push(n);
        }
    }
    let total = |v: &[f64]| v.iter().sum::<f64>();
    format!(
        "NVMe interrupts Linux took during the fio runs (median per job, summed over jobs): \
         io_uring-hipri {:.0}, libaio {:.0}. Polled completions raise none, so a small \
         io_uring figure shows `hipri` really polled.\n",
        total(&uring),
        total(&libaio)
    )
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// Write the plot data files and the gnuplot script to `work`, then run
/// gnuplot (installed with apt-get when missing).
fn plot(runs: &RunsFile, work: &Path, iops_png: &Path, latency_png: &Path) -> Result<()> {
    fs::create_dir_all(work)?;
    let mut iops_panels = Vec::new();
    let mut latency_panels = Vec::new();
    for c in &runs.comparisons {
        let summaries = summarize(c);
        for rw in ["randread", "randwrite"] {
            let mut data = String::from("# depth, then median min max IOPS per system\n");
            for s in &summaries {
                let Some((job_rw, "4k", depth)) = job_terms(&s.job) else {
                    continue;
                };
                if job_rw != rw {
                    continue;
                }
                let _ = write!(data, "{depth}");
                for system in System::ALL {
                    match s.systems.get(&system) {
                        Some(x) => {
                            let _ =
                                write!(data, " {} {} {}", x.iops.median, x.iops.min, x.iops.max);
                        }
                        None => data.push_str(" NaN NaN NaN"),
                    }
                }
                data.push('\n');
            }
            if data.lines().count() > 1 {
                let file = work.join(format!("iops-{}-{rw}.dat", c.backend.name()));
                fs::write(&file, data)?;
                iops_panels.push((format!("{rw} 4 KiB, {} backend", c.backend.name()), file));
            }
        }
        let mut data = String::from("# index job, then p50 p99 p99.9 per system\n");
        for (i, s) in summaries.iter().enumerate() {
            let _ = write!(data, "{i} {}", s.job);
            for system in System::ALL {
                match s.systems.get(&system) {
                    Some(x) => {
                        let _ =
                            write!(data, " {} {} {}", x.p50.median, x.p99.median, x.p999.median);
                    }
                    None => data.push_str(" NaN NaN NaN"),
                }
            }
            data.push('\n');
        }
        let file = work.join(format!("latency-{}.dat", c.backend.name()));
        fs::write(&file, data)?;
        latency_panels.push((
            format!("{} backend", c.backend.name()),
            file,
            summaries.len(),
        ));
    }
    if iops_panels.is_empty() {
        bail!("nothing to plot");
    }
    let colours = ["#1b7837", "#2166ac", "#d6604d"];
    let mut script = String::new();
    let _ = writeln!(
        script,
        "set terminal pngcairo noenhanced size 1400,{} font 'Sans,11'\nset output '{}'",
        460 * iops_panels.len().div_ceil(2),
        iops_png.display()
    );
    let _ = writeln!(
        script,
        "set multiplot layout {},2 title 'IOPS against queue depth (median, bars: min–max)'",
        iops_panels.len().div_ceil(2)
    );
    let _ = writeln!(
        script,
        "set logscale x 2\nset xtics (1, 8, 32, 128)\nset xrange [0.8:160]\nset grid\n\
         set xlabel 'queue depth'\nset ylabel 'IOPS'\nset yrange [0:*]\nset key top left"
    );
    for (title, file) in &iops_panels {
        let _ = writeln!(script, "set title '{title}'");
        let mut parts = Vec::new();
        for (i, system) in System::ALL.iter().enumerate() {
            let column = 2 + 3 * i;
            parts.push(format!(
                "'{}' using 1:{}:{}:{} with yerrorlines lw 2 pt 7 lc rgb '{}' title '{}'",
                file.display(),
                column,
                column + 1,
                column + 2,
                colours[i],
                system.label()
            ));
        }
        let _ = writeln!(script, "plot {}", parts.join(", \\\n     "));
    }
    let _ = writeln!(script, "unset multiplot\nreset");
    let _ = writeln!(
        script,
        "set terminal pngcairo noenhanced size 1400,{} font 'Sans,11'\nset output '{}'",
        520 * latency_panels.len(),
        latency_png.display()
    );
    let _ = writeln!(
        script,
        "set multiplot layout {},1 title 'Latency per job: box p50 to p99, whisker to p99.9 (medians of runs)'",
        latency_panels.len()
    );
    let _ = writeln!(
        script,
        "set logscale y\nset yrange [5:200000]\nset grid ytics\nset ylabel 'latency (µs)'\n\
         set boxwidth 0.22\nset style fill solid 0.5\nset key top center horizontal\n\
         set xtics rotate by -25"
    );
    for (title, file, count) in &latency_panels {
        let _ = writeln!(
            script,
            "set title '{title}'\nset xrange [-0.6:{}]",
            *count as f64 - 0.4
        );
        let mut parts = Vec::new();
        for (i, system) in System::ALL.iter().enumerate() {
            let column = 3 + 3 * i;
            let offset = (i as f64 - 1.0) * 0.26;
            // Only the first series labels the jobs on the x axis.
            let label = if i == 0 { ":xtic(2)" } else { "" };
            parts.push(format!(
                "'{}' using ($1+{offset}):{c}:{c}:{w}:{b}{label} with candlesticks lc rgb '{}' title '{}' whiskerbars",
                file.display(),
                colours[i],
                system.label(),
                c = column,
                b = column + 1,
                w = column + 2,
            ));
        }
        let _ = writeln!(script, "plot {}", parts.join(", \\\n     "));
    }
    let _ = writeln!(script, "unset multiplot");
    let script_path = work.join("plots.gnuplot");
    fs::write(&script_path, &script)?;
    ensure_gnuplot()?;
    let out = Command::new("gnuplot")
        .arg(&script_path)
        .output()
        .context("running gnuplot")?;
    if !out.status.success() {
        bail!(
            "gnuplot failed on {}: {}",
            script_path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ensure_gnuplot() -> Result<()> {
    let present = Command::new("sh")
        .args(["-c", "command -v gnuplot"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("compare: installing gnuplot-nox with apt-get (for the plots)");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = if root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    let status = command
        .args(["install", "-y", "-qq", "gnuplot-nox"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("installing gnuplot-nox failed");
    }
    Ok(())
}
