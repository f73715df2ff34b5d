//! Bring-up from every starting state, odd capabilities, identify data,
//! features, logs and shutdown against the simulated controller.

use nvme::registers::ShutdownStatus;
use nvme::{Error, Quirks, Stage};
use nvme_sim::*;

#[test]
fn brings_up_from_each_starting_state() {
    for start in [
        StartState::Disabled,
        StartState::EnabledReady,
        StartState::EnabledNotReady,
        StartState::ShutdownInProgress,
        StartState::Fatal,
    ] {
        let bench = Bench::new(SimConfig {
            start,
            ..SimConfig::default()
        });
        let mut ctrl = bench
            .controller(test_config())
            .unwrap_or_else(|e| panic!("{start:?}: {e}"));
        assert!(bench.sim.cc().enabled(), "{start:?}");
        assert_eq!(bench.sim.enables(), 1, "{start:?}");
        assert_eq!(
            bench.sim.resets_during_shutdown(),
            0,
            "{start:?}: shutdown left to finish"
        );
        let mut buf = vec![0u8; 512];
        ctrl.namespace(1).unwrap().read(0, &mut buf).unwrap();
    }
}

#[test]
fn identify_results_are_exposed() {
    let bench = Bench::new(SimConfig {
        namespaces: vec![
            NsConfig {
                nsid: 1,
                block_size: 512,
                blocks: 1000,
                metadata: 0,
            },
            NsConfig {
                nsid: 3,
                block_size: 4096,
                blocks: 300,
                metadata: 0,
            },
            NsConfig {
                nsid: 4,
                block_size: 512,
                blocks: 100,
                metadata: 8,
            },
        ],
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    let info = *ctrl.info();
    assert_eq!(info.model.as_str(), "Simulated NVMe Controller");
    assert_eq!(info.serial.as_str(), "SIMSERIAL0001");
    assert_eq!(info.firmware.as_str(), "1.0");
    assert_eq!((info.version.major(), info.version.minor()), (1, 4));
    assert_eq!(info.mdts_bytes, Some(32 * 4096));
    assert_eq!(info.max_transfer_bytes, 32 * 4096);
    assert_eq!(info.io_queues, 4);
    assert_eq!(info.io_queue_depth, 32);
    assert!(info.volatile_write_cache_present && info.volatile_write_cache_enabled);
    assert!(info.write_zeroes && info.deallocate);
    assert_eq!(info.namespace_count, 4);
    let ns: Vec<_> = ctrl
        .namespaces()
        .iter()
        .map(|n| (n.nsid, n.block_size, n.block_count, n.metadata_size))
        .collect();
    assert_eq!(ns, [(1, 512, 1000, 0), (3, 4096, 300, 0), (4, 512, 100, 8)]);
    {
        let dev = ctrl.namespace(3).unwrap();
        assert_eq!((dev.block_size(), dev.block_count()), (4096, 300));
        let id = dev.identity();
        assert_eq!(
            (id.nsid, id.model.as_str()),
            (3, "Simulated NVMe Controller")
        );
    }
    assert_eq!(ctrl.namespace(4).err(), Some(Error::NamespaceHasMetadata));
    assert_eq!(ctrl.namespace(2).err(), Some(Error::NoSuchNamespace));
}

#[test]
fn falls_back_without_active_namespace_list() {
    let bench = Bench::new(SimConfig {
        active_list: false,
        namespaces: vec![
            NsConfig {
                nsid: 1,
                block_size: 512,
                blocks: 64,
                metadata: 0,
            },
            NsConfig {
                nsid: 2,
                block_size: 512,
                blocks: 64,
                metadata: 0,
            },
        ],
        ..SimConfig::default()
    });
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.namespaces().len(), 2);
}

#[test]
fn odd_capabilities() {
    // DSTRD 3, MQES 3 (4 entries), MPSMIN 1 (8 KiB pages), MDTS 2.
    let bench = Bench::with_align(
        SimConfig {
            dstrd: 3,
            mqes: 3,
            mpsmin: 1,
            mpsmax: 2,
            mdts: 2,
            ..SimConfig::default()
        },
        8192,
    );
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().page_size, 8192);
    assert_eq!(ctrl.info().io_queue_depth, 3);
    assert_eq!(ctrl.info().mdts_bytes, Some(4 * 8192));
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let data = pattern(100 * 512, 1);
    dev.write(3, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    dev.read(3, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(bench.sim.disk(1, 3, 100), data);
}

#[test]
fn page_size_defaults_to_4k_when_allowed() {
    let bench = Bench::new(SimConfig {
        mpsmin: 0,
        mpsmax: 8,
        ..SimConfig::default()
    });
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().page_size, 4096);
    assert_eq!(bench.sim.cc().mps(), 0);
}

#[test]
fn never_ready_is_reported() {
    let bench = Bench::new(SimConfig::default());
    bench.sim.set_never_ready(true);
    assert_eq!(
        bench.controller(test_config()).err(),
        Some(Error::NeverReady)
    );
}

#[test]
fn all_ones_registers_are_fatal() {
    let bench = Bench::new(SimConfig::default());
    bench.sim.set_all_ones(true);
    assert_eq!(
        bench.controller(test_config()).err(),
        Some(Error::ControllerFatal)
    );
}

#[test]
fn quirk_delay_is_honoured() {
    let bench = Bench::new(SimConfig::default());
    let before = bench.clock.peek();
    let config = nvme::Config {
        extra_quirks: Quirks {
            delay_before_ready_check_us: 2_000_000,
            ..Quirks::NONE
        },
        ..test_config()
    };
    bench.controller(config).unwrap();
    // Two waits (disable and enable) of 2 s each.
    assert!(bench.clock.peek() - before >= 4_000_000_000);
}

#[test]
fn queue_count_follows_grant_and_quirk() {
    let bench = Bench::new(SimConfig {
        max_io_queues: 2,
        ..SimConfig::default()
    });
    let mut ctrl = bench
        .controller(nvme::Config {
            io_queue_pairs: 8,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().io_queues, 2);
    assert_eq!(bench.sim.io_queue_count(), 3); // admin + 2
    assert!(ctrl.take_io_queue().is_ok());
    assert_eq!(ctrl.take_io_queue().err(), Some(Error::NoFreeQueue));

    let bench = Bench::new(SimConfig::default());
    let config = nvme::Config {
        extra_quirks: Quirks {
            single_io_queue: true,
            ..Quirks::NONE
        },
        ..test_config()
    };
    let ctrl = bench.controller(config).unwrap();
    assert_eq!(ctrl.info().io_queues, 1);
}

#[test]
fn write_cache_feature() {
    let bench = Bench::new(SimConfig::default());
    let config = nvme::Config {
        volatile_write_cache: Some(false),
        ..test_config()
    };
    let mut ctrl = bench.controller(config).unwrap();
    assert!(!ctrl.info().volatile_write_cache_enabled);
    assert!(!bench.sim.vwc_enabled());
    ctrl.set_volatile_write_cache(true).unwrap();
    assert!(bench.sim.vwc_enabled());
    assert!(ctrl.volatile_write_cache().unwrap());

    let bench = Bench::new(SimConfig {
        vwc: false,
        ..SimConfig::default()
    });
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.volatile_write_cache().err(), Some(Error::Unsupported));
}

#[test]
fn smart_and_error_logs() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    let smart = ctrl.smart_log().unwrap();
    assert_eq!(smart.composite_temperature_kelvin, 300);
    assert!(smart.critical_warning.reliability_degraded());
    assert!(!smart.critical_warning.read_only());
    assert_eq!(smart.percentage_used, 3);
    assert_eq!(smart.power_cycles, 42);
    assert_eq!(smart.power_on_hours, 1000);
    assert_eq!(smart.unsafe_shutdowns, 5);
    assert_eq!(smart.media_errors, 1);
    let mut entries = [nvme::ErrorLogEntry::default(); 4];
    assert_eq!(ctrl.error_log(&mut entries).unwrap(), 4);
    assert!(entries[0].is_valid());
    assert_eq!(entries[0].cid, 7);
    assert_eq!(entries[0].status.name(), "Unrecovered Read Error");
    assert!(!entries[1].is_valid());
    let last = bench.sim.commands().pop().unwrap();
    assert_eq!(last.entry.opcode, 0x02);
    assert_eq!(last.entry.cdw[0] & 0xFF, 1);
    assert_eq!((last.entry.cdw[0] >> 16) + 1, 4 * 64 / 4);
}

#[test]
fn abort_command_is_sent() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert!(!ctrl.abort(1, 5).unwrap());
    let last = bench.sim.commands().pop().unwrap();
    assert_eq!(
        (last.entry.opcode, last.entry.cdw[0]),
        (0x08, 1 | (5 << 16))
    );
}

#[test]
fn shutdown_is_clean_and_idempotent() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    ctrl.shutdown().unwrap();
    assert_eq!(bench.sim.shutdown_status(), ShutdownStatus::Complete);
    assert_eq!(
        bench.sim.io_queue_count(),
        1,
        "I/O queues deleted before shutdown"
    );
    let cmds = bench.sim.commands();
    let deletes = cmds
        .iter()
        .filter(|c| c.qid == 0 && (c.entry.opcode == 0x00 || c.entry.opcode == 0x04))
        .count();
    assert_eq!(deletes, 2 * 4);
    let writes = bench.sim.register_writes();
    ctrl.shutdown().unwrap();
    assert_eq!(
        bench.sim.register_writes(),
        writes,
        "second shutdown touches nothing"
    );
    let mut buf = vec![0u8; 512];
    assert_eq!(
        ctrl.namespace(1).unwrap().read(0, &mut buf),
        Err(Error::ShutDown)
    );
    let refused = q.submit_read(&ns, 0, bench.dma.buffer(512), 0).unwrap_err();
    assert_eq!(
        (refused.error, refused.buffer.len()),
        (Error::ShutDown, 512)
    );
    assert_eq!(ctrl.smart_log().err(), Some(Error::ShutDown));
    assert_eq!(ctrl.recover(), Err(Error::ShutDown));
}

#[test]
fn shutdown_timeout_is_reported() {
    let bench = Bench::new(SimConfig {
        ready_delay_ms: 50,
        ..SimConfig::default()
    });
    let mut ctrl = bench
        .controller(nvme::Config {
            shutdown_timeout_ms: 10,
            ..test_config()
        })
        .unwrap();
    assert_eq!(
        ctrl.shutdown(),
        Err(Error::Timeout {
            stage: Stage::Shutdown
        })
    );
    assert!(ctrl.is_shut_down());
}

#[test]
fn dma_exhaustion_is_an_error() {
    let bench = Bench::new(SimConfig::default());
    bench.dma.fail_after(2);
    assert_eq!(bench.controller(test_config()).err(), Some(Error::Dma));
}

#[test]
fn doorbells_follow_the_stride() {
    // The simulator panics on doorbell writes off the stride; bring-up and
    // I/O on several queues exercise every doorbell.
    for dstrd in [0u8, 1, 4] {
        let bench = Bench::new(SimConfig {
            dstrd,
            ..SimConfig::default()
        });
        let mut ctrl = bench.controller(test_config()).unwrap();
        let ns = ctrl.namespace_handle(1).unwrap();
        let mut q = ctrl.take_io_queue().unwrap();
        q.submit_read(&ns, 0, bench.dma.buffer(512), 9).unwrap();
        let mut seen = 0;
        while seen == 0 {
            q.poll(|c| {
                assert_eq!(c.result, Ok(()));
                seen += 1;
            });
        }
    }
}

#[test]
fn handles_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<TestController>();
    assert_send::<nvme::IoQueue<Sim, FakeClock>>();
    assert_send::<nvme::DmaRegion>();
}

#[test]
fn error_log_is_capped_by_elpe() {
    let bench = Bench::new(SimConfig::default());
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().error_log_entries, ERROR_LOG_ENTRIES as usize);
    let mut entries = vec![nvme::ErrorLogEntry::default(); 200];
    assert_eq!(
        ctrl.error_log(&mut entries).unwrap(),
        ERROR_LOG_ENTRIES as usize
    );
}

#[test]
fn quirk_table_is_keyed_by_pci_ids() {
    let bench = Bench::new(SimConfig::default());
    let ctrl = bench
        .controller(nvme::Config {
            pci_vendor: 0x144d,
            pci_device: 0xa821,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().quirks.delay_before_ready_check_us, 2_300_000);
    let bench = Bench::new(SimConfig::default());
    let ctrl = bench
        .controller(nvme::Config {
            pci_vendor: 0x1b36,
            pci_device: 0x0010,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().quirks, Quirks::NONE);
}

#[test]
fn errors_display_and_classify() {
    use nvme::ErrorKind;
    assert_eq!(Error::QueueFull.kind(), ErrorKind::Busy);
    assert_eq!(Error::NeverReady.kind(), ErrorKind::Fatal);
    assert_eq!(Error::Dma.kind(), ErrorKind::Resource);
    assert_eq!(
        Error::Timeout {
            stage: Stage::Disable
        }
        .to_string(),
        "timeout: Disable"
    );
    let s = nvme::Status::new(1, 0x02);
    assert_eq!(
        Error::Device(s).to_string(),
        "device status: Invalid Queue Size (SCT 0x1, SC 0x02)"
    );
}
