//! Property tests over random configuration spaces: functions at random
//! addresses with random header types, class codes, BAR values and sizing
//! masks, bridges pointing anywhere, multi-function flags and random bytes
//! in the capability area. Enumeration never panics, ends after scanning
//! each bus at most once, lists each function once and only functions that
//! are there, finds every well-formed function 0 when sweeping, decodes
//! only sane BARs and capabilities, and leaves configuration space as it
//! found it; enabling a function for DMA touches only its command register.

mod common;

use common::{FakeConfigSpace, FakeFunction};
use pci::{BusRange, EnumerationOptions, PciAddress};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::BTreeMap;

/// Buses the random spaces use (and the range enumerated).
const BUSES: u8 = 8;

#[derive(Clone, Debug)]
struct Spec {
    bus: u8,
    device: u8,
    function: u8,
    vendor: u16,
    class: [u8; 3],
    header_type: u8,
    /// Primary, secondary, subordinate bus numbers (written whatever the
    /// header type).
    bridge_buses: (u8, u8, u8),
    multifunction: bool,
    command: u16,
    /// (slot, value, writable mask).
    bars: Vec<(u8, u32, u32)>,
    /// Capabilities pointer (0x34) and the status bit that announces it.
    capability_pointer: Option<u8>,
    /// Raw dwords in the capability area (offset, value).
    capability_area: Vec<(u8, u32)>,
}

impl Spec {
    fn build(&self) -> FakeFunction {
        let (primary, secondary, subordinate) = self.bridge_buses;
        let mut f = FakeFunction::bridge(self.vendor, 0x1234, primary, secondary, subordinate)
            .header_type(self.header_type)
            .command(self.command);
        // Class after the bridge constructor, which sets 06h/04h.
        f = f.raw(
            0x08,
            u32::from(self.class[0]) << 24
                | u32::from(self.class[1]) << 16
                | u32::from(self.class[2]) << 8,
        );
        if self.multifunction {
            f = f.multifunction();
        }
        for &(slot, value, writable) in &self.bars {
            f = f.raw_bar(slot, value, writable);
        }
        if let Some(pointer) = self.capability_pointer {
            f = f.raw(0x34, u32::from(pointer)).with_capability_list();
        }
        for &(offset, value) in &self.capability_area {
            f = f.raw(offset, value);
        }
        f
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    let header_type = prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => any::<u8>()];
    let class = prop_oneof![
        Just([0x01, 0x08, 0x02]),
        Just([0x06, 0x00, 0x00]),
        Just([0x06, 0x04, 0x00]),
        any::<[u8; 3]>(),
    ];
    let bar = (
        0u8..6,
        any::<u32>(),
        prop_oneof![
            Just(0u32),
            Just(u32::MAX),
            any::<u32>(),
            (4u32..32).prop_map(|b| !((1u32 << b) - 1))
        ],
    );
    (
        (0..BUSES, 0u8..32, prop_oneof![3 => Just(0u8), 1 => 0u8..8]),
        prop_oneof![Just(0x1b36u16), Just(0x8086u16), 1u16..0xffff],
        class,
        header_type,
        (0..BUSES + 2, 0..BUSES + 2, any::<u8>()),
        any::<bool>(),
        any::<u16>(),
        prop::collection::vec(bar, 0..6),
        prop::option::of(any::<u8>()),
        prop::collection::vec(((0x10u8..0x40).prop_map(|d| d * 4), any::<u32>()), 0..24),
    )
        .prop_map(
            |(
                (bus, device, function),
                vendor,
                class,
                header_type,
                bridge_buses,
                multifunction,
                command,
                bars,
                capability_pointer,
                capability_area,
            )| Spec {
                bus,
                device,
                function,
                vendor,
                class,
                header_type,
                bridge_buses,
                multifunction,
                command,
                bars,
                capability_pointer,
                capability_area,
            },
        )
}

fn space(specs: &[Spec]) -> (FakeConfigSpace, BTreeMap<PciAddress, Spec>) {
    let mut placed = BTreeMap::new();
    let mut space = FakeConfigSpace::new();
    for s in specs {
        space = space.with(0, s.bus, s.device, s.function, s.build());
        placed.insert(PciAddress::new(0, s.bus, s.device, s.function), s.clone());
    }
    (space, placed)
}

fn snapshot(space: &FakeConfigSpace, placed: &BTreeMap<PciAddress, Spec>) -> Vec<u32> {
    placed
        .keys()
        .flat_map(|&a| (0..64u16).map(move |d| space.peek(a, d * 4)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn enumeration_of_random_spaces_is_bounded_and_sound(
        specs in prop::collection::vec(spec(), 0..12),
        sweep in any::<bool>(),
    ) {
        let (space, placed) = space(&specs);
        let before = snapshot(&space, &placed);
        let range = BusRange { segment: 0, start_bus: 0, end_bus: BUSES - 1 };
        let e = pci::enumerate_with(&space, &[range], EnumerationOptions { sweep_unreached_buses: sweep });

        // Each bus scanned at most once: 256 functions, each read in full
        // (header, six BARs probed and restored, 48 capabilities) at most.
        prop_assert!(space.reads() <= usize::from(BUSES) * 256 * 160, "{} reads", space.reads());
        prop_assert!(e.functions.windows(2).all(|w| w[0].address < w[1].address), "unsorted or listed twice");
        for f in &e.functions {
            let s = placed.get(&f.address);
            prop_assert!(s.is_some(), "{} listed but not there", f.address);
            let s = s.unwrap();
            prop_assert_eq!(f.vendor_id, s.vendor);
            for bar in &f.bars {
                prop_assert!(bar.index < 6 && bar.size.is_power_of_two(), "{:?}", bar);
                prop_assert_eq!(bar.address % bar.size, 0, "{:?}", bar);
            }
            prop_assert!(f.capabilities.len() <= 48);
            for c in &f.capabilities {
                prop_assert!(c.offset >= 0x40 && c.offset.is_multiple_of(4), "{:?}", c);
            }
            let _ = f.to_string();
        }
        if sweep {
            for (address, s) in &placed {
                if address.function() == 0 && s.header_type <= 2 {
                    prop_assert!(e.function(*address).is_some(), "{} not found", address);
                }
            }
        }
        prop_assert_eq!(snapshot(&space, &placed), before, "enumeration changed configuration space");

        // Enabling for DMA writes the command register only, status half zero.
        let writes = space.writes().len();
        for address in placed.keys() {
            let _ = pci::enable_for_dma(&space, *address);
        }
        for w in &space.writes()[writes..] {
            prop_assert_eq!(w.offset, 0x04);
            prop_assert_eq!(w.value >> 16, 0);
        }

        // Preparing any function for a driver: the bridge path is made of enumerated bridges
        // ending above the function, at most one 10 ms wait, and a function refused for its BAR
        // (missing, unassigned, outside a window) gets no write at all.
        for f in &e.functions {
            let path = e.upstream_bridges(f);
            prop_assert!(path.len() < usize::from(BUSES));
            prop_assert_eq!(path.last().map(|b| b.address), f.upstream);
            let writes = space.writes().len();
            let mut waited = 0u32;
            let result = pci::prepare_for_driver(&space, &e, f, 0, &mut |us| waited += us);
            prop_assert!(waited <= pci::D3HOT_TO_D0_DELAY_US);
            if matches!(
                result,
                Err(pci::Error::BarMissing { .. }
                    | pci::Error::BarUnassigned { .. }
                    | pci::Error::BarOutsideBridgeWindow { .. })
            ) {
                prop_assert_eq!(space.writes().len(), writes, "{:?}", result);
            }
        }
    }
}
