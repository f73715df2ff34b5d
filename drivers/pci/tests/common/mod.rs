//! A simulated PCI configuration space with real register semantics, for the host tests.
//!
//! Each simulated function is 64 dwords with, per dword, a mask of writable bits and a mask of
//! write-1-to-clear bits, so that:
//! - a BAR's writable bits are exactly its address bits at or above its size: writing all-ones
//!   and reading back gives what real hardware gives, and its flag bits are read-only;
//! - identification, class, header type, capability registers are read-only;
//! - the status half of the command dword has write-1-to-clear error bits;
//! - an address with no function reads all-ones and ignores writes.
//!
//! Every write is logged with the command register value at the moment of the write, so tests
//! can check that BARs were sized with decoding off. The fake panics on an access at an
//! unaligned offset or past 0xFF, which the crate promises never to make.
#![allow(dead_code, missing_docs)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use pci::{ConfigurationAccess, PciAddress};

pub const COMMAND_IO: u16 = 1 << 0;
pub const COMMAND_MEMORY: u16 = 1 << 1;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Command bits our simulated functions implement: I/O, memory, bus master, parity error
/// response, SERR, INTx disable.
pub const COMMAND_IMPLEMENTED: u16 = 0x0547;
/// Status: capabilities list.
pub const STATUS_CAPABILITIES: u16 = 1 << 4;
/// Status write-1-to-clear error bits (parity, SERR, master/target abort, signalled abort,
/// master data parity).
pub const STATUS_ERRORS: u16 = 0xf900;

#[derive(Clone)]
pub struct FakeFunction {
    regs: [u32; 64],
    writable: [u32; 64],
    clear_on_one: [u32; 64],
    next_capability: u8,
    last_capability: Option<u8>,
    /// Offset of the power-management capability, if added with [`FakeFunction::power_management`].
    pm_capability: Option<u8>,
    /// Leaving D3hot resets BARs and command (No_Soft_Reset clear).
    soft_reset_on_d0: bool,
}

fn dword(offset: u8) -> usize {
    usize::from(offset / 4)
}

impl FakeFunction {
    /// A type 0 function with no BARs, no capabilities, command 0.
    pub fn endpoint(vendor: u16, device: u16, class: [u8; 3], revision: u8) -> Self {
        let mut f = FakeFunction {
            regs: [0; 64],
            writable: [0; 64],
            clear_on_one: [0; 64],
            next_capability: 0x40,
            last_capability: None,
            pm_capability: None,
            soft_reset_on_d0: false,
        };
        f.regs[0] = u32::from(device) << 16 | u32::from(vendor);
        f.regs[2] = u32::from(class[0]) << 24
            | u32::from(class[1]) << 16
            | u32::from(class[2]) << 8
            | u32::from(revision);
        f.writable[1] = u32::from(COMMAND_IMPLEMENTED);
        f.clear_on_one[1] = u32::from(STATUS_ERRORS) << 16;
        f.writable[dword(0x3c)] = 0xff; // interrupt line
        f
    }

    /// A type 1 PCI-to-PCI bridge (class 06h/04h).
    pub fn bridge(vendor: u16, device: u16, primary: u8, secondary: u8, subordinate: u8) -> Self {
        let mut f = Self::endpoint(vendor, device, [0x06, 0x04, 0x00], 0);
        f.regs[3] = 0x01 << 16;
        f.regs[6] = u32::from(subordinate) << 16 | u32::from(secondary) << 8 | u32::from(primary);
        f.writable[6] = 0x00ff_ffff;
        f
    }

    /// Sets the header-type byte's low seven bits.
    pub fn header_type(mut self, header_type: u8) -> Self {
        self.regs[3] = (self.regs[3] & !(0x7f << 16)) | u32::from(header_type & 0x7f) << 16;
        self
    }

    pub fn multifunction(mut self) -> Self {
        self.regs[3] |= 0x80 << 16;
        self
    }

    pub fn command(mut self, command: u16) -> Self {
        self.regs[1] = (self.regs[1] & 0xffff_0000) | u32::from(command);
        self
    }

    /// Which command bits are writable (default [`COMMAND_IMPLEMENTED`]).
    pub fn command_writable(mut self, writable: u16) -> Self {
        self.writable[1] = u32::from(writable);
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.regs[1] = (self.regs[1] & 0xffff) | u32::from(status) << 16;
        self
    }

    pub fn interrupt_pin(mut self, pin: u8) -> Self {
        self.regs[dword(0x3c)] |= u32::from(pin) << 8;
        self
    }

    /// A BAR slot with an explicit value and writable mask.
    pub fn raw_bar(mut self, index: u8, value: u32, writable: u32) -> Self {
        let i = dword(0x10 + 4 * index);
        self.regs[i] = value;
        self.writable[i] = writable;
        self
    }

    pub fn mem32(self, index: u8, address: u32, size: u32, prefetchable: bool) -> Self {
        assert!(size.is_power_of_two() && size >= 16 && address.is_multiple_of(size));
        let flags = if prefetchable { 0x8 } else { 0 };
        self.raw_bar(index, address | flags, !(size - 1) & !0xf)
    }

    pub fn mem64(self, index: u8, address: u64, size: u64, prefetchable: bool) -> Self {
        assert!(size.is_power_of_two() && size >= 16 && address.is_multiple_of(size));
        let flags = 0x4 | if prefetchable { 0x8 } else { 0 };
        let mask = !(size - 1);
        self.raw_bar(index, address as u32 | flags, mask as u32 & !0xf)
            .raw_bar(index + 1, (address >> 32) as u32, (mask >> 32) as u32)
    }

    /// An I/O BAR of a function that decodes 32 address bits.
    pub fn io(self, index: u8, port: u32, size: u32) -> Self {
        assert!(size.is_power_of_two() && size >= 4 && port.is_multiple_of(size));
        self.raw_bar(index, port | 1, !(size - 1) & !0x3)
    }

    /// An I/O BAR of a function that decodes only 16 address bits (upper bits hard-wired 0).
    pub fn io16(self, index: u8, port: u16, size: u16) -> Self {
        let size = u32::from(size);
        self.raw_bar(index, u32::from(port) | 1, !(size - 1) & 0xfffc)
    }

    /// Appends a capability: header dword (`id`, link, `control` in bits 16..32) then `body`.
    /// Capabilities are placed 16 bytes apart from 0x40 (more for longer bodies).
    pub fn capability(mut self, id: u8, control: u16, body: &[u32]) -> Self {
        let offset = self.next_capability;
        self.regs[dword(offset)] = u32::from(control) << 16 | u32::from(id);
        for (i, value) in body.iter().enumerate() {
            self.regs[dword(offset) + 1 + i] = *value;
        }
        match self.last_capability {
            None => {
                self.regs[dword(0x34)] |= u32::from(offset);
                self.regs[1] |= u32::from(STATUS_CAPABILITIES) << 16;
            }
            Some(last) => self.regs[dword(last)] |= u32::from(offset) << 8,
        }
        self.last_capability = Some(offset);
        let len = 4 * (1 + body.len() as u8);
        self.next_capability = offset + len.div_ceil(16) * 16;
        self
    }

    /// Sets a read-only dword.
    pub fn raw(mut self, offset: u8, value: u32) -> Self {
        self.regs[dword(offset)] = value;
        self.writable[dword(offset)] = 0;
        self
    }

    /// Sets the status capabilities bit.
    pub fn with_capability_list(mut self) -> Self {
        self.regs[1] |= u32::from(STATUS_CAPABILITIES) << 16;
        self
    }

    /// Every register reads all-ones (a function that vanished, or a broken bridge).
    pub fn all_ones() -> Self {
        FakeFunction {
            regs: [u32::MAX; 64],
            writable: [0; 64],
            clear_on_one: [0; 64],
            next_capability: 0x40,
            last_capability: None,
            pm_capability: None,
            soft_reset_on_d0: false,
        }
    }

    /// A bridge's non-prefetchable memory window `base..=limit` (1 MiB granular), writable
    /// as on real bridges.
    pub fn memory_window(mut self, base: u32, limit: u32) -> Self {
        let i = dword(0x20);
        self.regs[i] = (limit >> 16 & 0xfff0) << 16 | (base >> 16 & 0xfff0);
        self.writable[i] = 0xfff0_fff0;
        self
    }

    /// A bridge's 64-bit prefetchable memory window `base..=limit`.
    pub fn prefetchable_window(mut self, base: u64, limit: u64) -> Self {
        let i = dword(0x24);
        let low = |address: u64| (address as u32 >> 16 & 0xfff0) | 0x1;
        self.regs[i] = low(limit) << 16 | low(base);
        self.writable[i] = 0xfff0_fff0;
        self.regs[dword(0x28)] = (base >> 32) as u32;
        self.writable[dword(0x28)] = u32::MAX;
        self.regs[dword(0x2c)] = (limit >> 32) as u32;
        self.writable[dword(0x2c)] = u32::MAX;
        self
    }

    /// A power-management capability (version 1.2) in `state` (0 = D0 .. 3 = D3hot), with
    /// PowerState and PME_En writable and PME_Status write-1-to-clear, as PCI PM 1.2 section
    /// 3.2.4 describes. Without `no_soft_reset`, leaving D3hot resets BARs and command.
    pub fn power_management(mut self, state: u8, no_soft_reset: bool) -> Self {
        let offset = self.next_capability;
        let pmcsr = u32::from(state & 0b11) | if no_soft_reset { 1 << 3 } else { 0 };
        self = self.capability(0x01, 0x0003, &[pmcsr]);
        self.writable[dword(offset + 4)] = 0b11 | 1 << 8;
        self.clear_on_one[dword(offset + 4)] = 1 << 15;
        self.pm_capability = Some(offset);
        self.soft_reset_on_d0 = !no_soft_reset;
        self
    }

    /// Power-state writes are ignored (a function that never leaves its state).
    pub fn power_state_stuck(mut self) -> Self {
        if let Some(offset) = self.pm_capability {
            self.writable[dword(offset + 4)] &= !0b11;
        }
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub address: PciAddress,
    pub offset: u16,
    pub value: u32,
    /// The function's command register when the write happened.
    pub command_before: u16,
}

#[derive(Default)]
pub struct FakeConfigSpace {
    functions: RefCell<BTreeMap<PciAddress, FakeFunction>>,
    writes: RefCell<Vec<Write>>,
    reads: Cell<usize>,
}

impl FakeConfigSpace {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(self, segment: u16, bus: u8, device: u8, function: u8, f: FakeFunction) -> Self {
        self.functions
            .borrow_mut()
            .insert(PciAddress::new(segment, bus, device, function), f);
        self
    }

    /// Reads a dword without logging (for assertions).
    pub fn peek(&self, address: PciAddress, offset: u16) -> u32 {
        self.functions
            .borrow()
            .get(&address)
            .map_or(u32::MAX, |f| f.regs[usize::from(offset / 4)])
    }

    pub fn command(&self, address: PciAddress) -> u16 {
        self.peek(address, 0x04) as u16
    }

    pub fn status(&self, address: PciAddress) -> u16 {
        (self.peek(address, 0x04) >> 16) as u16
    }

    pub fn writes(&self) -> Vec<Write> {
        self.writes.borrow().clone()
    }

    /// Forgets the writes so far (enumeration's BAR probes), to check what comes after.
    pub fn clear_writes(&self) {
        self.writes.borrow_mut().clear();
    }

    /// The power state in the function's PMCSR (its capability added with
    /// [`FakeFunction::power_management`]).
    pub fn power_state(&self, address: PciAddress) -> Option<u8> {
        let functions = self.functions.borrow();
        let f = functions.get(&address)?;
        let offset = f.pm_capability?;
        Some(f.regs[dword(offset + 4)] as u8 & 0b11)
    }

    pub fn reads(&self) -> usize {
        self.reads.get()
    }

    fn check_offset(offset: u16) {
        assert!(
            offset.is_multiple_of(4) && offset <= 0xfc,
            "invalid configuration offset {offset:#x}"
        );
    }
}

impl ConfigurationAccess for FakeConfigSpace {
    fn read(&self, address: PciAddress, offset: u16) -> u32 {
        Self::check_offset(offset);
        self.reads.set(self.reads.get() + 1);
        self.peek(address, offset)
    }

    fn write(&self, address: PciAddress, offset: u16, value: u32) {
        Self::check_offset(offset);
        let mut functions = self.functions.borrow_mut();
        let Some(f) = functions.get_mut(&address) else {
            return;
        };
        self.writes.borrow_mut().push(Write {
            address,
            offset,
            value,
            command_before: f.regs[1] as u16,
        });
        let i = usize::from(offset / 4);
        let before = f.regs[i];
        let kept = f.regs[i] & !f.writable[i];
        let mut new = kept | (value & f.writable[i]);
        new &= !(value & f.clear_on_one[i]);
        f.regs[i] = new;
        let leaves_d3hot = f
            .pm_capability
            .is_some_and(|pm| i == dword(pm + 4) && before & 0b11 == 0b11 && new & 0b11 != 0b11);
        if leaves_d3hot && f.soft_reset_on_d0 {
            // Internal reset: BARs and the command register back to their defaults.
            for bar in dword(0x10)..=dword(0x24) {
                f.regs[bar] &= !f.writable[bar];
            }
            f.regs[1] &= !f.writable[1];
        }
    }
}
