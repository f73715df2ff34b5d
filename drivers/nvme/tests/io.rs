//! Synchronous block I/O: data paths, PRP building, MDTS splitting, phase
//! wrap-around, optional commands and input validation.

use nvme::command::Status;
use nvme::{Error, ErrorKind, Quirks};
use nvme_sim::*;

fn ns(nsid: u32, block_size: usize, blocks: u64) -> NsConfig {
    NsConfig {
        nsid,
        block_size,
        blocks,
        metadata: 0,
    }
}

/// A page-aligned buffer of `len` bytes starting `offset` bytes into a page.
struct Aligned {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(offset: usize, len: usize) -> Aligned {
        let storage = vec![0u8; len + offset + 8192];
        let base = storage.as_ptr() as usize;
        let start = base.next_multiple_of(4096) - base + offset;
        Aligned {
            storage,
            start,
            len,
        }
    }
    fn buf(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

#[test]
fn round_trip_512_and_4k_blocks_bounce_and_zero_copy() {
    for zero_copy in [false, true] {
        let bench = Bench::new(SimConfig {
            namespaces: vec![ns(1, 512, 4096), ns(2, 4096, 512)],
            ..SimConfig::default()
        });
        bench.dma.set_translate_any(zero_copy);
        let mut ctrl = bench.controller(test_config()).unwrap();
        for (nsid, bs) in [(1u32, 512usize), (2, 4096)] {
            let mut dev = ctrl.namespace(nsid).unwrap();
            dev.set_writable(true);
            let data = pattern(bs * 7, nsid as u64);
            dev.write(5, &data).unwrap();
            assert_eq!(bench.sim.disk(nsid, 5, 7), data);
            let mut back = vec![0u8; data.len()];
            dev.read(5, &mut back).unwrap();
            assert_eq!(back, data);
        }
    }
}

#[test]
fn zero_copy_uses_caller_pages_and_bounce_otherwise() {
    let bench = Bench::new(SimConfig::default());
    bench.dma.set_translate_any(true);
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    let mut a = Aligned::new(0, 4096);
    let addr = a.buf().as_ptr() as u64;
    bench.sim.clear_commands();
    dev.read(0, a.buf()).unwrap();
    assert_eq!(bench.sim.commands()[0].entry.prp1, addr, "zero copy");
    // Not dword aligned: must bounce.
    let mut b = Aligned::new(1, 1024);
    let addr = b.buf().as_ptr() as u64;
    bench.sim.fill_disk(1, |i| (i % 251) as u8);
    bench.sim.clear_commands();
    dev.read(2, b.buf()).unwrap();
    assert_ne!(bench.sim.commands()[0].entry.prp1, addr, "bounced");
    assert_eq!(b.buf(), &bench.sim.disk(1, 2, 2)[..]);
}

#[test]
fn prp_shapes_for_offsets_and_sizes() {
    // Zero-copy makes PRPs follow the caller's buffer, so every shape is
    // exercised; the simulator checks each PRP strictly.
    let bench = Bench::new(SimConfig {
        mdts: 0,
        namespaces: vec![ns(1, 512, 16384)],
        ..SimConfig::default()
    });
    bench.dma.set_translate_any(true);
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let cases = [
        (0usize, 512usize, false), // one page
        (0, 4096, false),          // exactly one page
        (0, 8192, false),          // exactly two pages: PRP2 = page
        (512, 4096, false),        // offset, crosses one boundary: two pages
        (3584, 1024, false),       // straddles a boundary
        (512, 8192, true),         // offset over three pages: list
        (0, 12288, true),          // three pages: list
        (4, 512 * 300, true),      // many pages, dword offset
        (0, 512 * 4096, true),     // 2 MiB: a full list page
    ];
    for (i, &(offset, len, list)) in cases.iter().enumerate() {
        let mut a = Aligned::new(offset, len);
        let data = pattern(len, i as u64);
        a.buf().copy_from_slice(&data);
        bench.sim.clear_commands();
        let lba = (i * 8) as u64;
        dev.write(lba, a.buf()).unwrap();
        let cmds = bench.sim.commands();
        assert_eq!(cmds.len(), 1, "case {i}: one command");
        let e = cmds[0].entry;
        assert_eq!(e.prp1, a.buf().as_ptr() as u64, "case {i}");
        let pages = (offset % 4096 + len).div_ceil(4096);
        match pages {
            1 => assert_eq!(e.prp2, 0, "case {i}"),
            2 => assert_eq!(e.prp2, (a.buf().as_ptr() as u64 & !4095) + 4096, "case {i}"),
            _ => assert!(list, "case {i}"),
        }
        assert_eq!(bench.sim.disk(1, lba, (len / 512) as u64), data, "case {i}");
        let mut back = Aligned::new(offset, len);
        dev.read(lba, back.buf()).unwrap();
        assert_eq!(back.buf(), &data[..], "case {i}");
    }
}

#[test]
fn mdts_splits_transfers() {
    // MDTS 1 => 8 KiB per command.
    let bench = Bench::new(SimConfig {
        mdts: 1,
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let data = pattern(64 * 1024 + 512, 3);
    bench.sim.clear_commands();
    dev.write(10, &data).unwrap();
    let cmds = bench.sim.commands();
    assert_eq!(cmds.len(), 9);
    let mut lba = 10;
    for c in &cmds {
        let nlb = (c.entry.cdw[2] & 0xFFFF) as u64 + 1;
        assert!(nlb * 512 <= 8192);
        assert_eq!(c.entry.cdw[0] as u64, lba);
        lba += nlb;
    }
    assert_eq!(lba, 10 + 129);
    let mut back = vec![0u8; data.len()];
    dev.read(10, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn mdts_zero_means_no_limit_but_prp_and_bounce_limits_apply() {
    let bench = Bench::new(SimConfig {
        mdts: 0,
        namespaces: vec![ns(1, 4096, 4096)],
        ..SimConfig::default()
    });
    let mut ctrl = bench
        .controller(nvme::Config {
            bounce_buffer_bytes: 64 * 1024,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().mdts_bytes, None);
    assert_eq!(ctrl.info().max_transfer_bytes, 2 * 1024 * 1024);
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let data = pattern(1024 * 1024, 4);
    bench.sim.clear_commands();
    dev.write(0, &data).unwrap(); // bounce: 64 KiB pieces
    assert_eq!(bench.sim.commands().len(), 16);
    bench.dma.set_translate_any(true);
    let mut a = Aligned::new(0, data.len());
    bench.sim.clear_commands();
    dev.read(0, a.buf()).unwrap(); // zero copy: one command
    assert_eq!(bench.sim.commands().len(), 1);
    assert_eq!(a.buf(), &data[..]);
}

#[test]
fn phase_wraps_over_many_queue_cycles() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench
        .controller(nvme::Config {
            io_queue_depth: 3,
            admin_queue_depth: 2,
            ..test_config()
        })
        .unwrap();
    {
        let mut dev = ctrl.namespace(1).unwrap();
        dev.set_writable(true);
        for i in 0..500u64 {
            let data = pattern(512, i);
            dev.write(i % 64, &data).unwrap();
            let mut back = vec![0u8; 512];
            dev.read(i % 64, &mut back).unwrap();
            assert_eq!(back, data, "iteration {i}");
        }
    }
    for _ in 0..50 {
        ctrl.smart_log().unwrap();
    }
}

#[test]
fn flush_fua_write_zeroes_and_discard() {
    let bench = Bench::new(SimConfig {
        namespaces: vec![ns(1, 512, 200_000)],
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    bench.sim.fill_disk(1, |_| 0xAA);
    bench.sim.clear_commands();
    dev.flush().unwrap();
    dev.write_fua(0, &[1u8; 512]).unwrap();
    let cmds = bench.sim.commands();
    assert_eq!((cmds[0].entry.opcode, cmds[0].entry.nsid), (0x00, 1));
    assert_eq!(cmds[1].entry.opcode, 0x01);
    assert_ne!(cmds[1].entry.cdw[2] & (1 << 30), 0, "FUA");

    bench.sim.clear_commands();
    dev.write_zeroes(100, 70_000).unwrap();
    assert_eq!(bench.sim.commands().len(), 2, "split at 65536 blocks");
    assert!(bench.sim.disk(1, 100, 70_000).iter().all(|&b| b == 0));
    assert_eq!(bench.sim.disk(1, 99, 1), vec![0xAA; 512]);
    assert_eq!(bench.sim.disk(1, 70_100, 1), vec![0xAA; 512]);

    bench.sim.clear_commands();
    dev.discard(80_000, 1000).unwrap();
    let cmds = bench.sim.commands();
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        (
            cmds[0].entry.opcode,
            cmds[0].entry.cdw[0],
            cmds[0].entry.cdw[1]
        ),
        (0x09, 0, 1 << 2)
    );
    assert!(bench.sim.disk(1, 80_000, 1000).iter().all(|&b| b == 0));
    assert_eq!(bench.sim.disk(1, 81_000, 1), vec![0xAA; 512]);
}

#[test]
fn optional_commands_unsupported_without_oncs_or_with_quirk() {
    let bench = Bench::new(SimConfig {
        oncs: 0,
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let before = bench.sim.doorbell_writes();
    assert_eq!(dev.write_zeroes(0, 1), Err(Error::Unsupported));
    assert_eq!(dev.discard(0, 1), Err(Error::Unsupported));
    assert_eq!(bench.sim.doorbell_writes(), before);

    let bench = Bench::new(SimConfig::default());
    let quirks = Quirks {
        no_write_zeroes: true,
        no_dataset_management: true,
        ..Quirks::NONE
    };
    let mut ctrl = bench
        .controller(nvme::Config {
            extra_quirks: quirks,
            ..test_config()
        })
        .unwrap();
    assert!(ctrl.info().oncs.write_zeroes() && !ctrl.info().write_zeroes);
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    assert_eq!(dev.write_zeroes(0, 1), Err(Error::Unsupported));
    assert_eq!(
        dev.discard(0, 1).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn device_errors_carry_status_and_later_io_works() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    let mut dev = ctrl.namespace(1).unwrap();
    let status = Status {
        sct: 2,
        sc: 0x81,
        dnr: true,
        more: false,
        crd: 0,
    };
    bench.sim.fail_io(0x02, status);
    let mut buf = vec![0u8; 512];
    let e = dev.read(0, &mut buf).unwrap_err();
    assert_eq!(e, Error::Device(status));
    let Error::Device(s) = e else { unreachable!() };
    assert_eq!(s.name(), "Unrecovered Read Error");
    assert_eq!(e.kind(), ErrorKind::Device);
    assert!(e.to_string().contains("Unrecovered Read Error"));
    dev.read(0, &mut buf).unwrap();
    assert_eq!(bench.sim.enables(), 1, "no reset for a status error");
}

#[test]
fn bad_input_never_reaches_the_device() {
    let bench = Bench::new(SimConfig {
        namespaces: vec![ns(1, 512, 100)],
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let writes = bench.sim.register_writes();
    {
        let mut dev = ctrl.namespace(1).unwrap();
        let mut buf = vec![0u8; 1024];
        // Read-only by default.
        assert_eq!(dev.write(0, &buf), Err(Error::NotOwned));
        assert_eq!(dev.write_fua(0, &buf), Err(Error::NotOwned));
        assert_eq!(dev.write_zeroes(0, 1), Err(Error::NotOwned));
        assert_eq!(dev.discard(0, 1), Err(Error::NotOwned));
        assert_eq!(dev.read(99, &mut buf), Err(Error::OutOfRange));
        assert_eq!(dev.read(100, &mut buf[..512]), Err(Error::OutOfRange));
        assert_eq!(dev.read(u64::MAX, &mut buf), Err(Error::OutOfRange));
        assert_eq!(dev.read(u64::MAX - 1, &mut buf), Err(Error::OutOfRange));
        assert_eq!(dev.read(0, &mut buf[..511]), Err(Error::InvalidLength));
        assert_eq!(dev.read(0, &mut buf[..0]), Err(Error::InvalidLength));
        dev.set_writable(true);
        assert!(dev.is_writable());
        assert_eq!(dev.write(0, &buf[..513]), Err(Error::InvalidLength));
        assert_eq!(dev.write(99, &buf), Err(Error::OutOfRange));
        assert_eq!(dev.write_zeroes(0, 0), Err(Error::InvalidLength));
        assert_eq!(dev.write_zeroes(50, 51), Err(Error::OutOfRange));
        assert_eq!(dev.discard(u64::MAX, 2), Err(Error::OutOfRange));
        assert_eq!(dev.discard(0, 0), Err(Error::InvalidLength));
        assert_eq!(Error::OutOfRange.kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::NotOwned.kind(), ErrorKind::PermissionDenied);
        dev.set_writable(false);
    }
    assert_eq!(
        bench.sim.register_writes(),
        writes,
        "no register write at all"
    );
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    let writes = bench.sim.register_writes();
    let buf = |len| bench.dma.buffer(len);
    let error = |r: Result<(), nvme::Rejected>| r.map_err(|r| r.error);
    assert_eq!(
        error(q.submit_read(&ns, 100, buf(512), 0)),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        error(q.submit_read(&ns, u64::MAX, buf(512), 0)),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        error(q.submit_read(&ns, 0, buf(0), 0)),
        Err(Error::InvalidLength)
    );
    assert_eq!(
        error(q.submit_read(&ns, 0, buf(513), 0)),
        Err(Error::InvalidLength)
    );
    assert_eq!(
        error(q.submit_read(&ns, 0, buf(101 * 512), 0)),
        Err(Error::OutOfRange)
    );
    assert_eq!(ctrl.namespace_handle(7).err(), Some(Error::NoSuchNamespace));
    assert_eq!(
        error(q.submit_write(&ns, 0, buf(512), 0)),
        Err(Error::NotOwned)
    );
    assert_eq!(
        error(q.submit_write(&ns, 0, buf(100), 0)),
        Err(Error::InvalidLength)
    );
    assert_eq!(q.submit_write_zeroes(&ns, 0, 1, 0), Err(Error::NotOwned));
    assert_eq!(q.submit_discard(&ns, 0, 1, 0), Err(Error::NotOwned));
    assert_eq!(
        bench.sim.register_writes(),
        writes,
        "no register write at all"
    );
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn writable_flag_is_per_namespace_and_shared_with_queues() {
    let bench = Bench::new(SimConfig {
        namespaces: vec![ns(1, 512, 100), ns(2, 512, 100)],
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let ns1 = ctrl.namespace_handle(1).unwrap();
    let ns2 = ctrl.namespace_handle(2).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    ctrl.namespace(2).unwrap().set_writable(true);
    assert!(!ctrl.namespace(1).unwrap().is_writable());
    assert_eq!(
        q.submit_write(&ns1, 0, bench.dma.buffer(512), 0)
            .map_err(|r| r.error),
        Err(Error::NotOwned)
    );
    q.submit_write(&ns2, 0, bench.dma.buffer_from(&[7u8; 512]), 0)
        .unwrap();
    let mut done = 0;
    while done == 0 {
        done += q.poll(|c| assert_eq!(c.result, Ok(())));
    }
    assert_eq!(bench.sim.disk(2, 0, 1), vec![7u8; 512]);
    let before = bench.sim.disk_checksum(1);
    assert_eq!(bench.sim.disk_checksum(1), before);
}
