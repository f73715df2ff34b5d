//! The kernel test runner must report failures: a kernel that panics, one
//! that hangs, and one that triple-faults each end as a failure with a
//! message that says what happened; a kernel that exits cleanly passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use boot::qemu::Outcome;
use boot::runner::run_test;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Build the deliberately failing kernels (examples of the kernel crate)
/// once per test process.
fn kernel(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace())
            .args([
                "build",
                "--package",
                "kernel",
                "--target",
                "x86_64-unknown-none",
            ])
            .args(["--examples", "--bins"])
            .status()
            .expect("running cargo");
        assert!(status.success(), "building the kernel examples failed");
    });
    let dir = workspace().join("target/x86_64-unknown-none/debug");
    let path = if name == "kernel" {
        dir.join(name)
    } else {
        dir.join("examples").join(name)
    };
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn a_panicking_kernel_is_a_failure_with_the_panic_message() {
    let (run, verdict) = run_test(&kernel("fail_panic"), false).unwrap();
    assert_eq!(run.outcome, Outcome::Panic);
    let reason = verdict.unwrap_err();
    assert!(reason.contains("panicked"), "{reason}");
    assert!(reason.contains("deliberate failure"), "{reason}");
    assert!(
        run.serial.contains("fail_panic.rs"),
        "location missing from:\n{}",
        run.serial
    );
}

#[test]
fn a_hanging_kernel_times_out() {
    let (run, verdict) = run_test(&kernel("fail_hang"), false).unwrap();
    assert!(
        matches!(run.outcome, Outcome::Timeout(_)),
        "{:?}",
        run.outcome
    );
    let reason = verdict.unwrap_err();
    assert!(reason.contains("timed out after 8 s"), "{reason}");
    assert!(run.serial.contains("hanging on purpose"));
}

#[test]
fn a_triple_fault_is_a_failure() {
    let (run, verdict) = run_test(&kernel("fail_triple_fault"), false).unwrap();
    assert_eq!(run.outcome, Outcome::Reset);
    let reason = verdict.unwrap_err();
    assert!(reason.contains("triple fault"), "{reason}");
}

#[test]
fn a_clean_kernel_passes() {
    let (run, verdict) = run_test(&kernel("kernel"), false).unwrap();
    assert_eq!(verdict, Ok(()), "serial:\n{}", run.serial);
    assert!(
        run.serial.contains("nvme-unikernel"),
        "no banner in:\n{}",
        run.serial
    );
}
