//! Per-device workarounds, keyed by PCI vendor and device ID.
//!
//! Controllers that misbehave in known ways get a [`Quirks`] value from a
//! small static table; the kernel passes the PCI IDs in `Config`, and may add
//! its own quirks on top (`Config::extra_quirks`), e.g. from a command line.
//!
//! Table entries and why:
//! - Samsung 144d:a821 / 144d:a822 (PM1725 family): reported (Linux
//!   `NVME_QUIRK_DELAY_BEFORE_CHK_RDY`) to need a pause after toggling CC.EN
//!   before CSTS is read; the driver waits 2.3 s, as Linux does.
//!
//! Entries should be added only with a reference to the behaviour seen.

#![forbid(unsafe_code)]

/// Workarounds to apply to one controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Quirks {
    /// Wait this long (microseconds) after writing CC.EN before the first
    /// CSTS.RDY check.
    pub delay_before_ready_check_us: u32,
    /// Never issue Write Zeroes even if ONCS advertises it.
    pub no_write_zeroes: bool,
    /// Never issue Dataset Management (discard) even if ONCS advertises it.
    pub no_dataset_management: bool,
    /// Use a single I/O queue pair whatever the controller grants.
    pub single_io_queue: bool,
}

impl Quirks {
    /// No workarounds.
    pub const NONE: Quirks = Quirks {
        delay_before_ready_check_us: 0,
        no_write_zeroes: false,
        no_dataset_management: false,
        single_io_queue: false,
    };

    /// Both sets of workarounds (the larger delay, any flag set in either).
    pub const fn union(self, other: Quirks) -> Quirks {
        Quirks {
            delay_before_ready_check_us: if self.delay_before_ready_check_us
                > other.delay_before_ready_check_us
            {
                self.delay_before_ready_check_us
            } else {
                other.delay_before_ready_check_us
            },
            no_write_zeroes: self.no_write_zeroes || other.no_write_zeroes,
            no_dataset_management: self.no_dataset_management || other.no_dataset_management,
            single_io_queue: self.single_io_queue || other.single_io_queue,
        }
    }
}

/// One entry of the quirk table.
#[derive(Clone, Copy, Debug)]
pub struct QuirkEntry {
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
    /// What to do for this device.
    pub quirks: Quirks,
}

const SAMSUNG_DELAY: Quirks = Quirks {
    delay_before_ready_check_us: 2_300_000,
    ..Quirks::NONE
};

/// The built-in table.
pub const TABLE: &[QuirkEntry] = &[
    QuirkEntry {
        vendor: 0x144d,
        device: 0xa821,
        quirks: SAMSUNG_DELAY,
    },
    QuirkEntry {
        vendor: 0x144d,
        device: 0xa822,
        quirks: SAMSUNG_DELAY,
    },
];

/// Quirks for a PCI vendor/device pair (none if not in the table).
pub fn lookup(vendor: u16, device: u16) -> Quirks {
    TABLE
        .iter()
        .filter(|e| e.vendor == vendor && e.device == device)
        .fold(Quirks::NONE, |acc, e| acc.union(e.quirks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookup() {
        assert_eq!(lookup(0x1b36, 0x0010), Quirks::NONE);
        assert_eq!(
            lookup(0x144d, 0xa821).delay_before_ready_check_us,
            2_300_000
        );
        let u = Quirks {
            no_dataset_management: true,
            ..Quirks::NONE
        }
        .union(SAMSUNG_DELAY);
        assert!(u.no_dataset_management && u.delay_before_ready_check_us > 0);
    }
}
