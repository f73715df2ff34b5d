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
//! Intel VMD and RAID-mode controllers hide NVMe drives; the listing marks
//! them and tells the user, once, what to change in the firmware setup. The
//! domain behind each Intel VMD is scanned too (its CFGBAR is one more ECAM
//! window, its domain a segment numbered from 0x1000), so drives the
//! firmware set up there can still be used.

use acpi::mcfg::Mcfg;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;
use pci::{
    BusRange, ConfigurationAccess, EcamEntry, Enumeration, Function, PciAddress, StorageHider,
    VmdDomain,
};
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
    /// The dword at `offset` of the function at `address`, inside a mapped
    /// window: `None` unless the offset is dword-aligned and below 4 KiB and
    /// the window reaches the address (see `EcamEntry::offset_in_window`).
    fn ecam_pointer(windows: &[EcamWindow], address: PciAddress, offset: u16) -> Option<*mut u32> {
        let (window, at) = windows.iter().find_map(|window| {
            let at = window.entry.offset_in_window(address, offset)?;
            Some((window, at))
        })?;
        (at + 4 <= window.region.len).then(|| (window.region.virt.as_u64() + at) as *mut u32)
    }

    /// The CONFIG_ADDRESS value for `address` and `offset`: `None` unless
    /// segment 0 and a dword-aligned offset below 256, all the mechanism
    /// reaches.
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

/// Every access is sound whatever the caller passes, as the trait requires:
/// an offset or address outside what the mechanism reaches reads all-ones and
/// drops the write (`ecam_pointer`, `port_address`).
impl ConfigurationAccess for ConfigSpace {
    fn read(&self, address: PciAddress, offset: u16) -> u32 {
        match self {
            ConfigSpace::Ecam(windows) => match Self::ecam_pointer(windows, address, offset) {
                // SAFETY: `ecam_pointer` only returns a dword-aligned
                // pointer whose four bytes lie inside an ECAM window mapped
                // uncached at boot for the kernel's life; a configuration
                // read has no effect on memory the kernel owns.
                Some(pointer) => unsafe { core::ptr::read_volatile(pointer) },
                None => u32::MAX,
            },
            ConfigSpace::PortIo(lock) => match Self::port_address(address, offset) {
                Some(selector) => {
                    let _guard = lock.lock();
                    // SAFETY: 0xCF8/0xCFC are the PCI configuration ports,
                    // used by nothing else in the kernel; the lock keeps the
                    // address/data pair together.
                    unsafe {
                        Port::<u32>::new(CONFIG_ADDRESS).write(selector);
                        Port::<u32>::new(CONFIG_DATA).read()
                    }
                }
                None => u32::MAX,
            },
        }
    }

    fn write(&self, address: PciAddress, offset: u16, value: u32) {
        match self {
            ConfigSpace::Ecam(windows) => {
                if let Some(pointer) = Self::ecam_pointer(windows, address, offset) {
                    // SAFETY: as in `read`, a pointer inside a mapped ECAM
                    // window; the write changes device registers only, and
                    // what is written is the pci crate's (or a test's) to
                    // decide.
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

/// Map the ECAM window of `entry` uncached; `None` (logged) if it cannot be.
fn map_window(memory: &Memory, entry: EcamEntry) -> Option<EcamWindow> {
    let start = entry.window_start();
    let Ok(physical) = PhysAddr::try_new(start) else {
        log::warn!("ECAM window at {start:#x} is not a physical address; skipped");
        return None;
    };
    match memory.map_mmio(physical, entry.window_len()) {
        Ok(region) => Some(EcamWindow { entry, region }),
        Err(error) => {
            log::warn!("ECAM window at {start:#x} not mapped: {error:?}");
            None
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
        windows.extend(map_window(memory, entry));
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
    /// What the scan found, the domains behind Intel VMDs included.
    pub enumeration: Enumeration,
    /// The Intel VMD domains that were scanned.
    pub vmd_domains: Vec<VmdDomain>,
}

/// The first segment number given to an Intel VMD's domain (MCFG segments
/// are far below it on PCs; a number the MCFG uses is skipped).
const FIRST_VMD_SEGMENT: u16 = 0x1000;

/// Find configuration space and enumerate every function: every MCFG
/// segment and bus range, then the domain behind each Intel VMD.
pub fn scan(memory: &Memory, rsdp: Option<PhysAddr>) -> Pci {
    let mut config = config_space(memory, rsdp);
    let mut enumeration = pci::enumerate(&config, &config.ranges());
    let vmd_domains = scan_vmd_domains(memory, &mut config, &mut enumeration);
    log::info!(
        "PCI via {}: {} functions, {} problems",
        config.describe(),
        enumeration.functions.len(),
        enumeration.problems.len()
    );
    Pci {
        config,
        enumeration,
        vmd_domains,
    }
}

/// Enable each Intel VMD, map its CFGBAR as one more ECAM window, and add
/// the functions of its domain to `enumeration`. A VMD whose domain cannot
/// be read is logged and left as it is.
fn scan_vmd_domains(
    memory: &Memory,
    config: &mut ConfigSpace,
    enumeration: &mut Enumeration,
) -> Vec<VmdDomain> {
    let vmds: Vec<Function> = enumeration
        .storage_hiders()
        .filter(|(_, hider)| *hider == StorageHider::IntelVmd)
        .map(|(function, _)| function.clone())
        .collect();
    let mut domains = Vec::new();
    if vmds.is_empty() {
        return domains;
    }
    if !matches!(config, ConfigSpace::Ecam(_)) {
        log::warn!("Intel VMD found, but no MCFG: the drives behind it are not scanned");
        return domains;
    }
    let used: BTreeSet<u16> = config.ranges().iter().map(|r| r.segment).collect();
    let mut segment = FIRST_VMD_SEGMENT;
    for vmd in vmds {
        while used.contains(&segment) {
            segment += 1;
        }
        let domain = match VmdDomain::read(config, &vmd, segment) {
            Ok(domain) => domain,
            Err(error) => {
                log::warn!("Intel VMD {error}");
                continue;
            }
        };
        if let Err(error) = domain.enable(config) {
            log::warn!("Intel VMD {error}");
            continue;
        }
        let Some(window) = map_window(memory, domain.ecam()) else {
            continue;
        };
        if let ConfigSpace::Ecam(windows) = config {
            windows.push(window);
        }
        let found = pci::enumerate(config, &[domain.range()]);
        let range = domain.range();
        log::info!(
            "Intel VMD {}: domain {:04x}:{:02x}-{:02x}, {} functions",
            vmd.address,
            range.segment,
            range.start_bus,
            range.end_bus,
            found.functions.len()
        );
        enumeration.functions.extend(found.functions);
        enumeration.problems.extend(found.problems);
        enumeration.swept_root_buses.extend(found.swept_root_buses);
        domains.push(domain);
        segment += 1;
    }
    enumeration
        .functions
        .sort_by_key(|function| function.address);
    domains
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

    /// The message for the user when a controller hides NVMe drives: any
    /// RAID-mode controller, or an Intel VMD whose domain was not scanned or
    /// showed no NVMe controller.
    pub fn storage_advice(&self) -> Option<&'static str> {
        let hides = |function: &Function, hider: StorageHider| match hider {
            StorageHider::IntelVmd => !self.vmd_domains.iter().any(|domain| {
                domain.controller() == function.address
                    && self
                        .enumeration
                        .nvme_controllers()
                        .any(|nvme| domain.contains(nvme))
            }),
            _ => true,
        };
        self.enumeration
            .storage_hiders()
            .any(|(function, hider)| hides(function, hider))
            .then_some(pci::HIDDEN_STORAGE_ADVICE)
    }

    /// Make `function` ready for the NVMe driver and map its BAR0 uncached:
    /// BAR0 must be assigned and inside the memory windows of every bridge
    /// above it; then memory decoding and bus mastering go on along the
    /// whole path, the function is brought to D0, and INTx is turned off
    /// (see `pci::prepare_for_driver`). Behind an Intel VMD, BAR0 must also
    /// lie in the VMD's memory windows (`pci::prepare_behind_vmd`). A
    /// function that fails the checks is neither enabled nor mapped.
    pub fn prepare_nvme(
        &self,
        memory: &Memory,
        function: &Function,
    ) -> Result<MmioRegion, PciError> {
        let mut delay = |us: u32| tsc::delay_us(u64::from(us));
        let vmd = self.vmd_domains.iter().find(|d| d.contains(function));
        let prepared = match vmd {
            Some(domain) => pci::prepare_behind_vmd(
                &self.config,
                &self.enumeration,
                domain,
                function,
                0,
                &mut delay,
            ),
            None => {
                pci::prepare_for_driver(&self.config, &self.enumeration, function, 0, &mut delay)
            }
        };
        let bar = prepared.map_err(|error| match error {
            pci::Error::BarMissing { .. } => PciError::NoMemoryBar,
            other => PciError::Config(other),
        })?;
        let physical = PhysAddr::try_new(bar.address).map_err(|_| PciError::NoMemoryBar)?;
        memory.map_mmio(physical, bar.size).map_err(PciError::Map)
    }
}
