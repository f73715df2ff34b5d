//! The queue API at depth 32: data verified by tag, out-of-order
//! completions, queue-full accounting, many ring cycles, a randomized
//! model check of the synchronous and queued paths, the caller's buffers
//! lent to the device coming back only when the device hands them back,
//! requests split at the transfer limit, and discards.

mod common;

use common::io_faults::arm_io_fault;
use nvme::{Error, IoOp, IoQueue, Namespace};
use nvme_sim::*;
use std::collections::HashMap;

type Queue = IoQueue<Sim, FakeClock>;

/// Namespace 1 alone, of `blocks` 512-byte blocks.
fn namespace_1(blocks: u64) -> Vec<NsConfig> {
    vec![NsConfig {
        nsid: 1,
        block_size: 512,
        blocks,
        metadata: 0,
    }]
}

fn bench(blocks: u64) -> (Bench, TestController) {
    let bench = Bench::new(SimConfig {
        namespaces: namespace_1(blocks),
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    (bench, ctrl)
}

#[test]
fn depth_32_writes_then_reads_with_data_verified() {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    assert_eq!(q.depth(), 32);
    bench.sim.set_defer(true);
    for t in 0..32u64 {
        let buffer = bench.dma.buffer_from(&pattern(4096, t));
        q.submit_write(&ns, t * 8, buffer, t).unwrap();
    }
    assert_eq!(q.in_flight(), 32);
    let doorbells = bench.sim.doorbell_writes();
    let refused = q
        .submit_write(&ns, 0, bench.dma.buffer_from(&[3u8; 512]), 99)
        .unwrap_err();
    assert_eq!(refused.error, Error::QueueFull);
    assert_eq!(
        refused.buffer.as_slice(),
        [3u8; 512],
        "given back as it was"
    );
    let refused = q.submit_read(&ns, 0, bench.dma.buffer(512), 99);
    assert_eq!(refused.map_err(|r| r.error), Err(Error::QueueFull));
    assert_eq!(q.submit_flush(&ns, 99), Err(Error::QueueFull));
    assert_eq!(
        bench.sim.doorbell_writes(),
        doorbells,
        "queue full never rings"
    );
    assert_eq!(q.poll(|_| panic!("nothing completed yet")), 0);
    bench.sim.release_completions(true);
    let mut done = Vec::new();
    q.poll(|c| done.push(c));
    assert_eq!(done.len(), 32);
    assert!(done.iter().all(|c| c.op == IoOp::Write && c.result.is_ok()));
    let mut tags: Vec<_> = done.iter().map(|c| c.tag).collect();
    tags.sort();
    assert_eq!(tags, (0..32).collect::<Vec<_>>());
    for t in 0..32u64 {
        assert_eq!(bench.sim.disk(1, t * 8, 8), pattern(4096, t));
    }
    // The written buffers come back and serve the reads.
    for (c, t) in done.into_iter().zip(0..32u64) {
        q.submit_read(&ns, t * 8, c.buffer.unwrap(), 100 + t)
            .unwrap();
    }
    bench.sim.release_completions(false);
    let mut reads = HashMap::new();
    q.poll(|c| {
        assert_eq!(c.result, Ok(()));
        reads.insert(c.tag, c.buffer.unwrap().as_slice().to_vec());
    });
    assert_eq!(reads.len(), 32);
    for t in 0..32u64 {
        assert_eq!(reads[&(100 + t)], pattern(4096, t), "tag {t}");
    }
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn many_ring_cycles_with_mixed_completion_order() {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    bench.sim.set_defer(true);
    let mut expected = vec![0u8; 4096 * 512];
    for round in 0..60u64 {
        let n = 1 + (round as usize * 7) % 32;
        for i in 0..n as u64 {
            let lba = (round * 37 + i * 3) % 4000;
            let data = pattern(1024, round * 1000 + i);
            q.submit_write(&ns, lba, bench.dma.buffer_from(&data), i)
                .unwrap();
            // Later writes to the same blocks win only in submission order
            // if they do not overlap within a round; keep them disjoint.
            expected[lba as usize * 512..lba as usize * 512 + 1024].copy_from_slice(&data);
        }
        bench.sim.release_completions(round % 2 == 0);
        let mut got = 0;
        q.poll(|c| {
            assert_eq!(c.result, Ok(()));
            got += 1;
        });
        assert_eq!(got, n);
    }
    assert_eq!(bench.sim.disk(1, 0, 4096), expected);
}

#[test]
fn flush_and_write_zeroes_through_the_queue() {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    bench.sim.fill_disk(1, |_| 0x55);
    q.submit_flush(&ns, 1).unwrap();
    q.submit_write_fua(&ns, 0, bench.dma.buffer_from(&[9u8; 512]), 2)
        .unwrap();
    q.submit_write_zeroes(&ns, 10, 20, 3).unwrap();
    let mut ops = Vec::new();
    while ops.len() < 3 {
        q.poll(|c| {
            assert_eq!(c.buffer.is_some(), c.op == IoOp::Write);
            ops.push((c.tag, c.op, c.result));
        });
    }
    ops.sort_by_key(|o| o.0);
    assert_eq!(
        ops,
        [
            (1, IoOp::Flush, Ok(())),
            (2, IoOp::Write, Ok(())),
            (3, IoOp::WriteZeroes, Ok(()))
        ]
    );
    assert!(bench.sim.disk(1, 10, 20).iter().all(|&b| b == 0));
    assert_eq!(bench.sim.disk(1, 9, 1), vec![0x55; 512]);
    assert_eq!(bench.sim.disk(1, 0, 1), vec![9; 512]);
    let fua = bench
        .sim
        .commands()
        .iter()
        .any(|c| c.entry.opcode == 0x01 && c.entry.cdw[2] & (1 << 30) != 0);
    assert!(fua);
}

#[test]
fn device_error_is_reported_per_request() {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    let status = nvme::Status::new(0, 0x80);
    bench.sim.fail_io(0x02, status);
    q.submit_read(&ns, 0, bench.dma.buffer(512), 5).unwrap();
    let mut got = None;
    while got.is_none() {
        q.poll(|c| {
            // A failed read gives its buffer back too.
            assert_eq!(c.buffer.map(|b| b.len()), Some(512));
            got = Some(c.result);
        });
    }
    assert_eq!(got, Some(Err(Error::Device(status))));
}

#[test]
fn several_queues_and_sync_io_coexist() {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut a = ctrl.take_io_queue().unwrap();
    let mut b = ctrl.take_io_queue().unwrap();
    assert_ne!(a.queue_id(), b.queue_id());
    a.submit_write(&ns, 0, bench.dma.buffer_from(&[1u8; 512]), 1)
        .unwrap();
    b.submit_write(&ns, 1, bench.dma.buffer_from(&[2u8; 512]), 2)
        .unwrap();
    ctrl.namespace(1).unwrap().write(2, &[3u8; 512]).unwrap();
    let mut n = 0;
    while n < 2 {
        n += a.poll(|c| assert_eq!(c.result, Ok(())));
        n += b.poll(|c| assert_eq!(c.result, Ok(())));
    }
    let disk = bench.sim.disk(1, 0, 3);
    assert!(disk[..512].iter().all(|&x| x == 1));
    assert!(disk[512..1024].iter().all(|&x| x == 2));
    assert!(disk[1024..].iter().all(|&x| x == 3));
}

/// Small deterministic generator (no external crates).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn randomized_against_a_model() {
    for seed in 1..=6u64 {
        let blocks = 2048u64;
        let bench = Bench::new(SimConfig {
            mdts: (seed % 3) as u8,
            namespaces: namespace_1(blocks),
            ..SimConfig::default()
        });
        bench.dma.set_translate_any(seed % 2 == 0);
        let mut ctrl = bench.controller(test_config()).unwrap();
        let mut model = vec![0u8; blocks as usize * 512];
        let mut rng = Rng(seed * 0x1234_5678_9ABC_DEF1);
        let mut dev = ctrl.namespace(1).unwrap();
        dev.set_writable(true);
        for step in 0..300 {
            // Sometimes invalid: huge LBAs, odd lengths, zero lengths.
            let lba = match rng.below(10) {
                0 => u64::MAX - rng.below(4),
                1 => blocks - rng.below(3),
                _ => rng.below(blocks),
            };
            let len = match rng.below(10) {
                0 => rng.below(2000) as usize,
                _ => (1 + rng.below(300)) as usize * 512,
            };
            let offset = rng.below(4096) as usize;
            let valid_len = len != 0 && len % 512 == 0;
            let in_range = lba
                .checked_add((len / 512) as u64)
                .is_some_and(|e| e <= blocks);
            let expect_err = if !valid_len {
                Some(Error::InvalidLength)
            } else if !in_range {
                Some(Error::OutOfRange)
            } else {
                None
            };
            let doorbells = bench.sim.doorbell_writes();
            let mut storage = vec![0u8; len + offset];
            let expected = match rng.below(4) {
                0 | 1 => {
                    let data = pattern(len, seed * 1000 + step);
                    storage[offset..].copy_from_slice(&data);
                    let r = dev.write(lba, &storage[offset..]);
                    assert_eq!(
                        r.err(),
                        expect_err,
                        "seed {seed} step {step} write {lba} {len}"
                    );
                    if expect_err.is_none() {
                        model[lba as usize * 512..lba as usize * 512 + len].copy_from_slice(&data);
                    }
                    expect_err
                }
                2 => {
                    let r = dev.read(lba, &mut storage[offset..]);
                    assert_eq!(
                        r.err(),
                        expect_err,
                        "seed {seed} step {step} read {lba} {len}"
                    );
                    if expect_err.is_none() {
                        assert_eq!(
                            &storage[offset..],
                            &model[lba as usize * 512..lba as usize * 512 + len]
                        );
                    }
                    expect_err
                }
                _ => {
                    let count = (len / 512) as u64;
                    let r = dev.write_zeroes(lba, count);
                    let expect = if count == 0 {
                        Some(Error::InvalidLength)
                    } else if !lba.checked_add(count).is_some_and(|e| e <= blocks) {
                        Some(Error::OutOfRange)
                    } else {
                        None
                    };
                    assert_eq!(
                        r.err(),
                        expect,
                        "seed {seed} step {step} zeroes {lba} {count}"
                    );
                    if expect.is_none() {
                        model[lba as usize * 512..(lba + count) as usize * 512].fill(0);
                    }
                    expect
                }
            };
            if expected.is_some() {
                assert_eq!(
                    bench.sim.doorbell_writes(),
                    doorbells,
                    "invalid request rang a doorbell"
                );
            }
        }
        assert_eq!(bench.sim.disk(1, 0, blocks), model, "seed {seed}");
    }
}

#[test]
fn queues_can_be_returned_and_taken_again() {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut taken: Vec<_> = (0..3).map(|_| ctrl.take_io_queue().unwrap()).collect();
    assert_eq!(ctrl.take_io_queue().err(), Some(Error::NoFreeQueue));
    let mut q = taken.pop().unwrap();
    let qid = q.queue_id();
    bench.sim.set_defer(true);
    q.submit_write(&ns, 0, bench.dma.buffer_from(&[4u8; 512]), 1)
        .unwrap();
    let mut q = ctrl.return_io_queue(q).expect_err("busy queue refused");
    bench.sim.release_completions(false);
    while q.poll(|c| assert_eq!(c.result, Ok(()))) == 0 {}
    bench.sim.set_defer(false);
    let allocations = bench.dma.allocations();
    // A reset before the return must not confuse the ring state.
    ctrl.recover().unwrap();
    assert!(ctrl.return_io_queue(q).is_ok());
    bench.sim.clear_commands();
    let mut q = ctrl.take_io_queue().unwrap();
    assert_eq!(q.queue_id(), qid);
    // A PRP list page per slot, and no data buffers.
    assert_eq!(bench.dma.allocations(), allocations + q.depth());
    let mut buffers: Vec<_> = (0..32).map(|_| bench.dma.buffer(512)).collect();
    for round in 0..3u64 {
        for (t, buffer) in (0..32).zip(buffers.drain(..)) {
            q.submit_read(&ns, t, buffer, t).unwrap();
        }
        let mut n = 0;
        while n < 32 {
            n += q.poll(|c| {
                assert_eq!(c.result, Ok(()), "round {round}");
                buffers.push(c.buffer.unwrap());
            });
        }
    }
    assert_eq!(q.unknown_completions(), 0);
    assert_eq!(
        bench.sim.commands().iter().filter(|c| c.qid == qid).count(),
        96
    );
}

/// A queue of a fresh [`bench`] with one read in flight (block 0, tag 7)
/// that the device never answers, checked to have reached the device with
/// its buffer: the bench, the controller, the namespace handle, the queue
/// and the read buffer's address.
fn a_read_the_device_loses() -> (Bench, TestController, Namespace, Queue, u64) {
    let (bench, mut ctrl) = bench(4096);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    arm_io_fault(&bench.sim, 0x02, 0, Fault::Lose);
    let buffer = bench.dma.buffer(512);
    let lent = buffer.phys().as_u64();
    q.submit_read(&ns, 0, buffer, 7).unwrap();
    assert_eq!(
        bench.sim.commands().last().map(|c| (c.qid, c.entry.prp1)),
        Some((q.queue_id(), lent))
    );
    (bench, ctrl, ns, q, lent)
}

#[test]
fn a_buffer_the_device_kept_at_shutdown_is_never_freed() {
    let (bench, mut ctrl, _, mut q, lent) = a_read_the_device_loses();
    let depth = q.depth();
    assert_eq!(q.poll(|_| panic!("nothing completed")), 0);
    ctrl.shutdown().unwrap();
    let mut reported = Vec::new();
    q.poll(|c| reported.push((c.tag, c.result, c.buffer.is_some())));
    assert_eq!(reported, [(7, Err(Error::ShutDown), false)]);
    let freed_before = bench.dma.freed().len();
    assert!(ctrl.return_io_queue(q).is_ok());
    // The lost read's buffer and PRP list stay with the device; every
    // other slot's PRP list goes back.
    assert!(bench.dma.is_allocated(lent), "lent buffer freed");
    assert!(!bench.dma.freed().contains(&lent));
    assert_eq!(bench.dma.freed().len() - freed_before, depth - 1);
}

#[test]
fn a_timed_out_buffer_is_freed_after_a_controller_reset() {
    let (bench, mut ctrl, ns, mut q, lent) = a_read_the_device_loses();
    let depth = q.depth();
    bench.clock.advance_ms(test_config().command_timeout_ms + 1);
    let mut reported = Vec::new();
    q.poll(|c| reported.push((c.tag, c.result, c.buffer.is_some())));
    assert!(matches!(
        reported[..],
        [(7, Err(Error::Timeout { .. }), false)]
    ));
    assert!(q.needs_recovery());
    assert!(bench.dma.is_allocated(lent), "the device may still own it");
    ctrl.recover().unwrap();
    // The reset dropped the read: the queue frees its buffer, and its slot
    // serves again.
    q.poll(|_| panic!("the timed-out read was already reported"));
    assert!(
        bench.dma.freed().contains(&lent),
        "reclaimed buffer not freed"
    );
    for tag in 0..depth as u64 {
        q.submit_read(&ns, tag, bench.dma.buffer(512), tag).unwrap();
    }
    let mut n = 0;
    while n < depth {
        n += q.poll(|c| {
            assert_eq!(c.result, Ok(()));
            assert_eq!(c.buffer.map(|b| b.len()), Some(512));
        });
    }
    assert!(ctrl.return_io_queue(q).is_ok());
}
