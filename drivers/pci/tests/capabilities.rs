//! Capability list walks, including broken lists that must terminate, and `enable_for_dma`.

mod common;

use common::{
    COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE, COMMAND_IO, COMMAND_MEMORY, FakeConfigSpace,
    FakeFunction, STATUS_CAPABILITIES,
};
use pci::{
    BusRange, CapabilityDefect, CapabilityKind, Error, Function, PciAddress, Problem,
    enable_for_dma, enumerate,
};

fn at() -> PciAddress {
    PciAddress::new(0, 0, 3, 0)
}

fn device() -> FakeFunction {
    FakeFunction::endpoint(0x1af4, 0x1042, [0x01, 0x08, 0x02], 1)
}

fn walk(f: FakeFunction) -> (Function, Vec<Problem>) {
    let space = FakeConfigSpace::new().with(0, 0, 3, 0, f);
    let mut found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(found.functions.len(), 1);
    (found.functions.remove(0), found.problems)
}

fn offsets(function: &Function) -> Vec<(u8, u8)> {
    function
        .capabilities
        .iter()
        .map(|c| (c.id, c.offset))
        .collect()
}

fn broken(offset: u8, defect: CapabilityDefect) -> Problem {
    Problem::CapabilityListBroken {
        address: at(),
        offset,
        defect,
    }
}

#[test]
fn decodes_msi_vendor_and_other_capabilities() {
    let (function, problems) = walk(
        device()
            // MSI: 64-bit, per-vector masking, multiple message capable = 2 (4 vectors).
            .capability(0x05, (1 << 7) | (1 << 8) | (2 << 1), &[0; 5])
            .capability(0x09, 0x0010, &[0; 3])
            .capability(0x00, 0, &[])
            .capability(0x12, 0, &[]),
    );
    assert_eq!(problems, []);
    assert_eq!(
        offsets(&function),
        [(0x05, 0x40), (0x09, 0x60), (0x12, 0x80)]
    );
    assert_eq!(
        function.capabilities[0].kind,
        CapabilityKind::Msi {
            address_64bit: true,
            per_vector_masking: true,
            vectors: 4
        }
    );
    assert_eq!(
        function.capabilities[1].kind,
        CapabilityKind::VendorSpecific { length: 0x10 }
    );
    assert_eq!(function.capabilities[2].kind, CapabilityKind::Other);
    assert_eq!(function.capability(0x09).map(|c| c.offset), Some(0x60));
    assert!(
        function
            .to_string()
            .ends_with("\n    Capabilities: MSI(4 vectors, 64-bit) Vendor Cap[12]"),
        "{function}"
    );
}

#[test]
fn no_list_without_the_status_bit() {
    // Pointer set but status bit 4 clear: the pointer is not meaningful.
    let (function, problems) = walk(device().raw(0x34, 0x40).raw(0x40, 0x0000_0011));
    assert_eq!(problems, []);
    assert_eq!(function.capabilities, []);
}

#[test]
fn loop_terminates_and_keeps_what_came_before() {
    // 0x40 -> 0x50 -> 0x40
    let (function, problems) = walk(
        device()
            .capability(0x01, 0x0003, &[0])
            .capability(0x05, 0, &[0, 0])
            .raw(0x50, 0x0000_4005),
    );
    assert_eq!(offsets(&function), [(0x01, 0x40), (0x05, 0x50)]);
    assert_eq!(problems, [broken(0x40, CapabilityDefect::Loop)]);
}

#[test]
fn self_loop_terminates() {
    let (function, problems) = walk(
        device()
            .with_capability_list()
            .raw(0x34, 0x80)
            .raw(0x80, 0x0000_8009),
    );
    assert_eq!(offsets(&function), [(0x09, 0x80)]);
    assert_eq!(problems, [broken(0x80, CapabilityDefect::Loop)]);
}

#[test]
fn pointer_into_the_header_stops_the_walk() {
    let (function, problems) = walk(device().capability(0x01, 0, &[0]).raw(0x40, 0x0000_1001));
    assert_eq!(offsets(&function), [(0x01, 0x40)]);
    assert_eq!(
        problems,
        [broken(0x10, CapabilityDefect::PointerIntoHeader)]
    );

    let (function, problems) = walk(device().with_capability_list().raw(0x34, 0x08));
    assert_eq!(function.capabilities, []);
    assert_eq!(
        problems,
        [broken(0x08, CapabilityDefect::PointerIntoHeader)]
    );
}

#[test]
fn reserved_pointer_bits_are_masked() {
    // Pointers 0x43 and 0x53: the low two bits are reserved.
    let (function, problems) = walk(
        device()
            .with_capability_list()
            .raw(0x34, 0x43)
            .raw(0x40, 0x0000_5301)
            .raw(0x50, 0x0000_0010),
    );
    assert_eq!(problems, []);
    assert_eq!(offsets(&function), [(0x01, 0x40), (0x10, 0x50)]);
}

#[test]
fn long_chain_through_every_slot_terminates() {
    // 48 capabilities, one per dword from 0x40 to 0xfc, the last pointing back to 0x40.
    let mut f = device().with_capability_list().raw(0x34, 0x40);
    for offset in (0x40u32..=0xfc).step_by(4) {
        let next = if offset == 0xfc { 0x40 } else { offset + 4 };
        f = f.raw(offset as u8, next << 8 | 0x09);
    }
    let (function, problems) = walk(f);
    assert_eq!(function.capabilities.len(), 48);
    assert_eq!(problems, [broken(0x40, CapabilityDefect::Loop)]);
}

#[test]
fn msix_past_the_end_of_config_space_is_truncated() {
    let (function, problems) = walk(
        device()
            .with_capability_list()
            .raw(0x34, 0x40)
            .raw(0x40, 0x0000_f801)
            .raw(0xf8, 0x0040_0011),
    );
    assert_eq!(offsets(&function), [(0x01, 0x40)]);
    assert_eq!(problems, [broken(0xf8, CapabilityDefect::Truncated)]);
}

#[test]
fn all_ones_capability_ends_the_walk_quietly() {
    let (function, problems) = walk(
        device()
            .with_capability_list()
            .raw(0x34, 0x40)
            .raw(0x40, 0x0000_5001)
            .raw(0x50, u32::MAX),
    );
    assert_eq!(offsets(&function), [(0x01, 0x40)]);
    assert_eq!(problems, []);
}

#[test]
fn enable_for_dma_sets_exactly_memory_bus_master_and_intx_disable() {
    for (before, after) in [
        (
            0x0000,
            COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE,
        ),
        (
            COMMAND_IO,
            COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE,
        ),
        (
            0x0140 | COMMAND_MEMORY,
            0x0140 | COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE,
        ),
    ] {
        let status = STATUS_CAPABILITIES | 0x2000 | 0x0800;
        let space =
            FakeConfigSpace::new().with(0, 0, 3, 0, device().command(before).status(status));
        assert_eq!(enable_for_dma(&space, at()), Ok(()));
        assert_eq!(space.command(at()), after, "from {before:#06x}");
        assert_eq!(
            space.status(at()),
            status,
            "write-1-to-clear status bits were cleared"
        );
        let command_writes: Vec<_> = space
            .writes()
            .into_iter()
            .filter(|w| w.offset == 0x04)
            .map(|w| w.value)
            .collect();
        assert_eq!(command_writes, [u32::from(after)]);
    }
}

#[test]
fn enable_for_dma_on_absent_function_fails() {
    let space = FakeConfigSpace::new().with(0, 0, 4, 0, FakeFunction::all_ones());
    assert_eq!(
        enable_for_dma(&space, at()),
        Err(Error::FunctionAbsent { address: at() })
    );
    let vanished = PciAddress::new(0, 0, 4, 0);
    assert_eq!(
        enable_for_dma(&space, vanished),
        Err(Error::FunctionAbsent { address: vanished })
    );
    assert_eq!(space.writes(), []);
}

#[test]
fn enable_for_dma_reports_bits_that_do_not_stick() {
    // A function whose bus-master bit is hard-wired to zero.
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        device().command_writable(COMMAND_IO | COMMAND_MEMORY),
    );
    assert_eq!(
        enable_for_dma(&space, at()),
        Err(Error::CommandNotAccepted {
            address: at(),
            written: COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE,
            read_back: COMMAND_MEMORY,
        })
    );

    // INTx disable hard-wired to zero (pre-PCI 2.3) is accepted.
    let space = FakeConfigSpace::new().with(
        0,
        0,
        3,
        0,
        device().command_writable(COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER),
    );
    assert_eq!(enable_for_dma(&space, at()), Ok(()));
    assert_eq!(space.command(at()), COMMAND_MEMORY | COMMAND_BUS_MASTER);
}
