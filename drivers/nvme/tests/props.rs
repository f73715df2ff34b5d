//! Property tests of the block API against the simulated controller: bad
//! input from the caller (LBAs out of range or overflowing, zero, odd and
//! huge lengths, misaligned buffers, unknown or metadata namespaces, too
//! many requests in flight, requests after shutdown, writes to a namespace
//! not marked writable, a namespace handle of another controller) gets the
//! documented error and never reaches the device (the simulator sees no new command and no doorbell write), and
//! valid random requests succeed with their data verified.
//!
//! Every case brings a fresh simulated controller up; the case counts are
//! kept small so the whole file runs in a few seconds (fewer under Miri).

mod common;

use common::requests::{
    MAX_TRANSFER, MDTS, Medium, NAMESPACES, Request, expect_blocks, expect_transfer, geometry,
    namespace_configs, set_writable,
};
use nvme::{DmaBuffer, Error, IoOp, IoQueue, Namespace, Rejected};
use nvme_sim::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// Most operations in one generated sequence.
const OPS: usize = if cfg!(miri) { 6 } else { 24 };
/// A buffer length beyond every namespace.
const HUGE: usize = if cfg!(miri) {
    160 * 1024
} else {
    2 * 1024 * 1024
};
/// Besides [`NAMESPACES`]: a namespace with metadata (unusable); any other
/// NSID does not exist.
const METADATA_NSID: u32 = 3;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { n },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// As [`cases`], with one case under Miri: these properties bring up two
/// simulated controllers per case, which Miri interprets slowly, and the
/// code they reach is the same as the other properties'.
fn cases_two_controllers(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 1 } else { n },
        ..cases(n)
    }
}

fn bench() -> Bench {
    let mut namespaces = namespace_configs();
    namespaces.push(NsConfig {
        nsid: METADATA_NSID,
        block_size: 512,
        blocks: 64,
        metadata: 8,
    });
    let bench = Bench::new(SimConfig {
        namespaces,
        mdts: MDTS,
        ..SimConfig::default()
    });
    for &(nsid, _, _) in &NAMESPACES {
        bench.sim.fill_disk(nsid, |i| {
            (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1]
        });
    }
    bench
}

fn config() -> nvme::Config {
    nvme::Config {
        io_queue_pairs: 2,
        io_queue_depth: 8,
        bounce_buffer_bytes: 64 * 1024,
        ..test_config()
    }
}

/// What the device has seen so far: commands and doorbell writes.
fn device_activity(bench: &Bench) -> (usize, u64) {
    (bench.sim.commands().len(), bench.sim.doorbell_writes())
}

/// LBAs around the interesting edges of a namespace of `count` blocks.
fn lba(count: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0..count,
        1 => count - 4..count + 4,
        1 => u64::MAX - 8..=u64::MAX,
        1 => any::<u64>(),
    ]
}

/// Buffer lengths: zero, odd, whole blocks, and beyond the namespace.
fn length(bs: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0),
        2 => 1..bs * 4,
        4 => (1..48usize).prop_map(move |k| k * bs),
        1 => Just(bs - 1),
        1 => Just(HUGE + bs),
    ]
}

/// Block counts for Write Zeroes and discard.
fn block_count(count: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), 1..count + 4, Just(u64::MAX), any::<u64>(),]
}

#[derive(Clone, Debug)]
enum SyncOp {
    Read {
        lba: u64,
        len: usize,
        offset: usize,
    },
    Write {
        lba: u64,
        len: usize,
        offset: usize,
        fua: bool,
    },
    Zeroes {
        lba: u64,
        count: u64,
    },
    Discard {
        lba: u64,
        count: u64,
    },
    Flush,
}

fn sync_op(nsid: u32) -> impl Strategy<Value = SyncOp> {
    let (bs, count) = geometry(nsid);
    prop_oneof![
        (lba(count), length(bs), 0..8usize).prop_map(|(lba, len, offset)| SyncOp::Read {
            lba,
            len,
            offset
        }),
        (lba(count), length(bs), 0..8usize, any::<bool>()).prop_map(|(lba, len, offset, fua)| {
            SyncOp::Write {
                lba,
                len,
                offset,
                fua,
            }
        }),
        (lba(count), block_count(count)).prop_map(|(lba, count)| SyncOp::Zeroes { lba, count }),
        (lba(count), block_count(count)).prop_map(|(lba, count)| SyncOp::Discard { lba, count }),
        Just(SyncOp::Flush),
    ]
}

fn sync_case() -> impl Strategy<Value = (u32, SyncOp, bool, bool)> {
    prop_oneof![Just(1u32), Just(2u32)]
        .prop_flat_map(|nsid| (Just(nsid), sync_op(nsid), any::<bool>(), any::<bool>()))
}

/// A buffer of `len` bytes starting `offset` bytes past a 4096-byte boundary.
fn buffer(len: usize, offset: usize) -> (Vec<u8>, usize) {
    let storage = vec![0u8; len + offset + 4096];
    let start =
        (storage.as_ptr() as usize).next_multiple_of(4096) - storage.as_ptr() as usize + offset;
    (storage, start)
}

proptest! {
    #![proptest_config(cases(160))]

    /// Synchronous API: each request gets exactly the expected outcome;
    /// refused ones leave the device untouched, accepted ones move the
    /// right data (through the bounce buffer or zero-copy, at any buffer
    /// alignment).
    #[test]
    fn block_device_checks_input_before_the_device(
        (nsid, op, writable, zero_copy) in sync_case(),
    ) {
        let bench = bench();
        bench.dma.set_translate_any(zero_copy);
        let mut ctrl = bench.controller(config()).unwrap();
        let (bs, _) = geometry(nsid);
        let mut dev = ctrl.namespace(nsid).unwrap();
        dev.set_writable(writable);
        let before = device_activity(&bench);
        let checksum = bench.sim.disk_checksum(nsid);
        let (expected, result) = match op {
            SyncOp::Read { lba, len, offset } => {
                let (mut storage, start) = buffer(len, offset);
                let buf = &mut storage[start..start + len];
                let result = dev.read(lba, buf);
                if result.is_ok() {
                    prop_assert_eq!(&buf[..], &bench.sim.disk(nsid, lba, (len / bs) as u64)[..]);
                }
                (expect_transfer(nsid, lba, len, false, writable), result)
            }
            SyncOp::Write { lba, len, offset, fua } => {
                let (mut storage, start) = buffer(len, offset);
                let data = pattern(len, lba ^ len as u64);
                storage[start..start + len].copy_from_slice(&data);
                let buf = &storage[start..start + len];
                let result = if fua { dev.write_fua(lba, buf) } else { dev.write(lba, buf) };
                if result.is_ok() {
                    prop_assert_eq!(bench.sim.disk(nsid, lba, (len / bs) as u64), data);
                }
                (expect_transfer(nsid, lba, len, true, writable), result)
            }
            SyncOp::Zeroes { lba, count } | SyncOp::Discard { lba, count } => {
                let zeroes = matches!(op, SyncOp::Zeroes { .. });
                let result = if zeroes { dev.write_zeroes(lba, count) } else { dev.discard(lba, count) };
                if result.is_ok() {
                    prop_assert!(bench.sim.disk(nsid, lba, count).iter().all(|&b| b == 0));
                }
                (expect_blocks(nsid, lba, count, true, writable), result)
            }
            SyncOp::Flush => (Ok(()), dev.flush()),
        };
        prop_assert_eq!(result, expected);
        if expected.is_err() {
            prop_assert_eq!(device_activity(&bench), before, "refused request reached the device");
            prop_assert_eq!(bench.sim.disk_checksum(nsid), checksum);
        }
    }
}

/// A step of a sequence on the queue: a request, or a poll.
#[derive(Clone, Debug)]
enum QueueOp {
    Submit(Request),
    Poll,
}

fn any_nsid() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => Just(1u32),
        4 => Just(2u32),
        1 => Just(METADATA_NSID),
        1 => Just(0u32),
        1 => Just(4u32),
        1 => Just(u32::MAX),
    ]
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    let blocks = prop_oneof![
        Just(0u32),
        1..300u32,
        Just(65_536u32),
        Just(65_537u32),
        Just(u32::MAX)
    ];
    prop_oneof![
        3 => (any_nsid(), lba(NAMESPACES[0].2), length(512))
            .prop_map(|(nsid, lba, len)| QueueOp::Submit(Request::Read { nsid, lba, len })),
        3 => (any_nsid(), lba(NAMESPACES[0].2), length(512), any::<bool>())
            .prop_map(|(nsid, lba, len, fua)| QueueOp::Submit(Request::Write { nsid, lba, len, fua })),
        1 => (any_nsid(), lba(NAMESPACES[0].2), blocks.clone())
            .prop_map(|(nsid, lba, blocks)| QueueOp::Submit(Request::Zeroes { nsid, lba, blocks })),
        1 => (any_nsid(), lba(NAMESPACES[0].2), blocks)
            .prop_map(|(nsid, lba, blocks)| QueueOp::Submit(Request::Discard { nsid, lba, blocks })),
        1 => any_nsid().prop_map(|nsid| QueueOp::Submit(Request::Flush { nsid })),
        2 => Just(QueueOp::Poll),
    ]
}

fn expect_namespace(nsid: u32) -> Result<(), Error> {
    match nsid {
        METADATA_NSID => Err(Error::NamespaceHasMetadata),
        1 | 2 => Ok(()),
        _ => Err(Error::NoSuchNamespace),
    }
}

/// Submits a read or write of a fresh buffer holding `data` through
/// `submit`, on the handle if there is one. A refused request must give
/// back the very buffer it was given, untouched.
fn with_buffer(
    dma: &TestDma,
    handle: Result<Namespace, Error>,
    data: &[u8],
    submit: impl FnOnce(&Namespace, DmaBuffer) -> Result<(), Rejected>,
) -> Result<(), Error> {
    let ns = handle?;
    let buffer = dma.buffer_from(data);
    let address = buffer.phys();
    submit(&ns, buffer).map_err(|Rejected { error, buffer }| {
        assert_eq!(buffer.phys(), address, "another buffer came back");
        assert!(buffer.as_slice() == data, "the refused buffer was changed");
        error
    })
}

proptest! {
    #![proptest_config(cases(96))]

    /// Queue API: a random mix of good and bad submissions and polls. Each
    /// submission gets the expected outcome (including `QueueFull` exactly
    /// when its commands do not fit the free slots), refused ones never
    /// reach the device and give their buffer back, and every accepted one
    /// completes once with its buffer holding the right data.
    #[test]
    fn io_queue_checks_input_before_the_device(
        ops in prop::collection::vec(queue_op(), 1..OPS),
        writable in prop::array::uniform2(any::<bool>()),
    ) {
        let bench = bench();
        let mut ctrl = bench.controller(config()).unwrap();
        set_writable(&mut ctrl, writable);
        let writable_ns = |nsid: u32| NAMESPACES.iter().position(|n| n.0 == nsid).is_some_and(|i| writable[i]);
        let mut queue = ctrl.take_io_queue().unwrap();
        let depth = queue.depth();
        let part = queue.max_transfer_bytes();
        prop_assert_eq!(part, MAX_TRANSFER);
        let mut medium = Medium::of(&bench.sim);
        // (tag, operation, commands, the data its buffer must come back with).
        let mut outstanding: Vec<(u64, IoOp, usize, Option<Vec<u8>>)> = Vec::new();
        for (tag, op) in ops.into_iter().enumerate() {
            let tag = tag as u64;
            let before = device_activity(&bench);
            let used: usize = outstanding.iter().map(|o| o.2).sum();
            // After the request's own checks: does it fit the queue?
            let fits = |commands: Result<usize, Error>| match commands {
                Ok(n) if n > depth => Err(Error::RequestTooLarge),
                Ok(n) if used + n > depth => Err(Error::QueueFull),
                other => other,
            };
            let (expected, result, accepted) = match op {
                QueueOp::Submit(Request::Read { nsid, lba, len }) => {
                    let expected = fits(expect_namespace(nsid).and_then(|()| {
                        expect_transfer(nsid, lba, len, false, false)?;
                        Ok(len.div_ceil(part))
                    }));
                    let result = with_buffer(&bench.dma, ctrl.namespace_handle(nsid), &vec![0; len], |ns, b| {
                        queue.submit_read(ns, lba, b, tag)
                    });
                    let data = expected.is_ok().then(|| medium.range(nsid, lba, len).to_vec());
                    (expected, result, (IoOp::Read, data))
                }
                QueueOp::Submit(Request::Write { nsid, lba, len, fua }) => {
                    let expected = fits(expect_namespace(nsid).and_then(|()| {
                        expect_transfer(nsid, lba, len, true, writable_ns(nsid))?;
                        Ok(len.div_ceil(part))
                    }));
                    let data = pattern(len, tag);
                    let result = with_buffer(&bench.dma, ctrl.namespace_handle(nsid), &data, |ns, b| {
                        if fua {
                            queue.submit_write_fua(ns, lba, b, tag)
                        } else {
                            queue.submit_write(ns, lba, b, tag)
                        }
                    });
                    if expected.is_ok() {
                        medium.range(nsid, lba, len).copy_from_slice(&data);
                    }
                    (expected, result, (IoOp::Write, Some(data)))
                }
                QueueOp::Submit(Request::Zeroes { nsid, lba, blocks } | Request::Discard { nsid, lba, blocks }) => {
                    let zeroes = matches!(op, QueueOp::Submit(Request::Zeroes { .. }));
                    let expected = fits(expect_namespace(nsid).and_then(|()| {
                        if blocks == 0 || (zeroes && blocks > 65_536) {
                            return Err(Error::InvalidLength);
                        }
                        expect_blocks(nsid, lba, u64::from(blocks), true, writable_ns(nsid))?;
                        Ok(1)
                    }));
                    let result = ctrl.namespace_handle(nsid).and_then(|ns| {
                        if zeroes {
                            queue.submit_write_zeroes(&ns, lba, blocks, tag)
                        } else {
                            queue.submit_discard(&ns, lba, blocks, tag)
                        }
                    });
                    if expected.is_ok() {
                        let (bs, _) = geometry(nsid);
                        medium.range(nsid, lba, blocks as usize * bs).fill(0);
                    }
                    let op = if zeroes { IoOp::WriteZeroes } else { IoOp::Discard };
                    (expected, result, (op, None))
                }
                QueueOp::Submit(Request::Flush { nsid }) => {
                    let expected = fits(expect_namespace(nsid).map(|()| 1));
                    let result = ctrl.namespace_handle(nsid).and_then(|ns| queue.submit_flush(&ns, tag));
                    (expected, result, (IoOp::Flush, None))
                }
                QueueOp::Poll => {
                    let mut seen = 0;
                    queue.poll(|completion| {
                        seen += 1;
                        let i = outstanding
                            .iter()
                            .position(|o| o.0 == completion.tag)
                            .expect("completion for a request not in flight");
                        let (_, op, _, want) = outstanding.remove(i);
                        assert_eq!(completion.op, op);
                        assert_eq!(completion.result, Ok(()));
                        let back = completion.buffer.map(|b| b.as_slice().to_vec());
                        assert!(back == want, "buffer of request {}", completion.tag);
                    });
                    prop_assert!(outstanding.is_empty(), "the simulator completes everything at once");
                    prop_assert!(seen > 0 || before == device_activity(&bench));
                    continue;
                }
            };
            prop_assert_eq!(result, expected.map(|_| ()));
            prop_assert!(queue.in_flight() <= depth);
            match expected {
                Ok(commands) => outstanding.push((tag, accepted.0, commands, accepted.1)),
                Err(_) => prop_assert_eq!(device_activity(&bench), before, "refused request reached the device"),
            }
        }
        queue.poll(|completion| {
            let i = outstanding.iter().position(|o| o.0 == completion.tag).unwrap();
            let (_, _, _, want) = outstanding.remove(i);
            assert_eq!(completion.result, Ok(()));
            assert!(completion.buffer.map(|b| b.as_slice().to_vec()) == want);
        });
        prop_assert!(outstanding.is_empty());
        prop_assert_eq!(queue.in_flight(), 0);
        for &(nsid, _, count) in &NAMESPACES {
            prop_assert!(bench.sim.disk(nsid, 0, count) == medium.namespace(nsid));
        }
    }
}

proptest! {
    #![proptest_config(cases(24))]

    /// Exactly `depth` commands fit; every further request is refused with
    /// `QueueFull` (its buffer back) without reaching the device, and the
    /// queue works again once its completions are polled.
    #[test]
    fn queue_full_is_refused_before_the_device(depth in 1u16..=16, extra in 1usize..=OPS / 4) {
        let bench = bench();
        let mut ctrl = bench.controller(nvme::Config { io_queue_depth: depth, ..config() }).unwrap();
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut queue = ctrl.take_io_queue().unwrap();
        prop_assert_eq!(queue.depth(), usize::from(depth));
        for tag in 0..usize::from(depth) {
            let buffer = bench.dma.buffer(512);
            prop_assert!(queue.submit_read(&ns, tag as u64, buffer, tag as u64).is_ok());
        }
        prop_assert_eq!(queue.free_slots(), 0);
        let before = device_activity(&bench);
        for tag in 0..extra {
            let tag = 100 + tag as u64;
            let read = |queue: &mut Queue, b| queue.submit_read(&ns, 0, b, tag);
            prop_assert_eq!(with_buffer(&bench.dma, Ok(ns), &[0; 512], |_, b| read(&mut queue, b)), Err(Error::QueueFull));
            prop_assert_eq!(
                with_buffer(&bench.dma, Ok(ns), &[0; 512], |ns, b| queue.submit_write(ns, 0, b, tag)),
                Err(Error::NotOwned)
            );
            prop_assert_eq!(queue.submit_flush(&ns, tag), Err(Error::QueueFull));
        }
        prop_assert_eq!(device_activity(&bench), before);
        let mut done = 0;
        queue.poll(|c| {
            assert_eq!(c.result, Ok(()));
            done += 1;
        });
        prop_assert_eq!(done, usize::from(depth));
        prop_assert!(queue.submit_read(&ns, 0, bench.dma.buffer(512), 7).is_ok());
    }

    /// After shutdown nothing reaches the device: every request of either
    /// API, valid or not, fails with `ShutDown`, and requests that were in
    /// flight are reported once as `ShutDown`, without their buffers (the
    /// controller never gave them back: they are never freed).
    #[test]
    fn nothing_reaches_the_device_after_shutdown(
        ops in prop::collection::vec(queue_op(), 1..OPS / 2),
        in_flight in 0usize..4,
        sync in prop::collection::vec(sync_op(1), 1..=OPS / 4),
    ) {
        let bench = bench();
        let mut ctrl = bench.controller(config()).unwrap();
        ctrl.namespace(1).unwrap().set_writable(true);
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut queue = ctrl.take_io_queue().unwrap();
        bench.sim.set_defer(true);
        let mut lent = Vec::new();
        for tag in 0..in_flight {
            let buffer = bench.dma.buffer(512);
            lent.push(buffer.phys().as_u64());
            queue.submit_read(&ns, 0, buffer, tag as u64).unwrap();
        }
        ctrl.shutdown().unwrap();
        let before = device_activity(&bench);
        let mut reported = Vec::new();
        queue.poll(|c| reported.push((c.tag, c.result, c.buffer.is_some())));
        let want: Vec<_> = (0..in_flight as u64).map(|t| (t, Err(Error::ShutDown), false)).collect();
        prop_assert_eq!(reported, want);
        prop_assert!(lent.iter().all(|&a| bench.dma.is_allocated(a)), "a buffer the device kept was freed");
        for (tag, op) in ops.into_iter().enumerate() {
            // A handle exists only for a usable namespace; other NSIDs are
            // sent through namespace 1's.
            let handle = ctrl.namespace_handle(op_nsid(&op)).unwrap_or(ns);
            match submit_through(&mut queue, &bench.dma, &handle, op, tag as u64) {
                Some(result) => prop_assert_eq!(result, Err(Error::ShutDown)),
                None => prop_assert_eq!(queue.poll(|_| panic!("nothing is in flight")), 0),
            }
        }
        let mut dev = ctrl.namespace(1).unwrap();
        for op in sync {
            let result = match op {
                SyncOp::Read { lba, len, .. } => dev.read(lba, &mut vec![0; len]),
                SyncOp::Write { lba, len, fua, .. } if fua => dev.write_fua(lba, &vec![0; len]),
                SyncOp::Write { lba, len, .. } => dev.write(lba, &vec![0; len]),
                SyncOp::Zeroes { lba, count } => dev.write_zeroes(lba, count),
                SyncOp::Discard { lba, count } => dev.discard(lba, count),
                SyncOp::Flush => dev.flush(),
            };
            prop_assert_eq!(result, Err(Error::ShutDown));
        }
        prop_assert_eq!(ctrl.take_io_queue().err(), Some(Error::ShutDown));
        prop_assert_eq!(device_activity(&bench), before, "request after shutdown reached the device");
    }
}

/// Namespaces the driver cannot use (metadata) or that do not exist are
/// refused when a handle is asked for.
#[test]
fn unusable_and_unknown_namespaces_are_refused() {
    let bench = bench();
    let mut ctrl = bench.controller(config()).unwrap();
    let before = device_activity(&bench);
    assert_eq!(
        ctrl.namespace(METADATA_NSID).err(),
        Some(Error::NamespaceHasMetadata)
    );
    for nsid in [0, 4, u32::MAX] {
        assert_eq!(ctrl.namespace(nsid).err(), Some(Error::NoSuchNamespace));
    }
    assert_eq!(device_activity(&bench), before);
}

type Queue = IoQueue<Sim, FakeClock>;

/// The NSID `op` names (1 for a poll).
fn op_nsid(op: &QueueOp) -> u32 {
    match op {
        QueueOp::Submit(request) => request.nsid(),
        QueueOp::Poll => 1,
    }
}

/// Sends `op` through `ns` on `queue` (a poll for [`QueueOp::Poll`]);
/// the NSID in `op` is ignored. Buffers come from `dma`.
fn submit_through(
    queue: &mut Queue,
    dma: &TestDma,
    ns: &Namespace,
    op: QueueOp,
    tag: u64,
) -> Option<Result<(), Error>> {
    Some(match op {
        QueueOp::Submit(Request::Read { lba, len, .. }) => {
            with_buffer(dma, Ok(*ns), &vec![0; len], |ns, b| {
                queue.submit_read(ns, lba, b, tag)
            })
        }
        QueueOp::Submit(Request::Write { lba, len, fua, .. }) => {
            with_buffer(dma, Ok(*ns), &vec![1; len], |ns, b| {
                if fua {
                    queue.submit_write_fua(ns, lba, b, tag)
                } else {
                    queue.submit_write(ns, lba, b, tag)
                }
            })
        }
        QueueOp::Submit(Request::Zeroes { lba, blocks, .. }) => {
            queue.submit_write_zeroes(ns, lba, blocks, tag)
        }
        QueueOp::Submit(Request::Discard { lba, blocks, .. }) => {
            queue.submit_discard(ns, lba, blocks, tag)
        }
        QueueOp::Submit(Request::Flush { .. }) => queue.submit_flush(ns, tag),
        QueueOp::Poll => return None,
    })
}

/// Reads block `lba` of `ns` through `queue` and returns the data.
fn read_one(queue: &mut Queue, dma: &TestDma, ns: &Namespace, lba: u64) -> Result<Vec<u8>, Error> {
    queue.submit_read(ns, lba, dma.buffer(ns.block_size()), 0)?;
    let mut got = None;
    while got.is_none() {
        queue.poll(|c| {
            let data = c.buffer.map(|b| b.as_slice().to_vec()).unwrap_or_default();
            got = Some(c.result.map(|()| data));
        });
    }
    got.unwrap_or(Err(Error::Reset))
}

proptest! {
    #![proptest_config(cases_two_controllers(24))]

    /// A namespace handle is good only on queues of the controller that
    /// made it: on another controller's queue every request, valid or not,
    /// is refused with `ForeignNamespace` (its buffer back), and neither
    /// simulated device sees a command or a doorbell write. The queue's own
    /// handle of the same NSID works afterwards.
    #[test]
    fn a_handle_from_another_controller_is_refused(
        ops in prop::collection::vec(queue_op(), 1..OPS),
        writable in any::<bool>(),
    ) {
        let (bench_a, bench_b) = (bench(), bench());
        let mut a = bench_a.controller(config()).unwrap();
        let mut b = bench_b.controller(config()).unwrap();
        for &(nsid, _, _) in &NAMESPACES {
            a.namespace(nsid).unwrap().set_writable(writable);
            b.namespace(nsid).unwrap().set_writable(writable);
        }
        let mut queue = b.take_io_queue().unwrap();
        let before = (device_activity(&bench_a), device_activity(&bench_b));
        for (tag, op) in ops.into_iter().enumerate() {
            // Usable NSIDs have a handle on both controllers; the others
            // are sent through namespace 1's.
            let foreign = a.namespace_handle(op_nsid(&op)).or_else(|_| a.namespace_handle(1)).unwrap();
            let own = b.namespace_handle(foreign.nsid()).unwrap();
            prop_assert_eq!(
                (own.nsid(), own.block_size(), own.block_count(), own.zoned()),
                (foreign.nsid(), foreign.block_size(), foreign.block_count(), foreign.zoned())
            );
            prop_assert_ne!(own, foreign);
            match submit_through(&mut queue, &bench_b.dma, &foreign, op, tag as u64) {
                Some(result) => prop_assert_eq!(result, Err(Error::ForeignNamespace)),
                None => prop_assert_eq!(queue.poll(|_| panic!("nothing is in flight")), 0),
            }
            prop_assert_eq!(queue.in_flight(), 0);
        }
        prop_assert_eq!(
            (device_activity(&bench_a), device_activity(&bench_b)),
            before,
            "a foreign handle's request reached a device"
        );
        let own = b.namespace_handle(1).unwrap();
        prop_assert_eq!(read_one(&mut queue, &bench_b.dma, &own, 3), Ok(bench_b.sim.disk(1, 3, 1)));
    }

    /// A handle used after shutdown, whether made before it or asked for
    /// after it (the handle is a value; making one sends nothing): every
    /// request, valid or not, fails with `ShutDown` (shutdown is reported
    /// before a foreign handle), and the device sees nothing.
    #[test]
    fn a_handle_used_after_shutdown_is_refused(
        ops in prop::collection::vec(queue_op(), 1..OPS),
        made_after in any::<bool>(),
        foreign in any::<bool>(),
    ) {
        let other_bench = bench();
        let bench = bench();
        let other = other_bench.controller(config()).unwrap();
        let mut ctrl = bench.controller(config()).unwrap();
        ctrl.namespace(1).unwrap().set_writable(true);
        let made_before = ctrl.namespace_handle(1).unwrap();
        let mut queue = ctrl.take_io_queue().unwrap();
        ctrl.shutdown().unwrap();
        let before = device_activity(&bench);
        let ns = if foreign {
            other.namespace_handle(1).unwrap()
        } else if made_after {
            let ns = ctrl.namespace_handle(1).unwrap();
            prop_assert_eq!(ns, made_before);
            ns
        } else {
            made_before
        };
        for (tag, op) in ops.into_iter().enumerate() {
            match submit_through(&mut queue, &bench.dma, &ns, op, tag as u64) {
                Some(result) => prop_assert_eq!(result, Err(Error::ShutDown)),
                None => prop_assert_eq!(queue.poll(|_| panic!("nothing is in flight")), 0),
            }
        }
        prop_assert_eq!(device_activity(&bench), before, "request after shutdown reached the device");
    }

    /// Through a handle: a range past the end of the namespace or
    /// overflowing gets `OutOfRange`; a zero length and a length that is
    /// not whole blocks get `InvalidLength`; a request needing more
    /// commands than the queue has slots gets `RequestTooLarge`. Each
    /// buffer comes back, nothing reaches the device, nothing stays in
    /// flight, and a valid read works afterwards.
    #[test]
    fn out_of_range_and_bad_lengths_through_a_handle_are_refused(
        nsid in 1u32..=2,
        past in prop_oneof![0u64..8, Just(u64::MAX / 2)],
        overflow in 0u64..64,
        blocks in 1u32..=8,
        odd in 1usize..512,
    ) {
        let bench = bench();
        let mut ctrl = bench.controller(config()).unwrap();
        ctrl.namespace(nsid).unwrap().set_writable(true);
        let ns = ctrl.namespace_handle(nsid).unwrap();
        let (bs, count) = geometry(nsid);
        prop_assert_eq!((ns.nsid(), ns.block_size(), ns.block_count()), (nsid, bs, count));
        prop_assert!(ns.writable() && ns.zoned().is_none());
        let mut queue = ctrl.take_io_queue().unwrap();
        let too_large = queue.max_transfer_bytes() * queue.depth() + bs;
        let before = device_activity(&bench);
        let beyond = count.saturating_add(past);
        let wrapping = u64::MAX - overflow;
        let data = vec![0u8; blocks as usize * bs];
        let dma = &bench.dma;
        for lba in [beyond, wrapping, count - u64::from(blocks) + 1] {
            prop_assert_eq!(with_buffer(dma, Ok(ns), &data, |ns, b| queue.submit_read(ns, lba, b, 1)), Err(Error::OutOfRange));
            prop_assert_eq!(with_buffer(dma, Ok(ns), &data, |ns, b| queue.submit_write(ns, lba, b, 2)), Err(Error::OutOfRange));
            prop_assert_eq!(with_buffer(dma, Ok(ns), &data, |ns, b| queue.submit_write_fua(ns, lba, b, 3)), Err(Error::OutOfRange));
            prop_assert_eq!(queue.submit_write_zeroes(&ns, lba, blocks, 4), Err(Error::OutOfRange));
            prop_assert_eq!(queue.submit_discard(&ns, lba, blocks, 4), Err(Error::OutOfRange));
        }
        prop_assert_eq!(with_buffer(dma, Ok(ns), &[], |ns, b| queue.submit_read(ns, 0, b, 5)), Err(Error::InvalidLength));
        prop_assert_eq!(queue.submit_write_zeroes(&ns, 0, 0, 6), Err(Error::InvalidLength));
        prop_assert_eq!(queue.submit_discard(&ns, 0, 0, 6), Err(Error::InvalidLength));
        prop_assert_eq!(with_buffer(dma, Ok(ns), &[], |ns, b| queue.submit_write(ns, 0, b, 7)), Err(Error::InvalidLength));
        let uneven = vec![0u8; data.len() + odd.min(bs - 1)];
        prop_assert_eq!(with_buffer(dma, Ok(ns), &uneven, |ns, b| queue.submit_write(ns, 0, b, 8)), Err(Error::InvalidLength));
        let short = &uneven[..odd.min(bs - 1)];
        prop_assert_eq!(with_buffer(dma, Ok(ns), short, |ns, b| queue.submit_write_fua(ns, 0, b, 9)), Err(Error::InvalidLength));
        prop_assert_eq!(with_buffer(dma, Ok(ns), &uneven, |ns, b| queue.submit_read(ns, 0, b, 10)), Err(Error::InvalidLength));
        if too_large <= count as usize * bs {
            let big = vec![0u8; too_large];
            prop_assert_eq!(with_buffer(dma, Ok(ns), &big, |ns, b| queue.submit_read(ns, 0, b, 11)), Err(Error::RequestTooLarge));
            prop_assert_eq!(with_buffer(dma, Ok(ns), &big, |ns, b| queue.submit_write(ns, 0, b, 12)), Err(Error::RequestTooLarge));
        }
        prop_assert_eq!(queue.in_flight(), 0);
        prop_assert_eq!(device_activity(&bench), before, "a refused request reached the device");
        prop_assert_eq!(read_one(&mut queue, dma, &ns, count - 1), Ok(bench.sim.disk(nsid, count - 1, 1)));
    }
}

/// A handle outliving its controller is not taken by a controller made
/// later (identities are never reused), and asking for a handle of an
/// unknown or unusable namespace fails without reaching the device.
#[test]
fn a_handle_of_a_dropped_controller_is_refused() {
    let old = {
        let bench = bench();
        let ctrl = bench.controller(config()).unwrap();
        ctrl.namespace_handle(1).unwrap()
    };
    let bench = bench();
    let mut ctrl = bench.controller(config()).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    let before = device_activity(&bench);
    assert_eq!(
        ctrl.namespace_handle(METADATA_NSID),
        Err(Error::NamespaceHasMetadata)
    );
    for nsid in [0, 4, u32::MAX] {
        assert_eq!(ctrl.namespace_handle(nsid), Err(Error::NoSuchNamespace));
    }
    assert_eq!(device_activity(&bench), before);
    let mut queue = ctrl.take_io_queue().unwrap();
    let before_io = device_activity(&bench);
    let dma = &bench.dma;
    assert_eq!(
        with_buffer(dma, Ok(old), &[0; 512], |ns, b| queue
            .submit_read(ns, 0, b, 1)),
        Err(Error::ForeignNamespace)
    );
    assert_eq!(
        with_buffer(dma, Ok(old), &[0; 512], |ns, b| queue
            .submit_write(ns, 0, b, 2)),
        Err(Error::ForeignNamespace)
    );
    assert_eq!(queue.submit_flush(&old, 3), Err(Error::ForeignNamespace));
    assert_eq!(
        queue.submit_discard(&old, 0, 1, 4),
        Err(Error::ForeignNamespace)
    );
    assert_eq!(device_activity(&bench), before_io);
    assert_eq!(
        Error::ForeignNamespace.kind(),
        nvme::ErrorKind::InvalidInput
    );
}
