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
