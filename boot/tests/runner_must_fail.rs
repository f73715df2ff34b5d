//! The kernel test runner must report failures: a kernel that panics, one
//! that hangs, and one that triple-faults each end as a failure with a
//! message that says what happened; a kernel that exits cleanly passes.

use boot::qemu::Outcome;
use boot::runner::run_test;

mod support;

fn kernel(name: &str) -> std::path::PathBuf {
    if name == "inspector" {
        support::app(name)
    } else {
        support::kernel("example", name)
    }
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
    assert!(reason.contains("timed out after 20 s"), "{reason}");
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
    let (run, verdict) = run_test(&kernel("inspector"), false).unwrap();
    assert_eq!(verdict, Ok(()), "serial:\n{}", run.serial);
    assert!(
        run.serial.contains("nvme-unikernel"),
        "no banner in:\n{}",
        run.serial
    );
}
