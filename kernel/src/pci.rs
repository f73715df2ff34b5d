//! PCI on this machine: configuration-space access (ECAM through the ACPI
//! MCFG table, or the legacy 0xCF8/0xCFC ports), the boot-time scan, and
//! preparing NVMe controllers for the driver.
//!
//! ECAM windows are device memory, mapped uncached like BARs. Where the
//! firmware gives no MCFG (QEMU's `pc` machine), the port mechanism reaches
//! segment 0, buses 0-255, offsets below 256, which is all a conventional
//! PCI function has.

use acpi::mcfg::Mcfg;
use alloc::vec::Vec;
use pci::{BusRange, ConfigRegionAccess, Enumeration, Function, PciAddress};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::instructions::port::Port;

use crate::acpi::Acpi;
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

/// One ECAM window: buses `range` at `region`.
pub struct EcamWindow {
    range: BusRange,
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
        let window = windows
            .iter()
            .find(|w| w.range.segment == address.segment() && w.range.contains(address.bus()))?;
        if offset >= 4096 || !offset.is_multiple_of(4) {
            return None;
        }
        let bus = u64::from(address.bus() - window.range.start_bus);
        let at = (bus << 20)
            | (u64::from(address.device()) << 15)
            | (u64::from(address.function()) << 12)
            | u64::from(offset);
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
            ConfigSpace::Ecam(windows) => windows.iter().map(|w| w.range).collect(),
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
        let (segment, start, end, base) = (
            entry.pci_segment_group,
            entry.bus_number_start,
            entry.bus_number_end,
            entry.base_address,
        );
        if end < start {
            log::warn!("MCFG entry for segment {segment} has buses {start}..{end}; skipped");
            continue;
        }
        let len = (u64::from(end - start) + 1) << 20;
        match memory.map_mmio(PhysAddr::new(base), len) {
            Ok(region) => windows.push(EcamWindow {
                range: BusRange {
                    segment,
                    start_bus: start,
                    end_bus: end,
                },
                region,
            }),
            Err(error) => log::warn!("ECAM window at {base:#x} not mapped: {error:?}"),
        }
    }
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
    /// Print the lspci-style listing.
    pub fn print_listing(&self) {
        for function in &self.enumeration.functions {
            crate::println!("{function}");
        }
    }

    /// Enable `function` for DMA (memory decoding, bus mastering, INTx off)
    /// and map its BAR0 uncached: what the NVMe driver needs.
    pub fn prepare_nvme(
        &self,
        memory: &Memory,
        function: &Function,
    ) -> Result<MmioRegion, PciError> {
        let bar = function
            .bar(0)
            .filter(|b| b.is_memory() && b.size > 0)
            .ok_or(PciError::NoMemoryBar)?;
        pci::enable_for_dma(&self.config, function.address).map_err(PciError::Config)?;
        memory
            .map_mmio(PhysAddr::new(bar.address), bar.size)
            .map_err(PciError::Map)
    }
}
