//! A configuration space built from fuzz bytes, shared by the PCI targets.
//!
//! Every function is 64 dwords of fuzzer-chosen registers with a
//! fuzzer-chosen writable mask per BAR slot (so BAR sizing reads back
//! whatever a device might answer) and a writable command register.
//! Absent functions read all-ones. Accesses the `pci` crate promises never to
//! make (unaligned or past 0xFC) panic, and every access is counted so the
//! targets can check the walk is bounded.

use pci::{ConfigurationAccess, PciAddress};
use std::cell::Cell;
use std::collections::BTreeMap;

pub struct FakeFunction {
    pub regs: [u32; 64],
    pub writable: [u32; 64],
}

impl FakeFunction {
    /// Registers from `bytes` (zero-padded to 256), BAR masks from the
    /// 24 bytes after them.
    pub fn from_bytes(bytes: &[u8]) -> FakeFunction {
        let mut raw = [0u8; 256 + 24];
        let n = bytes.len().min(raw.len());
        raw[..n].copy_from_slice(&bytes[..n]);
        let word = |i: usize| u32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().unwrap());
        let mut regs = [0u32; 64];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = word(i);
        }
        let mut writable = [0u32; 64];
        writable[1] = 0x0000_0547;
        for slot in 0..6 {
            writable[4 + slot] = word(64 + slot);
        }
        FakeFunction { regs, writable }
    }
}

#[derive(Default)]
pub struct FakeConfigSpace {
    pub functions: std::cell::RefCell<BTreeMap<PciAddress, FakeFunction>>,
    pub accesses: Cell<u64>,
}

fn check(offset: u16) {
    assert!(
        offset.is_multiple_of(4) && offset <= 0xfc,
        "configuration access at offset {offset:#x}"
    );
}

impl ConfigurationAccess for FakeConfigSpace {
    fn read(&self, address: PciAddress, offset: u16) -> u32 {
        check(offset);
        self.accesses.set(self.accesses.get() + 1);
        self.functions
            .borrow()
            .get(&address)
            .map_or(u32::MAX, |f| f.regs[usize::from(offset / 4)])
    }

    fn write(&self, address: PciAddress, offset: u16, value: u32) {
        check(offset);
        self.accesses.set(self.accesses.get() + 1);
        if let Some(f) = self.functions.borrow_mut().get_mut(&address) {
            let i = usize::from(offset / 4);
            f.regs[i] = (f.regs[i] & !f.writable[i]) | (value & f.writable[i]);
        }
    }
}

/// Checks what every enumeration result must satisfy.
pub fn check_enumeration(e: &pci::Enumeration) {
    for f in &e.functions {
        for bar in &f.bars {
            assert!(bar.index < 6);
            assert!(bar.size.is_power_of_two(), "BAR size {:#x}", bar.size);
            let _ = bar.end();
        }
        assert!(f.capabilities.len() <= 48, "capability walk not bounded");
        for c in &f.capabilities {
            assert!(c.offset >= 0x40 && c.offset.is_multiple_of(4));
        }
        let _ = (f.class_name(), f.is_nvme(), f.msix(), format!("{f}"));
    }
    let mut addresses: Vec<_> = e.functions.iter().map(|f| f.address).collect();
    addresses.dedup();
    assert_eq!(
        addresses.len(),
        e.functions.len(),
        "a function listed twice"
    );
}
