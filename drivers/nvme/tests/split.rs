//! Queued requests over the transfer limit: several commands, one
//! completion. The parts point into consecutive pieces of the caller's
//! buffer; the first error wins; the buffer comes back once every part is
//! back (and is freed by the queue when the request was reported as timed
//! out); a request that cannot get all its slots is refused whole.

mod common;

use common::io_faults::arm_io_fault;
use nvme::{Error, IoOp, Stage, Status};
use nvme_sim::*;

/// MDTS 1: 8 KiB per command (4 KiB pages).
const PART: usize = 8192;

fn bench() -> (Bench, TestController) {
    let bench = Bench::new(SimConfig {
        mdts: 1,
        namespaces: vec![NsConfig {
            nsid: 1,
            block_size: 512,
            blocks: 4096,
            metadata: 0,
        }],
        ..SimConfig::default()
    });
    let mut ctrl = bench
        .controller(nvme::Config {
            io_queue_depth: 8,
            ..test_config()
        })
        .unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    (bench, ctrl)
}

/// (opcode, first LBA, blocks, PRP1) of the I/O commands the device saw
/// from the `from`th on.
fn io_commands(bench: &Bench, from: usize) -> Vec<(u8, u64, u32, u64)> {
    bench.sim.commands()[from..]
        .iter()
        .filter(|c| c.qid != 0)
        .map(|c| {
            let lba = u64::from(c.entry.cdw[0]) | u64::from(c.entry.cdw[1]) << 32;
            let blocks = (c.entry.cdw[2] & 0xFFFF) + 1;
            (c.entry.opcode, lba, blocks, c.entry.prp1)
        })
        .collect()
}

#[test]
fn a_split_write_and_read_complete_once_with_the_data() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    assert_eq!(q.max_transfer_bytes(), PART);
    let len = 2 * PART + 1024;
    let data = pattern(len, 5);
    let buffer = bench.dma.buffer_from(&data);
    let base = buffer.phys().as_u64();
    let sent = bench.sim.commands().len();
    let doorbells = bench.sim.doorbell_writes();
    q.submit_write(&ns, 100, buffer, 1).unwrap();
    assert_eq!(
        bench.sim.doorbell_writes() - doorbells,
        1,
        "one doorbell for all the parts"
    );
    let parts = [(100, 16), (116, 16), (132, 2)];
    let expected: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, &(lba, blocks))| (0x01, lba, blocks, base + (i * PART) as u64))
        .collect();
    assert_eq!(io_commands(&bench, sent), expected);
    assert_eq!(q.in_flight(), 3);
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        q.poll(|c| done.push(c));
    }
    assert_eq!(done.len(), 1, "one completion for three commands");
    let c = done.pop().unwrap();
    assert_eq!((c.tag, c.op, c.result), (1, IoOp::Write, Ok(())));
    let back = c.buffer.unwrap();
    assert_eq!((back.phys().as_u64(), back.len()), (base, len));
    assert_eq!(bench.sim.disk(1, 100, 34), data);
    // Read it back into the same buffer, zeroed first.
    let mut buffer = back;
    buffer.as_mut_slice().fill(0);
    q.submit_read(&ns, 100, buffer, 2).unwrap();
    let mut read = Vec::new();
    while q.in_flight() > 0 {
        q.poll(|c| {
            assert_eq!((c.tag, c.op, c.result), (2, IoOp::Read, Ok(())));
            read.push(c.buffer.unwrap().as_slice().to_vec());
        });
    }
    assert_eq!(read, [data]);
}

#[test]
fn the_first_error_of_a_split_request_wins_and_the_buffer_comes_back() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    let media = Status::new(2, 0x81);
    let later = Status::new(0, 0x80);
    for (skip, fault) in [(1, media), (2, later)] {
        arm_io_fault(&bench.sim, 0x02, skip, Fault::Status(fault));
    }
    let buffer = bench.dma.buffer(4 * PART);
    let base = buffer.phys().as_u64();
    q.submit_read(&ns, 0, buffer, 9).unwrap();
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        q.poll(|c| done.push((c.tag, c.result, c.buffer.map(|b| b.phys().as_u64()))));
    }
    assert_eq!(done, [(9, Err(Error::Device(media)), Some(base))]);
}

#[test]
fn a_split_request_gets_all_its_slots_or_none() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    assert_eq!(q.depth(), 8);
    bench.sim.set_defer(true);
    q.submit_read(&ns, 0, bench.dma.buffer(5 * PART), 1)
        .unwrap();
    assert_eq!(q.free_slots(), 3);
    let before = (bench.sim.commands().len(), bench.sim.doorbell_writes());
    let refused = q
        .submit_write(&ns, 0, bench.dma.buffer_from(&[7; 4 * PART]), 2)
        .unwrap_err();
    assert_eq!(refused.error, Error::QueueFull);
    assert_eq!(refused.buffer.as_slice(), [7; 4 * PART]);
    // More parts than the queue has slots: never possible here.
    let refused = q
        .submit_read(&ns, 0, bench.dma.buffer(8 * PART + 512), 3)
        .unwrap_err();
    assert_eq!(refused.error, Error::RequestTooLarge);
    assert_eq!(refused.error.kind(), nvme::ErrorKind::InvalidInput);
    assert_eq!(
        (bench.sim.commands().len(), bench.sim.doorbell_writes()),
        before
    );
    // Three parts fit the three free slots.
    q.submit_read(&ns, 0, bench.dma.buffer(3 * PART), 4)
        .unwrap();
    assert_eq!(q.free_slots(), 0);
    bench.sim.release_completions(true);
    let mut tags = Vec::new();
    while q.in_flight() > 0 {
        q.poll(|c| {
            assert_eq!(c.result, Ok(()));
            tags.push(c.tag);
        });
    }
    tags.sort();
    assert_eq!(tags, [1, 4]);
    // A whole queue's worth in one request.
    q.submit_read(&ns, 0, bench.dma.buffer(8 * PART), 5)
        .unwrap();
    assert_eq!(q.free_slots(), 0);
}

#[test]
fn a_timed_out_split_request_is_reported_once_and_its_buffer_freed_when_all_parts_are_back() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    // The second part is held back; the others complete.
    arm_io_fault(&bench.sim, 0x02, 1, Fault::Lose);
    let buffer = bench.dma.buffer(3 * PART);
    let address = buffer.phys().as_u64();
    q.submit_read(&ns, 0, buffer, 1).unwrap();
    let mut reports = Vec::new();
    while reports.is_empty() {
        q.poll(|c| reports.push((c.tag, c.result, c.buffer.is_some())));
    }
    let timeout = Err(Error::Timeout {
        stage: Stage::IoCommand,
    });
    assert_eq!(reports, [(1, timeout, false)]);
    assert!(q.needs_recovery());
    assert_eq!(q.in_flight(), 1, "the lost part keeps its slot");
    assert!(
        bench.dma.is_allocated(address),
        "the device may still own it"
    );
    assert_eq!(q.poll(|_| panic!("reported already")), 0);
    ctrl.recover().unwrap();
    assert_eq!(q.poll(|_| panic!("reported already")), 0);
    assert!(!bench.dma.is_allocated(address), "freed after the reset");
    assert_eq!(q.in_flight(), 0);
    // Late: every part completes, after the request was reported.
    bench.sim.set_defer(true);
    let buffer = bench.dma.buffer(2 * PART);
    let address = buffer.phys().as_u64();
    q.submit_read(&ns, 0, buffer, 2).unwrap();
    bench.clock.advance_ms(test_config().command_timeout_ms + 1);
    let mut reports = Vec::new();
    q.poll(|c| reports.push((c.tag, c.buffer.is_some())));
    assert_eq!(reports, [(2, false)], "two parts expired, one report");
    bench.sim.release_completions(false);
    assert_eq!(q.poll(|_| panic!("reported already")), 0);
    assert!(!q.needs_recovery() && q.in_flight() == 0);
    assert!(
        !bench.dma.is_allocated(address),
        "every part came back: freed"
    );
}

#[test]
fn a_reset_ends_a_split_request_with_its_buffer() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    bench.sim.set_defer(true);
    let buffer = bench.dma.buffer(2 * PART + 512);
    let address = buffer.phys().as_u64();
    q.submit_write(&ns, 0, buffer, 3).unwrap();
    q.submit_flush(&ns, 4).unwrap();
    ctrl.recover().unwrap();
    let mut lost = Vec::new();
    q.poll(|c| lost.push((c.tag, c.result, c.buffer.map(|b| b.phys().as_u64()))));
    lost.sort_by_key(|l| l.0);
    assert_eq!(
        lost,
        [
            (3, Err(Error::Reset), Some(address)),
            (4, Err(Error::Reset), None)
        ]
    );
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn discards_go_out_as_one_dataset_management_range() {
    let (bench, mut ctrl) = bench();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    bench.sim.fill_disk(1, |_| 0xEE);
    let sent = bench.sim.commands().len();
    q.submit_discard(&ns, 40, 100, 6).unwrap();
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        q.poll(|c| done.push((c.tag, c.op, c.result, c.buffer.is_none())));
    }
    assert_eq!(done, [(6, IoOp::Discard, Ok(()), true)]);
    let dsm = &bench.sim.commands()[sent];
    // Dataset Management, one range (NR 0), Attribute Deallocate.
    assert_eq!((dsm.entry.opcode, dsm.entry.cdw[0] & 0xFF), (0x09, 0));
    assert_ne!(dsm.entry.cdw[1] & (1 << 2), 0);
    assert!(bench.sim.disk(1, 40, 100).iter().all(|&b| b == 0));
    assert_eq!(bench.sim.disk(1, 39, 1), vec![0xEE; 512]);
    assert_eq!(bench.sim.disk(1, 140, 1), vec![0xEE; 512]);
    // The controller without Dataset Management: refused, never sent.
    let bench = Bench::new(SimConfig {
        oncs: 1 << 3,
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    assert_eq!(q.submit_discard(&ns, 0, 1, 1), Err(Error::Unsupported));
    assert_eq!(q.in_flight(), 0);
}
