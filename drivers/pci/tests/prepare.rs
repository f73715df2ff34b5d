//! Preparing an NVMe function as real PCs present it: bridges left off by firmware, functions
//! in D3hot, BARs unassigned or outside a bridge's windows.

mod common;

use std::cell::RefCell;

use common::{
    COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE, COMMAND_IO, COMMAND_MEMORY, FakeConfigSpace,
    FakeFunction,
};
use pci::{Error, PciAddress, PowerState, enumerate, prepare_for_driver};

fn addr(bus: u8, device: u8, function: u8) -> PciAddress {
    PciAddress::new(0, bus, device, function)
}

const BAR0: u64 = 0xfe20_0000;
const NVME_CLASS: [u8; 3] = [0x01, 0x08, 0x02];

fn host_bridge() -> FakeFunction {
    FakeFunction::endpoint(0x8086, 0x9b33, [0x06, 0x00, 0x00], 0)
}

/// An NVMe drive with a 16 KiB 64-bit BAR0 at `bar0`, PM capability in D0, command as given.
fn nvme(bar0: u64) -> FakeFunction {
    FakeFunction::endpoint(0x144d, 0xa808, NVME_CLASS, 0)
        .mem64(0, bar0, 16 * 1024, false)
        .capability(0x10, 0x0002, &[0; 14])
}

/// A laptop-like path: root port 00:1c.0 -> switch upstream 01:00.0 -> downstream 02:00.0 ->
/// NVMe 03:00.0, every bridge with a window 0xfe00_0000..=0xfe3f_ffff and its command register
/// as `bridge_command`. An unrelated root port 00:1d.0 (bus 4, empty) with command 0.
fn switch_path(bridge_command: u16, drive: FakeFunction) -> FakeConfigSpace {
    let bridge = |device, primary, secondary, subordinate| {
        FakeFunction::bridge(0x8086, device, primary, secondary, subordinate)
            .memory_window(0xfe00_0000, 0xfe3f_ffff)
            .command(bridge_command)
    };
    FakeConfigSpace::new()
        .with(0, 0, 0, 0, host_bridge())
        .with(0, 0, 0x1c, 0, bridge(0xa33c, 0, 1, 3))
        .with(0, 0, 0x1d, 0, bridge(0xa330, 0, 4, 4).command(0))
        .with(0, 1, 0, 0, bridge(0x1111, 1, 2, 3))
        .with(0, 2, 0, 0, bridge(0x2222, 2, 3, 3))
        .with(0, 3, 0, 0, drive)
}

const DRIVE: (u8, u8, u8) = (3, 0, 0);
const PATH: [(u8, u8, u8); 3] = [(0, 0x1c, 0), (1, 0, 0), (2, 0, 0)];

fn drive_address() -> PciAddress {
    addr(DRIVE.0, DRIVE.1, DRIVE.2)
}

/// Enumerates, forgets the enumeration's writes, and prepares the drive, recording each delay
/// with the number of writes made before it.
fn prepare(space: &FakeConfigSpace) -> (Result<pci::DecodedBar, Error>, Vec<(u32, usize)>) {
    let enumeration = enumerate(space, &[pci::BusRange::LEGACY]);
    assert!(
        enumeration.problems.is_empty(),
        "{:?}",
        enumeration.problems
    );
    let drive = enumeration
        .function(drive_address())
        .expect("drive enumerated")
        .clone();
    space.clear_writes();
    let delays = RefCell::new(Vec::new());
    let mut delay = |us: u32| delays.borrow_mut().push((us, space.writes().len()));
    let result = prepare_for_driver(space, &enumeration, &drive, 0, &mut delay);
    (result, delays.into_inner())
}

#[test]
fn enumeration_records_the_bridge_path() {
    let space = switch_path(0, nvme(BAR0));
    let enumeration = enumerate(&space, &[pci::BusRange::LEGACY]);
    let drive = enumeration.function(drive_address()).unwrap();
    assert_eq!(drive.upstream, Some(addr(2, 0, 0)));
    let path: Vec<PciAddress> = enumeration
        .upstream_bridges(drive)
        .iter()
        .map(|bridge| bridge.address)
        .collect();
    let want: Vec<PciAddress> = PATH.iter().map(|&(b, d, f)| addr(b, d, f)).collect();
    assert_eq!(path, want);
    let root_port = enumeration.function(addr(0, 0x1c, 0)).unwrap();
    assert_eq!(root_port.upstream, None);
    assert!(enumeration.upstream_bridges(root_port).is_empty());
    // The listing shows each bridge's windows, as lspci does.
    let listed = root_port.to_string();
    assert!(
        listed.contains("\n    Memory behind bridge: fe000000-fe3fffff [size=4M]\n"),
        "{listed}"
    );
    let closed = FakeFunction::bridge(0x8086, 0x1111, 0, 1, 1).memory_window(0xfff0_0000, 0);
    let space = FakeConfigSpace::new().with(0, 0, 1, 0, closed);
    let enumeration = enumerate(&space, &[pci::BusRange::LEGACY]);
    let listed = enumeration.functions[0].to_string();
    assert!(
        listed.contains("\n    Memory behind bridge: [disabled]\n"),
        "{listed}"
    );
    assert_eq!(enumeration.functions[0].windows.unwrap().memory, None);
}

#[test]
fn bridges_with_decoding_and_bus_mastering_off_get_both_on_the_whole_path_and_nothing_else() {
    // I/O decoding on, memory and bus master off: as firmware leaves unused ports.
    let space = switch_path(COMMAND_IO, nvme(BAR0));
    let (result, delays) = prepare(&space);
    let bar = result.expect("prepared");
    assert_eq!((bar.index, bar.address, bar.size), (0, BAR0, 16 * 1024));
    assert!(delays.iter().all(|&(us, _)| us == 0), "{delays:?}");

    // Exactly one command write per bridge, root first, then the drive; nothing else.
    let writes: Vec<(PciAddress, u16, u32)> = space
        .writes()
        .iter()
        .map(|w| (w.address, w.offset, w.value))
        .collect();
    let bridge_value = u32::from(COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER);
    let mut want: Vec<(PciAddress, u16, u32)> = PATH
        .iter()
        .map(|&(b, d, f)| (addr(b, d, f), 0x04, bridge_value))
        .collect();
    want.push((
        drive_address(),
        0x04,
        u32::from(COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE),
    ));
    assert_eq!(writes, want);
    for &(b, d, f) in &PATH {
        assert_eq!(
            space.command(addr(b, d, f)),
            COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER
        );
    }
    // The unrelated root port is left alone.
    assert_eq!(space.command(addr(0, 0x1d, 0)), 0);
}

#[test]
fn bridges_already_on_are_not_written() {
    let space = switch_path(COMMAND_MEMORY | COMMAND_BUS_MASTER, nvme(BAR0));
    let (result, _) = prepare(&space);
    result.expect("prepared");
    let addresses: Vec<PciAddress> = space.writes().iter().map(|w| w.address).collect();
    assert_eq!(addresses, vec![drive_address()]);
}

#[test]
fn bridge_that_refuses_bus_mastering_is_an_error() {
    let space = switch_path(0, nvme(BAR0)).with(
        0,
        1,
        0,
        0,
        FakeFunction::bridge(0x8086, 0x1111, 1, 2, 3)
            .memory_window(0xfe00_0000, 0xfe3f_ffff)
            .command_writable(COMMAND_MEMORY),
    );
    let (result, _) = prepare(&space);
    assert_eq!(
        result,
        Err(Error::CommandNotAccepted {
            address: addr(1, 0, 0),
            written: COMMAND_MEMORY | COMMAND_BUS_MASTER,
            read_back: COMMAND_MEMORY,
        })
    );
    // The drive itself was never enabled.
    assert_eq!(space.command(drive_address()), 0);
}

#[test]
fn function_in_d3hot_is_brought_to_d0_after_the_delay() {
    let drive = nvme(BAR0).power_management(3, true);
    let space = switch_path(0, drive);
    let (result, delays) = prepare(&space);
    result.expect("prepared");
    assert_eq!(space.power_state(drive_address()), Some(0));

    // Writes: three bridges, then PMCSR, then (after 10 ms) the drive's command register.
    let writes = space.writes();
    let pmcsr = writes
        .iter()
        .position(|w| w.address == drive_address() && w.offset != 0x04)
        .expect("PMCSR written");
    assert_eq!(writes[pmcsr].value & 0b11, 0, "D0 written");
    assert_eq!(writes[pmcsr].value & (1 << 15), 0, "PME_Status not cleared");
    let command = writes
        .iter()
        .position(|w| w.address == drive_address() && w.offset == 0x04)
        .expect("command written");
    assert!(pmcsr < command);
    assert_eq!(delays, vec![(pci::D3HOT_TO_D0_DELAY_US, pmcsr + 1)]);
    assert_eq!(
        space.command(drive_address()),
        COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE
    );
}

#[test]
fn function_in_d2_waits_200_us_and_d0_writes_nothing() {
    let space = switch_path(0, nvme(BAR0).power_management(2, false));
    let (result, delays) = prepare(&space);
    result.expect("prepared");
    assert_eq!(delays.len(), 1);
    assert_eq!(delays[0].0, pci::D2_TO_D0_DELAY_US);

    let space = switch_path(0, nvme(BAR0).power_management(0, false));
    let (result, delays) = prepare(&space);
    result.expect("prepared");
    assert!(delays.is_empty());
    assert!(
        space
            .writes()
            .iter()
            .all(|w| w.address != drive_address() || w.offset == 0x04),
        "PMCSR written although the drive was in D0"
    );
}

#[test]
fn bar_reset_by_leaving_d3hot_is_written_back() {
    // No_Soft_Reset clear: the transition to D0 resets BAR0 to 0.
    let space = switch_path(0, nvme(0x1_2340_0000).power_management(3, false));
    let space = space.with(
        0,
        2,
        0,
        0,
        FakeFunction::bridge(0x8086, 0x2222, 2, 3, 3)
            .memory_window(0xfe00_0000, 0xfe3f_ffff)
            .prefetchable_window(0x1_0000_0000, 0x1_ffff_ffff),
    );
    let space = space
        .with(
            0,
            1,
            0,
            0,
            FakeFunction::bridge(0x8086, 0x1111, 1, 2, 3)
                .prefetchable_window(0x1_0000_0000, 0x1_ffff_ffff),
        )
        .with(
            0,
            0,
            0x1c,
            0,
            FakeFunction::bridge(0x8086, 0xa33c, 0, 1, 3)
                .prefetchable_window(0x1_0000_0000, 0x3_ffff_ffff),
        );
    let (result, _) = prepare(&space);
    assert_eq!(result.expect("prepared").address, 0x1_2340_0000);
    assert_eq!(space.peek(drive_address(), 0x10) & !0xf, 0x2340_0000);
    assert_eq!(space.peek(drive_address(), 0x14), 0x1);
}

#[test]
fn function_that_stays_in_d3hot_is_an_error() {
    let space = switch_path(0, nvme(BAR0).power_management(3, true).power_state_stuck());
    let (result, delays) = prepare(&space);
    assert_eq!(
        result,
        Err(Error::PowerStateNotD0 {
            address: drive_address(),
            from: PowerState::D3Hot,
            state: PowerState::D3Hot,
        })
    );
    assert_eq!(delays.len(), 1);
    assert_eq!(space.command(drive_address()), 0, "drive enabled in D3hot");
}

#[test]
fn unassigned_bar0_is_skipped_reported_and_nothing_is_written() {
    // On the root bus, as in the message users see, and behind the switch.
    let at = addr(0, 3, 0);
    let space = FakeConfigSpace::new().with(0, 0, 0, 0, host_bridge()).with(
        0,
        0,
        3,
        0,
        nvme(0).power_management(3, true).command(0),
    );
    let enumeration = enumerate(&space, &[pci::BusRange::LEGACY]);
    let drive = enumeration.function(at).unwrap().clone();
    assert_eq!(drive.bar(0).map(|bar| bar.address), Some(0));
    space.clear_writes();
    let mut delayed = false;
    let result = prepare_for_driver(&space, &enumeration, &drive, 0, &mut |_| delayed = true);
    let error = result.unwrap_err();
    assert_eq!(
        error,
        Error::BarUnassigned {
            address: at,
            index: 0
        }
    );
    assert_eq!(
        format!("{} NVMe: {}", "00:03.0", error.reason()),
        "00:03.0 NVMe: BAR0 not assigned by firmware; skipped"
    );
    assert_eq!(
        error.to_string(),
        "0000:00:03.0: BAR0 not assigned by firmware; skipped"
    );
    assert!(space.writes().is_empty(), "{:?}", space.writes());
    assert_eq!(space.command(at), 0);
    assert_eq!(space.power_state(at), Some(3));
    assert!(!delayed);

    let space = switch_path(0, nvme(0));
    let (result, _) = prepare(&space);
    assert_eq!(
        result,
        Err(Error::BarUnassigned {
            address: drive_address(),
            index: 0
        })
    );
    assert!(space.writes().is_empty());
}

#[test]
fn missing_or_io_bar0_is_skipped() {
    let space = switch_path(
        0,
        FakeFunction::endpoint(0x144d, 0xa808, NVME_CLASS, 0).io(0, 0xe000, 16),
    );
    let (result, _) = prepare(&space);
    assert_eq!(
        result,
        Err(Error::BarMissing {
            address: drive_address(),
            index: 0
        })
    );
    assert!(space.writes().is_empty());
}

#[test]
fn bar_outside_a_bridge_window_is_skipped_reported_and_nothing_is_written() {
    // The downstream port forwards 0xfe00_0000..=0xfe0f_ffff only; BAR0 is at 0xfe20_0000.
    let space = switch_path(0, nvme(BAR0)).with(
        0,
        2,
        0,
        0,
        FakeFunction::bridge(0x8086, 0x2222, 2, 3, 3).memory_window(0xfe00_0000, 0xfe0f_ffff),
    );
    let (result, delays) = prepare(&space);
    let error = result.unwrap_err();
    assert_eq!(
        error,
        Error::BarOutsideBridgeWindow {
            address: drive_address(),
            index: 0,
            bar_address: BAR0,
            bar_size: 16 * 1024,
            bridge: addr(2, 0, 0),
        }
    );
    assert_eq!(
        error.reason().to_string(),
        "BAR0 0xfe200000 outside the window of bridge 0000:02:00.0; skipped"
    );
    assert!(space.writes().is_empty(), "{:?}", space.writes());
    assert!(delays.is_empty());
    for &(b, d, f) in &PATH {
        assert_eq!(space.command(addr(b, d, f)), 0);
    }
    assert_eq!(space.command(drive_address()), 0);
}

#[test]
fn bar_straddling_a_window_end_or_behind_a_closed_window_is_outside() {
    // A 2 MiB BAR whose second half lies past the root port's 1 MiB window.
    let straddling =
        FakeFunction::bridge(0x8086, 0xa33c, 0, 1, 3).memory_window(0xfe00_0000, 0xfe0f_ffff);
    let drive =
        FakeFunction::endpoint(0x144d, 0xa808, NVME_CLASS, 0).mem64(0, 0xfe00_0000, 2 << 20, false);
    let space = switch_path(0, drive).with(0, 0, 0x1c, 0, straddling);
    let (result, _) = prepare(&space);
    assert!(matches!(
        result,
        Err(Error::BarOutsideBridgeWindow { bridge, .. }) if bridge == addr(0, 0x1c, 0)
    ));
    assert!(space.writes().is_empty());

    // Base above limit: the window is closed (the fake bridge's default registers are 0, so
    // open 0..=0xfffff; set a closed one explicitly).
    let closed = FakeFunction::bridge(0x8086, 0x1111, 1, 2, 3).memory_window(0xfff0_0000, 0);
    let space = switch_path(0, nvme(BAR0)).with(0, 1, 0, 0, closed);
    let (result, _) = prepare(&space);
    assert!(matches!(
        result,
        Err(Error::BarOutsideBridgeWindow { bridge, .. }) if bridge == addr(1, 0, 0)
    ));
    assert!(space.writes().is_empty());
}

#[test]
fn bar_above_4g_inside_the_prefetchable_windows_is_accepted() {
    let bridge = |device, primary, secondary, subordinate| {
        FakeFunction::bridge(0x8086, device, primary, secondary, subordinate)
            .memory_window(0xfe00_0000, 0xfe3f_ffff)
            .prefetchable_window(0x40_0000_0000, 0x40_0fff_ffff)
    };
    let space = FakeConfigSpace::new()
        .with(0, 0, 0, 0, host_bridge())
        .with(0, 0, 0x1c, 0, bridge(0xa33c, 0, 1, 3))
        .with(0, 1, 0, 0, bridge(0x1111, 1, 2, 3))
        .with(0, 2, 0, 0, bridge(0x2222, 2, 3, 3))
        .with(0, 3, 0, 0, nvme(0x40_0010_0000));
    let (result, _) = prepare(&space);
    assert_eq!(result.expect("prepared").address, 0x40_0010_0000);
    assert_eq!(
        space.command(drive_address()),
        COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE
    );
}

#[test]
fn function_on_the_root_bus_needs_no_bridge() {
    let at = addr(0, 4, 0);
    let space = FakeConfigSpace::new().with(0, 0, 0, 0, host_bridge()).with(
        0,
        0,
        4,
        0,
        nvme(0xfebf_0000 & !0x3fff),
    );
    let enumeration = enumerate(&space, &[pci::BusRange::LEGACY]);
    let drive = enumeration.function(at).unwrap().clone();
    space.clear_writes();
    prepare_for_driver(&space, &enumeration, &drive, 0, &mut |_| {}).expect("prepared");
    let addresses: Vec<PciAddress> = space.writes().iter().map(|w| w.address).collect();
    assert_eq!(addresses, vec![at]);
}
