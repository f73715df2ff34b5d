//! The domain behind an Intel VMD, modelled: its CFGBAR decodes configuration accesses for its
//! own buses only while the VMD's memory decoding is on, and its drives sit behind a root port
//! of that domain.

mod common;

use std::cell::{Cell, RefCell};

use common::{
    COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE, COMMAND_MEMORY, FakeConfigSpace, FakeFunction,
};
use pci::{
    BusRange, ConfigurationAccess, EcamEntry, Error, MemoryWindow, PciAddress, VmdDomain,
    enumerate, prepare_behind_vmd,
};

const VMD: (u8, u8) = (0, 0x0e);
const CFGBAR: u64 = 0x60_0000_0000;
const MEMBAR1: u64 = 0xa000_0000;
const MEMBAR2: u64 = 0xa400_0000;
const SEGMENT: u16 = 0x1000;

fn vmd_address() -> PciAddress {
    PciAddress::new(0, VMD.0, VMD.1, 0)
}

/// A Tiger Lake VMD (8086:9a0b): CFGBAR 32 MiB (32 buses), MEMBAR1 32 MiB, MEMBAR2 1 MiB,
/// bus restriction capable and set to start at bus 128 (`vmconfig` bits 9..8 = 1).
fn vmd(vmconfig: u32) -> FakeFunction {
    FakeFunction::endpoint(0x8086, 0x9a0b, [0x01, 0x04, 0x00], 0)
        .mem64(0, CFGBAR, 32 << 20, false)
        .mem64(2, MEMBAR1, 32 << 20, false)
        .mem64(4, MEMBAR2, 1 << 20, false)
        .raw(0x40, 0x1)
        .raw(0x44, vmconfig)
}

/// The platform's configuration space (segment 0, port I/O or MCFG), the VMD's domain as the
/// hardware decodes it (buses from 128), and the ECAM window a kernel would map for the
/// domain once [`VmdDomain::read`] has described it.
struct Machine {
    platform: FakeConfigSpace,
    domain: FakeConfigSpace,
    /// The bus the hardware puts at the CFGBAR's first megabyte.
    first_bus: u8,
    mapped: RefCell<Option<EcamEntry>>,
    cfgbar_reads: Cell<usize>,
}

impl Machine {
    fn new(platform: FakeConfigSpace, domain: FakeConfigSpace) -> Self {
        Machine {
            platform,
            domain,
            first_bus: 128,
            mapped: RefCell::new(None),
            cfgbar_reads: Cell::new(0),
        }
    }

    /// What the hardware decodes for a domain access: through the mapped window to a physical
    /// address, then (only with the VMD's memory decoding on, and inside its live CFGBAR) to a
    /// function of the domain.
    fn decode(&self, address: PciAddress, offset: u16) -> Option<(PciAddress, u16)> {
        let physical = self
            .mapped
            .borrow()
            .as_ref()?
            .physical_address(address, offset)?;
        if self.platform.command(vmd_address()) & COMMAND_MEMORY == 0 {
            return None;
        }
        let low = u64::from(self.platform.peek(vmd_address(), 0x10) & !0xf);
        let cfgbar = u64::from(self.platform.peek(vmd_address(), 0x14)) << 32 | low;
        let within = physical.checked_sub(cfgbar)?;
        if within >= 32 << 20 {
            return None;
        }
        self.cfgbar_reads.set(self.cfgbar_reads.get() + 1);
        let at = PciAddress::new(
            0,
            self.first_bus + (within >> 20) as u8,
            (within >> 15 & 0x1f) as u8,
            (within >> 12 & 0x7) as u8,
        );
        Some((at, (within & 0xfff) as u16))
    }
}

impl ConfigurationAccess for Machine {
    fn read(&self, address: PciAddress, offset: u16) -> u32 {
        if address.segment() == 0 {
            return self.platform.read(address, offset);
        }
        match self.decode(address, offset) {
            Some((at, offset)) => self.domain.read(at, offset),
            None => u32::MAX,
        }
    }

    fn write(&self, address: PciAddress, offset: u16, value: u32) {
        if address.segment() == 0 {
            return self.platform.write(address, offset, value);
        }
        if let Some((at, offset)) = self.decode(address, offset) {
            self.domain.write(at, offset, value)
        }
    }
}

fn platform(vmd: FakeFunction) -> FakeConfigSpace {
    FakeConfigSpace::new()
        .with(
            0,
            0,
            0,
            0,
            FakeFunction::endpoint(0x8086, 0x9a14, [0x06, 0x00, 0x00], 1),
        )
        .with(0, VMD.0, VMD.1, 0, vmd)
}

/// The domain: root port 80:06.0 (window MEMBAR1's first MiB) to bus 0x81, NVMe 81:00.0 with
/// BAR0 at `bar0`, in D3hot; everything off as firmware leaves it.
fn domain_space(bar0: u64) -> FakeConfigSpace {
    FakeConfigSpace::new()
        .with(
            0,
            0x80,
            6,
            0,
            FakeFunction::bridge(0x8086, 0x464d, 0x80, 0x81, 0x81)
                .memory_window(MEMBAR1 as u32, MEMBAR1 as u32 + 0xf_ffff),
        )
        .with(
            0,
            0x81,
            0,
            0,
            FakeFunction::endpoint(0x144d, 0xa80a, [0x01, 0x08, 0x02], 0)
                .mem64(0, bar0, 16 * 1024, false)
                .power_management(3, true),
        )
}

/// Reads the domain, enables the VMD, "maps" the CFGBAR, and enumerates the domain.
fn bring_up(machine: &Machine) -> (VmdDomain, pci::Enumeration) {
    let platform = enumerate(machine, &[BusRange::LEGACY]);
    let vmd = platform.function(vmd_address()).expect("VMD enumerated");
    assert_eq!(vmd.storage_hider(), Some(pci::StorageHider::IntelVmd));
    let domain = VmdDomain::read(machine, vmd, SEGMENT).expect("VMD domain");
    *machine.mapped.borrow_mut() = Some(domain.ecam());
    // With the VMD's memory decoding off (as found), its domain reads nothing.
    assert!(enumerate(machine, &[domain.range()]).functions.is_empty());
    domain.enable(machine).expect("VMD enabled");
    let enumeration = enumerate(machine, &[domain.range()]);
    (domain, enumeration)
}

#[test]
fn the_domain_is_read_from_the_vmd_registers() {
    let machine = Machine::new(platform(vmd(0x100)), domain_space(MEMBAR1));
    let (domain, _) = bring_up(&machine);
    assert_eq!(domain.controller(), vmd_address());
    assert_eq!(
        domain.range(),
        BusRange {
            segment: SEGMENT,
            start_bus: 128,
            end_bus: 159
        }
    );
    assert_eq!(domain.ecam().window_start(), CFGBAR);
    assert_eq!(domain.ecam().window_len(), 32 << 20);
    let windows: Vec<MemoryWindow> = domain.windows().collect();
    assert_eq!(
        windows,
        [
            MemoryWindow {
                base: MEMBAR1,
                limit: MEMBAR1 + (32 << 20) - 1
            },
            // MEMBAR2 less the VMD's own MSI-X table and pending bits.
            MemoryWindow {
                base: MEMBAR2 + 0x2000,
                limit: MEMBAR2 + (1 << 20) - 1
            },
        ]
    );
    assert_eq!(
        machine.platform.command(vmd_address()),
        COMMAND_MEMORY | COMMAND_BUS_MASTER
    );
}

#[test]
fn drives_behind_the_vmd_are_enumerated_and_prepared() {
    let machine = Machine::new(platform(vmd(0x100)), domain_space(MEMBAR1));
    let (domain, enumeration) = bring_up(&machine);
    let found: Vec<String> = enumeration
        .functions
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    assert_eq!(found, ["1000:80:06.0", "1000:81:00.0"]);
    let drive = enumeration.nvme_controllers().next().expect("NVMe found");
    assert_eq!(drive.upstream, Some(PciAddress::new(SEGMENT, 0x80, 6, 0)));
    assert!(machine.cfgbar_reads.get() > 0);

    let mut waited = 0;
    let bar = prepare_behind_vmd(&machine, &enumeration, &domain, drive, 0, &mut |us| {
        waited += us
    })
    .expect("prepared");
    assert_eq!(bar.address, MEMBAR1);
    assert_eq!(waited, pci::D3HOT_TO_D0_DELAY_US);
    let root_port = PciAddress::new(0, 0x80, 6, 0);
    let nvme = PciAddress::new(0, 0x81, 0, 0);
    assert_eq!(
        machine.domain.command(root_port),
        COMMAND_MEMORY | COMMAND_BUS_MASTER
    );
    assert_eq!(
        machine.domain.command(nvme),
        COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE
    );
    assert_eq!(machine.domain.power_state(nvme), Some(0));
}

#[test]
fn a_drive_outside_the_vmd_windows_is_skipped_and_nothing_is_written() {
    // Inside the root port's window (set to match) but not in MEMBAR1 or MEMBAR2.
    let outside = 0xb000_0000;
    let space = domain_space(outside).with(
        0,
        0x80,
        6,
        0,
        FakeFunction::bridge(0x8086, 0x464d, 0x80, 0x81, 0x81)
            .memory_window(outside as u32, outside as u32 + 0xf_ffff),
    );
    let machine = Machine::new(platform(vmd(0x100)), space);
    let (domain, enumeration) = bring_up(&machine);
    let drive = enumeration.nvme_controllers().next().unwrap();
    machine.domain.clear_writes();
    machine.platform.clear_writes();
    let error =
        prepare_behind_vmd(&machine, &enumeration, &domain, drive, 0, &mut |_| {}).unwrap_err();
    assert_eq!(
        error,
        Error::BarOutsideVmdWindow {
            address: drive.address,
            index: 0,
            bar_address: outside,
            controller: vmd_address(),
        }
    );
    assert_eq!(
        error.reason().to_string(),
        "BAR0 0xb0000000 outside the windows of Intel VMD 0000:00:0e.0; skipped"
    );
    assert!(machine.domain.writes().is_empty());
    assert!(machine.platform.writes().is_empty());
}

#[test]
fn bus_restriction_and_cfgbar_defects() {
    // No restriction setting: the domain starts at bus 0 of its segment.
    let machine = Machine::new(platform(vmd(0x000)), domain_space(MEMBAR1));
    let enumeration = enumerate(&machine, &[BusRange::LEGACY]);
    let vmd_function = enumeration.function(vmd_address()).unwrap();
    let domain = VmdDomain::read(&machine, vmd_function, SEGMENT).unwrap();
    assert_eq!((domain.range().start_bus, domain.range().end_bus), (0, 31));

    let machine = Machine::new(platform(vmd(0x300)), domain_space(MEMBAR1));
    let enumeration = enumerate(&machine, &[BusRange::LEGACY]);
    let vmd_function = enumeration.function(vmd_address()).unwrap();
    assert_eq!(
        VmdDomain::read(&machine, vmd_function, SEGMENT),
        Err(Error::VmdBusRestrictionReserved {
            address: vmd_address()
        })
    );

    let unassigned =
        FakeFunction::endpoint(0x8086, 0x9a0b, [0x01, 0x04, 0x00], 0).mem64(0, 0, 32 << 20, false);
    let machine = Machine::new(platform(unassigned), domain_space(MEMBAR1));
    let enumeration = enumerate(&machine, &[BusRange::LEGACY]);
    let vmd_function = enumeration.function(vmd_address()).unwrap();
    assert_eq!(
        VmdDomain::read(&machine, vmd_function, SEGMENT),
        Err(Error::BarUnassigned {
            address: vmd_address(),
            index: 0
        })
    );

    let host = enumeration.function(PciAddress::new(0, 0, 0, 0)).unwrap();
    assert_eq!(
        VmdDomain::read(&machine, host, SEGMENT),
        Err(Error::NotVmd {
            address: PciAddress::new(0, 0, 0, 0)
        })
    );
}
