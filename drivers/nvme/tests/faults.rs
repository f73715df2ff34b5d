//! Fault injection: lost completions, fatal status, unknown command
//! identifiers, vanished devices; recovery and I/O afterwards.

mod common;

use common::io_faults::arm_io_fault;
use nvme::{Error, ErrorKind, IoOp, IoQueue, Namespace, Stage};
use nvme_sim::*;

fn writable_bench() -> (Bench, TestController) {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    (bench, ctrl)
}

/// [`writable_bench`] with the queue of namespace 1 taken out.
fn writable_queue() -> (Bench, TestController, Namespace, IoQueue<Sim, FakeClock>) {
    let (bench, mut ctrl) = writable_bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = ctrl.take_io_queue().unwrap();
    (bench, ctrl, ns, q)
}

/// A read of block 0 through `q`, tagged `tag`, completes successfully.
fn a_read_completes(q: &mut IoQueue<Sim, FakeClock>, ns: &Namespace, bench: &Bench, tag: u64) {
    q.submit_read(ns, 0, bench.dma.buffer(512), tag).unwrap();
    let mut n = 0;
    while n == 0 {
        n = q.poll(|c| assert_eq!((c.tag, c.result), (tag, Ok(()))));
    }
}

fn check_io(ctrl: &mut TestController, bench: &Bench, seed: u64) {
    let mut dev = ctrl.namespace(1).unwrap();
    let data = pattern(4096, seed);
    dev.write(seed % 100, &data).unwrap();
    let mut back = vec![0u8; 4096];
    dev.read(seed % 100, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(bench.sim.disk(1, seed % 100, 8), data);
}

#[test]
fn lost_io_completion_times_out_resets_and_recovers() {
    let (bench, mut ctrl) = writable_bench();
    arm_io_fault(&bench.sim, 0x02, 0, Fault::Lose);
    let mut buf = vec![0u8; 512];
    let err = ctrl.namespace(1).unwrap().read(0, &mut buf).unwrap_err();
    assert_eq!(
        err,
        Error::Timeout {
            stage: Stage::IoCommand
        }
    );
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(bench.sim.enables(), 2, "controller was reset");
    check_io(&mut ctrl, &bench, 1);
}

#[test]
fn lost_admin_completion_times_out_resets_and_recovers() {
    let (bench, mut ctrl) = writable_bench();
    bench.sim.add_fault(FaultRule {
        admin: true,
        opcode: 0x02,
        skip: 0,
        fault: Fault::Lose,
    });
    assert_eq!(
        ctrl.smart_log().err(),
        Some(Error::Timeout {
            stage: Stage::AdminCommand
        })
    );
    assert_eq!(bench.sim.enables(), 2);
    assert_eq!(bench.sim.io_queue_count(), 1 + 4, "I/O queues rebuilt");
    ctrl.smart_log().unwrap();
    check_io(&mut ctrl, &bench, 2);
}

#[test]
fn controller_fatal_status_resets_and_recovers() {
    let (bench, mut ctrl) = writable_bench();
    arm_io_fault(&bench.sim, 0x01, 0, Fault::Fatal);
    let err = ctrl
        .namespace(1)
        .unwrap()
        .write(0, &[1u8; 512])
        .unwrap_err();
    assert_eq!(err, Error::ControllerFatal);
    assert_eq!(bench.sim.enables(), 2);
    check_io(&mut ctrl, &bench, 3);
}

#[test]
fn unknown_command_id_is_not_trusted() {
    let (bench, mut ctrl) = writable_bench();
    bench.sim.fill_disk(1, |i| i as u8);
    bench.sim.inject_unknown_cid();
    let mut buf = vec![0u8; 512];
    ctrl.namespace(1).unwrap().read(1, &mut buf).unwrap();
    assert_eq!(buf, bench.sim.disk(1, 1, 1));
    assert_eq!(ctrl.unknown_completions(), 1);
    assert_eq!(bench.sim.enables(), 1);

    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    bench.sim.inject_unknown_cid();
    q.submit_read(&ns, 2, bench.dma.buffer(512), 77).unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        q.poll(|c| got.push(c));
    }
    assert_eq!(got[0].tag, 77);
    let data = got[0].buffer.as_ref().unwrap().as_slice();
    assert_eq!(data, bench.sim.disk(1, 2, 1));
    assert_eq!(q.unknown_completions(), 1);
}

#[test]
fn vanished_device_fails_then_recovers_when_back() {
    let (bench, mut ctrl) = writable_bench();
    bench.sim.set_all_ones(true);
    let mut buf = vec![0u8; 512];
    assert_eq!(
        ctrl.namespace(1).unwrap().read(0, &mut buf),
        Err(Error::ControllerFatal)
    );
    // Recovery failed too: the controller stays failed.
    assert_eq!(
        ctrl.namespace(1).unwrap().read(0, &mut buf),
        Err(Error::ControllerFatal)
    );
    assert_eq!(ctrl.recover(), Err(Error::ControllerFatal));
    bench.sim.set_all_ones(false);
    ctrl.recover().unwrap();
    check_io(&mut ctrl, &bench, 4);
}

#[test]
fn never_ready_during_recovery_is_reported() {
    let (bench, mut ctrl) = writable_bench();
    bench.sim.set_never_ready(true);
    assert_eq!(ctrl.recover(), Err(Error::NeverReady));
    let mut buf = vec![0u8; 512];
    assert_eq!(
        ctrl.namespace(1).unwrap().read(0, &mut buf),
        Err(Error::ControllerFatal)
    );
    bench.sim.set_never_ready(false);
    ctrl.recover().unwrap();
    check_io(&mut ctrl, &bench, 5);
}

#[test]
fn io_queue_timeout_and_recovery() {
    let (bench, mut ctrl, ns, mut q) = writable_queue();
    arm_io_fault(&bench.sim, 0x02, 1, Fault::Lose);
    let lost_buffer = bench.dma.buffer(512);
    let lost_address = lost_buffer.phys().as_u64();
    q.submit_read(&ns, 0, bench.dma.buffer(512), 1).unwrap();
    q.submit_read(&ns, 1, lost_buffer, 2).unwrap(); // lost
    q.submit_read(&ns, 2, bench.dma.buffer(512), 3).unwrap();
    let mut results = Vec::new();
    while results.len() < 3 {
        q.poll(|c| {
            // Only the timed-out request comes back without its buffer.
            assert_eq!(c.buffer.is_none(), c.tag == 2);
            results.push((c.tag, c.result));
        });
    }
    results.sort_by_key(|r| r.0);
    assert_eq!(results[0], (1, Ok(())));
    assert_eq!(
        results[1],
        (
            2,
            Err(Error::Timeout {
                stage: Stage::IoCommand
            })
        )
    );
    assert_eq!(results[2], (3, Ok(())));
    assert!(q.needs_recovery());
    assert_eq!(q.in_flight(), 1, "timed-out slot stays reserved");
    assert!(
        bench.dma.is_allocated(lost_address),
        "the device may still own it"
    );
    ctrl.recover().unwrap();
    // Nothing unreported was in flight: the queue starts afresh, and frees
    // the buffer the reset gave back.
    assert_eq!(q.poll(|_| panic!("nothing to report")), 0);
    assert!(!q.needs_recovery());
    assert_eq!(q.in_flight(), 0);
    assert!(!bench.dma.is_allocated(lost_address));
    q.submit_write(&ns, 5, bench.dma.buffer_from(&pattern(512, 9)), 10)
        .unwrap();
    q.submit_read(&ns, 5, bench.dma.buffer(512), 11).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        q.poll(|c| {
            let data = c.buffer.as_ref().unwrap().as_slice().to_vec();
            seen.push((c.tag, c.op, c.result, data));
        });
    }
    seen.sort_by_key(|s| s.0);
    assert_eq!((seen[0].1, seen[0].2), (IoOp::Write, Ok(())));
    assert_eq!(seen[1].3, pattern(512, 9));
}

#[test]
fn io_queue_reports_requests_lost_in_a_reset() {
    let (bench, mut ctrl, ns, mut q) = writable_queue();
    bench.sim.set_defer(true);
    for i in 0..5 {
        q.submit_read(&ns, i, bench.dma.buffer(512), i).unwrap();
    }
    // Another user's failure resets the controller.
    arm_io_fault(&bench.sim, 0x02, 0, Fault::Lose);
    bench.sim.set_defer(false);
    let mut buf = vec![0u8; 512];
    assert!(ctrl.namespace(1).unwrap().read(0, &mut buf).is_err());
    assert_eq!(
        q.submit_read(&ns, 0, bench.dma.buffer(512), 99)
            .map_err(|r| r.error),
        Err(Error::Reset),
        "lost requests must be polled first"
    );
    let mut lost = Vec::new();
    // The device dropped them: each comes back with its buffer.
    q.poll(|c| lost.push((c.tag, c.result, c.buffer.map(|b| b.len()))));
    assert_eq!(
        lost,
        (0..5)
            .map(|t| (t, Err(Error::Reset), Some(512)))
            .collect::<Vec<_>>()
    );
    a_read_completes(&mut q, &ns, &bench, 100);
}

#[test]
fn late_completion_after_timeout_frees_the_slot_silently() {
    let (bench, _ctrl, ns, mut q) = writable_queue();
    bench.sim.set_defer(true);
    let buffer = bench.dma.buffer(512);
    let address = buffer.phys().as_u64();
    q.submit_read(&ns, 0, buffer, 1).unwrap();
    let mut reports = Vec::new();
    while reports.is_empty() {
        q.poll(|c| {
            assert!(c.buffer.is_none());
            reports.push(c.result);
        });
    }
    assert_eq!(
        reports,
        [Err(Error::Timeout {
            stage: Stage::IoCommand
        })]
    );
    assert!(q.needs_recovery());
    assert!(bench.dma.is_allocated(address));
    bench.sim.release_completions(false);
    assert_eq!(q.poll(|_| panic!("already reported")), 0);
    assert!(!q.needs_recovery());
    assert_eq!(q.in_flight(), 0);
    assert!(
        !bench.dma.is_allocated(address),
        "the late completion gave the buffer back; the queue freed it"
    );
    bench.sim.set_defer(false);
    a_read_completes(&mut q, &ns, &bench, 2);
}

#[test]
fn fatal_status_seen_by_an_io_queue() {
    let (bench, mut ctrl, ns, mut q) = writable_queue();
    arm_io_fault(&bench.sim, 0x02, 0, Fault::Fatal);
    q.submit_read(&ns, 0, bench.dma.buffer(512), 1).unwrap();
    let mut reports = Vec::new();
    while reports.is_empty() {
        q.poll(|c| reports.push(c.result));
    }
    assert_eq!(reports, [Err(Error::ControllerFatal)]);
    ctrl.recover().unwrap();
    a_read_completes(&mut q, &ns, &bench, 2);
}
