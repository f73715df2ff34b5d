//! Enumeration scenarios: QEMU pc and q35 topologies, bridges, multi-function devices, broken
//! bridges, absent and malformed functions, and the sweep of unreached buses.

mod common;

use common::{FakeConfigSpace, FakeFunction};
use pci::{
    BarKind, BridgeDefect, BusRange, CapabilityKind, DecodedBar, EnumerationOptions, HeaderKind,
    PciAddress, PciExpressPortType, Problem, enumerate, enumerate_with,
};

fn addr(bus: u8, device: u8, function: u8) -> PciAddress {
    PciAddress::new(0, bus, device, function)
}

fn addresses(enumeration: &pci::Enumeration) -> Vec<String> {
    enumeration
        .functions
        .iter()
        .map(|f| f.address.to_string())
        .collect()
}

/// NVMe controller as QEMU models it (1b36:0010, rev 02): 64-bit BAR0 of 16 KiB, MSI-X with
/// 65 entries (table at BAR0 + 0x2000, PBA at BAR0 + 0x3000), PCI Express endpoint, PM.
fn qemu_nvme(bar0: u64) -> FakeFunction {
    FakeFunction::endpoint(0x1b36, 0x0010, [0x01, 0x08, 0x02], 0x02)
        .mem64(0, bar0, 16 * 1024, false)
        .capability(0x11, 64, &[0x2000, 0x3000])
        .capability(0x10, 0x0002, &[0; 14])
        .capability(0x01, 0x0003, &[0])
        .interrupt_pin(1)
        .command(0x0003)
}

/// QEMU `-machine pc` with `-device nvme`.
fn qemu_pc() -> FakeConfigSpace {
    FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x1237, [0x06, 0x00, 0x00], 0x02),
        )
        .with(
            0,
            0,
            1,
            0,
            FakeFunction::endpoint(0x8086, 0x7000, [0x06, 0x01, 0x00], 0).multifunction(),
        )
        .with(
            0,
            0,
            1,
            1,
            FakeFunction::endpoint(0x8086, 0x7010, [0x01, 0x01, 0x80], 0)
                .io(4, 0xc040, 16)
                .command(0x0001),
        )
        .with(
            0,
            0,
            1,
            3,
            FakeFunction::endpoint(0x8086, 0x7113, [0x06, 0x80, 0x00], 0x03),
        )
        .with(
            0,
            0,
            2,
            0,
            FakeFunction::endpoint(0x1234, 0x1111, [0x03, 0x00, 0x00], 0x02)
                .mem32(0, 0xfd00_0000, 16 << 20, true)
                .mem32(2, 0xfebf_0000, 4096, false)
                .command(0x0003),
        )
        .with(0, 0, 4, 0, qemu_nvme(0xfe00_0000))
}

#[test]
fn qemu_pc_topology_is_found_exactly() {
    let space = qemu_pc();
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(found.problems, []);
    assert_eq!(found.swept_root_buses, []);
    assert_eq!(
        addresses(&found),
        [
            "0000:00:00.0",
            "0000:00:01.0",
            "0000:00:01.1",
            "0000:00:01.3",
            "0000:00:02.0",
            "0000:00:04.0"
        ]
    );
    let names: Vec<_> = found.functions.iter().map(|f| f.class_name()).collect();
    assert_eq!(
        names,
        [
            "Host bridge",
            "ISA bridge",
            "IDE interface",
            "Bridge",
            "VGA compatible controller",
            "Non-Volatile memory controller"
        ]
    );

    let isa = found.function(addr(0, 1, 0)).unwrap();
    assert!(isa.multifunction);
    assert_eq!(isa.kind, HeaderKind::Endpoint);

    let ide = found.function(addr(0, 1, 1)).unwrap();
    assert_eq!(
        ide.bars,
        [DecodedBar {
            index: 4,
            kind: BarKind::Io,
            address: 0xc040,
            size: 16,
            prefetchable: false
        }]
    );

    let vga = found.function(addr(0, 2, 0)).unwrap();
    assert_eq!(
        vga.bars,
        [
            DecodedBar {
                index: 0,
                kind: BarKind::Memory32,
                address: 0xfd00_0000,
                size: 16 << 20,
                prefetchable: true
            },
            DecodedBar {
                index: 2,
                kind: BarKind::Memory32,
                address: 0xfebf_0000,
                size: 4096,
                prefetchable: false
            },
        ]
    );

    let nvme: Vec<_> = found.nvme_controllers().collect();
    assert_eq!(nvme.len(), 1);
    let nvme = nvme[0];
    assert!(pci::is_nvme(nvme));
    assert!(!pci::is_nvme(vga));
    assert_eq!(
        (nvme.vendor_id, nvme.device_id, nvme.revision),
        (0x1b36, 0x0010, 0x02)
    );
    assert_eq!(nvme.interrupt_pin, 1);
    assert_eq!(
        nvme.bar(0),
        Some(&DecodedBar {
            index: 0,
            kind: BarKind::Memory64,
            address: 0xfe00_0000,
            size: 16 * 1024,
            prefetchable: false
        })
    );
    assert_eq!(nvme.bar(1), None);
    let kinds: Vec<_> = nvme
        .capabilities
        .iter()
        .map(|c| (c.id, c.offset, c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                0x11,
                0x40,
                CapabilityKind::MsiX {
                    table_size: 65,
                    table_bar: 0,
                    table_offset: 0x2000,
                    pba_bar: 0,
                    pba_offset: 0x3000
                }
            ),
            (
                0x10,
                0x50,
                CapabilityKind::PciExpress {
                    version: 2,
                    port_type: PciExpressPortType::Endpoint
                }
            ),
            (0x01, 0x90, CapabilityKind::PowerManagement { version: 3 }),
        ]
    );
    assert_eq!(nvme.msix().map(|c| c.offset), Some(0x40));
}

#[test]
fn nvme_display_is_lspci_like() {
    let space = qemu_pc();
    let found = enumerate(&space, &[BusRange::LEGACY]);
    let nvme = found.function(addr(0, 4, 0)).unwrap();
    assert_eq!(
        nvme.to_string(),
        "0000:00:04.0 Non-Volatile memory controller [0108]: 1b36:0010 (rev 02)\n    \
         BAR0: Memory at fe000000 (64-bit, non-prefetchable) [size=16K]\n    \
         Capabilities: MSI-X(table size 65) PCI-Express(endpoint) PM"
    );
    let ide = found.function(addr(0, 1, 1)).unwrap();
    assert_eq!(
        ide.to_string(),
        "0000:00:01.1 IDE interface [0101]: 8086:7010\n    BAR4: I/O ports at c040 [size=16]"
    );
}

#[test]
fn enumeration_leaves_registers_as_found() {
    let space = qemu_pc();
    let before: Vec<_> = (0..64).map(|i| space.peek(addr(0, 4, 0), i * 4)).collect();
    enumerate(&space, &[BusRange::LEGACY]);
    let after: Vec<_> = (0..64).map(|i| space.peek(addr(0, 4, 0), i * 4)).collect();
    assert_eq!(before, after);
    assert_eq!(space.command(addr(0, 2, 0)), 0x0003);
}

/// QEMU `-machine q35` with the NVMe controller behind a PCI Express root port.
fn qemu_q35() -> FakeConfigSpace {
    FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x29c0, [0x06, 0x00, 0x00], 0),
        )
        .with(
            0,
            0,
            1,
            0,
            FakeFunction::endpoint(0x1234, 0x1111, [0x03, 0x00, 0x00], 0x02).mem32(
                0,
                0xfd00_0000,
                16 << 20,
                true,
            ),
        )
        .with(
            0,
            0,
            0x1c,
            0,
            FakeFunction::bridge(0x1b36, 0x000c, 0, 1, 1)
                .mem32(0, 0xfea0_0000, 4096, false)
                .capability(0x10, 0x0042, &[0; 14])
                .command(0x0007),
        )
        .with(
            0,
            0,
            0x1f,
            0,
            FakeFunction::endpoint(0x8086, 0x2918, [0x06, 0x01, 0x00], 0x02).multifunction(),
        )
        .with(
            0,
            0,
            0x1f,
            2,
            FakeFunction::endpoint(0x8086, 0x2922, [0x01, 0x06, 0x01], 0x02)
                .io(4, 0xc060, 32)
                .mem32(5, 0xfea1_1000, 4096, false),
        )
        .with(
            0,
            0,
            0x1f,
            3,
            FakeFunction::endpoint(0x8086, 0x2930, [0x0c, 0x05, 0x00], 0x02),
        )
        .with(
            0,
            1,
            0,
            0,
            qemu_nvme(0xfe80_0000).mem64(4, 0x8_0000_0000, 8 << 30, true),
        )
}

#[test]
fn qemu_q35_finds_nvme_behind_root_port() {
    let space = qemu_q35();
    let found = enumerate(
        &space,
        &[BusRange {
            segment: 0,
            start_bus: 0,
            end_bus: 0xff,
        }],
    );
    assert_eq!(found.problems, []);
    assert_eq!(found.swept_root_buses, []);
    assert_eq!(
        addresses(&found),
        [
            "0000:00:00.0",
            "0000:00:01.0",
            "0000:00:1c.0",
            "0000:00:1f.0",
            "0000:00:1f.2",
            "0000:00:1f.3",
            "0000:01:00.0"
        ]
    );
    let port = found.function(addr(0, 0x1c, 0)).unwrap();
    assert_eq!(
        port.kind,
        HeaderKind::PciBridge {
            primary: 0,
            secondary: 1,
            subordinate: 1
        }
    );
    assert_eq!(port.class_name(), "PCI bridge");
    assert_eq!(
        port.capabilities[0].kind,
        CapabilityKind::PciExpress {
            version: 2,
            port_type: PciExpressPortType::RootPort
        }
    );
    assert_eq!(port.bars.len(), 1);
    assert_eq!(port.bars[0].address, 0xfea0_0000);
    assert!(
        port.to_string()
            .contains("\n    Bus: primary=00, secondary=01, subordinate=01\n")
    );
    assert_eq!(
        found.function(addr(0, 0x1f, 2)).unwrap().class_name(),
        "SATA controller"
    );
    assert_eq!(
        found.function(addr(0, 0x1f, 3)).unwrap().class_name(),
        "SMBus"
    );

    let nvme = found.nvme_controllers().next().unwrap();
    assert_eq!(nvme.address, addr(1, 0, 0));
    assert_eq!(
        nvme.bars,
        [
            DecodedBar {
                index: 0,
                kind: BarKind::Memory64,
                address: 0xfe80_0000,
                size: 16 * 1024,
                prefetchable: false
            },
            DecodedBar {
                index: 4,
                kind: BarKind::Memory64,
                address: 0x8_0000_0000,
                size: 8 << 30,
                prefetchable: true
            },
        ]
    );
    assert!(
        nvme.to_string()
            .contains("\n    BAR4: Memory at 800000000 (64-bit, prefetchable) [size=8G]\n")
    );
}

#[test]
fn nested_bridges_are_followed() {
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x1237, [0x06, 0x00, 0x00], 0),
        )
        .with(0, 0, 5, 0, FakeFunction::bridge(0x1b36, 0x0001, 0, 2, 3))
        .with(0, 2, 1, 0, FakeFunction::bridge(0x1b36, 0x0001, 2, 3, 3))
        .with(
            0,
            2,
            7,
            0,
            FakeFunction::endpoint(0x8086, 0x100e, [0x02, 0x00, 0x00], 3),
        )
        .with(
            0,
            3,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x100e, [0x02, 0x00, 0x00], 3),
        );
    // With the sweep off, only the bridges can have led to buses 2 and 3.
    let options = EnumerationOptions {
        sweep_unreached_buses: false,
    };
    let found = enumerate_with(&space, &[BusRange::LEGACY], options);
    assert_eq!(found.problems, []);
    assert_eq!(
        addresses(&found),
        [
            "0000:00:00.0",
            "0000:00:05.0",
            "0000:02:01.0",
            "0000:02:07.0",
            "0000:03:00.0"
        ]
    );
    assert_eq!(
        found.function(addr(3, 0, 0)).unwrap().class_name(),
        "Ethernet controller"
    );
}

#[test]
fn multifunction_devices_are_scanned_only_when_function_zero_says_so() {
    let ethernet = || FakeFunction::endpoint(0x8086, 0x10c9, [0x02, 0x00, 0x00], 1);
    let space = FakeConfigSpace::new()
        .with(0, 0, 3, 0, ethernet().multifunction())
        .with(0, 0, 3, 2, ethernet())
        .with(0, 0, 3, 7, ethernet())
        // Device 4 is single-function: function 1 must not be looked at (some devices answer
        // on every function number with the same registers).
        .with(0, 0, 4, 0, ethernet())
        .with(0, 0, 4, 1, ethernet())
        // Device 5 has no function 0: nothing of it is listed.
        .with(0, 0, 5, 1, ethernet().multifunction());
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(found.problems, []);
    assert_eq!(
        addresses(&found),
        [
            "0000:00:03.0",
            "0000:00:03.2",
            "0000:00:03.7",
            "0000:00:04.0"
        ]
    );
}

#[test]
fn absent_and_all_ones_functions_are_not_listed() {
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x1237, [0x06, 0x00, 0x00], 0),
        )
        .with(0, 0, 2, 0, FakeFunction::all_ones())
        .with(
            0,
            0,
            3,
            0,
            FakeFunction::endpoint(0xffff, 0x1234, [0x01, 0x08, 0x02], 0),
        )
        .with(
            0,
            0,
            4,
            0,
            FakeFunction::endpoint(0x0000, 0x0000, [0x01, 0x08, 0x02], 0),
        );
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(addresses(&found), ["0000:00:00.0"]);
    assert_eq!(found.problems, []);
}

#[test]
fn unknown_header_type_is_a_problem_and_skipped() {
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            6,
            0,
            FakeFunction::endpoint(0x1af4, 0x1000, [0x02, 0x00, 0x00], 0)
                .header_type(0x05)
                .multifunction(),
        )
        .with(
            0,
            0,
            6,
            1,
            FakeFunction::endpoint(0x1af4, 0x1001, [0x01, 0x00, 0x00], 0),
        );
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(addresses(&found), ["0000:00:06.1"]);
    assert_eq!(
        found.problems,
        [Problem::UnknownHeaderType {
            address: addr(0, 6, 0),
            header_type: 0x05
        }]
    );
}

#[test]
fn broken_bridges_are_recorded_and_not_followed() {
    let net = || FakeFunction::endpoint(0x8086, 0x100e, [0x02, 0x00, 0x00], 3);
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x29c0, [0x06, 0x00, 0x00], 0),
        )
        // Unconfigured: secondary 0.
        .with(0, 0, 1, 0, FakeFunction::bridge(0x1b36, 0x000c, 0, 0, 0))
        // Fine: to bus 1.
        .with(0, 0, 2, 0, FakeFunction::bridge(0x1b36, 0x000c, 0, 1, 1))
        // Fine: to bus 2.
        .with(0, 0, 3, 0, FakeFunction::bridge(0x1b36, 0x000c, 0, 2, 4))
        // Outside the MCFG range 0..=0x0f.
        .with(
            0,
            0,
            4,
            0,
            FakeFunction::bridge(0x1b36, 0x000c, 0, 0x20, 0x20),
        )
        // On bus 1: a bridge to bus 2, which the bridge at 00:03.0 already claimed.
        .with(0, 1, 0, 0, FakeFunction::bridge(0x1b36, 0x000c, 1, 2, 2))
        // On bus 2: a bridge pointing back to bus 1 (loop and out of order).
        .with(0, 2, 0, 0, FakeFunction::bridge(0x1b36, 0x000c, 2, 1, 1))
        // On bus 2: a bridge to bus 3, which is fine, and one to bus 2 itself.
        .with(0, 2, 1, 0, FakeFunction::bridge(0x1b36, 0x000c, 2, 3, 3))
        .with(0, 2, 2, 0, FakeFunction::bridge(0x1b36, 0x000c, 2, 2, 2))
        .with(0, 3, 0, 0, net());
    let range = BusRange {
        segment: 0,
        start_bus: 0,
        end_bus: 0x0f,
    };
    let found = enumerate(&space, &[range]);
    let bridge = |bridge, secondary, defect| Problem::BridgeNotFollowed {
        bridge,
        secondary,
        defect,
    };
    assert_eq!(
        found.problems,
        [
            bridge(addr(0, 1, 0), 0, BridgeDefect::SecondaryNotAboveOwnBus),
            bridge(addr(0, 4, 0), 0x20, BridgeDefect::SecondaryOutsideRange),
            bridge(addr(1, 0, 0), 2, BridgeDefect::SecondaryAlreadyVisited),
            bridge(addr(2, 0, 0), 1, BridgeDefect::SecondaryNotAboveOwnBus),
            bridge(addr(2, 2, 0), 2, BridgeDefect::SecondaryNotAboveOwnBus),
        ]
    );
    assert_eq!(
        addresses(&found),
        [
            "0000:00:00.0",
            "0000:00:01.0",
            "0000:00:02.0",
            "0000:00:03.0",
            "0000:00:04.0",
            "0000:01:00.0",
            "0000:02:00.0",
            "0000:02:01.0",
            "0000:02:02.0",
            "0000:03:00.0"
        ]
    );
    assert_eq!(found.swept_root_buses, []);
}

#[test]
fn sweep_finds_buses_behind_bridges_that_were_not_followed() {
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x29c0, [0x06, 0x00, 0x00], 0),
        )
        .with(0, 0, 1, 0, FakeFunction::bridge(0x1b36, 0x000c, 0, 3, 3))
        // Bus 3's bridge points down to bus 2: out of order, not followed...
        .with(0, 3, 0, 0, FakeFunction::bridge(0x1b36, 0x000c, 3, 2, 2))
        // ...but bus 2 answers, and the sweep finds it.
        .with(0, 2, 0, 0, qemu_nvme(0xfe00_0000));
    let not_followed = Problem::BridgeNotFollowed {
        bridge: addr(3, 0, 0),
        secondary: 2,
        defect: BridgeDefect::SecondaryNotAboveOwnBus,
    };

    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(found.problems, [not_followed]);
    assert_eq!(
        addresses(&found),
        [
            "0000:00:00.0",
            "0000:00:01.0",
            "0000:02:00.0",
            "0000:03:00.0"
        ]
    );
    assert_eq!(found.swept_root_buses, [(0, 2)]);

    let without = enumerate_with(
        &space,
        &[BusRange::LEGACY],
        EnumerationOptions {
            sweep_unreached_buses: false,
        },
    );
    assert_eq!(without.problems, [not_followed]);
    assert_eq!(
        addresses(&without),
        ["0000:00:00.0", "0000:00:01.0", "0000:03:00.0"]
    );
    assert_eq!(without.swept_root_buses, []);
}

#[test]
fn sweep_costs_one_read_per_device_slot_on_an_empty_segment() {
    let space = FakeConfigSpace::new();
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(found.functions, []);
    // Root bus 0: one read for the host-bridge check, then 32 per bus for 256 buses.
    assert_eq!(space.reads(), 1 + 256 * 32);
}

#[test]
fn multifunction_host_bridge_roots_are_found_by_the_classic_rule() {
    let host = |device| FakeFunction::endpoint(0x1022, device, [0x06, 0x00, 0x00], 0);
    let space = FakeConfigSpace::new()
        .with(0, 0, 0, 0, host(0x1450).multifunction())
        .with(0, 0, 0, 1, host(0x1451))
        // An IOMMU at 00.2 must not make bus 2 a root bus.
        .with(
            0,
            0,
            0,
            2,
            FakeFunction::endpoint(0x1022, 0x1452, [0x08, 0x06, 0x00], 0),
        )
        .with(
            0,
            1,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x100e, [0x02, 0x00, 0x00], 3),
        )
        .with(
            0,
            2,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x100e, [0x02, 0x00, 0x00], 3),
        );
    let found = enumerate_with(
        &space,
        &[BusRange::LEGACY],
        EnumerationOptions {
            sweep_unreached_buses: false,
        },
    );
    assert_eq!(found.problems, []);
    assert_eq!(
        addresses(&found),
        [
            "0000:00:00.0",
            "0000:00:00.1",
            "0000:00:00.2",
            "0000:01:00.0"
        ]
    );

    // The sweep then picks up bus 2 as a root of its own.
    let swept = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(swept.swept_root_buses, [(0, 2)]);
    assert_eq!(swept.functions.len(), 5);
}

#[test]
fn several_ranges_and_an_invalid_range() {
    let space = FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x29c0, [0x06, 0x00, 0x00], 0),
        )
        .with(1, 0x40, 3, 0, qemu_nvme(0x1_0000_0000));
    let ranges = [
        BusRange {
            segment: 0,
            start_bus: 0,
            end_bus: 0x3f,
        },
        BusRange {
            segment: 1,
            start_bus: 0x40,
            end_bus: 0x7f,
        },
        BusRange {
            segment: 2,
            start_bus: 9,
            end_bus: 8,
        },
    ];
    let found = enumerate(&space, &ranges);
    assert_eq!(addresses(&found), ["0000:00:00.0", "0001:40:03.0"]);
    assert_eq!(
        found.problems,
        [Problem::InvalidRange {
            segment: 2,
            start_bus: 9,
            end_bus: 8
        }]
    );
    assert_eq!(
        found.nvme_controllers().next().unwrap().bars[0].address,
        0x1_0000_0000
    );
}

#[test]
fn cardbus_bridge_is_listed_with_one_bar_and_its_own_capability_pointer() {
    let space = FakeConfigSpace::new().with(
        0,
        0,
        9,
        0,
        FakeFunction::endpoint(0x104c, 0xac56, [0x06, 0x07, 0x00], 0)
            .header_type(0x02)
            .mem32(0, 0xfebf_f000, 4096, false)
            .with_capability_list()
            .raw(0x14, 0x80)
            .raw(0x80, 0x0002_0001),
    );
    let found = enumerate(&space, &[BusRange::LEGACY]);
    assert_eq!(found.problems, []);
    let cardbus = &found.functions[0];
    assert_eq!(cardbus.kind, HeaderKind::CardBus);
    assert_eq!(cardbus.class_name(), "CardBus bridge");
    assert_eq!(cardbus.bars.len(), 1);
    assert_eq!(cardbus.bars[0].address, 0xfebf_f000);
    assert_eq!(
        cardbus
            .capabilities
            .iter()
            .map(|c| (c.id, c.offset))
            .collect::<Vec<_>>(),
        [(0x01, 0x80)]
    );
    // Slots past BAR0 of a CardBus header are bus numbers and windows: never probed.
    assert!(space.writes().iter().all(|w| w.offset <= 0x10));
}

#[test]
fn problems_and_errors_display_what_went_wrong() {
    let problem = Problem::BridgeNotFollowed {
        bridge: addr(2, 0, 0),
        secondary: 1,
        defect: BridgeDefect::SecondaryNotAboveOwnBus,
    };
    assert_eq!(
        problem.to_string(),
        "0000:02:00.0: bridge to bus 01 not followed: SecondaryNotAboveOwnBus"
    );
    let error = pci::Error::FunctionAbsent {
        address: addr(0, 4, 0),
    };
    assert_eq!(error.to_string(), "no PCI function at 0000:00:04.0");
}
