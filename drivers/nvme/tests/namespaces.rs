//! Namespaces as real drives present them, against the simulated
//! controller: NVMe 1.0 controllers (no Active Namespace ID list), sparse
//! NSIDs, a namespace whose Identify fails, write-protected namespaces
//! (NSATTR, and writes refused with a write-protect status) and zoned
//! namespaces (I/O command set selection, zone size, no writes). Property
//! tests give the new refusals arbitrary requests: each gets its typed
//! error and nothing reaches the device.

use nvme::command::{IdentifyCns, Status};
use nvme::namespace::WRITE_FAULTS_BEFORE_PROTECTION;
use nvme::{Error, IoOp, ZoneInfo};
use nvme_sim::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

const ADMIN_IDENTIFY: u8 = 0x06;
const NVM_WRITE: u8 = 0x01;
const NVM_WRITE_ZEROES: u8 = 0x08;
const NVM_DATASET_MANAGEMENT: u8 = 0x09;
const NVME_1_0: u32 = 0x0001_0000;
const NVME_1_4: u32 = 0x0001_0400;

fn ns(nsid: u32) -> NsConfig {
    NsConfig {
        nsid,
        block_size: 512,
        blocks: 1024,
        metadata: 0,
    }
}

fn bench(version: u32, nsids: &[u32]) -> Bench {
    Bench::new(SimConfig {
        version,
        namespaces: nsids.iter().map(|&n| ns(n)).collect(),
        ..SimConfig::default()
    })
}

/// The (CNS, NSID) of every Identify the controller was sent.
fn identifies(bench: &Bench) -> Vec<(u8, u32)> {
    bench
        .sim
        .commands()
        .iter()
        .filter(|c| c.qid == 0 && c.entry.opcode == ADMIN_IDENTIFY)
        .map(|c| ((c.entry.cdw[0] & 0xFF) as u8, c.entry.nsid))
        .collect()
}

/// I/O commands that modify data which reached the device.
fn writes_sent(bench: &Bench) -> usize {
    bench
        .sim
        .commands()
        .iter()
        .filter(|c| {
            c.qid != 0
                && matches!(
                    c.entry.opcode,
                    NVM_WRITE | NVM_WRITE_ZEROES | NVM_DATASET_MANAGEMENT
                )
        })
        .count()
}

fn nsids(ctrl: &TestController) -> Vec<u32> {
    ctrl.namespaces().iter().map(|n| n.nsid).collect()
}

#[test]
fn nvme_1_0_controller_is_never_sent_the_active_namespace_list() {
    let bench = bench(NVME_1_0, &[1, 2]);
    // Were CNS 02h sent, this page (Identify Namespace data: NSZE 4096)
    // would read as the NSID list [4096].
    let mut page = vec![0u8; 4096];
    page[0..8].copy_from_slice(&4096u64.to_le_bytes());
    bench
        .sim
        .set_identify_page(IdentifyCns::ActiveNamespaceList as u8, &page);
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(nsids(&ctrl), [1, 2]);
    let sent = identifies(&bench);
    assert!(
        !sent
            .iter()
            .any(|&(cns, _)| cns == IdentifyCns::ActiveNamespaceList as u8),
        "{sent:?}"
    );
    assert_eq!(sent, [(1, 0), (0, 1), (0, 2)]);
    assert_eq!(bench.sim.cc().css(), 0, "NVM command set selected");
}

#[test]
fn sparse_nsids_are_found_by_walking_on_nvme_1_0() {
    let bench = bench(NVME_1_0, &[1, 3, 7]);
    bench.sim.set_namespace_count(8);
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().namespace_count, 8);
    assert_eq!(nsids(&ctrl), [1, 3, 7]);
    let walked: Vec<u32> = identifies(&bench)
        .iter()
        .filter(|&&(cns, _)| cns == 0)
        .map(|&(_, nsid)| nsid)
        .collect();
    assert_eq!(walked, (1..=8).collect::<Vec<_>>());
    // Each one found works.
    for nsid in [1, 3, 7] {
        let mut block = vec![0u8; 512];
        ctrl.namespace(nsid).unwrap().read(5, &mut block).unwrap();
    }
    assert_eq!(ctrl.namespace(2).err(), Some(Error::NoSuchNamespace));
}

#[test]
fn sparse_nsids_come_from_the_active_list_on_nvme_1_1_and_later() {
    let bench = bench(NVME_1_4, &[1, 3, 7]);
    bench.sim.set_namespace_count(8);
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(nsids(&ctrl), [1, 3, 7]);
    let namespace_identifies: Vec<u32> = identifies(&bench)
        .iter()
        .filter(|&&(cns, _)| cns == 0)
        .map(|&(_, nsid)| nsid)
        .collect();
    assert_eq!(namespace_identifies, [1, 3, 7]);
}

#[test]
fn a_namespace_whose_identify_fails_is_skipped_and_the_others_come_up() {
    for version in [NVME_1_0, NVME_1_4] {
        let bench = bench(version, &[1, 2, 3]);
        bench
            .sim
            .fail_identify_namespace(2, Status::new(0, nvme::command::generic::INTERNAL_ERROR));
        let mut ctrl = bench.controller(test_config()).unwrap();
        assert_eq!(nsids(&ctrl), [1, 3], "version {version:#x}");
        let mut dev = ctrl.namespace(3).unwrap();
        dev.set_writable(true);
        let data = pattern(1024, 3);
        dev.write(10, &data).unwrap();
        let mut back = vec![0u8; 1024];
        dev.read(10, &mut back).unwrap();
        assert_eq!(back, data);
    }
}

#[test]
fn nsattr_write_protected_namespace_takes_no_write() {
    let bench = bench(NVME_1_4, &[1, 2]);
    bench.sim.set_write_protected(1);
    bench.sim.fill_disk(1, |i| i as u8);
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert!(ctrl.namespaces()[0].write_protected);
    assert!(!ctrl.namespaces()[1].write_protected);
    let before = bench.sim.disk_checksum(1);
    {
        let mut dev = ctrl.namespace(1).unwrap();
        dev.set_writable(true);
        assert!(!dev.is_writable());
        let data = vec![0xA5u8; 512];
        assert_eq!(dev.write(0, &data), Err(Error::WriteProtected));
        assert_eq!(dev.write_fua(0, &data), Err(Error::WriteProtected));
        assert_eq!(dev.write_zeroes(0, 4), Err(Error::WriteProtected));
        assert_eq!(dev.discard(0, 4), Err(Error::WriteProtected));
        let mut back = vec![0u8; 512];
        dev.read(0, &mut back).unwrap();
        assert_eq!(back[..4], [0, 1, 2, 3]);
    }
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut queue = ctrl.take_io_queue().unwrap();
    assert_eq!(
        queue
            .submit_write(&ns, 0, bench.dma.buffer(512), 1)
            .map_err(|r| r.error),
        Err(Error::WriteProtected)
    );
    assert_eq!(
        queue.submit_write_zeroes(&ns, 0, 1, 2),
        Err(Error::WriteProtected)
    );
    assert_eq!(
        queue.submit_discard(&ns, 0, 1, 2),
        Err(Error::WriteProtected)
    );
    queue.submit_read(&ns, 0, bench.dma.buffer(512), 3).unwrap();
    let mut reads = 0;
    while queue.in_flight() > 0 {
        queue.poll(|c| {
            assert_eq!(c.result, Ok(()));
            assert_eq!(c.buffer.unwrap().as_slice()[..4], [0, 1, 2, 3]);
            reads += 1;
        });
    }
    assert_eq!(reads, 1);
    assert_eq!(writes_sent(&bench), 0);
    assert_eq!(bench.sim.disk_checksum(1), before);
    // The other namespace still takes writes.
    let mut dev = ctrl.namespace(2).unwrap();
    dev.set_writable(true);
    dev.write(0, &[1u8; 512]).unwrap();
}

#[test]
fn a_write_refused_as_write_protected_stops_every_later_write() {
    // "Namespace is Write Protected" marks the namespace at once; "Write
    // Fault" on the third write in a row, the first two being returned as
    // the device's status.
    for (status, refusals) in [
        (Status::new(0, 0x20), 1),
        (Status::new(2, 0x80), WRITE_FAULTS_BEFORE_PROTECTION as u64),
    ] {
        let bench = bench(NVME_1_4, &[1]);
        bench.sim.refuse_writes(1, status);
        let mut ctrl = bench.controller(test_config()).unwrap();
        assert!(!ctrl.namespaces()[0].write_protected);
        let mut dev = ctrl.namespace(1).unwrap();
        dev.set_writable(true);
        let data = vec![7u8; 4096];
        for _ in 1..refusals {
            let refused = dev.write(0, &data);
            assert_eq!(refused, Err(Error::Device(status)));
            assert!(refused.unwrap_err().refuses_writes());
            assert!(!dev.info().write_protected);
        }
        // The last refusal reaches the device; it is reported as write
        // protection and no later write is sent.
        assert_eq!(dev.write(0, &data), Err(Error::WriteProtected));
        assert_eq!(bench.sim.writes_refused(), refusals);
        for lba in 8..40 {
            assert_eq!(dev.write(lba, &data[..512]), Err(Error::WriteProtected));
        }
        assert_eq!(dev.write_zeroes(0, 8), Err(Error::WriteProtected));
        assert_eq!(bench.sim.writes_refused(), refusals);
        assert_eq!(writes_sent(&bench) as u64, refusals);
        assert!(dev.info().write_protected);
        assert!(!dev.is_writable());
        let mut back = vec![0u8; 512];
        dev.read(0, &mut back).unwrap();
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut queue = ctrl.take_io_queue().unwrap();
        assert_eq!(
            queue
                .submit_write(&ns, 0, bench.dma.buffer_from(&data[..512]), 0)
                .map_err(|r| r.error),
            Err(Error::WriteProtected)
        );
        assert_eq!(writes_sent(&bench) as u64, refusals, "status {status:?}");
    }
}

#[test]
fn queued_writes_refused_as_write_protected_complete_typed_then_stop() {
    let bench = bench(NVME_1_4, &[1]);
    bench.sim.refuse_writes(1, Status::new(2, 0x80));
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.namespace(1).unwrap().set_writable(true);
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut queue = ctrl.take_io_queue().unwrap();
    for tag in 0..4 {
        queue
            .submit_write(&ns, tag * 8, bench.dma.buffer_from(&[tag as u8; 512]), tag)
            .unwrap();
    }
    // The first write faults come back as the device's status, then the
    // namespace is taken as write-protected.
    let mut results = Vec::new();
    while queue.in_flight() > 0 {
        queue.poll(|c| {
            assert_eq!(c.op, IoOp::Write);
            assert!(c.result.is_err_and(Error::refuses_writes));
            results.push(c.result);
        });
    }
    let faults = WRITE_FAULTS_BEFORE_PROTECTION as usize - 1;
    assert_eq!(results.len(), 4);
    assert!(
        results[..faults]
            .iter()
            .all(|r| *r == Err(Error::Device(Status::new(2, 0x80)))),
        "{results:?}"
    );
    assert!(
        results[faults..]
            .iter()
            .all(|r| *r == Err(Error::WriteProtected)),
        "{results:?}"
    );
    assert_eq!(
        queue
            .submit_write(&ns, 0, bench.dma.buffer(512), 9)
            .map_err(|r| r.error),
        Err(Error::WriteProtected)
    );
    assert_eq!(writes_sent(&bench), 4);
    assert!(ctrl.return_io_queue(queue).is_ok());
    assert!(ctrl.namespace(1).unwrap().info().write_protected);
}

#[test]
fn a_write_fault_between_successful_writes_is_a_bad_block_not_protection() {
    let bench = bench(NVME_1_4, &[1]);
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let fault = Status::new(2, 0x80);
    for round in 0..(2 * WRITE_FAULTS_BEFORE_PROTECTION) {
        bench.sim.fail_io(NVM_WRITE, fault);
        assert_eq!(
            dev.write(0, &[1u8; 512]),
            Err(Error::Device(fault)),
            "{round}"
        );
        dev.write(8, &[2u8; 512]).unwrap();
    }
    assert!(!dev.info().write_protected);
    dev.write(0, &[3u8; 512]).unwrap();
}

#[test]
fn other_write_errors_do_not_mark_the_namespace_write_protected() {
    let bench = bench(NVME_1_4, &[1]);
    bench.sim.fail_io(NVM_WRITE, Status::new(2, 0x81));
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    assert!(matches!(dev.write(0, &[1u8; 512]), Err(Error::Device(_))));
    dev.write(0, &[1u8; 512]).unwrap();
    assert!(!dev.info().write_protected);
}

fn zoned_bench() -> Bench {
    let bench = bench(NVME_1_4, &[1, 2]);
    bench.sim.set_io_command_sets(true);
    bench.sim.set_zoned(2, 256, 13, u32::MAX);
    bench
}

#[test]
fn zoned_namespace_is_identified_with_its_zone_size_and_takes_no_write() {
    let bench = zoned_bench();
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(bench.sim.cc().css(), 6, "all I/O command sets selected");
    let namespaces = ctrl.namespaces().to_vec();
    assert_eq!(namespaces[0].zoned, None);
    assert_eq!(
        namespaces[1].zoned,
        Some(ZoneInfo {
            zone_blocks: 256,
            max_open: Some(14),
            max_active: None,
            read_across_boundaries: false,
        })
    );
    assert_eq!(
        namespaces[1]
            .zoned
            .unwrap()
            .zone_bytes(namespaces[1].block_size),
        Some(128 * 1024)
    );
    let sent = identifies(&bench);
    assert!(sent.contains(&(IdentifyCns::CommandSetNamespace as u8, 2)));
    assert!(!sent.contains(&(IdentifyCns::CommandSetNamespace as u8, 1)));
    {
        let mut dev = ctrl.namespace(2).unwrap();
        dev.set_writable(true);
        assert!(!dev.is_writable());
        assert_eq!(dev.write(0, &[0u8; 512]), Err(Error::ZonedNamespace));
        assert_eq!(dev.write_zeroes(0, 1), Err(Error::ZonedNamespace));
        assert_eq!(dev.discard(0, 1), Err(Error::ZonedNamespace));
        let mut back = vec![1u8; 512];
        dev.read(0, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 0));
    }
    let zoned = ctrl.namespace_handle(2).unwrap();
    let mut queue = ctrl.take_io_queue().unwrap();
    assert_eq!(
        queue
            .submit_write(&zoned, 0, bench.dma.buffer(512), 0)
            .map_err(|r| r.error),
        Err(Error::ZonedNamespace)
    );
    assert_eq!(
        queue.submit_discard(&zoned, 0, 1, 0),
        Err(Error::ZonedNamespace)
    );
    assert_eq!(
        queue.submit_write_zeroes(&zoned, 0, 1, 0),
        Err(Error::ZonedNamespace)
    );
    // The NVM namespace beside it is an ordinary one.
    queue.set_doorbell_batching(false);
    ctrl.return_io_queue(queue).ok();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    dev.write(0, &[3u8; 512]).unwrap();
    assert_eq!(writes_sent(&bench), 1);
}

#[test]
fn reads_of_a_zoned_namespace_stop_at_zone_boundaries() {
    let bench = zoned_bench();
    bench.sim.fill_disk(2, |i| (i / 512) as u8);
    let mut ctrl = bench.controller(test_config()).unwrap();
    // Blocks 200..456 span the boundary at 256: two commands.
    let mut data = vec![0u8; 256 * 512];
    bench.sim.clear_commands();
    ctrl.namespace(2).unwrap().read(200, &mut data).unwrap();
    let reads: Vec<(u64, u32)> = bench
        .sim
        .commands()
        .iter()
        .filter(|c| c.qid != 0)
        .map(|c| (u64::from(c.entry.cdw[0]), (c.entry.cdw[2] & 0xFFFF) + 1))
        .collect();
    assert_eq!(reads, [(200, 56), (256, 200)]);
    assert!(
        data.chunks(512)
            .enumerate()
            .all(|(i, b)| b.iter().all(|&x| x == (200 + i) as u8))
    );
    let zoned = ctrl.namespace_handle(2).unwrap();
    let mut queue = ctrl.take_io_queue().unwrap();
    let before = bench.sim.commands().len();
    assert_eq!(
        queue
            .submit_read(&zoned, 250, bench.dma.buffer(8 * 512), 0)
            .map_err(|r| r.error),
        Err(Error::ZoneBoundary)
    );
    assert_eq!(bench.sim.commands().len(), before);
    queue
        .submit_read(&zoned, 248, bench.dma.buffer(8 * 512), 0)
        .unwrap();
    let mut ok = 0;
    while queue.in_flight() > 0 {
        queue.poll(|c| {
            assert_eq!(c.result, Ok(()));
            ok += 1;
        });
    }
    assert_eq!(ok, 1);
}

#[test]
fn controller_without_io_command_sets_keeps_the_nvm_command_set() {
    let bench = bench(NVME_1_4, &[1]);
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(bench.sim.cc().css(), 0);
    assert_eq!(ctrl.namespaces()[0].zoned, None);
    assert!(
        !identifies(&bench)
            .iter()
            .any(|&(cns, _)| cns == IdentifyCns::CommandSetNamespace as u8)
    );
}

#[test]
fn zoned_namespace_without_its_zoned_identify_data_is_still_zoned() {
    let bench = zoned_bench();
    // Any answer to CNS 05h: refused.
    bench.sim.add_fault(FaultRule {
        admin: true,
        opcode: ADMIN_IDENTIFY,
        skip: 6,
        fault: Fault::Status(Status::new(0, 0x02)),
    });
    let ctrl = bench.controller(test_config()).unwrap();
    let sent = identifies(&bench);
    assert_eq!(
        sent[6],
        (IdentifyCns::CommandSetNamespace as u8, 2),
        "{sent:?}"
    );
    assert_eq!(ctrl.namespaces()[1].zoned, Some(ZoneInfo::UNKNOWN));
}

// ------------------------------------------------------------ properties --

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { n },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Clone, Debug)]
enum WriteOp {
    Write(u64, usize),
    WriteFua(u64, usize),
    WriteZeroes(u64, u64),
    Discard(u64, u64),
    QueueWrite(u64, usize),
    QueueWriteZeroes(u64, u32),
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    let lba = prop_oneof![0..1100u64, Just(u64::MAX), any::<u64>()];
    let len = prop_oneof![
        Just(0usize),
        1..4096usize,
        (1..16usize).prop_map(|k| k * 512)
    ];
    let count = prop_oneof![Just(0u64), 1..2000u64, any::<u64>()];
    prop_oneof![
        (lba.clone(), len.clone()).prop_map(|(l, n)| WriteOp::Write(l, n)),
        (lba.clone(), len.clone()).prop_map(|(l, n)| WriteOp::WriteFua(l, n)),
        (lba.clone(), count.clone()).prop_map(|(l, c)| WriteOp::WriteZeroes(l, c)),
        (lba.clone(), count).prop_map(|(l, c)| WriteOp::Discard(l, c)),
        (lba.clone(), len).prop_map(|(l, n)| WriteOp::QueueWrite(l, n)),
        (lba, any::<u32>()).prop_map(|(l, c)| WriteOp::QueueWriteZeroes(l, c)),
    ]
}

/// Runs `ops` against namespace 2 of `bench` (write-protected or zoned)
/// and checks each fails without reaching the device.
fn refused_everywhere(bench: &Bench, ops: &[WriteOp]) -> Result<(), TestCaseError> {
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.namespace(2).unwrap().set_writable(true);
    let ns2 = ctrl.namespace_handle(2).unwrap();
    let mut queue = ctrl.take_io_queue().unwrap();
    let before = (bench.sim.commands().len(), bench.sim.doorbell_writes());
    for op in ops {
        let result = match *op {
            WriteOp::QueueWrite(lba, len) => queue
                .submit_write(&ns2, lba, bench.dma.buffer_from(&vec![9u8; len]), 0)
                .map_err(|r| r.error),
            WriteOp::QueueWriteZeroes(lba, count) => queue.submit_write_zeroes(&ns2, lba, count, 0),
            _ => {
                let mut dev = ctrl.namespace(2).unwrap();
                match *op {
                    WriteOp::Write(lba, len) => dev.write(lba, &vec![9u8; len]),
                    WriteOp::WriteFua(lba, len) => dev.write_fua(lba, &vec![9u8; len]),
                    WriteOp::WriteZeroes(lba, count) => dev.write_zeroes(lba, count),
                    WriteOp::Discard(lba, count) => dev.discard(lba, count),
                    _ => unreachable!(),
                }
            }
        };
        prop_assert!(
            matches!(
                result,
                Err(Error::WriteProtected
                    | Error::ZonedNamespace
                    | Error::OutOfRange
                    | Error::InvalidLength)
            ),
            "{op:?}: {result:?}"
        );
    }
    prop_assert_eq!(
        (bench.sim.commands().len(), bench.sim.doorbell_writes()),
        before
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn writes_to_write_protected_namespaces_never_reach_the_device(
        ops in proptest::collection::vec(write_op(), 1..12)
    ) {
        let bench = bench(NVME_1_4, &[1, 2]);
        bench.sim.set_write_protected(2);
        refused_everywhere(&bench, &ops)?;
    }

    #[test]
    fn writes_to_zoned_namespaces_never_reach_the_device(
        ops in proptest::collection::vec(write_op(), 1..12)
    ) {
        refused_everywhere(&zoned_bench(), &ops)?;
    }

    #[test]
    fn arbitrary_descriptor_and_zoned_identify_data_never_panic(
        descriptors in proptest::collection::vec(any::<u8>(), 0..4096),
        zoned in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let bench = zoned_bench();
        bench.sim.set_identify_page(IdentifyCns::NamespaceDescriptors as u8, &descriptors);
        bench.sim.set_identify_page(IdentifyCns::CommandSetNamespace as u8, &zoned);
        // Whatever the device says, bring-up completes; any namespace
        // that says it is zoned takes no write.
        let mut ctrl = bench.controller(test_config()).unwrap();
        let zoned_nsids: Vec<u32> = ctrl
            .namespaces()
            .iter()
            .filter(|n| n.zoned.is_some())
            .map(|n| n.nsid)
            .collect();
        for nsid in zoned_nsids {
            let mut dev = ctrl.namespace(nsid).unwrap();
            dev.set_writable(true);
            prop_assert_eq!(dev.write(0, &[0u8; 512]), Err(Error::ZonedNamespace));
        }
    }
}
