//! MCFG entries and ECAM addresses: an entry's base is bus 0's, even when it starts at bus 0x40,
//! and every segment of the MCFG is enumerated.

mod common;

use std::cell::RefCell;

use common::{FakeConfigSpace, FakeFunction};
use pci::{
    BUS_WINDOW_SIZE, BusRange, ConfigurationAccess, EcamDefect, EcamEntry, Error, PciAddress,
    enumerate,
};

#[test]
fn entry_with_start_bus_0x40_addresses_from_the_base_of_bus_0() {
    let base = 0xe000_0000;
    let entry = EcamEntry::new(0, 0x40, 0x7f, base).unwrap();
    assert_eq!(
        entry.range(),
        BusRange {
            segment: 0,
            start_bus: 0x40,
            end_bus: 0x7f
        }
    );
    // What the kernel maps: from bus 0x40's window, 64 buses of 1 MiB.
    assert_eq!(entry.window_start(), base + (0x40 << 20));
    assert_eq!(entry.window_start(), 0xe400_0000);
    assert_eq!(entry.window_len(), 64 * BUS_WINDOW_SIZE);

    let at = PciAddress::new(0, 0x41, 2, 3);
    assert_eq!(
        entry.physical_address(at, 0x10),
        Some(base + (0x41 << 20) + (2 << 15) + (3 << 12) + 0x10)
    );
    assert_eq!(
        entry.offset_in_window(at, 0x10),
        Some((1 << 20) + (2 << 15) + (3 << 12) + 0x10)
    );
    // First and last dword of the entry.
    assert_eq!(
        entry.offset_in_window(PciAddress::new(0, 0x40, 0, 0), 0),
        Some(0)
    );
    assert_eq!(
        entry.offset_in_window(PciAddress::new(0, 0x7f, 31, 7), 0xffc),
        Some(entry.window_len() - 4)
    );
    // Outside the entry or not a dword offset.
    assert_eq!(
        entry.physical_address(PciAddress::new(0, 0x3f, 0, 0), 0),
        None
    );
    assert_eq!(
        entry.physical_address(PciAddress::new(0, 0x80, 0, 0), 0),
        None
    );
    assert_eq!(
        entry.physical_address(PciAddress::new(1, 0x41, 0, 0), 0),
        None
    );
    assert_eq!(entry.physical_address(at, 0x1000), None);
    assert_eq!(entry.physical_address(at, 0x12), None);
}

#[test]
fn entry_starting_at_bus_0_maps_from_its_base() {
    let entry = EcamEntry::new(0, 0, 0xff, 0xb000_0000).unwrap();
    assert_eq!(entry.window_start(), 0xb000_0000);
    assert_eq!(entry.window_len(), 256 << 20);
    assert_eq!(
        entry.physical_address(PciAddress::new(0, 1, 0, 0), 0x04),
        Some(0xb010_0004)
    );
}

#[test]
fn unusable_entries_are_errors() {
    let invalid = |start_bus, end_bus, base, defect| {
        Err(Error::EcamEntryInvalid {
            segment: 2,
            start_bus,
            end_bus,
            base,
            defect,
        })
    };
    assert_eq!(
        EcamEntry::new(2, 0x10, 0x0f, 0xe000_0000),
        invalid(0x10, 0x0f, 0xe000_0000, EcamDefect::BusRangeReversed)
    );
    assert_eq!(
        EcamEntry::new(2, 0, 0xff, 0xe000_8000),
        invalid(0, 0xff, 0xe000_8000, EcamDefect::BaseMisaligned)
    );
    let top = !(BUS_WINDOW_SIZE - 1);
    assert_eq!(
        EcamEntry::new(2, 0, 1, top),
        invalid(0, 1, top, EcamDefect::PastAddressSpace)
    );
    assert_eq!(
        EcamEntry::new(2, 0x10, 0x0f, 0xe000_0000)
            .unwrap_err()
            .to_string(),
        "MCFG entry for segment 0002 buses 10-0f at 0xe0000000 not used: start bus above end bus"
    );
}

/// Configuration space behind ECAM memory: every access goes through the MCFG entries to a
/// physical address, and the memory decodes that address as the hardware does (bus 0 of each
/// segment at that segment's real base). An entry with the wrong arithmetic reads the wrong
/// function, or nothing.
struct EcamMemory {
    entries: Vec<EcamEntry>,
    /// (segment, the physical address of its bus 0).
    segments: Vec<(u16, u64)>,
    functions: FakeConfigSpace,
    physical_reads: RefCell<Vec<u64>>,
}

impl EcamMemory {
    /// The function and offset the hardware decodes at `physical`.
    fn decode(&self, physical: u64) -> Option<(PciAddress, u16)> {
        let (segment, offset) = self.segments.iter().find_map(|&(segment, base)| {
            let offset = physical.checked_sub(base)?;
            (offset < 256 * BUS_WINDOW_SIZE).then_some((segment, offset))
        })?;
        let address = PciAddress::new(
            segment,
            (offset >> 20) as u8,
            (offset >> 15 & 0x1f) as u8,
            (offset >> 12 & 0x7) as u8,
        );
        Some((address, (offset & 0xfff) as u16))
    }

    fn physical(&self, address: PciAddress, offset: u16) -> Option<u64> {
        self.entries
            .iter()
            .find_map(|entry| entry.physical_address(address, offset))
    }
}

impl ConfigurationAccess for EcamMemory {
    fn read(&self, address: PciAddress, offset: u16) -> u32 {
        let Some(physical) = self.physical(address, offset) else {
            return u32::MAX;
        };
        self.physical_reads.borrow_mut().push(physical);
        match self.decode(physical) {
            Some((at, offset)) => self.functions.read(at, offset),
            None => u32::MAX,
        }
    }

    fn write(&self, address: PciAddress, offset: u16, value: u32) {
        if let Some((at, offset)) = self.physical(address, offset).and_then(|p| self.decode(p)) {
            self.functions.write(at, offset, value)
        }
    }
}

fn nvme(bar0: u64) -> FakeFunction {
    FakeFunction::endpoint(0x1b36, 0x0010, [0x01, 0x08, 0x02], 2).mem64(0, bar0, 16 * 1024, false)
}

/// Two segments: 0 with buses 0x00-0x3f at 0xe000_0000, and 1 whose entry starts at bus 0x40
/// with bus 0 of the segment at 0x3_0000_0000 (so bus 0x40 is at 0x3_0400_0000).
fn two_segments(segment_1_base: u64) -> EcamMemory {
    let functions = FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x29c0, [0x06, 0x00, 0x00], 0),
        )
        .with(0, 0, 4, 0, nvme(0xfe00_0000))
        .with(
            1,
            0x40,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x09a2, [0x06, 0x00, 0x00], 0),
        )
        .with(
            1,
            0x40,
            1,
            0,
            FakeFunction::bridge(0x8086, 0x347a, 0x40, 0x41, 0x41),
        )
        .with(1, 0x41, 0, 0, nvme(0x38_0000_0000));
    EcamMemory {
        entries: vec![
            EcamEntry::new(0, 0x00, 0x3f, 0xe000_0000).unwrap(),
            EcamEntry::new(1, 0x40, 0x7f, segment_1_base).unwrap(),
        ],
        segments: vec![(0, 0xe000_0000), (1, 0x3_0000_0000)],
        functions,
        physical_reads: RefCell::new(Vec::new()),
    }
}

#[test]
fn every_segment_is_enumerated_through_ecam_including_a_start_bus_of_0x40() {
    let memory = two_segments(0x3_0000_0000);
    let ranges: Vec<BusRange> = memory.entries.iter().map(EcamEntry::range).collect();
    let enumeration = enumerate(&memory, &ranges);
    let found: Vec<String> = enumeration
        .functions
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    assert_eq!(
        found,
        [
            "0000:00:00.0",
            "0000:00:04.0",
            "0001:40:00.0",
            "0001:40:01.0",
            "0001:41:00.0"
        ]
    );
    let behind = enumeration
        .function(PciAddress::new(1, 0x41, 0, 0))
        .unwrap();
    assert_eq!(behind.upstream, Some(PciAddress::new(1, 0x40, 1, 0)));
    assert_eq!(enumeration.nvme_controllers().count(), 2);
    // Segment 1's first read is bus 0x40's vendor ID, at base + (0x40 << 20).
    let reads = memory.physical_reads.borrow();
    let first_in_segment_1 = reads.iter().find(|&&p| p >= 0x3_0000_0000).unwrap();
    assert_eq!(*first_in_segment_1, 0x3_0000_0000 + (0x40 << 20));
}

#[test]
fn taking_the_base_as_the_start_bus_address_finds_nothing_there() {
    // The mistake the module notes describe: treating 0x3_0400_0000 (bus 0x40's window) as
    // the MCFG base puts bus 0x40 at bus 0x80's window, where nothing answers.
    let memory = two_segments(0x3_0400_0000);
    let ranges: Vec<BusRange> = memory.entries.iter().map(EcamEntry::range).collect();
    let enumeration = enumerate(&memory, &ranges);
    assert!(
        enumeration
            .functions
            .iter()
            .all(|f| f.address.segment() == 0)
    );
}
