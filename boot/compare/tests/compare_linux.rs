//! Boots the Debian Linux guest of the comparison once: polled io_uring
//! (`hipri`) must work on QEMU's NVMe device under TCG with
//! `-smp 1,maxcpus=2`. This is a slow benchmark boot (downloads packages the
//! first time), so it stays out of the default run:
//! `cargo test -p compare --test compare_linux -- --ignored`.

use std::path::{Path, PathBuf};

use compare::parse::ThreadGroup;
use compare::{self, Backend, Options, System};

#[test]
#[ignore = "boots Linux under TCG; run with --ignored"]
fn linux_guest_polls_with_io_uring_hipri() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace")
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let options = Options {
        runs: 1,
        seconds: 1,
        ramp: 1,
        jobs: vec!["randread-4k-qd1".into(), "randwrite-4k-qd8".into()],
        backend: Backend::File,
        systems: vec![System::LinuxIoUring],
        results: None,
        workspace,
        target_dir,
        host_halt_poll_ns: None,
    };
    let comparison = compare::run(&options).expect("the Linux guest ran its jobs");
    let boot = &comparison.boots[0];
    assert_eq!(boot.guest_info["io_poll"], "1", "poll queue present");
    assert_eq!(boot.jobs.len(), 2);
    for job in &boot.jobs {
        assert_eq!(job.measurement.errors, 0);
        assert!(job.measurement.ios > 0, "{} did I/O", job.measurement.job);
        // Polled completions raise no interrupt.
        assert_eq!(job.nvme_irqs, Some(0), "{} was polled", job.measurement.job);
        assert!(job.busy.get(&ThreadGroup::Vcpu).is_some_and(|b| *b > 0.0));
    }
}
