//! SMART / Health and Error Information log pages, parsed from whatever
//! bytes the device wrote, and their status values rendered as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme::log_page::{ERROR_LOG_ENTRY_BYTES, ErrorLogEntry, SmartLog};

fuzz_target!(|data: &[u8]| {
    let smart = SmartLog::parse(data);
    let celsius = smart.composite_temperature_celsius();
    assert!((-273..=65535 - 273).contains(&celsius));
    let _ = smart.critical_warning.any();

    for chunk in data.chunks(ERROR_LOG_ENTRY_BYTES) {
        let entry = ErrorLogEntry::parse(chunk);
        let _ = entry.is_valid();
        let text = nvme::Error::Device(entry.status).to_string();
        assert!(!text.is_empty());
        let _ = entry.status.code_type();
        assert_eq!(
            nvme::Status::from_field(entry.status.to_field()),
            entry.status,
            "status field does not round-trip"
        );
    }
});
