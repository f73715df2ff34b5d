//! Identify Controller, Identify Namespace and the Active Namespace ID list,
//! parsed from whatever bytes the device wrote.
//!
//! The same input is read as all three structures (each is one 4096-byte
//! page); short inputs stand for a page whose tail is missing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme::identify::{IdentifyController, IdentifyNamespace, active_namespaces};

fuzz_target!(|data: &[u8]| {
    let controller = IdentifyController::parse(data);
    for shift in 0..16 {
        if let Some(bytes) = controller.max_transfer_bytes(4096 << shift) {
            assert!(bytes >= 4096 << shift, "MDTS below one page");
        }
    }
    let _ = controller.entry_sizes_supported();
    let _ = controller.volatile_write_cache_present();
    assert!(controller.serial.as_str().len() <= 20);
    assert!(controller.model.as_str().len() <= 40);
    assert!(controller.firmware.as_str().len() <= 8);

    let namespace = IdentifyNamespace::parse(data);
    if let Some(format) = namespace.current_format()
        && let Some(size) = format.data_size()
    {
        assert!(size.is_power_of_two() && size >= 512);
    }
    let _ = namespace.is_active();

    let ids: Vec<u32> = active_namespaces(data).collect();
    assert!(ids.len() <= 1024);
    assert!(ids.iter().all(|&id| id != 0));
});
