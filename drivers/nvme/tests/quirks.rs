//! Each quirk kind of the table changes behaviour: the same simulated
//! controller with a quirked PCI vendor/device ID and with QEMU's.

use nvme::quirks::{self, READY_CHECK_DELAY_US};
use nvme::{Error, IoOp};
use nvme_sim::real_drive::{RealDrive, apst_entry, apst_target};
use nvme_sim::*;

/// QEMU's NVMe controller (Red Hat 1b36:0010): no quirk that matters here.
const PLAIN: (u16, u16) = (0x1b36, 0x0010);
const SAMSUNG_PM1725: (u16, u16) = (0x144d, 0xa821);
const SAMSUNG_PM1725A: (u16, u16) = (0x144d, 0xa822);
const OLD_QEMU_INTEL_ID: (u16, u16) = (0x8086, 0x5845);
const KINGSTON_A2000: (u16, u16) = (0x2646, 0x2263);

fn config((vendor, device): (u16, u16)) -> nvme::Config {
    nvme::Config {
        pci_vendor: vendor,
        pci_device: device,
        ..test_config()
    }
}

fn opcodes(bench: &Bench, admin: bool) -> Vec<u8> {
    bench
        .sim
        .commands()
        .iter()
        .filter(|c| (c.qid == 0) == admin)
        .map(|c| c.entry.opcode)
        .collect()
}

#[test]
fn delay_is_observed_before_every_ready_check() {
    let delay_ns = u64::from(READY_CHECK_DELAY_US) * 1000;
    // Firmware left the controller enabled: bring-up disables it first.
    let enabled = SimConfig {
        start: StartState::EnabledReady,
        ..SimConfig::default()
    };
    let bench = Bench::new(enabled.clone());
    let mut ctrl = bench.controller(config(SAMSUNG_PM1725)).unwrap();
    ctrl.recover().unwrap();
    let gaps = bench.sim.ready_check_gaps();
    // Disable and enable at bring-up, and again for the reset.
    assert_eq!(gaps.len(), 4);
    assert!(gaps.iter().all(|&g| g >= delay_ns), "{gaps:?}");

    let bench = Bench::new(enabled);
    let mut ctrl = bench.controller(config(PLAIN)).unwrap();
    ctrl.recover().unwrap();
    let gaps = bench.sim.ready_check_gaps();
    assert_eq!(gaps.len(), 4);
    assert!(gaps.iter().all(|&g| g < 1_000_000), "{gaps:?}");
}

#[test]
fn write_zeroes_is_never_sent_to_drives_that_mishandle_it() {
    for (ids, quirked) in [(SAMSUNG_PM1725A, true), (PLAIN, false)] {
        let bench = Bench::new(SimConfig::default());
        let mut ctrl = bench.controller(config(ids)).unwrap();
        assert!(ctrl.info().oncs.write_zeroes());
        assert_eq!(ctrl.info().write_zeroes, !quirked);
        assert_eq!(ctrl.info().quirks.no_write_zeroes, quirked);
        bench.sim.fill_disk(1, |_| 0xAA);
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut q = ctrl.take_io_queue().unwrap();
        {
            let mut dev = ctrl.namespace(1).unwrap();
            dev.set_writable(true);
            let sync = dev.write_zeroes(0, 8);
            let queued = q.submit_write_zeroes(&ns, 8, 8, 1);
            if quirked {
                assert_eq!(sync, Err(Error::Unsupported));
                assert_eq!(queued, Err(Error::Unsupported));
            } else {
                sync.unwrap();
                queued.unwrap();
                let mut done = Vec::new();
                while done.is_empty() {
                    q.poll(|c| done.push(c));
                }
                assert_eq!(done[0].op, IoOp::WriteZeroes);
                assert_eq!(done[0].result, Ok(()));
            }
        }
        let sent = opcodes(&bench, false).contains(&0x08);
        assert_eq!(sent, !quirked);
        let zeroed = bench.sim.disk(1, 0, 16).iter().all(|&b| b == 0);
        assert_eq!(zeroed, !quirked);
    }
}

#[test]
fn identify_quirk_avoids_the_active_namespace_list() {
    let namespaces = vec![
        NsConfig {
            nsid: 1,
            block_size: 512,
            blocks: 1024,
            metadata: 0,
        },
        NsConfig {
            nsid: 2,
            block_size: 4096,
            blocks: 256,
            metadata: 0,
        },
    ];
    for (ids, quirked) in [(OLD_QEMU_INTEL_ID, true), (PLAIN, false)] {
        let bench = Bench::new(SimConfig {
            namespaces: namespaces.clone(),
            ..SimConfig::default()
        });
        let ctrl = bench.controller(config(ids)).unwrap();
        let cns: Vec<u32> = bench
            .sim
            .commands()
            .iter()
            .filter(|c| c.qid == 0 && c.entry.opcode == 0x06)
            .map(|c| c.entry.cdw[0] & 0xFF)
            .collect();
        assert_eq!(cns.contains(&0x02), !quirked, "{cns:?}");
        let nsids: Vec<u32> = ctrl.namespaces().iter().map(|n| n.nsid).collect();
        assert_eq!(nsids, [1, 2]);
        if quirked {
            // Controller, then for NSID 1..=NN (2) Identify Namespace and
            // its Identification Descriptors (the command set, NVMe 1.3+).
            assert_eq!(cns, [0x01, 0x00, 0x03, 0x00, 0x03]);
        }
    }
}

#[test]
fn apst_never_enters_the_deepest_power_state_on_quirked_drives() {
    let npss = 4;
    let real = RealDrive {
        npss,
        apsta: true,
        apst_enabled: true,
        ..RealDrive::default()
    };
    let firmware_table = {
        let mut t = [0u64; 32];
        for e in t.iter_mut().take(npss as usize) {
            *e = apst_entry(npss, 100);
        }
        t
    };
    for (ids, quirked) in [(KINGSTON_A2000, true), (PLAIN, false)] {
        let bench = Bench::new(SimConfig {
            real: real.clone(),
            ..SimConfig::default()
        });
        let ctrl = bench.controller(config(ids)).unwrap();
        assert_eq!(ctrl.info().quirks.no_deepest_power_state, quirked);
        let (enabled, table) = bench.sim.apst();
        assert!(enabled);
        let into_deepest = table
            .iter()
            .filter(|&&e| apst_target(e) == Some(npss))
            .count();
        if quirked {
            assert_eq!(into_deepest, 0);
        } else {
            // The driver leaves other drives' power settings alone.
            assert_eq!(table, firmware_table);
            let features: Vec<u32> = bench
                .sim
                .commands()
                .iter()
                .filter(|c| c.qid == 0 && matches!(c.entry.opcode, 0x09 | 0x0A))
                .map(|c| c.entry.cdw[0] & 0xFF)
                .collect();
            assert!(!features.contains(&0x0C), "{features:?}");
        }
    }
}

#[test]
fn apst_left_alone_when_firmware_left_it_off() {
    let bench = Bench::new(SimConfig {
        real: RealDrive {
            npss: 4,
            apsta: true,
            apst_enabled: false,
            ..RealDrive::default()
        },
        ..SimConfig::default()
    });
    bench.controller(config(KINGSTON_A2000)).unwrap();
    let (enabled, table) = bench.sim.apst();
    assert!(!enabled);
    assert_eq!(table, [0u64; 32]);
    // Read, not written.
    let set_apst = bench
        .sim
        .commands()
        .iter()
        .any(|c| c.entry.opcode == 0x09 && c.entry.cdw[0] & 0xFF == 0x0C);
    assert!(!set_apst);
}

#[test]
fn every_table_entry_brings_the_simulated_controller_up() {
    for entry in quirks::TABLE {
        let bench = Bench::new(SimConfig {
            real: RealDrive {
                npss: 4,
                apsta: true,
                apst_enabled: true,
                ..RealDrive::default()
            },
            ..SimConfig::default()
        });
        let mut ctrl = bench
            .controller(config((entry.vendor, entry.device)))
            .unwrap_or_else(|e| panic!("{}: {e}", entry.model));
        assert_eq!(ctrl.info().quirks, entry.quirks, "{}", entry.model);
        let mut buf = vec![0u8; 512];
        ctrl.namespace(1).unwrap().read(0, &mut buf).unwrap();
        ctrl.shutdown().unwrap();
    }
}
