//! The `AsyncController` notices a fatal or vanished controller without
//! waiting for a request's deadline: when requests have been in flight
//! with no completion for `HEALTH_CHECK_MS`, it reads CSTS once, and
//! recovers at once if the controller is fatal (CSTS.CFS) or its registers
//! read as all ones. Each request still completes exactly once, and later
//! ones work. CSTS is read only in such quiet periods, never on every poll.

mod common;

use common::async_reads::{number_the_blocks, read_block_number, read_each_block};
use nvme::async_controller::HEALTH_CHECK_MS;
use nvme::{AsyncController, Error, RegisterAccess};
use nvme_sim::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// CSTS's offset in the register file.
const CSTS: usize = 0x1c;

/// The simulated controller, counting the reads of CSTS.
#[derive(Clone)]
struct Counting {
    sim: Sim,
    csts_reads: Arc<AtomicU64>,
}

impl RegisterAccess for Counting {
    fn read32(&self, offset: usize) -> u32 {
        if offset == CSTS {
            self.csts_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.sim.read32(offset)
    }

    fn write32(&self, offset: usize, value: u32) {
        self.sim.write32(offset, value);
    }
}

type Ctrl = AsyncController<Counting, TestDma, FakeClock>;

fn setup() -> (Bench, Ctrl, Arc<AtomicU64>) {
    let bench = Bench::new(SimConfig::default());
    number_the_blocks(&bench.sim);
    let csts_reads = Arc::new(AtomicU64::new(0));
    let regs = Counting {
        sim: bench.sim.clone(),
        csts_reads: csts_reads.clone(),
    };
    let ctrl =
        nvme::Controller::new(regs, bench.dma.clone(), bench.clock.clone(), test_config()).unwrap();
    (bench, AsyncController::new(ctrl), csts_reads)
}

/// `count` single-block reads, one task each, through a queue of `actrl`,
/// with `step` as the idle step; the results by LBA.
fn reads(
    bench: &Bench,
    actrl: &Ctrl,
    count: u64,
    step: impl FnMut() -> usize,
) -> Vec<Vec<Result<(), Error>>> {
    let q = actrl.take_queue(false).unwrap();
    let ns = actrl.namespace_handle(1).unwrap();
    read_each_block(&q, ns, &bench.dma, count, step)
}

/// [`reads`] while the device holds every completion: at each idle step
/// the clock moves 1 ms and `step` runs with the milliseconds passed so
/// far (it polls the completions).
fn reads_while_the_device_holds_them(
    bench: &Bench,
    actrl: &Ctrl,
    count: u64,
    mut step: impl FnMut(u64) -> usize,
) -> Vec<Vec<Result<(), Error>>> {
    bench.sim.set_defer(true);
    let clock = bench.clock.clone();
    let mut ms = 0u64;
    reads(bench, actrl, count, move || {
        clock.advance_ms(1);
        ms += 1;
        step(ms)
    })
}

/// Every request ended exactly once, by the reset; once the device answers
/// again, a later read works.
#[track_caller]
fn all_ended_by_the_reset_and_later_reads_work(
    bench: &Bench,
    actrl: &Ctrl,
    results: &[Vec<Result<(), Error>>],
) {
    assert!(
        results.iter().all(|r| r[..] == [Err(Error::Reset)]),
        "{results:?}"
    );
    bench.sim.set_defer(false);
    later_read_works(bench, actrl);
}

/// A later read through a fresh queue of `actrl` succeeds with its data.
fn later_read_works(bench: &Bench, actrl: &Ctrl) {
    let q = actrl.take_queue(false).unwrap();
    let ns = actrl.namespace_handle(1).unwrap();
    let a = actrl.clone();
    let got = read_block_number(&q, ns, &bench.dma, 9, move || a.poll_completions());
    assert_eq!(got, Ok(9));
}

#[test]
fn a_fatal_controller_is_reset_long_before_the_deadline() {
    let (bench, actrl, _) = setup();
    // The device holds every completion: 32 requests stay in flight.
    let (a, sim) = (actrl.clone(), bench.sim.clone());
    let recovered_at = Rc::new(RefCell::new(None));
    let at = recovered_at.clone();
    let results = reads_while_the_device_holds_them(&bench, &actrl, 32, move |ms| {
        if ms == 3 {
            sim.set_cfs(true);
        }
        let n = a.poll_completions();
        if a.recoveries() > 0 && at.borrow().is_none() {
            *at.borrow_mut() = Some(ms);
        }
        n
    });
    // test_config's command timeout is 100 ms.
    let at = recovered_at
        .borrow()
        .expect("the controller was never reset");
    assert!(at <= 3 + 2 * HEALTH_CHECK_MS + 1, "reset after {at} ms");
    assert_eq!(actrl.recoveries(), 1);
    all_ended_by_the_reset_and_later_reads_work(&bench, &actrl, &results);
}

#[test]
fn registers_reading_all_ones_are_noticed_before_the_deadline() {
    let (bench, actrl, _) = setup();
    let (a, sim) = (actrl.clone(), bench.sim.clone());
    let results = reads_while_the_device_holds_them(&bench, &actrl, 16, move |ms| {
        if ms == 2 {
            sim.set_all_ones(true);
        }
        // The device is back once a recovery has failed on it.
        if a.last_recovery_error().is_some() {
            sim.set_all_ones(false);
        }
        let n = a.poll_completions();
        assert!(ms < 50, "requests still in flight after {ms} ms");
        n
    });
    assert!(actrl.last_recovery_error().is_some());
    assert_eq!(actrl.recoveries(), 1);
    all_ended_by_the_reset_and_later_reads_work(&bench, &actrl, &results);
}

#[test]
fn a_healthy_controller_has_its_status_read_only_in_quiet_periods() {
    let (bench, actrl, csts_reads) = setup();
    // Bring-up's reads are not counted.
    csts_reads.store(0, Ordering::SeqCst);
    // Completions come at every step: the status is never read.
    let a = actrl.clone();
    let clock = bench.clock.clone();
    let results = reads(&bench, &actrl, 64, move || {
        clock.advance_ms(1);
        a.poll_completions()
    });
    assert!(results.iter().all(|r| r[..] == [Ok(())]));
    assert_eq!(csts_reads.load(Ordering::SeqCst), 0);
    // Requests held by a slow device for 40 ms: one read per quiet period.
    let (a, sim) = (actrl.clone(), bench.sim.clone());
    let results = reads_while_the_device_holds_them(&bench, &actrl, 8, move |ms| {
        if ms == 40 {
            sim.release_completions(false);
        }
        a.poll_completions()
    });
    assert!(results.iter().all(|r| r[..] == [Ok(())]), "{results:?}");
    let n = csts_reads.load(Ordering::SeqCst);
    assert!((1..=40 / HEALTH_CHECK_MS).contains(&n), "{n} status reads");
    assert_eq!(actrl.recoveries(), 0);
}
