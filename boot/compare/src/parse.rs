//! Parsers for what the comparison reads: serial lines of both guests,
//! fio's JSON report, the unikernel's `BENCH-RESULT` objects, and
//! `/proc/<pid>/task/<tid>/stat` of the QEMU threads.
//!
//! All of them take text and return values or a [`ParseError`]; none
//! touches the machine, so the host tests feed them captured samples.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The text is not valid JSON.
    Json(String),
    /// A field the format requires is absent or of the wrong type.
    MissingField(&'static str),
    /// fio's report holds no job.
    NoJob,
    /// A `/proc/.../stat` line without the fields it should have.
    Stat(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(e) => write!(f, "not JSON: {e}"),
            ParseError::MissingField(name) => write!(f, "field {name} missing"),
            ParseError::NoJob => write!(f, "fio's report holds no job"),
            ParseError::Stat(line) => write!(f, "unexpected stat line: {line:?}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// One job's figures, the same for both systems.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Job name (protocol name, such as `randread-4k-qd32`).
    pub job: String,
    /// I/Os completed in the timed window.
    pub ios: u64,
    /// I/Os per second.
    pub iops: f64,
    /// Megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Mean latency, submission to completion, in microseconds.
    pub lat_mean_us: f64,
    /// Median latency in microseconds.
    pub lat_p50_us: f64,
    /// 99th percentile latency in microseconds.
    pub lat_p99_us: f64,
    /// 99.9th percentile latency in microseconds.
    pub lat_p999_us: f64,
    /// Failed I/Os (the unikernel) or fio's error code (non-zero: failed).
    pub errors: u64,
}

/// A line of serial output that means something to the comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum SerialLine<'a> {
    /// `BENCH-BEGIN <job>`: the timed window starts.
    Begin(&'a str),
    /// `BENCH-END <job>`: the timed window ended.
    End(&'a str),
    /// `BENCH-RESULT {json}`: the unikernel's figures for one job.
    Result(&'a str),
    /// `BENCH-FIRST-IO-MS <ms>`: kernel entry to the first completed I/O.
    FirstIoMs(f64),
    /// `FIO-JSON-BEGIN <job> <engine>`: fio's report follows.
    FioBegin(&'a str),
    /// `FIO-JSON-END <job>`: fio's report ended.
    FioEnd,
    /// `GUEST-INFO <key> <value>`.
    Info(&'a str, &'a str),
    /// `GUEST-IRQS <job> <count>`: NVMe interrupts during the job.
    Irqs(&'a str, u64),
    /// `GUEST-ERROR <text>`.
    Error(&'a str),
    /// `GUEST-DONE`.
    Done,
}

/// Classify one serial line (without its line end). Markers count only at
/// the start of a line; anything else is `None`.
pub fn serial_line(line: &str) -> Option<SerialLine<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let first = || rest.split_whitespace().next();
    match word {
        "BENCH-BEGIN" => first().map(SerialLine::Begin),
        "BENCH-END" => first().map(SerialLine::End),
        "BENCH-RESULT" if rest.starts_with('{') => Some(SerialLine::Result(rest)),
        "BENCH-FIRST-IO-MS" => rest.parse().ok().map(SerialLine::FirstIoMs),
        "FIO-JSON-BEGIN" => first().map(SerialLine::FioBegin),
        "FIO-JSON-END" => Some(SerialLine::FioEnd),
        "GUEST-INFO" => {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(SerialLine::Info(key, value.trim()))
        }
        "GUEST-IRQS" => {
            let (job, count) = rest.split_once(' ')?;
            count.trim().parse().ok().map(|n| SerialLine::Irqs(job, n))
        }
        "GUEST-ERROR" => Some(SerialLine::Error(rest)),
        "GUEST-DONE" => Some(SerialLine::Done),
        _ => None,
    }
}

fn number(value: &Value, field: &'static str) -> Result<f64, ParseError> {
    value
        .get(field)
        .and_then(Value::as_f64)
        .ok_or(ParseError::MissingField(field))
}

fn json(text: &str) -> Result<Value, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
}

/// The unikernel's `BENCH-RESULT` object (the text after the marker).
pub fn bench_result(text: &str) -> Result<Measurement, ParseError> {
    let value = json(text)?;
    let job = value
        .get("job")
        .and_then(Value::as_str)
        .ok_or(ParseError::MissingField("job"))?;
    Ok(Measurement {
        job: job.to_owned(),
        ios: number(&value, "ios")? as u64,
        iops: number(&value, "iops")?,
        mb_per_s: number(&value, "mb_per_s")?,
        lat_mean_us: number(&value, "lat_mean_us")?,
        lat_p50_us: number(&value, "lat_p50_us")?,
        lat_p99_us: number(&value, "lat_p99_us")?,
        lat_p999_us: number(&value, "lat_p999_us")?,
        errors: number(&value, "errors")? as u64,
    })
}

/// A percentile from fio's `percentile` map, whose keys are spelled like
/// `"99.900000"`.
fn percentile(map: &Value, wanted: f64) -> Option<f64> {
    map.as_object()?.iter().find_map(|(key, value)| {
        let key: f64 = key.parse().ok()?;
        ((key - wanted).abs() < 1e-6)
            .then(|| value.as_f64())
            .flatten()
    })
}

/// The first job of fio's `--output-format=json` report. The direction
/// (`read` or `write`) that did I/O gives the figures; latency is fio's
/// total latency (`lat_ns`, submission to completion; its percentiles need
/// `--lat_percentiles=1`, otherwise completion latency `clat_ns` is used).
pub fn fio_json(text: &str) -> Result<Measurement, ParseError> {
    // fio may print notes before the JSON object.
    let start = text.find('{').ok_or(ParseError::NoJob)?;
    let value = json(&text[start..])?;
    let job = value
        .get("jobs")
        .and_then(Value::as_array)
        .and_then(|jobs| jobs.first())
        .ok_or(ParseError::NoJob)?;
    let name = job
        .get("jobname")
        .and_then(Value::as_str)
        .ok_or(ParseError::MissingField("jobname"))?;
    let direction = ["read", "write"]
        .into_iter()
        .filter_map(|d| job.get(d))
        .max_by_key(|d| d.get("total_ios").and_then(Value::as_u64).unwrap_or(0))
        .ok_or(ParseError::MissingField("read"))?;
    let lat = direction
        .get("lat_ns")
        .ok_or(ParseError::MissingField("lat_ns"))?;
    let percentiles = lat
        .get("percentile")
        .or_else(|| direction.get("clat_ns").and_then(|c| c.get("percentile")))
        .ok_or(ParseError::MissingField("percentile"))?;
    let pick = |p: f64, field: &'static str| {
        percentile(percentiles, p)
            .map(|ns| ns / 1000.0)
            .ok_or(ParseError::MissingField(field))
    };
    Ok(Measurement {
        job: name.to_owned(),
        ios: number(direction, "total_ios")? as u64,
        iops: number(direction, "iops")?,
        mb_per_s: number(direction, "bw_bytes")? / 1e6,
        lat_mean_us: number(lat, "mean")? / 1000.0,
        lat_p50_us: pick(50.0, "50.000000")?,
        lat_p99_us: pick(99.0, "99.000000")?,
        lat_p999_us: pick(99.9, "99.900000")?,
        errors: number(job, "error")? as u64,
    })
}

/// Which part of QEMU a thread is, by its name (`debug-threads=on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ThreadGroup {
    /// `CPU 0/TCG`: the virtual CPU running guest code.
    Vcpu,
    /// `qemu-system-x86`: the main loop (device emulation, timers).
    MainLoop,
    /// `worker`: the block layer's thread pool (file I/O).
    Worker,
    /// Anything else (`call_rcu`, ...).
    Other,
}

impl ThreadGroup {
    /// The group a thread named `comm` belongs to.
    pub fn of(comm: &str) -> ThreadGroup {
        if comm.starts_with("CPU ") {
            ThreadGroup::Vcpu
        } else if comm.starts_with("qemu-system") {
            ThreadGroup::MainLoop
        } else if comm == "worker" {
            ThreadGroup::Worker
        } else {
            ThreadGroup::Other
        }
    }
}

/// One thread's accumulated CPU time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadTime {
    /// Thread id.
    pub tid: u32,
    /// Thread name.
    pub comm: String,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// Nanoseconds spent runnable but waiting for a host CPU (second field
    /// of `/proc/<pid>/task/<tid>/schedstat`; 0 when unknown).
    pub wait_ns: u64,
}

/// A `/proc/<pid>/task/<tid>/stat` line. The name sits in parentheses and
/// may itself hold spaces and parentheses (`CPU 0/TCG`), so it ends at the
/// last `)`; utime and stime are fields 14 and 15.
pub fn thread_stat(line: &str) -> Result<ThreadTime, ParseError> {
    let bad = || ParseError::Stat(line.chars().take(120).collect());
    let open = line.find('(').ok_or_else(bad)?;
    let close = line.rfind(')').ok_or_else(bad)?;
    if close < open {
        return Err(bad());
    }
    let tid = line[..open].trim().parse().map_err(|_| bad())?;
    let comm = line[open + 1..close].to_owned();
    let fields: Vec<&str> = line[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state): utime (14) is fields[11], stime fields[12].
    let tick = |i: usize| -> Result<u64, ParseError> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(bad)
    };
    Ok(ThreadTime {
        tid,
        comm,
        ticks: tick(11)? + tick(12)?,
        wait_ns: 0,
    })
}

/// The run-queue wait (nanoseconds) from a `schedstat` line: time on CPU,
/// time waiting to run, time slices.
pub fn schedstat_wait_ns(line: &str) -> Option<u64> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Busy percentage of each thread group over a window: CPU time between
/// the two samples over wall time (a group of several threads can exceed
/// 100). A thread absent from `before` started inside the window and counts
/// from zero; one absent from `after` ended inside it and is lost.
pub fn busy_percent(
    before: &[ThreadTime],
    after: &[ThreadTime],
    wall_seconds: f64,
    ticks_per_second: f64,
) -> BTreeMap<ThreadGroup, f64> {
    let mut busy = BTreeMap::new();
    if wall_seconds <= 0.0 || ticks_per_second <= 0.0 {
        return busy;
    }
    for thread in after {
        let start = before
            .iter()
            .find(|b| b.tid == thread.tid)
            .map_or(0, |b| b.ticks);
        let ticks = thread.ticks.saturating_sub(start) as f64;
        *busy.entry(ThreadGroup::of(&thread.comm)).or_insert(0.0) +=
            100.0 * ticks / ticks_per_second / wall_seconds;
    }
    busy
}

/// Percentage of the window each thread group spent runnable but waiting
/// for a host CPU (a busy host shows here, not as guest slowness).
pub fn waiting_percent(
    before: &[ThreadTime],
    after: &[ThreadTime],
    wall_seconds: f64,
) -> BTreeMap<ThreadGroup, f64> {
    let mut waiting = BTreeMap::new();
    if wall_seconds <= 0.0 {
        return waiting;
    }
    for thread in after {
        let start = before
            .iter()
            .find(|b| b.tid == thread.tid)
            .map_or(0, |b| b.wait_ns);
        let ns = thread.wait_ns.saturating_sub(start) as f64;
        *waiting.entry(ThreadGroup::of(&thread.comm)).or_insert(0.0) +=
            100.0 * ns / 1e9 / wall_seconds;
    }
    waiting
}

/// The protocol's job name split into fio terms: (rw, block size, depth),
/// such as `("randread", "4k", 32)`.
pub fn job_terms(job: &str) -> Option<(&str, &str, u32)> {
    let mut parts = job.split('-');
    let rw = parts.next()?;
    let block = parts.next()?;
    let depth = parts.next()?.strip_prefix("qd")?.parse().ok()?;
    parts.next().is_none().then_some((rw, block, depth))
}
