//! Property tests of the `async` path against the simulated controller: a
//! random mix of good and bad requests (LBAs out of range or overflowing,
//! zero, partial-block and huge lengths, block counts beyond the limits,
//! namespaces not writable, handles of another controller), all in flight
//! at once and more of them than the queue has slots. Each request gets
//! exactly the outcome the synchronous checks document (never `QueueFull`:
//! it waits instead), refused ones never reach the device, the good ones
//! reach it in the order they were made, and the data read back and left
//! on the medium match a model.

mod common;

use common::executor::{Task, run};
use common::requests::{
    MAX_TRANSFER, MDTS, Medium, NAMESPACES, Request, expect_blocks, expect_transfer, geometry,
    namespace_configs, set_writable,
};
use nvme::{AsyncQueue, DmaBuffer, Error, Namespace};
use nvme_sim::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::cell::RefCell;
use std::rc::Rc;

/// Most requests in one case (three times the queue's depth).
const OPS: usize = if cfg!(miri) { 6 } else { 24 };
/// Slots of the queue.
const DEPTH: usize = 8;
/// A request naming this NSID uses a handle of another controller.
const FOREIGN: u32 = 9;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 1 } else { n },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn bench() -> Bench {
    let bench = Bench::new(SimConfig {
        namespaces: namespace_configs(),
        mdts: MDTS,
        ..SimConfig::default()
    });
    for &(nsid, _, _) in &NAMESPACES {
        bench
            .sim
            .fill_disk(nsid, |i| (i as u8) ^ (i >> 9) as u8 ^ nsid as u8);
    }
    bench
}

fn config() -> nvme::Config {
    nvme::Config {
        io_queue_pairs: 2,
        io_queue_depth: DEPTH as u16,
        ..test_config()
    }
}

fn lba() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..NAMESPACES[1].2,
        2 => 0..NAMESPACES[0].2,
        1 => NAMESPACES[1].2 - 4..NAMESPACES[1].2 + 4,
        1 => NAMESPACES[0].2 - 4..NAMESPACES[0].2 + 4,
        1 => u64::MAX - 8..=u64::MAX,
    ]
}

/// Zero, odd, whole blocks of either size (up to 192 KiB: beyond what
/// the queue's slots can carry), and beyond every namespace.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        1 => 1..2048usize,
        4 => (1..48usize).prop_map(|k| k * 512),
        3 => (1..48usize).prop_map(|k| k * 4096),
        1 => Just(2 * 1024 * 1024 + 4096),
    ]
}

fn nsid() -> impl Strategy<Value = u32> {
    prop_oneof![4 => Just(1u32), 4 => Just(2u32), 1 => Just(FOREIGN)]
}

fn op() -> impl Strategy<Value = Request> {
    let blocks = prop_oneof![Just(0u32), 1..300u32, Just(65_536u32), Just(65_537u32)];
    prop_oneof![
        4 => (nsid(), lba(), length()).prop_map(|(nsid, lba, len)| Request::Read { nsid, lba, len }),
        4 => (nsid(), lba(), length(), any::<bool>())
            .prop_map(|(nsid, lba, len, fua)| Request::Write { nsid, lba, len, fua }),
        1 => (nsid(), lba(), blocks.clone())
            .prop_map(|(nsid, lba, blocks)| Request::Zeroes { nsid, lba, blocks }),
        1 => (nsid(), lba(), blocks).prop_map(|(nsid, lba, blocks)| Request::Discard { nsid, lba, blocks }),
        1 => nsid().prop_map(|nsid| Request::Flush { nsid }),
    ]
}

/// The documented checks, in their order: the handle's controller, then
/// length, range, write permission, the queue's capacity. `Ok` holds the
/// commands the request takes.
fn expect(op: &Request, writable: &[bool; 2]) -> Result<usize, Error> {
    let nsid = op.nsid();
    if nsid == FOREIGN {
        return Err(Error::ForeignNamespace);
    }
    let owned = writable[(nsid - 1) as usize];
    match *op {
        Request::Read { lba, len, .. } | Request::Write { lba, len, .. } => {
            let write = matches!(op, Request::Write { .. });
            expect_transfer(nsid, lba, len, write, owned)?;
            let commands = len.div_ceil(MAX_TRANSFER);
            if commands > DEPTH {
                return Err(Error::RequestTooLarge);
            }
            Ok(commands)
        }
        Request::Zeroes { lba, blocks, .. } | Request::Discard { lba, blocks, .. } => {
            if matches!(op, Request::Zeroes { .. }) && blocks > 65_536 {
                return Err(Error::InvalidLength);
            }
            expect_blocks(nsid, lba, u64::from(blocks), true, owned).map(|()| 1)
        }
        Request::Flush { .. } => Ok(1),
    }
}

/// Where a task leaves how its request ended.
type Outcome = Rc<RefCell<Option<Result<Vec<u8>, Error>>>>;

/// One request's future, as a task recording what it ended with (the
/// bytes of a buffer that came back, or the error).
fn task(
    queue: &AsyncQueue<Sim, FakeClock>,
    ns: Namespace,
    op: Request,
    buffer: DmaBuffer,
    out: Outcome,
) -> Task {
    let queue = queue.clone();
    Box::pin(async move {
        let bytes = |r: Result<DmaBuffer, Error>| r.map(|b| b.as_slice().to_vec());
        let result = match op {
            Request::Read { lba, .. } => bytes(queue.read(&ns, lba, buffer).await),
            Request::Write {
                lba, fua: false, ..
            } => bytes(queue.write(&ns, lba, buffer).await),
            Request::Write { lba, fua: true, .. } => bytes(queue.write_fua(&ns, lba, buffer).await),
            Request::Zeroes { lba, blocks, .. } => queue
                .write_zeroes(&ns, lba, blocks)
                .await
                .map(|()| Vec::new()),
            Request::Discard { lba, blocks, .. } => {
                queue.discard(&ns, lba, blocks).await.map(|()| Vec::new())
            }
            Request::Flush { .. } => queue.flush(&ns).await.map(|()| Vec::new()),
        };
        *out.borrow_mut() = Some(result);
    })
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn async_requests_check_input_before_the_device_and_keep_their_order(
        ops in prop::collection::vec(op(), 1..OPS),
        writable in prop::array::uniform2(any::<bool>()),
    ) {
        let bench = bench();
        let mut ctrl = bench.controller(config()).unwrap();
        set_writable(&mut ctrl, writable);
        let other = Bench::new(SimConfig::default());
        let foreign = other.controller(config()).unwrap().namespace_handle(1).unwrap();
        let queue = AsyncQueue::new(ctrl.take_io_queue().unwrap());
        prop_assert_eq!(queue.depth(), DEPTH);
        bench.sim.clear_commands();

        // The model: the medium as the requests leave it, in order.
        let mut medium = Medium::of(&bench.sim);
        let mut expected = Vec::new();
        let mut tasks = Vec::new();
        let mut outs = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let want = expect(op, &writable);
            let (data, nsid) = match *op {
                Request::Write { nsid, len, .. } => (pattern(len, i as u64), nsid),
                Request::Read { nsid, len, .. } => (vec![0xA5; len], nsid),
                Request::Zeroes { nsid, .. } | Request::Discard { nsid, .. } | Request::Flush { nsid } => (Vec::new(), nsid),
            };
            let ok = want.map(|_| ());
            let outcome = ok.map(|()| match *op {
                Request::Read { lba, len, .. } => medium.range(nsid, lba, len).to_vec(),
                Request::Write { lba, .. } => {
                    medium.range(nsid, lba, data.len()).copy_from_slice(&data);
                    data.clone()
                }
                Request::Zeroes { lba, blocks, .. } | Request::Discard { lba, blocks, .. } => {
                    let (bs, _) = geometry(nsid);
                    medium.range(nsid, lba, blocks as usize * bs).fill(0);
                    Vec::new()
                }
                Request::Flush { .. } => Vec::new(),
            });
            expected.push((want, outcome));
            let ns = if nsid == FOREIGN { foreign } else { ctrl.namespace_handle(nsid).unwrap() };
            let out = Rc::new(RefCell::new(None));
            tasks.push(task(&queue, ns, op.clone(), bench.dma.buffer_from(&data), out.clone()));
            outs.push(out);
        }
        let q = queue.clone();
        run(tasks, move || {
            assert!(q.in_flight() <= DEPTH);
            q.poll_completions()
        });

        for (i, ((want, outcome), out)) in expected.iter().zip(&outs).enumerate() {
            let got = out.borrow_mut().take().expect("every request ends");
            prop_assert_eq!(&got, outcome, "request {}: {:?} (expected {:?})", i, ops[i], want);
        }
        // Refused requests never reached the device, and the others did in
        // the order they were made (a split one as consecutive commands).
        let want: Vec<(u8, u32, u64)> = ops
            .iter()
            .zip(&expected)
            .filter(|(_, (w, _))| w.is_ok())
            .flat_map(|(op, _)| commands_of(op))
            .collect();
        let commands = bench.sim.commands();
        let seen: Vec<(u8, u32, u64)> = commands
            .iter()
            .map(|c| {
                let slba = u64::from(c.entry.cdw[0]) | (u64::from(c.entry.cdw[1]) << 32);
                let slba = if matches!(c.entry.opcode, 0x00 | 0x09) { 0 } else { slba };
                (c.entry.opcode, c.entry.nsid, slba)
            })
            .collect();
        prop_assert_eq!(seen, want);
        prop_assert!(commands.iter().all(|c| c.qid == queue_qid(&commands)));
        for &(nsid, _, count) in &NAMESPACES {
            prop_assert!(bench.sim.disk(nsid, 0, count) == medium.namespace(nsid), "namespace {}", nsid);
        }
        prop_assert_eq!((queue.in_flight(), queue.waiting()), (0, 0));
        prop_assert!(other.sim.commands().iter().all(|c| c.qid == 0), "the other controller got I/O");
    }
}

/// The commands a request accepted by the checks takes: (opcode, NSID,
/// starting LBA; 0 for a flush or a discard, whose range is in memory).
fn commands_of(op: &Request) -> Vec<(u8, u32, u64)> {
    match *op {
        Request::Read { nsid, lba, len } | Request::Write { nsid, lba, len, .. } => {
            let opcode = if matches!(op, Request::Read { .. }) {
                0x02
            } else {
                0x01
            };
            let per = (MAX_TRANSFER / geometry(nsid).0) as u64;
            (0..len.div_ceil(MAX_TRANSFER) as u64)
                .map(|j| (opcode, nsid, lba + j * per))
                .collect()
        }
        Request::Zeroes { nsid, lba, .. } => vec![(0x08, nsid, lba)],
        Request::Discard { nsid, .. } => vec![(0x09, nsid, 0)],
        Request::Flush { nsid } => vec![(0x00, nsid, 0)],
    }
}

/// The queue every command came through.
fn queue_qid(commands: &[CommandRecord]) -> u16 {
    commands.first().map_or(0, |c| c.qid)
}
