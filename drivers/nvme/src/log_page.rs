//! SMART / Health Information and Error Information log pages.
//!
//! NVMe 1.4 §5.14.1.2 (SMART / Health, log identifier 02h, 512 bytes,
//! Figure 196) and §5.14.1.1 (Error Information, log identifier 01h, 64-byte
//! entries, Figure 195). 128-bit counters are kept as `u128`. Parsers take
//! plain bytes and never panic on short input (missing bytes read as zero).

#![forbid(unsafe_code)]

use crate::registers::Field;

/// Bytes in the SMART / Health Information log page.
pub const SMART_LOG_BYTES: usize = 512;
/// Bytes in one Error Information log entry.
pub const ERROR_LOG_ENTRY_BYTES: usize = 64;

/// Kelvin at 0 degrees Celsius, as the temperature fields round it.
const KELVIN_AT_ZERO_CELSIUS: i32 = 273;
/// The Status Field in an error entry's bytes 13:12 (bit 0 is the phase
/// tag).
const ERROR_STATUS: Field = Field::new(1, 15);

fn le(buf: &[u8], at: usize, n: usize) -> u128 {
    let mut v = 0u128;
    for i in (0..n).rev() {
        v = (v << 8) | u128::from(buf.get(at + i).copied().unwrap_or(0));
    }
    v
}

/// Critical Warning flags (SMART byte 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CriticalWarning(pub u8);

impl CriticalWarning {
    /// Available spare capacity fell below the threshold (bit 0).
    pub const fn available_spare_low(self) -> bool {
        self.0 & 1 != 0
    }
    /// Temperature above an over-temperature or below an under-temperature
    /// threshold (bit 1).
    pub const fn temperature(self) -> bool {
        self.0 & (1 << 1) != 0
    }
    /// NVM subsystem reliability degraded (bit 2).
    pub const fn reliability_degraded(self) -> bool {
        self.0 & (1 << 2) != 0
    }
    /// Media placed in read-only mode (bit 3).
    pub const fn read_only(self) -> bool {
        self.0 & (1 << 3) != 0
    }
    /// Volatile memory backup device failed (bit 4).
    pub const fn volatile_backup_failed(self) -> bool {
        self.0 & (1 << 4) != 0
    }
    /// Persistent Memory Region became read-only (bit 5).
    pub const fn persistent_memory_read_only(self) -> bool {
        self.0 & (1 << 5) != 0
    }
    /// Whether any warning is set.
    pub const fn any(self) -> bool {
        self.0 != 0
    }
}

/// SMART / Health Information (§5.14.1.2, Figure 196).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmartLog {
    /// Critical Warning (byte 0).
    pub critical_warning: CriticalWarning,
    /// Composite Temperature in kelvin (bytes 2:1).
    pub composite_temperature_kelvin: u16,
    /// Available Spare, percent (byte 3).
    pub available_spare: u8,
    /// Available Spare Threshold, percent (byte 4).
    pub available_spare_threshold: u8,
    /// Percentage Used (byte 5), may exceed 100.
    pub percentage_used: u8,
    /// Data Units Read, thousands of 512-byte units (bytes 47:32).
    pub data_units_read: u128,
    /// Data Units Written (bytes 63:48).
    pub data_units_written: u128,
    /// Host Read Commands (bytes 79:64).
    pub host_read_commands: u128,
    /// Host Write Commands (bytes 95:80).
    pub host_write_commands: u128,
    /// Controller Busy Time, minutes (bytes 111:96).
    pub controller_busy_time: u128,
    /// Power Cycles (bytes 127:112).
    pub power_cycles: u128,
    /// Power On Hours (bytes 143:128).
    pub power_on_hours: u128,
    /// Unsafe Shutdowns (bytes 159:144).
    pub unsafe_shutdowns: u128,
    /// Media and Data Integrity Errors (bytes 175:160).
    pub media_errors: u128,
    /// Number of Error Information Log Entries (bytes 191:176).
    pub error_log_entries: u128,
}

impl SmartLog {
    /// Parses the 512-byte page.
    pub fn parse(buf: &[u8]) -> SmartLog {
        SmartLog {
            critical_warning: CriticalWarning(le(buf, 0, 1) as u8),
            composite_temperature_kelvin: le(buf, 1, 2) as u16,
            available_spare: le(buf, 3, 1) as u8,
            available_spare_threshold: le(buf, 4, 1) as u8,
            percentage_used: le(buf, 5, 1) as u8,
            data_units_read: le(buf, 32, 16),
            data_units_written: le(buf, 48, 16),
            host_read_commands: le(buf, 64, 16),
            host_write_commands: le(buf, 80, 16),
            controller_busy_time: le(buf, 96, 16),
            power_cycles: le(buf, 112, 16),
            power_on_hours: le(buf, 128, 16),
            unsafe_shutdowns: le(buf, 144, 16),
            media_errors: le(buf, 160, 16),
            error_log_entries: le(buf, 176, 16),
        }
    }

    /// Composite temperature in degrees Celsius.
    pub fn composite_temperature_celsius(&self) -> i32 {
        i32::from(self.composite_temperature_kelvin) - KELVIN_AT_ZERO_CELSIUS
    }
}

/// One Error Information log entry (§5.14.1.1, Figure 195).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ErrorLogEntry {
    /// Error Count (bytes 7:0); 0 = entry unused.
    pub error_count: u64,
    /// Submission Queue ID (bytes 9:8).
    pub sqid: u16,
    /// Command ID (bytes 11:10).
    pub cid: u16,
    /// Status Field (bytes 13:12, bits 15:1; bit 0 is the phase tag).
    pub status: crate::command::Status,
    /// Parameter Error Location (bytes 15:14).
    pub parameter_error_location: u16,
    /// LBA (bytes 23:16).
    pub lba: u64,
    /// Namespace (bytes 27:24).
    pub nsid: u32,
    /// Vendor Specific Information Available (byte 28).
    pub vendor_specific: u8,
    /// Command Specific Information (bytes 39:32).
    pub command_specific: u64,
}

impl ErrorLogEntry {
    /// Parses one 64-byte entry.
    pub fn parse(buf: &[u8]) -> ErrorLogEntry {
        ErrorLogEntry {
            error_count: le(buf, 0, 8) as u64,
            sqid: le(buf, 8, 2) as u16,
            cid: le(buf, 10, 2) as u16,
            status: crate::command::Status::from_field(
                ERROR_STATUS.get(le(buf, 12, 2) as u64) as u16
            ),
            parameter_error_location: le(buf, 14, 2) as u16,
            lba: le(buf, 16, 8) as u64,
            nsid: le(buf, 24, 4) as u32,
            vendor_specific: le(buf, 28, 1) as u8,
            command_specific: le(buf, 32, 8) as u64,
        }
    }

    /// Whether the entry holds an error (non-zero error count).
    pub const fn is_valid(&self) -> bool {
        self.error_count != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_fields() {
        let mut b = [0u8; 512];
        b[0] = 0b1010;
        b[1..3].copy_from_slice(&310u16.to_le_bytes());
        b[5] = 7;
        b[112] = 9;
        b[128..130].copy_from_slice(&1234u16.to_le_bytes());
        b[144] = 2;
        b[160] = 1;
        let s = SmartLog::parse(&b);
        assert!(s.critical_warning.temperature() && s.critical_warning.read_only());
        assert!(!s.critical_warning.available_spare_low());
        assert_eq!(s.composite_temperature_celsius(), 37);
        assert_eq!(s.percentage_used, 7);
        assert_eq!(
            (
                s.power_cycles,
                s.power_on_hours,
                s.unsafe_shutdowns,
                s.media_errors
            ),
            (9, 1234, 2, 1)
        );
    }

    #[test]
    fn error_entry() {
        let mut b = [0u8; 64];
        b[0] = 3;
        b[8] = 1;
        b[10] = 0x22;
        b[12..14].copy_from_slice(&(((2u16 << 8) | 0x81) << 1).to_le_bytes());
        b[16] = 0x40;
        b[24] = 1;
        let e = ErrorLogEntry::parse(&b);
        assert!(e.is_valid());
        assert_eq!((e.sqid, e.cid, e.lba, e.nsid), (1, 0x22, 0x40, 1));
        assert_eq!(e.status.name(), "Unrecovered Read Error");
    }
}
