//! BAR decoding: every kind with exact sizes, sizing with decoding off and restoring, and
//! malformed BARs recorded as problems without panicking.

mod common;

use common::{COMMAND_IO, COMMAND_MEMORY, FakeConfigSpace, FakeFunction};
use pci::{BarDefect, BarKind, BusRange, DecodedBar, Function, PciAddress, Problem, enumerate};

fn at() -> PciAddress {
    PciAddress::new(0, 0, 3, 0)
}

fn bar(index: u8, kind: BarKind, address: u64, size: u64, prefetchable: bool) -> DecodedBar {
    DecodedBar {
        index,
        kind,
        address,
        size,
        prefetchable,
    }
}

fn device() -> FakeFunction {
    FakeFunction::endpoint(0x1af4, 0x1042, [0x01, 0x00, 0x00], 1)
}

fn only_function(space: &FakeConfigSpace) -> (Function, Vec<Problem>) {
    let mut found = enumerate(space, &[BusRange::LEGACY]);
    assert_eq!(found.functions.len(), 1, "{:?}", found.functions);
    (found.functions.remove(0), found.problems)
}

#[test]
fn every_bar_kind_decodes_with_its_exact_size() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        device()
            .io16(0, 0xe000, 32)
            .mem32(1, 0xe000_0000, 256 << 20, true)
            .mem64(2, 0x2_0000_0000, 8 << 30, false)
            .mem32(4, 0xfebd_0000, 64 << 10, false)
            .command(0x0003),
    );
    let (function, problems) = only_function(&space);
    assert_eq!(problems, []);
    assert_eq!(
        function.bars,
        [
            bar(0, BarKind::Io, 0xe000, 32, false),
            bar(1, BarKind::Memory32, 0xe000_0000, 256 << 20, true),
            bar(2, BarKind::Memory64, 0x2_0000_0000, 8 << 30, false),
            bar(4, BarKind::Memory32, 0xfebd_0000, 64 << 10, false),
        ]
    );
    assert_eq!(function.bar(2).unwrap().end(), Some(0x4_0000_0000));
    assert!(function.bar(2).unwrap().is_memory());
    assert!(!function.bar(0).unwrap().is_memory());
    assert_eq!(
        function.bar(3),
        None,
        "the upper half of a 64-bit BAR is not a BAR"
    );
    assert_eq!(function.bar(5), None, "unimplemented");
    let text = function.to_string();
    assert!(
        text.contains("\n    BAR0: I/O ports at e000 [size=32]"),
        "{text}"
    );
    assert!(text.contains("\n    BAR1: Memory at e0000000 (32-bit, prefetchable) [size=256M]"));
    assert!(text.contains("\n    BAR2: Memory at 200000000 (64-bit, non-prefetchable) [size=8G]"));
    assert!(text.contains("\n    BAR4: Memory at febd0000 (32-bit, non-prefetchable) [size=64K]"));
}

#[test]
fn io_bar_of_a_32_bit_decoder_and_a_small_64_bit_bar() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        device().io(0, 0x1000, 256).mem64(4, 0xfe00_0000, 16, true),
    );
    let (function, problems) = only_function(&space);
    assert_eq!(problems, []);
    assert_eq!(
        function.bars,
        [
            bar(0, BarKind::Io, 0x1000, 256, false),
            bar(4, BarKind::Memory64, 0xfe00_0000, 16, true),
        ]
    );
}

#[test]
fn unassigned_memory_bar_is_listed_at_address_zero() {
    let space = FakeConfigSpace::new().with(0, 0, 3, 0, device().mem32(0, 0, 4096, false));
    let (function, problems) = only_function(&space);
    assert_eq!(problems, []);
    assert_eq!(function.bars, [bar(0, BarKind::Memory32, 0, 4096, false)]);
}

#[test]
fn sizing_happens_with_decoding_off_and_everything_is_restored() {
    for command in [0x0000, COMMAND_IO, COMMAND_MEMORY, 0x0107] {
        let space = FakeConfigSpace::new().with(
            0,
            0,
            3,
            0,
            device()
                .io(0, 0xc000, 64)
                .mem64(2, 0xfe00_0000, 16 << 10, false)
                .command(command)
                .status(0x0010 | 0x2000),
        );
        let before: Vec<_> = (0..64).map(|i| space.peek(at(), i * 4)).collect();
        only_function(&space);
        let after: Vec<_> = (0..64).map(|i| space.peek(at(), i * 4)).collect();
        assert_eq!(
            before, after,
            "command {command:#x}: registers not restored"
        );

        let writes = space.writes();
        let bar_writes: Vec<_> = writes
            .iter()
            .filter(|w| (0x10..0x28).contains(&w.offset))
            .collect();
        // Six slots, each probed with all-ones and restored.
        assert_eq!(bar_writes.len(), 12, "command {command:#x}");
        assert_eq!(bar_writes.iter().filter(|w| w.value == u32::MAX).count(), 6);
        for write in &bar_writes {
            assert_eq!(
                write.command_before & (COMMAND_IO | COMMAND_MEMORY),
                0,
                "BAR written with decoding on: {write:?}"
            );
        }
        let command_writes: Vec<_> = writes.iter().filter(|w| w.offset == 0x04).collect();
        if command & (COMMAND_IO | COMMAND_MEMORY) == 0 {
            assert_eq!(command_writes, Vec::<&common::Write>::new());
        } else {
            // Off, then back; never touching the status half (write-1-to-clear).
            let values: Vec<_> = command_writes.iter().map(|w| w.value).collect();
            let off = u32::from(command & !(COMMAND_IO | COMMAND_MEMORY));
            assert_eq!(values, [off, u32::from(command)]);
        }
        assert_eq!(space.command(at()), command);
        assert_eq!(
            space.status(at()) & 0x2000,
            0x2000,
            "status error bit was cleared"
        );
    }
}

#[test]
fn host_bridge_keeps_decoding_while_sized() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        0,
        0,
        FakeFunction::endpoint(0x8086, 0x29c0, [0x06, 0x00, 0x00], 0)
            .mem32(0, 0xe000_0000, 256 << 20, false)
            .command(0x0006),
    );
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(
        found.functions[0].bars,
        [bar(0, BarKind::Memory32, 0xe000_0000, 256 << 20, false)]
    );
    assert!(space.writes().iter().all(|w| w.offset != 0x04));
    assert_eq!(space.command(PciAddress::new(0, 0, 0, 0)), 0x0006);
}

#[test]
fn malformed_bars_are_problems_not_panics() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        device()
            // BAR0 reads zero: unimplemented, silently absent.
            .raw_bar(0, 0, 0)
            // BAR1: prefetchable flag, but no writable address bit.
            .raw_bar(1, 0x8, 0)
            // BAR2: holes in the size mask.
            .raw_bar(2, 0xf000_0000, 0xf0f0_0000)
            // BAR3: reserved memory type 0b11.
            .raw_bar(3, 0xfe00_0006, 0xffff_f000)
            // BAR4: I/O BAR claiming 128 KiB.
            .raw_bar(4, 0x0002_0001, 0xfffe_0000)
            // BAR5: 64-bit BAR in the last slot.
            .raw_bar(5, 0xfe00_0004, 0xffff_c000)
            .command(0x0003),
    );
    let (function, problems) = only_function(&space);
    assert_eq!(function.bars, []);
    let defects: Vec<_> = problems
        .iter()
        .map(|p| match *p {
            Problem::BarInvalid {
                address,
                index,
                defect,
                ..
            } => {
                assert_eq!(address, at());
                (index, defect)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        defects,
        [
            (1, BarDefect::ZeroSizeMask),
            (2, BarDefect::NonContiguousSizeMask),
            (3, BarDefect::ReservedType),
            (4, BarDefect::SizeExceedsAddressSpace),
            (5, BarDefect::Upper64BitHalfMissing),
        ]
    );
    assert_eq!(
        problems[1],
        Problem::BarInvalid {
            address: at(),
            index: 2,
            original: 0xf000_0000,
            probed: 0xf0f0_0000,
            defect: BarDefect::NonContiguousSizeMask
        }
    );
    // Registers and command restored even though every BAR was bad.
    assert_eq!(space.command(at()), 0x0003);
    assert_eq!(space.peek(at(), 0x18), 0xf000_0000);
}

#[test]
fn holes_stuck_bits_and_half_empty_64_bit_bars() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        device()
            // A writable bit below the size: holes in the mask.
            .raw_bar(0, 0xfe00_0000, 0xffff_c000 | 0x1000)
            // A read-only address bit stuck at one below the size: it shows in the probe too.
            .raw_bar(1, 0xfe00_1000, 0xffff_c000)
            // 64-bit BAR with no writable bit in either half.
            .raw_bar(2, 0x0000_0004, 0)
            .raw_bar(3, 0, 0)
            // A well-formed BAR after the bad ones is still decoded.
            .mem32(4, 0xfebf_0000, 4096, false),
    );
    let (function, problems) = only_function(&space);
    assert_eq!(
        function.bars,
        [bar(4, BarKind::Memory32, 0xfebf_0000, 4096, false)]
    );
    let defects: Vec<_> = problems
        .iter()
        .filter_map(|p| match *p {
            Problem::BarInvalid { index, defect, .. } => Some((index, defect)),
            _ => None,
        })
        .collect();
    assert_eq!(
        defects,
        [
            (0, BarDefect::NonContiguousSizeMask),
            (1, BarDefect::NonContiguousSizeMask),
            (2, BarDefect::ZeroSizeMask),
        ]
    );
}

#[test]
fn bridge_has_two_bar_slots_only() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        FakeFunction::bridge(0x1b36, 0x0001, 0, 1, 1)
            // A 64-bit BAR in slot 1 of a bridge has no slot for its upper half.
            .raw_bar(1, 0xfe00_0004, 0xffff_c000)
            .mem32(0, 0xfea0_0000, 4096, false),
    );
    let found = enumerate(
        &space,
        &[BusRange {
            segment: 0,
            start_bus: 0,
            end_bus: 1,
        }],
    );
    assert_eq!(
        found.functions[0].bars,
        [bar(0, BarKind::Memory32, 0xfea0_0000, 4096, false)]
    );
    assert!(matches!(
        found.problems[..],
        [Problem::BarInvalid {
            index: 1,
            defect: BarDefect::Upper64BitHalfMissing,
            ..
        }]
    ));
    // Bridges' bus-number register (0x18) must not be probed as a BAR.
    assert!(
        space
            .writes()
            .iter()
            .all(|w| w.offset < 0x18 || w.offset == 0x04)
    );
}
