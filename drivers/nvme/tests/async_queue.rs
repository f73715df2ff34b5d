//! The `async` path against the simulated controller: many tasks on one
//! queue, more requests than slots, data round trips, errors that never
//! reach the device, dropped futures, and faults recovered by the
//! `AsyncController` with each request completing exactly once.
//!
//! The tests drive the futures with a tiny executor of their own
//! (`common`), whose idle step polls the completions.

mod common;

use common::async_reads::{number_the_blocks, read_block_number, read_each_block};
use common::executor::{Task, block_on, poll_once, run};
use common::io_faults::arm_io_fault;
use nvme::{AsyncController, AsyncQueue, DmaBuffer, Error, Stage};
use nvme_sim::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Poll;

type Sim = nvme_sim::Sim;
type Queue = AsyncQueue<Sim, FakeClock>;

fn bench() -> (Bench, TestController) {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    (bench, ctrl)
}

fn queue(ctrl: &mut TestController) -> Queue {
    AsyncQueue::new(ctrl.take_io_queue().unwrap())
}

fn idle(q: &Queue) -> impl FnMut() -> usize + use<> {
    let q = q.clone();
    move || q.poll_completions()
}

#[test]
fn many_tasks_on_one_queue_round_trip_their_data() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    let tasks: Vec<Task> = (0..48u64)
        .map(|t| {
            let (q, dma) = (q.clone(), bench.dma.clone());
            Box::pin(async move {
                let data = pattern(4096, t);
                let written = q.write(&ns, t * 8, dma.buffer_from(&data)).await.unwrap();
                assert_eq!(
                    written.as_slice(),
                    &data[..],
                    "the buffer comes back as it went"
                );
                let read = q.read(&ns, t * 8, written).await.unwrap();
                // The same buffer came back, and the data with it.
                assert_eq!(read.as_slice(), &data[..], "task {t}");
            }) as Task
        })
        .collect();
    run(tasks, idle(&q));
    for t in 0..48u64 {
        assert_eq!(bench.sim.disk(1, t * 8, 8), pattern(4096, t));
    }
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn more_requests_than_slots_wait_and_all_complete() {
    let (bench, mut ctrl) = bench();
    number_the_blocks(&bench.sim);
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    let depth = q.depth();
    assert_eq!(depth, 32);
    bench.sim.set_defer(true);
    let done = Rc::new(Cell::new(0usize));
    let tasks: Vec<Task> = (0..4 * depth as u64)
        .map(|lba| {
            let (q, dma, done) = (q.clone(), bench.dma.clone(), done.clone());
            Box::pin(async move {
                let buf = q.read(&ns, lba, dma.buffer(512)).await.unwrap();
                assert!(buf.as_slice().iter().all(|&b| b == lba as u8));
                done.set(done.get() + 1);
            }) as Task
        })
        .collect();
    let (sim, q2) = (bench.sim.clone(), q.clone());
    let mut max_waiting = 0;
    let mut max_in_flight = 0;
    run(tasks, move || {
        max_waiting = max_waiting.max(q2.waiting());
        max_in_flight = max_in_flight.max(q2.in_flight());
        assert!(max_in_flight <= depth);
        sim.release_completions(true);
        q2.poll_completions()
    });
    assert_eq!(done.get(), 4 * depth);
    let reads = bench
        .sim
        .commands()
        .iter()
        .filter(|c| c.entry.opcode == 0x02)
        .count();
    assert_eq!(reads, 4 * depth, "one command per request, none refused");
}

#[test]
fn a_request_of_several_commands_is_not_overtaken_by_smaller_ones() {
    // 16 KiB per command, 8 slots: 3 small reads, then 6 commands, then 3,
    // then 1. The request of 3 meets a queue with 2 free slots: it waits,
    // and the single read behind it waits too.
    let bench = Bench::new(SimConfig {
        mdts: 2,
        ..SimConfig::default()
    });
    let config = nvme::Config {
        io_queue_depth: 8,
        ..test_config()
    };
    let mut ctrl = bench.controller(config).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    assert_eq!(q.depth(), 8);
    bench.sim.clear_commands();
    let sizes = [
        (false, 512),
        (false, 512),
        (false, 512),
        (false, 96 << 10),
        (true, 48 << 10),
        (false, 512),
    ];
    let tasks: Vec<Task> = sizes
        .iter()
        .map(|&(write, len)| {
            let (q, dma) = (q.clone(), bench.dma.clone());
            Box::pin(async move {
                let result = if write {
                    q.write(&ns, 0, dma.buffer(len)).await
                } else {
                    q.read(&ns, 0, dma.buffer(len)).await
                };
                assert_eq!(result.map(|b| b.len()), Ok(len));
            }) as Task
        })
        .collect();
    run(tasks, idle(&q));
    let opcodes: Vec<u8> = bench
        .sim
        .commands()
        .iter()
        .map(|c| c.entry.opcode)
        .collect();
    assert_eq!(opcodes, [2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2]);
}

#[test]
fn flush_write_zeroes_and_discard_complete() {
    let (bench, mut ctrl) = bench();
    bench.sim.fill_disk(1, |_| 0xEE);
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    let q2 = q.clone();
    block_on(
        async move {
            q2.write_zeroes(&ns, 10, 4).await.unwrap();
            q2.discard(&ns, 100, 8).await.unwrap();
            q2.flush(&ns).await.unwrap();
        },
        idle(&q),
    );
    assert_eq!(bench.sim.disk(1, 10, 4), vec![0; 2048]);
    assert_eq!(bench.sim.disk(1, 14, 1), vec![0xEE; 512]);
    let opcodes: Vec<u8> = bench
        .sim
        .commands()
        .iter()
        .filter(|c| c.qid != 0)
        .map(|c| c.entry.opcode)
        .collect();
    assert_eq!(opcodes, [0x08, 0x09, 0x00]);
}

#[test]
fn bad_requests_fail_without_reaching_the_device() {
    let (bench, mut ctrl) = bench();
    let (other, other_ctrl) = {
        let b = Bench::new(SimConfig::default());
        let c = b.controller(test_config()).unwrap();
        (b, c)
    };
    let foreign = other_ctrl.namespace_handle(1).unwrap();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    bench.sim.clear_commands();
    let outstanding = bench.dma.outstanding_bytes();
    let (q2, dma) = (q.clone(), bench.dma.clone());
    let errors = block_on(
        async move {
            vec![
                q2.read(&ns, 8192, dma.buffer(512)).await.err(),
                q2.read(&ns, u64::MAX, dma.buffer(512)).await.err(),
                q2.write(&ns, 8191, dma.buffer(1024)).await.err(),
                q2.read(&ns, 0, dma.buffer(100)).await.err(),
                q2.read(&foreign, 0, dma.buffer(512)).await.err(),
                q2.write_zeroes(&ns, 8190, 4).await.err(),
                q2.discard(&foreign, 0, 1).await.err(),
                q2.flush(&foreign).await.err(),
            ]
        },
        idle(&q),
    );
    assert_eq!(
        errors,
        [
            Some(Error::OutOfRange),
            Some(Error::OutOfRange),
            Some(Error::OutOfRange),
            Some(Error::InvalidLength),
            Some(Error::ForeignNamespace),
            Some(Error::OutOfRange),
            Some(Error::ForeignNamespace),
            Some(Error::ForeignNamespace),
        ]
    );
    assert!(
        bench.sim.commands().is_empty(),
        "{:?}",
        bench.sim.commands()
    );
    assert!(other.sim.commands().iter().all(|c| c.qid == 0));
    // Every refused buffer went back to its allocator.
    assert_eq!(bench.dma.outstanding_bytes(), outstanding);

    // After shutdown, requests fail at once, nothing sent.
    let (bench, mut ctrl) = self::bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    ctrl.shutdown().unwrap();
    bench.sim.clear_commands();
    let (q2, dma) = (q.clone(), bench.dma.clone());
    let results = block_on(
        async move {
            (
                q2.read(&ns, 0, dma.buffer(512)).await.err(),
                q2.flush(&ns).await.err(),
            )
        },
        idle(&q),
    );
    assert_eq!(results, (Some(Error::ShutDown), Some(Error::ShutDown)));
    assert!(bench.sim.commands().is_empty());
}

#[test]
fn writes_to_a_namespace_not_owned_are_refused() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    bench.sim.clear_commands();
    let (q2, dma) = (q.clone(), bench.dma.clone());
    let result = block_on(
        async move { q2.write(&ns, 0, dma.buffer(512)).await.err() },
        idle(&q),
    );
    assert_eq!(result, Some(Error::NotOwned));
    assert!(bench.sim.commands().is_empty());
}

#[test]
fn a_dropped_future_leaves_its_buffer_with_the_queue_until_the_completion() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    bench.sim.set_defer(true);
    let buffer: DmaBuffer = bench.dma.buffer(4096);
    let phys = buffer.phys().as_u64();
    let mut read = q.read(&ns, 0, buffer);
    assert!(poll_once(&mut read).is_pending());
    assert_eq!(q.in_flight(), 1);
    drop(read);
    assert!(
        bench.dma.is_allocated(phys),
        "freed while the device owns it"
    );
    assert_eq!(q.poll_completions(), 0);
    assert!(bench.dma.is_allocated(phys));
    bench.sim.release_completions(false);
    assert_eq!(q.poll_completions(), 1);
    assert!(
        !bench.dma.is_allocated(phys),
        "freed once the device gave it back"
    );
    // Its tag serves again: a full queue's worth of requests completes.
    bench.sim.set_defer(false);
    let tasks: Vec<Task> = (0..q.depth() as u64)
        .map(|lba| {
            let (q, dma) = (q.clone(), bench.dma.clone());
            Box::pin(async move {
                q.read(&ns, lba, dma.buffer(512)).await.unwrap();
            }) as Task
        })
        .collect();
    run(tasks, idle(&q));
}

#[test]
fn a_dropped_waiting_future_gives_its_turn_away() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    bench.sim.set_defer(true);
    let mut in_flight: Vec<_> = (0..q.depth() as u64)
        .map(|lba| q.read(&ns, lba, bench.dma.buffer(512)))
        .collect();
    for f in &mut in_flight {
        assert!(poll_once(f).is_pending());
    }
    let mut first = q.read(&ns, 0, bench.dma.buffer(512));
    let mut second = q.read(&ns, 1, bench.dma.buffer(512));
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());
    assert_eq!(q.waiting(), 2);
    bench.sim.release_completions(false);
    assert_eq!(q.poll_completions(), q.depth());
    // The completions are in, but their tags serve again only once their
    // futures took the results: one does, and its tag goes to the first
    // waiter, which is dropped before it submits: the tag passes on.
    let mut collected = in_flight.pop().unwrap();
    assert!(matches!(poll_once(&mut collected), Poll::Ready(Ok(_))));
    assert_eq!(q.waiting(), 1);
    drop(first);
    assert_eq!(q.waiting(), 0);
    bench.sim.set_defer(false);
    assert!(poll_once(&mut second).is_pending());
    assert_eq!(q.in_flight(), 1);
    q.poll_completions();
    assert!(matches!(poll_once(&mut second), Poll::Ready(Ok(_))));
    for mut f in in_flight {
        assert!(matches!(poll_once(&mut f), Poll::Ready(Ok(_))));
    }
    assert_eq!(q.in_flight(), 0);
}

/// Reads blocks `0..count` through `q`, one task each, while time passes
/// 1 ms per idle step of the executor; every outcome of each, by LBA.
fn reads_through(
    bench: &Bench,
    actrl: &AsyncController<Sim, TestDma, FakeClock>,
    q: &Queue,
    count: u64,
) -> Vec<Vec<Result<(), Error>>> {
    let ns = actrl.namespace_handle(1).unwrap();
    let (a, clock) = (actrl.clone(), bench.clock.clone());
    read_each_block(q, ns, &bench.dma, count, move || {
        // Time passes while the loop waits.
        clock.advance_ms(1);
        a.poll_completions()
    })
}

/// [`bench`] with numbered blocks (see [`number_the_blocks`]), its
/// controller driven by an `AsyncController`.
fn async_bench() -> (Bench, AsyncController<Sim, TestDma, FakeClock>) {
    let (bench, ctrl) = bench();
    number_the_blocks(&bench.sim);
    (bench, AsyncController::new(ctrl))
}

#[test]
fn a_lost_command_resets_the_controller_and_every_request_completes_once() {
    let (bench, actrl) = async_bench();
    let q = actrl.take_queue(true).unwrap();
    arm_io_fault(&bench.sim, 0x02, 10, Fault::Lose);
    let results = reads_through(&bench, &actrl, &q, 96);
    assert!(results.iter().all(|r| r.len() == 1), "each exactly once");
    let timeouts = results
        .iter()
        .filter(|r| {
            r[0] == Err(Error::Timeout {
                stage: Stage::IoCommand,
            })
        })
        .count();
    assert_eq!(timeouts, 1);
    assert_eq!(
        results[10][0],
        Err(Error::Timeout {
            stage: Stage::IoCommand
        })
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r[0], Ok(()) | Err(Error::Timeout { .. } | Error::Reset)))
    );
    assert_eq!(actrl.recoveries(), 1);
    assert_eq!(bench.sim.enables(), 2, "brought up, then reset once");
    // Later requests work.
    let results = reads_through(&bench, &actrl, &q, 64);
    assert!(results.iter().all(|r| r[..] == [Ok(())]));
}

#[test]
fn a_reset_for_one_queue_ends_the_other_queues_requests_too() {
    let (bench, actrl) = async_bench();
    let (a, b) = (
        actrl.take_queue(false).unwrap(),
        actrl.take_queue(true).unwrap(),
    );
    assert!(!a.same_queue(&b));
    let ns = actrl.namespace_handle(1).unwrap();
    // 16 tasks on each queue, 150 reads each; the device answers once per
    // idle step (a millisecond) and loses the 4th read, so when its
    // deadline passes the controller is reset with requests of both queues
    // in flight.
    bench.sim.set_defer(true);
    arm_io_fault(&bench.sim, 0x02, 3, Fault::Lose);
    let results = Rc::new(RefCell::new(vec![Vec::new(); 32]));
    let tasks: Vec<Task> = (0..32u64)
        .map(|t| {
            let q = if t % 2 == 0 { a.clone() } else { b.clone() };
            let (dma, results) = (bench.dma.clone(), results.clone());
            Box::pin(async move {
                for i in 0..150 {
                    let lba = (t * 150 + i) % 8192;
                    let r = q.read(&ns, lba, dma.buffer(512)).await;
                    if let Ok(buf) = &r {
                        assert!(buf.as_slice().iter().all(|&x| x == lba as u8));
                    }
                    results.borrow_mut()[t as usize].push(r.map(|_| ()));
                }
            }) as Task
        })
        .collect();
    let (c, sim, clock) = (actrl.clone(), bench.sim.clone(), bench.clock.clone());
    run(tasks, move || {
        clock.advance_ms(1);
        let n = c.poll_completions();
        sim.release_completions(false);
        n
    });
    let results = results.borrow();
    assert!(results.iter().all(|r| r.len() == 150));
    let all = || results.iter().flatten();
    assert_eq!(
        all()
            .filter(|r| matches!(r, Err(Error::Timeout { .. })))
            .count(),
        1
    );
    assert!(all().all(|r| matches!(r, Ok(()) | Err(Error::Timeout { .. } | Error::Reset))));
    // Both queues lost requests in the reset.
    let reset_on = |parity: usize| {
        results
            .iter()
            .enumerate()
            .any(|(t, r)| t % 2 == parity && r.contains(&Err(Error::Reset)))
    };
    assert!(reset_on(0) && reset_on(1));
    assert_eq!(actrl.recoveries(), 1);
    // Both work afterwards.
    bench.sim.set_defer(false);
    for q in [&a, &b] {
        let c = actrl.clone();
        let got = read_block_number(q, ns, &bench.dma, 7, move || c.poll_completions());
        assert_eq!(got, Ok(7));
    }
}

#[test]
fn fatal_status_resets_the_controller() {
    let (bench, actrl) = async_bench();
    let q = actrl.take_queue(false).unwrap();
    arm_io_fault(&bench.sim, 0x02, 5, Fault::Fatal);
    let results = reads_through(&bench, &actrl, &q, 40);
    assert!(results.iter().all(|r| r.len() == 1));
    // The poller reads CSTS once requests wait with no completion, and
    // resets the controller before the lost request's deadline: the
    // requests in flight end as `Reset`.
    assert!(results.iter().any(|r| r[0] == Err(Error::Reset)));
    assert!(
        results
            .iter()
            .all(|r| matches!(r[0], Ok(()) | Err(Error::Reset)))
    );
    assert_eq!(actrl.recoveries(), 1);
    let results = reads_through(&bench, &actrl, &q, 40);
    assert!(results.iter().all(|r| r[..] == [Ok(())]));
}

#[test]
fn a_device_gone_for_good_ends_every_request_with_an_error() {
    let (bench, ctrl) = bench();
    let actrl = AsyncController::new(ctrl);
    let q = actrl.take_queue(false).unwrap();
    bench.sim.set_defer(true);
    let ns = actrl.namespace_handle(1).unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<Task> = (0..50u64)
        .map(|lba| {
            let (q, dma, results) = (q.clone(), bench.dma.clone(), results.clone());
            Box::pin(async move {
                let r = q.read(&ns, lba, dma.buffer(512)).await;
                results.borrow_mut().push(r.map(|_| ()));
            }) as Task
        })
        .collect();
    // Every register reads as all ones from the first idle step on.
    let (a, sim, clock) = (actrl.clone(), bench.sim.clone(), bench.clock.clone());
    run(tasks, move || {
        sim.set_all_ones(true);
        clock.advance_ms(1);
        a.poll_completions()
    });
    let results = results.borrow();
    assert_eq!(results.len(), 50);
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert!(actrl.with_controller(|c| c.is_shut_down()).unwrap());
    let (q2, dma) = (q.clone(), bench.dma.clone());
    let later = block_on(
        async move { q2.read(&ns, 0, dma.buffer(512)).await.err() },
        idle(&q),
    );
    assert_eq!(later, Some(Error::ShutDown));
}

/// Counts its wakes.
struct Wakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn requests_of_one_task_completing_together_wake_it_once() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let q = queue(&mut ctrl);
    let wakes = std::sync::Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(wakes.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut reads: Vec<_> = (0..3)
        .map(|lba| Box::pin(q.read(&ns, lba, bench.dma.buffer(512))))
        .collect();
    for r in &mut reads {
        assert!(r.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(q.poll_completions(), 3);
    assert_eq!(wakes.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    for r in &mut reads {
        assert!(matches!(r.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    }
}
