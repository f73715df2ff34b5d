//! `./run.sh bench --backend null`: on QEMU's null-co driver the read jobs
//! run, the write jobs are reported as skipped and never reach the device,
//! and no disk file is created.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build the default application (debug) and return its ELF.
fn default_application() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let options = boot::app::BuildOptions {
        workspace: workspace.clone(),
        release: false,
        target_dir: None,
    };
    boot::app::build(&workspace.join("apps/inspector"), &options)
        .unwrap_or_else(|error| panic!("building the default application: {error}"))
}

#[test]
fn null_backend_runs_reads_and_skips_writes_without_a_disk_file() {
    let kernel = default_application();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_unikernel"))
        .current_dir(dir.path())
        .arg("bench")
        .arg("--kernel")
        .arg(&kernel)
        .arg("--out")
        .arg(dir.path().join("image.img"))
        .args([
            "--backend",
            "null",
            "--jobs",
            "randread-4k-qd1,write-128k-qd8",
        ])
        .args(["--seconds", "0.15", "--timeout", "120"])
        .output()
        .unwrap();
    let serial = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{serial}");
    assert!(serial.contains("read-only"), "{serial}");
    let results: Vec<serde_json::Value> = serial
        .lines()
        .filter_map(|l| l.strip_prefix("BENCH-RESULT "))
        .map(|json| serde_json::from_str(json).expect("BENCH-RESULT is JSON"))
        .collect();
    assert_eq!(results.len(), 1, "{serial}");
    assert_eq!(results[0]["job"], "randread-4k-qd1");
    assert!(results[0]["ios"].as_u64().unwrap() > 0);
    assert_eq!(results[0]["errors"], 0);
    assert!(
        serial.contains("write-128k-qd8") && serial.contains("skipped: namespace not owned"),
        "{serial}"
    );
    assert!(!serial.contains("BENCH-BEGIN write-128k-qd8"), "{serial}");
    // Nothing was written anywhere: no disk appeared.
    assert!(!dir.path().join("disks").exists());
    let first_io_ms: f64 = serial
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-FIRST-IO-MS "))
        .expect("BENCH-FIRST-IO-MS line")
        .trim()
        .parse()
        .expect("a number");
    assert!(first_io_ms > 0.0);
}
