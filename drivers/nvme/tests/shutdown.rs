//! Shutdown waits as long as the drive says (RTD3E), bounded, on the
//! simulated clock.

use nvme::controller::{SHUTDOWN_WAIT_MAX_MS, SHUTDOWN_WAIT_MIN_MS, shutdown_wait_ms};
use nvme::{Error, Stage};
use nvme_sim::real_drive::RealDrive;
use nvme_sim::*;

const MS: u64 = 1_000_000;

fn drive(real: RealDrive) -> Bench {
    Bench::new(SimConfig {
        real,
        ..SimConfig::default()
    })
}

/// Runs shutdown, returning its result and the simulated milliseconds it
/// took.
fn timed_shutdown(bench: &Bench, ctrl: &mut TestController) -> (Result<(), Error>, u64) {
    let start = bench.clock.peek();
    let result = ctrl.shutdown();
    (result, (bench.clock.peek() - start) / MS)
}

#[test]
fn slow_drive_within_rtd3e_completes() {
    // RTD3E 30 s; the drive takes 20 s, twice the old fixed 10 s limit.
    let bench = drive(RealDrive {
        rtd3e_us: 30_000_000,
        shutdown_ms: Some(20_000),
        ..RealDrive::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().rtd3e_us, 30_000_000);
    assert_eq!(ctrl.info().shutdown_wait_ms, 30_000);
    let (result, took) = timed_shutdown(&bench, &mut ctrl);
    assert_eq!(result, Ok(()));
    assert!((20_000..20_100).contains(&took), "{took} ms");
    assert_eq!(
        bench.sim.shutdown_status(),
        nvme::registers::ShutdownStatus::Complete
    );
}

#[test]
fn drive_that_never_completes_times_out_at_rtd3e() {
    let bench = drive(RealDrive {
        rtd3e_us: 30_000_000,
        never_shuts_down: true,
        ..RealDrive::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let (result, took) = timed_shutdown(&bench, &mut ctrl);
    assert_eq!(
        result,
        Err(Error::Timeout {
            stage: Stage::Shutdown
        })
    );
    assert!((30_000..30_100).contains(&took), "{took} ms");
    assert!(ctrl.is_shut_down());
}

#[test]
fn unreported_rtd3e_waits_the_minimum() {
    let bench = drive(RealDrive {
        rtd3e_us: 0,
        never_shuts_down: true,
        ..RealDrive::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().shutdown_wait_ms, SHUTDOWN_WAIT_MIN_MS);
    let (result, took) = timed_shutdown(&bench, &mut ctrl);
    assert!(result.is_err());
    assert!((1_000..1_100).contains(&took), "{took} ms");
}

#[test]
fn huge_rtd3e_is_capped() {
    let bench = drive(RealDrive {
        rtd3e_us: u32::MAX,
        never_shuts_down: true,
        ..RealDrive::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().shutdown_wait_ms, SHUTDOWN_WAIT_MAX_MS);
    let (result, took) = timed_shutdown(&bench, &mut ctrl);
    assert!(result.is_err());
    assert!((60_000..60_100).contains(&took), "{took} ms");
}

#[test]
fn configuration_cuts_the_wait() {
    let bench = drive(RealDrive {
        rtd3e_us: 30_000_000,
        never_shuts_down: true,
        ..RealDrive::default()
    });
    let mut ctrl = bench
        .controller(nvme::Config {
            shutdown_timeout_ms: 5_000,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().shutdown_wait_ms, 5_000);
    let (_, took) = timed_shutdown(&bench, &mut ctrl);
    assert!((5_000..5_100).contains(&took), "{took} ms");
}

#[test]
fn wait_bounds() {
    assert_eq!(shutdown_wait_ms(0, u64::MAX), 1_000);
    assert_eq!(shutdown_wait_ms(1, u64::MAX), 1_000);
    assert_eq!(shutdown_wait_ms(8_000_001, u64::MAX), 8_001);
    assert_eq!(shutdown_wait_ms(u32::MAX, u64::MAX), 60_000);
    assert_eq!(shutdown_wait_ms(30_000_000, 10), 10);
    assert_eq!(
        nvme::Config::default().shutdown_timeout_ms,
        SHUTDOWN_WAIT_MAX_MS
    );
}
