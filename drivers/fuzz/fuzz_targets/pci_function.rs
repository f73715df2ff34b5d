//! One PCI function whose configuration space comes from the fuzzer:
//! header decoding, BAR sizing and decoding, the capability walk,
//! enabling it for DMA, and preparing it for a driver.
//!
//! Input: 256 bytes of registers, then 6 little-endian dwords, the
//! writable masks of BAR slots 0..6 (what reads back after writing ones).
#![no_main]

mod fake_pci;

use fake_pci::{FakeConfigSpace, FakeFunction, check_enumeration};
use libfuzzer_sys::fuzz_target;
use pci::{BusRange, PciAddress};

fuzz_target!(|data: &[u8]| {
    let space = FakeConfigSpace::default();
    let address = PciAddress::new(0, 0, 0, 0);
    space
        .functions
        .borrow_mut()
        .insert(address, FakeFunction::from_bytes(data));
    let range = BusRange {
        segment: 0,
        start_bus: 0,
        end_bus: 3,
    };
    let e = pci::enumerate(&space, &[range]);
    check_enumeration(&e);
    assert!(e.functions.len() <= 1);
    // 4 buses x 32 devices, one function with a full header: far below this.
    assert!(space.accesses.get() < 4 * 32 * 8 * 2 + 2048);
    let _ = pci::enable_for_dma(&space, address);
    // Preparing it for a driver: BAR checks, power state from the fuzzer's
    // PMCSR (never more than one 10 ms wait), command register.
    if let Some(function) = e.functions.first() {
        let mut waited = 0u64;
        let _ = pci::prepare_for_driver(&space, &e, function, 0, &mut |us: u32| {
            waited += u64::from(us)
        });
        assert!(waited <= u64::from(pci::D3HOT_TO_D0_DELAY_US));
    }
});
