//! Controller bring-up and the log pages, against a simulated controller
//! whose Identify structures and log pages come from the fuzzer.
//!
//! Input layout (each part zero-padded when the input is short):
//! bytes 0..4096 Identify Controller, 4096..8192 Identify Namespace (given
//! for every NSID), 8192..12288 the Active Namespace ID list (returned for
//! every starting NSID), 12288..12800 the SMART / Health page, then Error
//! Information entries of 64 bytes. ELPE (byte 262) is capped at the simulated log's
//! size, which the simulator enforces. No I/O is done: the simulated disks
//! keep their own geometry, which fuzzed Identify data would contradict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme::ErrorLogEntry;
use nvme_sim::{Bench, ERROR_LOG_ENTRIES, SimConfig, test_config};

fn part(data: &[u8], start: usize, len: usize) -> Vec<u8> {
    let mut page = vec![0u8; len];
    if let Some(src) = data.get(start..) {
        let n = src.len().min(len);
        page[..n].copy_from_slice(&src[..n]);
    }
    page
}

fuzz_target!(|data: &[u8]| {
    let mut controller_page = part(data, 0, 4096);
    controller_page[262] = controller_page[262].min(ERROR_LOG_ENTRIES - 1);
    let namespace_page = part(data, 4096, 4096);
    let list = part(data, 8192, 4096);
    let smart = part(data, 12288, 512);
    let errors: Vec<[u8; 64]> = data
        .get(12800..)
        .unwrap_or(&[])
        .as_chunks::<64>()
        .0
        .to_vec();

    let bench = Bench::new(SimConfig::default());
    bench.sim.set_identify_page(1, &controller_page);
    bench.sim.set_identify_page(0, &namespace_page);
    bench.sim.set_identify_page(2, &list);
    bench.sim.set_smart_page(&smart);
    bench.sim.set_error_entries(&errors);

    let Ok(mut ctrl) = bench.controller(test_config()) else {
        return;
    };
    let info = *ctrl.info();
    assert!(info.error_log_entries <= usize::from(controller_page[262]) + 1);
    assert!(info.max_transfer_bytes >= info.page_size || info.max_transfer_bytes == 0);
    let _ = (
        info.model.as_str(),
        info.serial.as_str(),
        info.firmware.as_str(),
    );
    let namespaces = ctrl.namespaces().to_vec();
    for ns in &namespaces {
        assert_ne!(ns.nsid, 0, "namespace ID 0 accepted");
        if ns.usable().is_ok() {
            assert!(ns.block_size.is_power_of_two() && ns.block_size >= 512);
        }
        if let Ok(dev) = ctrl.namespace(ns.nsid) {
            assert_eq!(dev.block_size(), ns.block_size);
            assert_eq!(dev.block_count(), ns.block_count);
        }
    }
    if let Ok(log) = ctrl.smart_log() {
        let _ = log.composite_temperature_celsius();
    }
    let mut entries = [ErrorLogEntry::default(); 16];
    if let Ok(n) = ctrl.error_log(&mut entries) {
        assert!(n <= info.error_log_entries.min(entries.len()));
    }
    let _ = ctrl.shutdown();
});
