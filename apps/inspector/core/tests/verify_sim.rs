//! The inspector's write-read-verify pass on the host, against the
//! simulated controller: the same code the image runs on a real namespace.
//! A clean pass leaves the pattern on the disk and finds nothing; a block
//! corrupted on its way back, a failing read and a namespace that refuses
//! writes are each reported as they should be.

mod common;

use common::controller_owning_namespace_1;
use inspector_core::verify::pattern;
use inspector_core::{BlockTarget, Event, Pass, VerifyReport, verify};
use nvme::status::generic;
use nvme::{Error, Status};
use nvme_sim::{Bench, SimConfig, test_config};

const START: u64 = 1 << 20;
const SPAN: u64 = 2 << 20;
const GENERATION: u64 = 0x5eed;
/// The simulator's default namespace: 512-byte blocks.
const BS: u64 = 512;

fn run(target: &mut dyn BlockTarget) -> (VerifyReport, Vec<Event>) {
    let mut events = Vec::new();
    let report = verify(target, START, SPAN, GENERATION, &mut |e| events.push(e));
    (report, events)
}

/// The pass over namespace 1, owned, of a controller brought up on `bench`.
fn run_on_owned_namespace(bench: &Bench) -> (VerifyReport, Vec<Event>) {
    let mut controller = controller_owning_namespace_1(bench);
    run(&mut controller.namespace(1).unwrap())
}

fn trouble(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::Progress { .. }))
        .copied()
        .collect()
}

#[test]
fn a_clean_pass_writes_flushes_and_reads_back_the_pattern() {
    let bench = Bench::new(SimConfig::default());
    let (report, events) = run_on_owned_namespace(&bench);
    assert_eq!(
        report,
        VerifyReport {
            verified_bytes: SPAN,
            ..VerifyReport::default()
        }
    );
    assert!(trouble(&events).is_empty(), "{events:?}");
    let total = SPAN / BS;
    assert_eq!(
        events.last(),
        Some(&Event::Progress {
            pass: Pass::Read,
            done: total,
            total
        })
    );
    // The pattern is on the simulated disk, and nothing outside the span
    // was touched.
    let first = START / BS;
    let mut expected = vec![0u8; BS as usize];
    for lba in [first, first + 1, first + total - 1] {
        pattern(&mut expected, lba, GENERATION);
        assert_eq!(bench.sim.disk(1, lba, 1), expected, "LBA {lba}");
    }
    assert!(bench.sim.disk(1, first - 1, 1).iter().all(|&b| b == 0));
    assert!(bench.sim.disk(1, first + total, 1).iter().all(|&b| b == 0));
    // Writes, then one Flush, then the reads.
    let opcodes: Vec<u8> = bench
        .sim
        .commands()
        .iter()
        .filter(|c| c.qid != 0)
        .map(|c| c.entry.opcode)
        .collect();
    let flush = opcodes.iter().position(|&o| o == 0x00).expect("a Flush");
    assert!(opcodes[..flush].iter().all(|&o| o == 0x01), "{opcodes:?}");
    assert!(
        opcodes[flush + 1..].iter().all(|&o| o == 0x02),
        "{opcodes:?}"
    );
    assert_eq!(opcodes.iter().filter(|&&o| o == 0x00).count(), 1);
}

/// A target that flips one bit of block `lba` whenever it is read.
struct Corrupting<T> {
    inner: T,
    lba: u64,
}

impl<T: BlockTarget> BlockTarget for Corrupting<T> {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn block_count(&self) -> u64 {
        self.inner.block_count()
    }
    fn write_protected(&self) -> bool {
        self.inner.write_protected()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.inner.read(lba, buf)?;
        let bs = self.block_size() as u64;
        let blocks = buf.len() as u64 / bs;
        if (lba..lba + blocks).contains(&self.lba) {
            buf[((self.lba - lba) * bs + 100) as usize] ^= 0x10;
        }
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        self.inner.write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush()
    }
}

#[test]
fn a_block_corrupted_on_its_way_back_is_one_mismatch() {
    let bench = Bench::new(SimConfig::default());
    let mut controller = controller_owning_namespace_1(&bench);
    let bad = START / BS + 777;
    let mut target = Corrupting {
        inner: controller.namespace(1).unwrap(),
        lba: bad,
    };
    let (report, events) = run(&mut target);
    assert_eq!(report.mismatches, 1);
    assert_eq!(report.errors, 0);
    assert_eq!(trouble(&events), [Event::Mismatch { lba: bad }]);
}

#[test]
fn a_failed_read_is_an_error_and_the_rest_still_verifies() {
    let bench = Bench::new(SimConfig::default());
    // Unrecovered Read Error on the first read.
    bench.sim.fail_io(0x02, Status::new(2, 0x81));
    let (report, events) = run_on_owned_namespace(&bench);
    assert_eq!(report.errors, 1);
    assert_eq!(report.mismatches, 0);
    let trouble = trouble(&events);
    assert!(
        matches!(
            trouble.as_slice(),
            [Event::Failed {
                pass: Pass::Read,
                lba,
                ..
            }] if *lba == START / BS
        ),
        "{trouble:?}"
    );
}

#[test]
fn a_namespace_that_refuses_writes_is_read_twice_without_errors() {
    let bench = Bench::new(SimConfig::default());
    bench
        .sim
        .refuse_writes(1, Status::new(0, generic::NAMESPACE_WRITE_PROTECTED));
    let (report, events) = run_on_owned_namespace(&bench);
    assert_eq!(
        report,
        VerifyReport {
            read_verified_bytes: SPAN,
            write_protected: true,
            ..VerifyReport::default()
        }
    );
    let trouble = trouble(&events);
    assert!(
        matches!(trouble.as_slice(), [Event::WriteRefused { lba, error }]
            if *lba == START / BS && error.refuses_writes()),
        "{trouble:?}"
    );
    assert_eq!(bench.sim.writes_refused(), 1);
    assert!(events.contains(&Event::Progress {
        pass: Pass::ReadAgain,
        done: SPAN / BS,
        total: SPAN / BS
    }));
}

#[test]
fn a_namespace_known_write_protected_gets_no_write_at_all() {
    let bench = Bench::new(SimConfig::default());
    bench.sim.set_write_protected(1);
    let mut controller = bench.controller(test_config()).unwrap();
    let device = controller.namespace(1).unwrap();
    assert!(device.write_protected());
    let mut device = device;
    let (report, events) = run(&mut device);
    assert_eq!(report.read_verified_bytes, SPAN);
    assert_eq!((report.errors, report.mismatches), (0, 0));
    assert_eq!(trouble(&events), [Event::WriteProtected]);
    assert!(
        bench
            .sim
            .commands()
            .iter()
            .all(|c| c.qid == 0 || c.entry.opcode == 0x02)
    );
}
