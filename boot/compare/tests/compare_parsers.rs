//! The comparison's parsers against output captured from real boots: the
//! Linux guest's serial log with fio's JSON reports, the unikernel's
//! `BENCH-*` lines, and `/proc/<pid>/task/<tid>/stat` of a running QEMU.
//! No QEMU runs here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use compare::linux::{Cpio, depends_of, module_depends, parse_readelf};
use compare::parse::{self, SerialLine, ThreadGroup, ThreadTime};
use compare::report::{Spread, summarize};
use compare::{
    Backend, BootRun, Collected, Comparison, Environment, JobRun, System, protocol_machine,
};

const LINUX_IO_URING: &str = include_str!("data/compare/serial-linux-io_uring.txt");
const LINUX_LIBAIO: &str = include_str!("data/compare/serial-linux-libaio.txt");
const UNIKERNEL: &str = include_str!("data/compare/serial-unikernel.txt");
const STAT_BEFORE: &str = include_str!("data/compare/qemu-task-stat-before.txt");
const STAT_AFTER: &str = include_str!("data/compare/qemu-task-stat-after.txt");
const SCHEDSTAT_BEFORE: &str = include_str!("data/compare/qemu-task-schedstat-before.txt");
const SCHEDSTAT_AFTER: &str = include_str!("data/compare/qemu-task-schedstat-after.txt");

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

/// Feed a captured log through the collector; markers get empty samples.
fn collect(log: &str) -> Collected {
    let mut collected = Collected::default();
    let start = Instant::now();
    for (i, line) in log.lines().enumerate() {
        let now = start + Duration::from_millis(i as u64);
        let sample = line.starts_with("BENCH-").then(Vec::new);
        collected.feed(line, now, sample, 100.0);
    }
    collected
}

#[test]
fn linux_serial_log_gives_fio_figures_info_and_windows() {
    let c = collect(LINUX_IO_URING);
    assert!(c.done, "GUEST-DONE seen");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.info["kernel"], "6.1.0-56-amd64");
    assert_eq!(c.info["fio"], "fio-3.33");
    assert_eq!(c.info["io_poll"], "1", "the poll queue exists");
    assert_eq!(c.info["poll_queues"], "1");
    let jobs: Vec<&str> = c.measurements.iter().map(|m| m.job.as_str()).collect();
    assert_eq!(
        jobs,
        ["randread-4k-qd1", "randread-4k-qd128", "randwrite-4k-qd32"]
    );
    let read = &c.measurements[0];
    assert!(close(read.iops, 8364.905284));
    assert_eq!(read.ios, 16780);
    assert!(close(read.mb_per_s, 34.264693));
    assert_eq!(read.errors, 0);
    // A write job takes its figures from fio's "write" side.
    let write = &c.measurements[2];
    assert!(close(write.iops, 17515.242379));
    assert_eq!(write.ios, 35048);
    assert!(close(write.mb_per_s, 71.807936));
    // Total latency (lat_ns), not completion latency: 1822550.22 ns mean.
    assert!(close(write.lat_mean_us, 1822.550222868));
    assert!(close(write.lat_p50_us, 1171.456));
    assert!(close(write.lat_p99_us, 6455.296));
    assert!(close(write.lat_p999_us, 9502.72));
    // Polled completions: no NVMe interrupt during io_uring + hipri jobs.
    assert_eq!(c.irqs["randread-4k-qd1"], 0);
    assert_eq!(c.irqs["randwrite-4k-qd32"], 0);
    for job in jobs {
        assert!(c.windows.contains_key(job), "window for {job}");
    }
}

#[test]
fn libaio_jobs_take_interrupts() {
    let c = collect(LINUX_LIBAIO);
    assert_eq!(c.info["engine"], "libaio");
    assert_eq!(c.irqs["randread-4k-qd1"], 23412);
    assert!(close(c.measurements[1].iops, 14353.146853));
}

#[test]
fn unikernel_bench_lines() {
    let c = collect(UNIKERNEL);
    assert_eq!(c.first_io_ms, Some(45.586));
    assert_eq!(c.measurements.len(), 3);
    let m = &c.measurements[1];
    assert_eq!(m.job, "randread-4k-qd128");
    assert_eq!(m.ios, 149686);
    assert!(close(m.iops, 74843.0));
    assert!(close(m.mb_per_s, 306.56));
    assert!(close(m.lat_mean_us, 1659.72));
    assert!(close(m.lat_p50_us, 1144.61));
    assert!(close(m.lat_p99_us, 7987.08));
    assert!(close(m.lat_p999_us, 11042.54));
    assert_eq!(m.errors, 0);
    assert_eq!(c.windows.len(), 3);
}

#[test]
fn bad_reports_are_errors_not_panics() {
    assert!(matches!(
        parse::bench_result("{\"job\":\"x\"}"),
        Err(parse::ParseError::MissingField("ios"))
    ));
    assert!(matches!(
        parse::bench_result("{not json"),
        Err(parse::ParseError::Json(_))
    ));
    assert_eq!(
        parse::fio_json("fio: no job"),
        Err(parse::ParseError::NoJob)
    );
    assert_eq!(
        parse::fio_json("{\"jobs\":[]}"),
        Err(parse::ParseError::NoJob)
    );
    let mut c = Collected::default();
    let now = Instant::now();
    for line in [
        "FIO-JSON-BEGIN a io_uring",
        "{ \"jobs\" : [ {",
        "FIO-JSON-END a",
    ] {
        c.feed(line, now, None, 100.0);
    }
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert!(c.measurements.is_empty());
}

#[test]
fn serial_markers_only_at_line_start() {
    assert_eq!(
        parse::serial_line("BENCH-BEGIN randread-4k-qd1\r"),
        Some(SerialLine::Begin("randread-4k-qd1"))
    );
    assert_eq!(parse::serial_line("  BENCH-BEGIN x"), None);
    assert_eq!(parse::serial_line("[ 1.0] BENCH-END x"), None);
    assert_eq!(
        parse::serial_line("GUEST-IRQS randread-4k-qd1 12"),
        Some(SerialLine::Irqs("randread-4k-qd1", 12))
    );
    assert_eq!(parse::serial_line("GUEST-IRQS x many"), None);
    assert_eq!(
        parse::serial_line("BENCH-FIRST-IO-MS 45.586"),
        Some(SerialLine::FirstIoMs(45.586))
    );
}

fn stats(text: &str) -> Vec<ThreadTime> {
    text.lines()
        .map(|l| parse::thread_stat(l).expect("captured stat line parses"))
        .collect()
}

#[test]
fn proc_stat_of_qemu_threads() {
    let before = stats(STAT_BEFORE);
    let after = stats(STAT_AFTER);
    let names: Vec<&str> = after.iter().map(|t| t.comm.as_str()).collect();
    assert_eq!(names, ["qemu-system-x86", "call_rcu", "CPU 0/TCG"]);
    // utime 895 + stime 80; the name's space and slash do not shift fields.
    assert_eq!(after[2].ticks, 975);
    assert_eq!(after[2].tid, 3199);
    assert_eq!(before[0].ticks, 24 + 15);
    assert_eq!(ThreadGroup::of("CPU 0/TCG"), ThreadGroup::Vcpu);
    assert_eq!(ThreadGroup::of("qemu-system-x86"), ThreadGroup::MainLoop);
    assert_eq!(ThreadGroup::of("worker"), ThreadGroup::Worker);
    assert_eq!(ThreadGroup::of("call_rcu"), ThreadGroup::Other);
    assert!(parse::thread_stat("3199 (CPU 0/TCG) R 1 2").is_err());
    assert!(parse::thread_stat("garbage").is_err());
    assert!(
        parse::thread_stat("1 (a) b) S 0 0 0 0 0 0 0 0 0 0 7 8")
            .is_ok_and(|t| t.comm == "a) b" && t.ticks == 15)
    );
}

#[test]
fn busy_percent_arithmetic() {
    let before = stats(STAT_BEFORE);
    let after = stats(STAT_AFTER);
    // 2 s window at 100 ticks per second.
    let busy = parse::busy_percent(&before, &after, 2.0, 100.0);
    // vCPU: 975 - 828 = 147 ticks = 1.47 s of 2 s.
    assert!(close(busy[&ThreadGroup::Vcpu], 73.5));
    // Main loop: 92 - 39 = 53 ticks.
    assert!(close(busy[&ThreadGroup::MainLoop], 26.5));
    assert!(close(busy[&ThreadGroup::Other], 0.0));
    // A thread that appears inside the window counts from zero.
    let mut later = after.clone();
    later.push(ThreadTime {
        tid: 4000,
        comm: "worker".into(),
        ticks: 30,
        wait_ns: 0,
    });
    later.push(ThreadTime {
        tid: 4001,
        comm: "worker".into(),
        ticks: 20,
        wait_ns: 0,
    });
    let busy = parse::busy_percent(&before, &later, 2.0, 100.0);
    assert!(close(busy[&ThreadGroup::Worker], 25.0));
    assert!(parse::busy_percent(&before, &after, 0.0, 100.0).is_empty());

    // Run-queue wait from schedstat (same thread order as the stat files).
    let with_wait = |times: &[ThreadTime], text: &str| -> Vec<ThreadTime> {
        times
            .iter()
            .zip(text.lines())
            .map(|(t, l)| ThreadTime {
                wait_ns: parse::schedstat_wait_ns(l).expect("schedstat line"),
                ..t.clone()
            })
            .collect()
    };
    let waiting = parse::waiting_percent(
        &with_wait(&before, SCHEDSTAT_BEFORE),
        &with_wait(&after, SCHEDSTAT_AFTER),
        2.0,
    );
    // vCPU waited 4015681999 - 3470619646 ns = 0.545 s of 2 s.
    assert!(close(waiting[&ThreadGroup::Vcpu], 27.253_117_65));
}

#[test]
fn spread_and_summary() {
    let s = Spread::of(&[3.0, 1.0, 2.0]).expect("values");
    assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
    let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).expect("values");
    assert_eq!(s.median, 2.5);
    assert!(Spread::of(&[]).is_none());
    assert!(Spread::of(&[f64::NAN]).is_none());

    let uni = collect(UNIKERNEL);
    let linux = collect(LINUX_IO_URING);
    let boot = |system, c: &Collected, round| BootRun {
        round,
        system,
        boot_seconds: 1.0,
        first_io_ms: c.first_io_ms,
        guest_info: BTreeMap::new(),
        jobs: c
            .measurements
            .iter()
            .map(|m| JobRun {
                measurement: m.clone(),
                window_seconds: 2.0,
                busy: BTreeMap::from([(ThreadGroup::Vcpu, 50.0 + round as f64)]),
                waiting: BTreeMap::new(),
                ran_as: None,
                nvme_irqs: None,
            })
            .collect(),
    };
    let comparison = Comparison {
        backend: Backend::File,
        seconds: 2,
        ramp: 1,
        jobs: vec!["randread-4k-qd1".into(), "randwrite-4k-qd32".into()],
        environment: Environment {
            date: String::new(),
            qemu_version: String::new(),
            cpu_model: String::new(),
            cpu_count: 2,
            qemu_common: String::new(),
            qemu_unikernel: String::new(),
            qemu_linux: String::new(),
            linux_kernel: String::new(),
            fio_version: String::new(),
            host_idle: String::new(),
            unikernel_settings: String::new(),
            total_seconds: 0.0,
        },
        boots: vec![
            boot(System::Unikernel, &uni, 1),
            boot(System::LinuxIoUring, &linux, 1),
            boot(System::Unikernel, &uni, 2),
            boot(System::LinuxIoUring, &linux, 2),
        ],
    };
    let summaries = summarize(&comparison);
    assert_eq!(summaries.len(), 2);
    let read = &summaries[0];
    assert_eq!(read.systems[&System::Unikernel].rounds, 2);
    assert!(close(read.systems[&System::Unikernel].iops.median, 24174.0));
    assert!(close(
        read.systems[&System::Unikernel].busy[&ThreadGroup::Vcpu],
        51.5
    ));
    assert!(!read.systems.contains_key(&System::LinuxLibaio));
    let ratio = read.ratio_to_best_linux().expect("both systems ran");
    assert!(close(ratio, 24174.0 / 8364.905284));
    // The runs file round-trips.
    let text = serde_json::to_string(&comparison).expect("serialises");
    let back: Comparison = serde_json::from_str(&text).expect("parses back");
    assert_eq!(back.boots.len(), 4);
    assert_eq!(back.boots[1].jobs[2].measurement, linux.measurements[2]);
}

#[test]
fn job_names_split_into_fio_terms() {
    assert_eq!(
        parse::job_terms("randread-4k-qd128"),
        Some(("randread", "4k", 128))
    );
    assert_eq!(
        parse::job_terms("write-128k-qd8"),
        Some(("write", "128k", 8))
    );
    assert_eq!(parse::job_terms("randread-4k"), None);
    assert_eq!(parse::job_terms("randread-4k-qdx"), None);
}

#[test]
fn both_systems_share_the_nvme_command_line() {
    let scratch = std::env::temp_dir();
    let file = protocol_machine("linux", Backend::File, "/tmp/d.img".as_ref(), &scratch);
    let text = file.common_arguments().unwrap().join(" ");
    assert!(text.contains("-smp 1,maxcpus=2"));
    assert!(text.contains("-name linux,debug-threads=on"));
    assert!(text.contains("-drive if=none,id=nvme0,file=/tmp/d.img,format=raw"));
    assert!(text.contains("-device nvme,serial=UNIKERNEL0,drive=nvme0"));
    assert!(!text.contains("-trace"), "no NVMe tracing in a measurement");
    let null = protocol_machine("x", Backend::Null, "/tmp/d.img".as_ref(), &scratch);
    let null = null.common_arguments().unwrap().join(" ");
    assert!(null.contains("driver=null-co,size=1073741824,read-zeroes=on"));
    assert!(!null.contains("/tmp/d.img"));
}

#[test]
fn guest_builder_helpers() {
    let apt =
        "fio\n  Depends: libaio1\n  Depends: <libc6>\n |Depends: zlib1g\n  Suggests: gnuplot\n";
    assert_eq!(depends_of(apt), ["libaio1", "zlib1g"]);
    let readelf = "  [Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]\n \
                   0x0000000000000001 (NEEDED)             Shared library: [libnuma.so.1]\n \
                   0x000000000000001d (RUNPATH)            Library runpath: [/usr/lib/x86_64-linux-gnu/ceph]\n";
    let links = parse_readelf(readelf);
    assert_eq!(links.needed, ["libnuma.so.1"]);
    assert_eq!(links.runpath, ["/usr/lib/x86_64-linux-gnu/ceph"]);
    assert_eq!(
        links.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    let module = b"\x7fELF....\0license=GPL\0depends=t10-pi,crc64\0intree=Y\0";
    assert_eq!(module_depends(module), ["t10-pi", "crc64"]);
    assert!(module_depends(b"\0depends=\0").is_empty());

    let mut cpio = Cpio::default();
    cpio.file("init", 0o755, b"#!/bin/sh\n");
    let bytes = cpio.finish();
    assert_eq!(&bytes[..6], b"070701");
    // Mode field (second) of the first header: regular file, 0755.
    assert_eq!(&bytes[14..22], b"000081ed");
    // File size field (seventh).
    assert_eq!(&bytes[54..62], b"0000000a");
    // Name "init" + NUL after the 110-byte header, then padding to 4.
    assert_eq!(&bytes[110..115], b"init\0");
    assert!(bytes.len().is_multiple_of(4));
    assert!(
        bytes
            .windows(b"TRAILER!!!".len())
            .any(|w| w == b"TRAILER!!!")
    );
}
