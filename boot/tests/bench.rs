//! The in-image benchmark as the benchmark protocol describes it: a very
//! short run on an owned disk prints parseable `BENCH-RESULT` lines with
//! I/Os and no errors, bracketed by `BENCH-BEGIN` / `BENCH-END`. The null
//! backend (`./run.sh bench --backend null`) is tested with the command
//! line, in boot/cli/tests/bench_null.rs.

use std::time::Duration;

mod support;

/// The `BENCH-RESULT` objects on `serial`, parsed.
fn results(serial: &str) -> Vec<serde_json::Value> {
    serial
        .lines()
        .filter_map(|l| l.strip_prefix("BENCH-RESULT "))
        .map(|json| serde_json::from_str(json).expect("BENCH-RESULT is JSON"))
        .collect()
}

fn first_io_ms(serial: &str) -> f64 {
    serial
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-FIRST-IO-MS "))
        .expect("BENCH-FIRST-IO-MS line")
        .trim()
        .parse()
        .expect("BENCH-FIRST-IO-MS is a number")
}

#[test]
fn short_bench_on_an_owned_disk_reports_every_job() {
    let kernel = support::app("inspector");
    let dir = tempfile::tempdir().unwrap();
    let disk = support::disk_image(dir.path(), "bench.img", 64 << 20, Some("UNIKERNEL0"));
    let settings = "steps = identify,bench\nbench_ms = 150\nbench_jobs = randread-4k-qd8, randwrite-4k-qd128\n";
    let machine = support::machine(&kernel, dir.path(), settings, &[(&disk, "UNIKERNEL0")]);
    let run = boot::qemu::run(&machine, Duration::from_secs(120), None).unwrap();
    assert!(run.outcome.is_success(), "{}\n{}", run.outcome, run.serial);
    assert!(run.nvme_violations.is_empty(), "{:?}", run.nvme_violations);
    let results = results(&run.serial);
    let jobs: Vec<&str> = results.iter().map(|r| r["job"].as_str().unwrap()).collect();
    assert_eq!(
        jobs,
        ["randread-4k-qd8", "randwrite-4k-qd128"],
        "{}",
        run.serial
    );
    for (r, depth) in results.iter().zip([8, 128]) {
        assert_eq!(r["depth"], depth);
        assert_eq!(r["block_bytes"], 4096);
        assert!(r["ios"].as_u64().unwrap() > 0, "{r}");
        assert!(r["iops"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        let p50 = r["lat_p50_us"].as_f64().unwrap();
        assert!(
            p50 > 0.0 && p50 <= r["lat_p999_us"].as_f64().unwrap(),
            "{r}"
        );
        assert!(r["cycles_per_io"].as_u64().unwrap() > 0, "{r}");
        let job = r["job"].as_str().unwrap();
        let begin = run
            .serial
            .find(&format!("BENCH-BEGIN {job}\n"))
            .expect("BEGIN");
        let end = run.serial.find(&format!("BENCH-END {job}\n")).expect("END");
        let result = run.serial.find(&format!("\"job\":\"{job}\"")).unwrap();
        assert!(
            begin < end && end < result,
            "markers out of order for {job}"
        );
    }
    let ms = first_io_ms(&run.serial);
    assert!(ms > 0.0 && ms < 10_000.0, "{ms}");
}

/// `bench_all_namespaces = yes` on one controller with two owned
/// namespaces: each job runs on both at once, one row per namespace and a
/// `sum` row whose I/Os, IOPS and MB/s are the rows' totals, no errors.
#[test]
fn every_namespace_at_once_gives_a_row_each_and_their_sum() {
    let kernel = support::app("inspector");
    let dir = tempfile::tempdir().unwrap();
    let settings = "steps = bench\nbench_ms = 150\nbench_all_namespaces = yes\n\
                    bench_jobs = randread-4k-qd8, randwrite-4k-qd32\n";
    let mut machine = support::machine(&kernel, dir.path(), settings, &[]);
    let mut controller = boot::qemu::NvmeController {
        id: "ctrl0".into(),
        serial: "MULTINS0".into(),
        properties: Vec::new(),
        namespaces: Vec::new(),
    };
    for nsid in 1..=2 {
        let path = dir.path().join(format!("ns{nsid}.img"));
        boot::disk::create_if_missing(&path, 32 << 20).unwrap();
        boot::disk::stamp(&path, "MULTINS0", nsid).unwrap();
        controller.namespaces.push(boot::qemu::NvmeNamespace {
            path,
            properties: Vec::new(),
        });
    }
    machine.controllers.push(controller);
    let run = boot::qemu::run(&machine, Duration::from_secs(120), None).unwrap();
    assert!(run.outcome.is_success(), "{}\n{}", run.outcome, run.serial);
    assert!(run.nvme_violations.is_empty(), "{:?}", run.nvme_violations);
    assert!(run.serial.contains("result: PASS"), "{}", run.serial);
    let results = results(&run.serial);
    for (job, depth) in [("randread-4k-qd8", 8), ("randwrite-4k-qd32", 32)] {
        let rows: Vec<&serde_json::Value> = results.iter().filter(|r| r["job"] == job).collect();
        let namespaces: Vec<&str> = rows
            .iter()
            .map(|r| r["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(namespaces, ["MULTINS0/1", "MULTINS0/2", "sum"], "{job}");
        // One window for both namespaces.
        assert_eq!(
            run.serial.matches(&format!("BENCH-BEGIN {job}\n")).count(),
            1
        );
        assert_eq!(run.serial.matches(&format!("BENCH-END {job}\n")).count(), 1);
        let (each, sum) = rows.split_at(2);
        let sum = sum[0];
        for r in each {
            assert_eq!(r["depth"], depth, "{r}");
            assert!(r["ios"].as_u64().unwrap() > 0, "{r}");
            assert_eq!(r["errors"], 0, "{r}");
        }
        let total = |key: &str| each.iter().map(|r| r[key].as_f64().unwrap()).sum::<f64>();
        assert_eq!(sum["ios"].as_f64().unwrap(), total("ios"), "{sum}");
        assert_eq!(sum["depth"], 2 * depth, "{sum}");
        assert_eq!(sum["errors"], 0, "{sum}");
        // Each figure printed rounded (to 1 IOPS, 0.01 MB/s): the sum of
        // two rounded rows is off by at most one and a half units.
        assert!(
            (sum["iops"].as_f64().unwrap() - total("iops")).abs() <= 1.5,
            "{sum}"
        );
        assert!(
            (sum["mb_per_s"].as_f64().unwrap() - total("mb_per_s")).abs() <= 0.0151,
            "{sum}"
        );
        // The mean over every I/O lies between the namespaces' means.
        let means: Vec<f64> = each
            .iter()
            .map(|r| r["lat_mean_us"].as_f64().unwrap())
            .collect();
        let mean = sum["lat_mean_us"].as_f64().unwrap();
        let (low, high) = (means[0].min(means[1]), means[0].max(means[1]));
        assert!(low - 0.01 <= mean && mean <= high + 0.01, "{sum} {means:?}");
        let p50 = sum["lat_p50_us"].as_f64().unwrap();
        assert!(
            p50 > 0.0 && p50 <= sum["lat_p999_us"].as_f64().unwrap(),
            "{sum}"
        );
    }
    let json = run
        .serial
        .lines()
        .find_map(|l| l.strip_prefix("JSON "))
        .expect("JSON report line");
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        report["bench_all_namespaces"].as_array().unwrap().len(),
        6,
        "{json}"
    );
    assert!(run.serial.contains("benchmark on every namespace at once:"));
}
