//! Enumeration of a whole configuration space from the fuzzer: functions at
//! fuzzer-chosen addresses on buses 0..16, bridges pointing anywhere
//! (loops, backwards, outside the range), multi-function flags, host-bridge
//! functions. Enumeration must end, visit each bus at most once and list
//! each function at most once.
//!
//! Input: records of 1 address byte (bus 0..16 in bits 7..4 with device
//! 0..8 in bits 3..1 and function 0 or 1 in bit 0), 1 length byte, then
//! that many register bytes (zero-padded to 256; BAR masks as in
//! `pci_function`).
#![no_main]

mod fake_pci;

use fake_pci::{FakeConfigSpace, FakeFunction, check_enumeration};
use libfuzzer_sys::fuzz_target;
use pci::{BusRange, EnumerationOptions, PciAddress};

fuzz_target!(|data: &[u8]| {
    let space = FakeConfigSpace::default();
    let mut rest = data;
    while let [place, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, after) = tail.split_at(n);
        let address = PciAddress::new(0, place >> 4, (place >> 1) & 7, place & 1);
        space
            .functions
            .borrow_mut()
            .insert(address, FakeFunction::from_bytes(bytes));
        rest = after;
    }
    let range = BusRange {
        segment: 0,
        start_bus: 0,
        end_bus: 15,
    };
    let sweep = data.first().is_some_and(|b| b & 1 == 0);
    let e = pci::enumerate_with(
        &space,
        &[range],
        EnumerationOptions {
            sweep_unreached_buses: sweep,
        },
    );
    check_enumeration(&e);
    assert!(e.functions.len() <= space.functions.borrow().len());
    // Each of 16 buses scanned once: 32 devices x 8 functions, each read in
    // full (header, BARs probed and restored, capabilities) at most.
    assert!(space.accesses.get() <= 16 * 32 * 8 * 200);
    // Each function's bridge path is a chain of enumerated bridges, root
    // first, ending above the function; preparing any function ends.
    for function in &e.functions {
        let path = e.upstream_bridges(function);
        assert!(path.len() <= e.functions.len());
        if let Some(last) = path.last() {
            assert_eq!(Some(last.address), function.upstream);
        }
        let _ = pci::prepare_for_driver(&space, &e, function, 0, &mut |_: u32| {});
    }
});
