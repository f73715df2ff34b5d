//! The benchmark's jobs on the host, against the simulated controller: the
//! same loop the image runs on a real namespace, with the simulator's fake
//! clock as the tick counter. A read job completes requests inside its
//! window and its figures agree with each other; write jobs go only where
//! writes are allowed, and a namespace that refuses writes stops the job
//! after a single refused write.

mod common;

use common::{controller_owning_namespace_1, lbas};
use inspector_core::bench::{
    ALL_JOBS, Job, Mark, Plan, Ready, STOPPED_WRITE_PROTECTED, Target, plan, run_job, select,
};
use inspector_core::{ClockTicks, JobResult, Ticks};
use nvme::status::generic;
use nvme::{DmaHome, Status};
use nvme_sim::{Bench, SimConfig, TestController, test_config};

/// The simulator's default namespace: 512-byte blocks.
const BS: u64 = 512;
/// Jobs touch blocks from 1 MiB on.
const FIRST: u64 = (1 << 20) / BS;
const WINDOW_MS: u64 = 5;

fn job(name: &str) -> Job {
    *ALL_JOBS.iter().find(|j| j.name == name).unwrap()
}

fn target(controller: &TestController, writable: bool) -> Target {
    let ns = controller.namespaces()[0];
    Target {
        block_size: ns.block_size as u64,
        block_count: ns.block_count,
        first: FIRST,
        zoned: ns.zoned.is_some(),
        writable,
    }
}

fn ready(plan: Plan) -> Ready {
    match plan {
        Plan::Run(ready) => ready,
        Plan::Skip(result) => panic!("skipped: {:?}", result.skipped),
    }
}

/// What a run gave: the result, the window's marks, the latencies kept.
struct Run {
    result: JobResult,
    marks: Vec<String>,
    latencies: Vec<u32>,
}

/// Plan and run `job` on namespace 1 through a queue of its own.
fn run(bench: &Bench, controller: &mut TestController, job: &Job, writable: bool) -> Run {
    let home: DmaHome = bench.dma.home();
    let ns = controller.namespace_handle(1).unwrap();
    let target = target(controller, writable);
    let mut queue = controller.take_io_queue().unwrap();
    let ready = ready(plan(job, &target, queue.depth(), false, &home));
    let ticks = ClockTicks(bench.clock.clone());
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut marks = Vec::new();
    let result = run_job(
        &mut queue,
        &ns,
        ready,
        &ticks,
        WINDOW_MS,
        &mut latencies,
        &mut |mark| {
            marks.push(match mark {
                Mark::Begin(name) => format!("BEGIN {name}"),
                Mark::End(name) => format!("END {name}"),
            })
        },
    );
    assert_eq!(queue.in_flight(), 0);
    assert!(controller.return_io_queue(queue).is_ok());
    Run {
        result,
        marks,
        latencies,
    }
}

#[test]
fn a_read_job_measures_its_window_and_its_figures_agree() {
    let bench = Bench::new(SimConfig::default());
    let mut controller = bench.controller(test_config()).unwrap();
    let job = job("randread-4k-qd8");
    let Run {
        result,
        marks,
        latencies,
    } = run(&bench, &mut controller, &job, false);
    assert_eq!(result.skipped, None);
    assert_eq!((result.name.as_str(), result.depth), ("randread-4k-qd8", 8));
    assert_eq!(result.block_bytes, 4096);
    assert_eq!(result.errors, 0);
    assert_eq!(marks, ["BEGIN randread-4k-qd8", "END randread-4k-qd8"]);
    // Every completion inside the window has its latency kept, and more
    // reads were sent than completed inside it (the warm-up's, the last).
    assert!(result.ios > 100, "{result:?}");
    assert_eq!(latencies.len() as u64, result.ios);
    let reads = lbas(&bench, 0x02);
    assert!(reads.len() as u64 > result.ios, "{} reads", reads.len());
    // Only inside the area, in whole 4 KiB units from its start.
    let count = controller.namespaces()[0].block_count;
    assert!(
        reads
            .iter()
            .all(|&lba| lba >= FIRST && lba + 8 <= count && (lba - FIRST).is_multiple_of(8))
    );
    // The figures follow from the count.
    let seconds = WINDOW_MS as f64 / 1000.0;
    assert_eq!(result.iops, result.ios as f64 / seconds);
    assert_eq!(result.mb_per_s, result.iops * 4096.0 / 1e6);
    assert_eq!(result.cycles_per_io, 1_000_000 * WINDOW_MS / result.ios);
    let [mean, p50, p99, p999] = result.latency_us;
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999,
        "{:?}",
        result.latency_us
    );
    let (low, high) = (latencies[0], latencies[latencies.len() - 1]);
    assert!(f64::from(low) / 1000.0 <= mean && mean <= f64::from(high) / 1000.0);
    assert!(p999 <= f64::from(high) / 1000.0);
    // The JSON line carries the same figures.
    let json = result.json();
    assert!(json.starts_with("{\"job\":\"randread-4k-qd8\",\"depth\":8,\"block_bytes\":4096,"));
    assert!(json.contains(&format!("\"ios\":{},", result.ios)), "{json}");
}

#[test]
fn a_sequential_job_walks_the_area_in_order() {
    let bench = Bench::new(SimConfig::default());
    let mut controller = bench.controller(test_config()).unwrap();
    let Run { result, .. } = run(&bench, &mut controller, &job("read-128k-qd8"), false);
    assert!(result.ios > 0 && result.errors == 0, "{result:?}");
    // 128 KiB requests: 256 blocks each, one after the other from the
    // area's start (a request may take several commands).
    let reads = lbas(&bench, 0x02);
    assert_eq!(reads[0], FIRST);
    let starts: Vec<u64> = reads
        .iter()
        .copied()
        .filter(|lba| (lba - FIRST).is_multiple_of(256))
        .take(20)
        .collect();
    let expected: Vec<u64> = (0..20).map(|i| FIRST + i * 256).collect();
    assert_eq!(starts, expected);
}

#[test]
fn a_write_job_on_an_owned_namespace_writes_inside_the_area() {
    let bench = Bench::new(SimConfig::default());
    let mut controller = controller_owning_namespace_1(&bench);
    let Run { result, marks, .. } = run(&bench, &mut controller, &job("randwrite-4k-qd32"), true);
    assert_eq!(result.skipped, None);
    assert_eq!(result.errors, 0);
    assert!(result.ios > 0, "{result:?}");
    assert_eq!(marks.len(), 2);
    let writes = lbas(&bench, 0x01);
    assert!(writes.len() as u64 > result.ios);
    assert!(writes.iter().all(|&lba| lba >= FIRST));
    assert!(bench.sim.disk(1, writes[0], 8).iter().all(|&b| b == 0x5a));
    assert!(bench.sim.disk(1, FIRST - 1, 1).iter().all(|&b| b == 0));
}

#[test]
fn write_jobs_are_skipped_with_the_reason_where_writes_are_not_allowed() {
    let bench = Bench::new(SimConfig::default());
    let mut controller = bench.controller(test_config()).unwrap();
    let home = bench.dma.home();
    let write = job("randwrite-4k-qd32");
    let skipped = |target: &Target, write_protected: bool| match plan(
        &write,
        target,
        64,
        write_protected,
        &home,
    ) {
        Plan::Skip(result) => result.skipped,
        Plan::Run(_) => None,
    };
    let owned = target(&controller, true);
    let not_owned = target(&controller, false);
    assert_eq!(
        skipped(&not_owned, false),
        Some("namespace not owned (writes are never sent to it)")
    );
    assert_eq!(
        skipped(&owned, true),
        Some("namespace write-protected (no writes are sent to it)")
    );
    let zoned = Target {
        zoned: true,
        ..owned
    };
    assert_eq!(
        skipped(&zoned, false),
        Some("zoned namespace (no random writes are sent to it)")
    );
    let tiny = Target {
        block_count: FIRST + 7,
        ..owned
    };
    assert_eq!(skipped(&tiny, false), Some("namespace too small"));
    // Reads still run on a namespace that is not owned; nothing was written.
    let Run { result, .. } = run(&bench, &mut controller, &job("randread-4k-qd1"), false);
    assert!(result.skipped.is_none() && result.ios > 0, "{result:?}");
    assert!(lbas(&bench, 0x01).is_empty());
}

#[test]
fn a_namespace_that_refuses_writes_stops_the_job_after_one_write() {
    let bench = Bench::new(SimConfig::default());
    bench
        .sim
        .refuse_writes(1, Status::new(0, generic::NAMESPACE_WRITE_PROTECTED));
    let mut controller = controller_owning_namespace_1(&bench);
    let Run { result, .. } = run(&bench, &mut controller, &job("randwrite-4k-qd32"), true);
    assert_eq!(result.skipped, Some(STOPPED_WRITE_PROTECTED));
    assert_eq!((result.errors, result.ios), (0, 0));
    assert_eq!(bench.sim.writes_refused(), 1);
}

#[test]
fn a_depth_over_the_queue_is_capped_and_named_so() {
    let bench = Bench::new(SimConfig::default());
    let controller = bench.controller(test_config()).unwrap();
    let home = bench.dma.home();
    let Plan::Run(ready) = plan(
        &job("randread-4k-qd128"),
        &target(&controller, false),
        16,
        false,
        &home,
    ) else {
        panic!("the job should run");
    };
    assert_eq!(ready.result.name, "randread-4k-qd16");
    assert_eq!((ready.result.depth, ready.buffers.len()), (16, 16));
    assert_eq!(ready.area.io_blocks, 8);
    assert_eq!(ready.area.first, FIRST);
}

#[test]
fn jobs_are_picked_by_name_in_the_canonical_order() {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (jobs, unknown) = select(&names(&["write-128k-qd8", "randread-4k-qd1", "nope"]));
    let picked: Vec<&str> = jobs.iter().map(|j| j.name).collect();
    assert_eq!(picked, ["randread-4k-qd1", "write-128k-qd8"]);
    assert_eq!(unknown, ["nope"]);
    assert_eq!(select(&[]).0.len(), 5);
    assert_eq!(select(&names(&["all"])).0.len(), ALL_JOBS.len());
}

#[test]
fn clock_ticks_are_nanoseconds() {
    let bench = Bench::new(SimConfig::default());
    let ticks = ClockTicks(bench.clock.clone());
    assert_eq!(ticks.hz(), 1_000_000_000);
    assert_eq!(ticks.to_ns(1234), 1234);
    let before = ticks.now();
    bench.clock.advance_ms(3);
    assert!(ticks.now() >= before + 3_000_000);
}
