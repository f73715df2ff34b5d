//! Property tests of queued requests over the transfer limit: random
//! transfer limits (MDTS), block sizes, positions and lengths. A request
//! that fits the queue goes out as one command per piece of the limit,
//! each naming the right blocks and the right part of the buffer, and
//! reads back exactly what was written; one that needs more commands than
//! the queue has slots, or more than are free, is refused with its buffer
//! back and nothing reaching the device.
//!
//! Few and small cases under Miri, which interprets every byte the
//! simulator moves.

use nvme::{Completion, Error, IoOp, Rejected};
use nvme_sim::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// Blocks of the namespace, per block size.
const BYTES: usize = if cfg!(miri) { 96 * 1024 } else { 1 << 20 };
/// Queue depth.
const DEPTH: u16 = if cfg!(miri) { 4 } else { 8 };

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 1 } else { n },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A controller with 4 KiB pages and `2^mdts` pages per command, one
/// namespace of `block_size` blocks, writable.
fn controller(mdts: u8, block_size: usize) -> (Bench, TestController) {
    let bench = Bench::new(SimConfig {
        mdts,
        namespaces: vec![NsConfig {
            nsid: 1,
            block_size,
            blocks: (BYTES / block_size) as u64,
            metadata: 0,
        }],
        ..SimConfig::default()
    });
    let mut ctrl = bench
        .controller(nvme::Config {
            io_queue_depth: DEPTH,
            ..test_config()
        })
        .unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    (bench, ctrl)
}

/// The error of a refused request, after checking it gave back the very
/// buffer it was given, untouched.
fn refused(result: Result<(), Rejected>, address: u64, data: &[u8]) -> Result<(), Error> {
    result.map_err(|Rejected { error, buffer }| {
        assert_eq!(buffer.phys().as_u64(), address);
        assert!(buffer.as_slice() == data);
        error
    })
}

/// Polls until nothing is in flight; the completions, in order.
fn drain(queue: &mut nvme::IoQueue<Sim, FakeClock>) -> Vec<Completion> {
    let mut done = Vec::new();
    while queue.in_flight() > 0 {
        queue.poll(|c| done.push(c));
    }
    done
}

proptest! {
    #![proptest_config(cases(48))]

    /// Whatever the limit and the request, a write then a read of the
    /// same blocks: one command per piece (consecutive LBAs, PRP1 at the
    /// matching offset of the buffer), one completion each, the buffers
    /// back, the data read equal to the data written and on the medium.
    #[test]
    fn split_requests_read_back_exactly_what_was_written(
        mdts in 1u8..=3,
        large_blocks in any::<bool>(),
        position in 0.0f64..1.0,
        pieces in 1usize..=usize::from(DEPTH),
        tail in 0.0f64..1.0,
        seed in any::<u64>(),
    ) {
        let block_size = if large_blocks { 4096 } else { 512 };
        let (bench, mut ctrl) = controller(mdts, block_size);
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut queue = ctrl.take_io_queue().unwrap();
        let part = queue.max_transfer_bytes();
        prop_assert_eq!(part, (1 << mdts) * 4096);
        // `pieces` commands, the last one holding at least one block.
        let last_blocks = 1 + ((part / block_size - 1) as f64 * tail) as usize;
        let len = ((pieces - 1) * part + last_blocks * block_size).min(BYTES);
        let commands = len.div_ceil(part);
        let blocks = (len / block_size) as u64;
        let lba = ((ns.block_count() - blocks) as f64 * position) as u64;
        let data = pattern(len, seed);
        let buffer = bench.dma.buffer_from(&data);
        let base = buffer.phys().as_u64();
        let sent = bench.sim.commands().len();
        queue.submit_write(&ns, lba, buffer, 1).unwrap();
        let io: Vec<(u64, u32, u64)> = bench.sim.commands()[sent..]
            .iter()
            .map(|c| (u64::from(c.entry.cdw[0]), (c.entry.cdw[2] & 0xFFFF) + 1, c.entry.prp1))
            .collect();
        let part_blocks = (part / block_size) as u64;
        let want: Vec<(u64, u32, u64)> = (0..commands as u64)
            .map(|i| {
                let n = part_blocks.min(blocks - i * part_blocks);
                (lba + i * part_blocks, n as u32, base + i * part as u64)
            })
            .collect();
        prop_assert_eq!(io, want);
        let written = drain(&mut queue);
        prop_assert_eq!(written.len(), 1);
        let c = &written[0];
        prop_assert_eq!((c.tag, c.op, c.result), (1, IoOp::Write, Ok(())));
        prop_assert!(c.buffer.as_ref().is_some_and(|b| b.phys().as_u64() == base));
        prop_assert!(bench.sim.disk(1, lba, blocks) == data);
        queue.submit_read(&ns, lba, bench.dma.buffer(len), 2).unwrap();
        let read = drain(&mut queue);
        prop_assert_eq!(read.len(), 1);
        let c = &read[0];
        prop_assert_eq!((c.tag, c.op, c.result), (2, IoOp::Read, Ok(())));
        prop_assert!(c.buffer.as_ref().is_some_and(|b| b.as_slice() == data));
        prop_assert_eq!(queue.in_flight(), 0);
    }

    /// More commands than the queue has slots: `RequestTooLarge`; more
    /// than are free now: `QueueFull`. The buffer comes back untouched,
    /// the device sees nothing, and the request in flight is unharmed.
    #[test]
    fn split_requests_that_do_not_fit_are_refused_whole(
        mdts in 1u8..=2,
        busy in 1usize..usize::from(DEPTH),
        over in 1usize..=2 * usize::from(DEPTH),
        write in any::<bool>(),
    ) {
        let (bench, mut ctrl) = controller(mdts, 512);
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut queue = ctrl.take_io_queue().unwrap();
        let part = queue.max_transfer_bytes();
        let depth = queue.depth();
        bench.sim.set_defer(true);
        queue.submit_read(&ns, 0, bench.dma.buffer(busy * part), 1).unwrap();
        prop_assert_eq!(queue.free_slots(), depth - busy);
        let before = (bench.sim.commands().len(), bench.sim.doorbell_writes());
        // `over` commands more than free (too large when over the depth).
        let commands = depth - busy + over;
        let len = ((commands - 1) * part + 512).min(BYTES);
        let commands = len.div_ceil(part);
        let data = pattern(len, over as u64);
        let buffer = bench.dma.buffer_from(&data);
        let address = buffer.phys().as_u64();
        let result = if write {
            queue.submit_write(&ns, 0, buffer, 2)
        } else {
            queue.submit_read(&ns, 0, buffer, 2)
        };
        let expected = if commands > depth {
            Err(Error::RequestTooLarge)
        } else if commands > depth - busy {
            Err(Error::QueueFull)
        } else {
            Ok(())
        };
        prop_assert_eq!(refused(result, address, &data), expected);
        if expected.is_err() {
            prop_assert_eq!((bench.sim.commands().len(), bench.sim.doorbell_writes()), before);
        }
        bench.sim.release_completions(false);
        let done = drain(&mut queue);
        prop_assert!(done.iter().all(|c| c.result.is_ok() && c.buffer.is_some()));
        prop_assert_eq!(done.len(), if expected.is_ok() { 2 } else { 1 });
    }
}
