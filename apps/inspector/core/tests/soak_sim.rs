//! The soak on the host, against the simulated controller: the same code
//! the image runs on a real namespace, timed by the simulator's fake clock.
//! A clean soak verifies everything it reads; a read whose data the
//! simulator corrupts on its way back is one mismatch at its block, a
//! failed read one error, and a namespace that refuses writes ends the soak
//! after a single refused write.

mod common;

use common::{controller_owning_namespace_1, lbas};
use inspector_core::soak::{SoakArea, SoakError, SoakEvent, SoakReport, fill, run};
use inspector_core::{ClockTicks, Ticks};
use nvme::Clock;
use nvme::Status;
use nvme::status::generic;
use nvme_sim::{Bench, FakeClock, Fault, FaultRule, SimConfig};

/// The simulator's default namespace: 512-byte blocks.
const BS: u64 = 512;
const AREA: SoakArea = SoakArea {
    nsid: 1,
    first_byte: 1 << 20,
    span_bytes: 256 << 10,
    duration_ms: 40,
};

fn soak(bench: &Bench, area: &SoakArea) -> (Result<SoakReport, SoakError>, Vec<SoakEvent>) {
    soak_timed(bench, area, &ClockTicks(bench.clock.clone()))
}

fn soak_timed(
    bench: &Bench,
    area: &SoakArea,
    ticks: &dyn Ticks,
) -> (Result<SoakReport, SoakError>, Vec<SoakEvent>) {
    let mut controller = controller_owning_namespace_1(bench);
    let mut events = Vec::new();
    let report = run(
        &mut controller,
        &bench.dma.home(),
        area,
        ticks,
        &mut |event| events.push(event),
    );
    (report, events)
}

fn trouble(events: &[SoakEvent]) -> Vec<SoakEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, SoakEvent::Progress { .. }))
        .copied()
        .collect()
}

#[test]
fn a_clean_soak_verifies_every_read_and_leaves_the_patterns() {
    let bench = Bench::new(SimConfig::default());
    let (report, events) = soak(&bench, &AREA);
    let report = report.unwrap();
    assert!(report.reads > 50 && report.writes > 50, "{report:?}");
    assert_eq!(report.verified, report.reads);
    assert_eq!((report.verify_failures, report.errors), (0, 0));
    assert!(!report.write_protected);
    assert!(trouble(&events).is_empty(), "{events:?}");
    // Every request was one 4 KiB unit inside the span.
    let first = AREA.first_byte / BS;
    let end = first + AREA.span_bytes / BS;
    let writes = lbas(&bench, 0x01);
    assert_eq!(writes.len() as u64, report.writes);
    for lba in writes.iter().chain(&lbas(&bench, 0x02)) {
        assert!(
            (first..end).contains(lba) && (lba - first).is_multiple_of(8),
            "{lba}"
        );
    }
    assert!(bench.sim.disk(1, first - 1, 1).iter().all(|&b| b == 0));
    assert!(bench.sim.disk(1, end, 1).iter().all(|&b| b == 0));
    // The last write to a unit left its pattern there: the unit holds the
    // pattern of its LBA at some generation (the one in its stamp).
    let lba = *writes.last().unwrap();
    let unit = bench.sim.disk(1, lba, 8);
    let generation = u64::from_le_bytes(unit[8..16].try_into().unwrap());
    let mut expected = vec![0u8; unit.len()];
    fill(&mut expected, lba, BS as usize, generation);
    assert_eq!(unit, expected);
}

#[test]
fn a_read_corrupted_on_its_way_back_is_one_mismatch_at_its_block() {
    let bench = Bench::new(SimConfig::default());
    bench.sim.add_fault(FaultRule {
        admin: false,
        opcode: 0x02,
        skip: 5,
        fault: Fault::Corrupt,
    });
    let (report, events) = soak(&bench, &AREA);
    let report = report.unwrap();
    assert_eq!(report.verify_failures, 1, "{report:?}");
    assert_eq!(report.errors, 0);
    assert!(report.verified > 5);
    let sixth_read = lbas(&bench, 0x02)[5];
    assert!(
        matches!(trouble(&events).as_slice(), [SoakEvent::Mismatch { lba, .. }] if *lba == sixth_read),
        "{events:?}"
    );
}

#[test]
fn a_failed_read_is_one_error_and_no_mismatch() {
    let bench = Bench::new(SimConfig::default());
    // Unrecovered Read Error on the first read.
    bench.sim.fail_io(0x02, Status::new(2, 0x81));
    let (report, events) = soak(&bench, &AREA);
    let report = report.unwrap();
    assert_eq!(
        (report.errors, report.verify_failures),
        (1, 0),
        "{report:?}"
    );
    let first_read = lbas(&bench, 0x02)[0];
    assert!(
        matches!(trouble(&events).as_slice(), [SoakEvent::Failed { lba, .. }] if *lba == first_read),
        "{events:?}"
    );
}

#[test]
fn a_namespace_that_refuses_writes_ends_the_soak_after_one_write() {
    let bench = Bench::new(SimConfig::default());
    bench
        .sim
        .refuse_writes(1, Status::new(0, generic::NAMESPACE_WRITE_PROTECTED));
    let (report, events) = soak(&bench, &AREA);
    let report = report.unwrap();
    assert!(report.write_protected);
    assert_eq!((report.writes, report.reads, report.errors), (0, 0, 0));
    assert_eq!(bench.sim.writes_refused(), 1);
    assert!(trouble(&events).is_empty(), "{events:?}");
}

#[test]
fn a_span_smaller_than_a_unit_is_refused() {
    let bench = Bench::new(SimConfig::default());
    let area = SoakArea {
        span_bytes: 2048,
        ..AREA
    };
    assert_eq!(soak(&bench, &area).0, Err(SoakError::TooSmall));
    let area = SoakArea { nsid: 9, ..AREA };
    assert!(matches!(
        soak(&bench, &area).0,
        Err(SoakError::Namespace(_))
    ));
}

/// Nanosecond ticks that move 100 µs at every reading, so that seconds
/// pass quickly.
struct Hurried(FakeClock);

impl Ticks for Hurried {
    fn now(&self) -> u64 {
        self.0.delay_us(99);
        self.0.now_ns()
    }
    fn hz(&self) -> u64 {
        1_000_000_000
    }
}

#[test]
fn progress_is_reported_about_once_a_second() {
    let bench = Bench::new(SimConfig::default());
    let area = SoakArea {
        duration_ms: 2_500,
        ..AREA
    };
    let (report, events) = soak_timed(&bench, &area, &Hurried(bench.clock.clone()));
    let report = report.unwrap();
    let progress: Vec<(SoakReport, u64)> = events
        .iter()
        .filter_map(|e| match e {
            SoakEvent::Progress {
                report,
                seconds_left,
            } => Some((*report, *seconds_left)),
            _ => None,
        })
        .collect();
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert_eq!((progress[0].1, progress[1].1), (1, 0));
    assert!(progress[0].0.verified < progress[1].0.verified);
    assert!(progress[1].0.verified < report.verified);
}
