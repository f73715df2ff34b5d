//! Per-device workarounds, keyed by PCI vendor and device ID.
//!
//! Controllers that misbehave in known ways get a [`Quirks`] value from a
//! static table; the kernel passes the PCI IDs in `Config`, and may add its
//! own quirks on top (`Config::extra_quirks`), e.g. from a command line.
//!
//! The table holds the publicly known quirks of real drives that matter to
//! this driver, with the IDs and quirk kinds Linux's NVMe PCI driver lists
//! (drivers/nvme/host/pci.c, `nvme_id_table`). None of them has been
//! verified on hardware by this project; in particular the 2.3 s delay for
//! the Samsung PM1725/PM1725a (144d:a821/a822) and the other adapters is
//! Linux's `NVME_QUIRK_DELAY_AMOUNT`, not a measured value. What each kind
//! does here:
//! - delay before the ready check: wait after every CC.EN change before
//!   CSTS is read (disable and enable at bring-up and after a reset);
//! - no Write Zeroes: the command is never sent, even if ONCS lists it;
//!   the block API answers `Unsupported` (Linux: these drives time out or
//!   corrupt data on it);
//! - no active namespace list: Identify CNS 02h is never sent; namespaces
//!   are found by Identify Namespace (CNS 00h) for 1..=NN instead (Linux
//!   `NVME_QUIRK_IDENTIFY_CNS`, also applied to NVMe 1.0 controllers);
//! - no deepest power state: the driver never asks for a power state
//!   itself, but firmware may have left Autonomous Power State Transitions
//!   on; for these drives bring-up removes every transition into the
//!   deepest state (NPSS) from the APST table, so the drive cannot drop
//!   into the state it does not come back from reliably.
//!
//! Linux quirk kinds left out, because the driver does not use the feature
//! they concern: stripe size, deallocate returns zeroes (the driver never
//! relies on it), bogus namespace identifiers, device SUBNQN, namespace
//! descriptor list, temperature thresholds, medium-priority queues
//! (weighted round robin), interrupt vectors, 48-bit DMA addresses (the
//! frame allocator hands out memory far below 2^48), and Apple's
//! 128-byte submission entries.

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
    /// Never ask for the Active Namespace ID list (Identify CNS 02h).
    pub no_active_namespace_list: bool,
    /// Keep Autonomous Power State Transitions out of the deepest power
    /// state.
    pub no_deepest_power_state: bool,
}

impl Quirks {
    /// No workarounds.
    pub const NONE: Quirks = Quirks {
        delay_before_ready_check_us: 0,
        no_write_zeroes: false,
        no_dataset_management: false,
        single_io_queue: false,
        no_active_namespace_list: false,
        no_deepest_power_state: false,
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
            no_active_namespace_list: self.no_active_namespace_list
                || other.no_active_namespace_list,
            no_deepest_power_state: self.no_deepest_power_state || other.no_deepest_power_state,
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
    /// The product, as the table's source names it.
    pub model: &'static str,
    /// What to do for this device.
    pub quirks: Quirks,
}

/// Linux's `NVME_QUIRK_DELAY_AMOUNT`: 2300 ms.
pub const READY_CHECK_DELAY_US: u32 = 2_300_000;

const DELAY: Quirks = Quirks {
    delay_before_ready_check_us: READY_CHECK_DELAY_US,
    ..Quirks::NONE
};
const NO_WRITE_ZEROES: Quirks = Quirks {
    no_write_zeroes: true,
    ..Quirks::NONE
};
const NO_NAMESPACE_LIST: Quirks = Quirks {
    no_active_namespace_list: true,
    ..Quirks::NONE
};
const NO_DEEPEST_PS: Quirks = Quirks {
    no_deepest_power_state: true,
    ..Quirks::NONE
};

const fn entry(vendor: u16, device: u16, model: &'static str, quirks: Quirks) -> QuirkEntry {
    QuirkEntry {
        vendor,
        device,
        model,
        quirks,
    }
}

/// The built-in table.
pub const TABLE: &[QuirkEntry] = &[
    entry(
        0x8086,
        0xf1a5,
        "Intel 600P/P3100",
        NO_DEEPEST_PS.union(NO_WRITE_ZEROES),
    ),
    entry(
        0x8086,
        0x5845,
        "QEMU NVMe (Intel ID, before QEMU 5.2)",
        NO_NAMESPACE_LIST.union(NO_WRITE_ZEROES),
    ),
    entry(0x1bb1, 0x0100, "Seagate Nytro Flash Storage", DELAY),
    entry(0x1c58, 0x0003, "HGST adapter", DELAY),
    entry(0x1c58, 0x0023, "WDC SN200 adapter", DELAY),
    entry(0x1c5f, 0x0540, "Memblaze Pblaze4 adapter", DELAY),
    entry(0x144d, 0xa821, "Samsung PM1725", DELAY),
    entry(
        0x144d,
        0xa822,
        "Samsung PM1725a",
        DELAY.union(NO_WRITE_ZEROES),
    ),
    entry(0x1987, 0x5019, "Phison E19", NO_WRITE_ZEROES),
    entry(0x1987, 0x5021, "Phison E21", NO_WRITE_ZEROES),
    entry(0x1cc1, 0x8201, "ADATA SX8200PNP 512GB", NO_DEEPEST_PS),
    entry(0x1c5c, 0x1504, "SK Hynix PC400", NO_WRITE_ZEROES),
    entry(0x1c5c, 0x1d59, "SK Hynix BC901", NO_WRITE_ZEROES),
    entry(0x15b7, 0x2001, "Sandisk Skyhawk", NO_WRITE_ZEROES),
    entry(0x1d97, 0x2263, "SPCC / Lexar NM610", NO_WRITE_ZEROES),
    entry(
        0x144d,
        0xa80b,
        "Samsung PM9B1 256G and 512G",
        NO_WRITE_ZEROES,
    ),
    entry(0x144d, 0xa809, "Samsung MZALQ256HBJD 256G", NO_WRITE_ZEROES),
    entry(0x1cc4, 0x6303, "UMIS RPJTJ512MGE1QDY 512G", NO_WRITE_ZEROES),
    entry(0x1cc4, 0x6302, "UMIS RPJTJ256MGE1QDY 256G", NO_WRITE_ZEROES),
    entry(0x2646, 0x2262, "Kingston SKC2000", NO_DEEPEST_PS),
    entry(0x2646, 0x2263, "Kingston A2000", NO_DEEPEST_PS),
    entry(0x2646, 0x5018, "Kingston OM8SFP4xxxxP", NO_WRITE_ZEROES),
    entry(0x2646, 0x5016, "Kingston OM3PGP4xxxxP", NO_WRITE_ZEROES),
    entry(0x2646, 0x501a, "Kingston OM8PGP4xxxxP", NO_WRITE_ZEROES),
    entry(0x2646, 0x501b, "Kingston OM8PGP4xxxxQ", NO_WRITE_ZEROES),
    entry(0x2646, 0x501e, "Kingston OM3PGP4xxxxQ", NO_WRITE_ZEROES),
    entry(0x1e49, 0x0021, "ZHITAI TiPro5000", NO_DEEPEST_PS),
    entry(0x1e49, 0x0041, "ZHITAI TiPro7000", NO_DEEPEST_PS),
    entry(0x106b, 0x2005, "Apple (T2)", NO_NAMESPACE_LIST),
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
        let pm1725a = lookup(0x144d, 0xa822);
        assert!(pm1725a.no_write_zeroes && pm1725a.delay_before_ready_check_us > 0);
        assert!(lookup(0x8086, 0x5845).no_active_namespace_list);
        assert!(lookup(0x2646, 0x2263).no_deepest_power_state);
        let u = Quirks {
            no_dataset_management: true,
            ..Quirks::NONE
        }
        .union(DELAY);
        assert!(u.no_dataset_management && u.delay_before_ready_check_us > 0);
    }

    #[test]
    fn table_has_no_duplicates() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!((a.vendor, a.device) != (b.vendor, b.device), "{a:?}");
            }
        }
    }
}
