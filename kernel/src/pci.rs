//! PCI on this machine: configuration-space access (ECAM through the ACPI
//! MCFG table, or the legacy 0xCF8/0xCFC ports), the boot-time scan, and
//! preparing NVMe controllers for the driver.
//!
//! ECAM windows are device memory, mapped uncached like BARs. Every MCFG
//! entry (every segment, every bus range) gets a window; the address
//! arithmetic, including that an entry's base is bus 0's even when its start
//! bus is not 0, is the `pci` crate's [`pci::EcamEntry`]. Where the firmware
//! gives no MCFG (QEMU's `pc` machine), the port mechanism reaches segment 0,
//! buses 0-255, offsets below 256, which is all a conventional PCI function
//! has.
//!
//! Intel VMD and RAID-mode controllers hide NVMe drives from this kernel;
//! the listing marks them and tells the user, once, what to change in the
//! firmware setup.

use acpi::mcfg::Mcfg;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;
use pci::{BusRange, ConfigRegionAccess, EcamEntry, Enumeration, Function, PciAddress};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::instructions::port::Port;

use crate::acpi::Acpi;
use crate::arch::tsc;
use crate::memory::Memory;
use crate::memory::mmio::MmioRegion;

/// Why PCI could not be brought up, or a device not prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// An ECAM window or BAR could not be mapped.
    Map(crate::memory::mmio::MmioError),
    /// The function's BAR0 is missing or not memory.
    NoMemoryBar,
    /// The driver crate refused the function.
    Config(pci::Error),
}

impl fmt::Display for PciError {
    /// What went wrong, without the function's address (the caller names it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PciError::Map(error) => write!(f, "BAR0 not mapped: {error:?}"),
            PciError::NoMemoryBar => f.write_str("BAR0 is not a usable memory BAR; skipped"),
            PciError::Config(error) => write!(f, "{}", error.reason()),
        }
    }
}

/// One ECAM window: the buses of one MCFG entry, mapped from the entry's
/// first bus.
pub struct EcamWindow {
    entry: EcamEntry,
    region: MmioRegion,
}

/// How configuration space is reached on this machine.
pub enum ConfigSpace {
    /// PCI Express enhanced configuration access (memory-mapped).
    Ecam(Vec<EcamWindow>),
    /// Configuration mechanism #1 through I/O ports 0xCF8/0xCFC.
    PortIo(Mutex<()>),
}

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

impl ConfigSpace {
    fn ecam_pointer(windows: &[EcamWindow], address: PciAddress, offset: u16) -> Option<*mut u32> {
        let (window, at) = windows.iter().find_map(|window| {
            let at = window.entry.offset_in_window(address, offset)?;
            Some((window, at))
        })?;
        (at + 4 <= window.region.len).then(|| (window.region.virt.as_u64() + at) as *mut u32)
    }

    fn port_address(address: PciAddress, offset: u16) -> Option<u32> {
        (address.segment() == 0 && offset < 256 && offset.is_multiple_of(4)).then(|| {
            0x8000_0000
                | (u32::from(address.bus()) << 16)
                | (u32::from(address.device()) << 11)
                | (u32::from(address.function()) << 8)
                | u32::from(offset)
        })
    }

    /// The bus ranges this access method reaches.
    pub fn ranges(&self) -> Vec<BusRange> {
        match self {
            ConfigSpace::Ecam(windows) => windows.iter().map(|w| w.entry.range()).collect(),
            ConfigSpace::PortIo(_) => alloc::vec![BusRange {
                segment: 0,
                start_bus: 0,
                end_bus: 255
            }],
        }
    }

    /// A short name for the boot log.
    pub fn describe(&self) -> &'static str {
        match self {
            ConfigSpace::Ecam(_) => "ECAM (ACPI MCFG)",
            ConfigSpace::PortIo(_) => "port I/O 0xCF8/0xCFC",
        }
    }
}

impl ConfigRegionAccess for ConfigSpace {
    unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
        match self {
            ConfigSpace::Ecam(windows) => match Self::ecam_pointer(windows, address, offset) {
                // SAFETY: the pointer lies inside an ECAM window mapped
                // uncached at boot, dword-aligned.
                Some(pointer) => unsafe { core::ptr::read_volatile(pointer) },
                None => u32::MAX,
            },
            ConfigSpace::PortIo(lock) => match Self::port_address(address, offset) {
                Some(selector) => {
                    let _guard = lock.lock();
                    // SAFETY: 0xCF8/0xCFC are the PCI configuration ports;
                    // the lock keeps the address/data pair together.
                    unsafe {
                        Port::<u32>::new(CONFIG_ADDRESS).write(selector);
                        Port::<u32>::new(CONFIG_DATA).read()
                    }
                }
                None => u32::MAX,
            },
        }
    }

    unsafe fn write(&self, address: PciAddress, offset: u16, value: u32) {
        match self {
            ConfigSpace::Ecam(windows) => {
                if let Some(pointer) = Self::ecam_pointer(windows, address, offset) {
                    // SAFETY: as in `read`; the caller (the pci crate) owns
                    // the meaning of the write.
                    unsafe { core::ptr::write_volatile(pointer, value) }
                }
            }
            ConfigSpace::PortIo(lock) => {
                if let Some(selector) = Self::port_address(address, offset) {
                    let _guard = lock.lock();
                    // SAFETY: as in `read`.
                    unsafe {
                        Port::<u32>::new(CONFIG_ADDRESS).write(selector);
                        Port::<u32>::new(CONFIG_DATA).write(value);
                    }
                }
            }
        }
    }
}

/// Find configuration space: ECAM if the firmware's ACPI tables have an
/// MCFG, port I/O otherwise.
pub fn config_space(memory: &Memory, rsdp: Option<PhysAddr>) -> ConfigSpace {
    let acpi = Acpi::new(memory.physical_map(), rsdp);
    let Some(tables) = acpi.tables() else {
        log::info!("no ACPI tables; PCI through port I/O");
        return ConfigSpace::PortIo(Mutex::new(()));
    };
    let Ok(mcfg) = tables.find_table::<Mcfg>() else {
        return ConfigSpace::PortIo(Mutex::new(()));
    };
    let mut windows = Vec::new();
    for entry in mcfg.entries() {
        let entry = match EcamEntry::new(
            entry.pci_segment_group,
            entry.bus_number_start,
            entry.bus_number_end,
            entry.base_address,
        ) {
            Ok(entry) => entry,
            Err(error) => {
                log::warn!("{error}");
                continue;
            }
        };
        let start = entry.window_start();
        let Ok(physical) = PhysAddr::try_new(start) else {
            log::warn!("ECAM window at {start:#x} is not a physical address; skipped");
            continue;
        };
        match memory.map_mmio(physical, entry.window_len()) {
            Ok(region) => windows.push(EcamWindow { entry, region }),
            Err(error) => log::warn!("ECAM window at {start:#x} not mapped: {error:?}"),
        }
    }
    let segments: BTreeSet<u16> = windows.iter().map(|w| w.entry.range().segment).collect();
    log::info!(
        "MCFG: {} ECAM window(s) over {} segment(s)",
        windows.len(),
        segments.len()
    );
    if windows.is_empty() {
        ConfigSpace::PortIo(Mutex::new(()))
    } else {
        ConfigSpace::Ecam(windows)
    }
}

/// The machine's PCI functions, found at boot.
pub struct Pci {
    /// Configuration-space access.
    pub config: ConfigSpace,
    /// What the scan found.
    pub enumeration: Enumeration,
}

/// Find configuration space and enumerate every function.
pub fn scan(memory: &Memory, rsdp: Option<PhysAddr>) -> Pci {
    let config = config_space(memory, rsdp);
    let enumeration = pci::enumerate(&config, &config.ranges());
    log::info!(
        "PCI via {}: {} functions, {} problems",
        config.describe(),
        enumeration.functions.len(),
        enumeration.problems.len()
    );
    Pci {
        config,
        enumeration,
    }
}

impl Pci {
    /// Print the lspci-style listing; if an Intel VMD or RAID-mode
    /// controller hides NVMe drives, say so once, after it.
    pub fn print_listing(&self) {
        for function in &self.enumeration.functions {
            crate::println!("{function}");
        }
        if let Some(advice) = self.storage_advice() {
            crate::println!("{advice}");
        }
    }

    /// The message for the user when a controller hides NVMe drives.
    pub fn storage_advice(&self) -> Option<&'static str> {
        self.enumeration
            .storage_hiders()
            .next()
            .map(|_| pci::HIDDEN_STORAGE_ADVICE)
    }

    /// Make `function` ready for the NVMe driver and map its BAR0 uncached:
    /// BAR0 must be assigned and inside the memory windows of every bridge
    /// above it; then memory decoding and bus mastering go on along the
    /// whole path, the function is brought to D0, and INTx is turned off
    /// (see `pci::prepare_for_driver`). A function that fails the checks is
    /// neither enabled nor mapped.
    pub fn prepare_nvme(
        &self,
        memory: &Memory,
        function: &Function,
    ) -> Result<MmioRegion, PciError> {
        let mut delay = |us: u32| tsc::delay_us(u64::from(us));
        let bar = pci::prepare_for_driver(&self.config, &self.enumeration, function, 0, &mut delay)
            .map_err(|error| match error {
                pci::Error::BarMissing { .. } => PciError::NoMemoryBar,
                other => PciError::Config(other),
            })?;
        let physical = PhysAddr::try_new(bar.address).map_err(|_| PciError::NoMemoryBar)?;
        memory.map_mmio(physical, bar.size).map_err(PciError::Map)
    }
}
