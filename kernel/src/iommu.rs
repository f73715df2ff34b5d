//! IOMMUs left translating by firmware: found through ACPI DMAR and turned
//! off before any NVMe controller is brought up.
//!
//! The kernel gives devices physical addresses. Where firmware left an
//! Intel VT-d unit translating, a device's DMA goes through page tables the
//! kernel never built and faults or lands elsewhere, so [`quiesce`] runs
//! once at the end of [`crate::init`]: for each DRHD in DMAR it maps the
//! unit's register page uncached, reads its state, turns translation off
//! (and protected memory regions, which block DMA even then), and logs what
//! it found. If a unit that was translating cannot be turned off,
//! [`dma_ready`] says so and NVMe attach is refused with that reason.
//!
//! The register logic lives in the host-tested `iommu` crate; this module
//! only supplies the register access (volatile MMIO) and the clock (TSC).

use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use iommu::registers::REGISTER_PAGE;
use iommu::unit::DEFAULT_TIMEOUT_NS;
use iommu::{Clock, Dmar, RegisterAccess, RemappingUnit, UnitError, UnitState};
use spin::Once;
use x86_64::PhysAddr;

use crate::acpi::{Acpi, RawSignature};
use crate::arch::tsc;
use crate::memory::Memory;
use crate::memory::mmio::{MmioError, MmioRegion};

/// One remapping unit's register page, mapped uncached.
#[derive(Clone, Copy)]
pub struct UnitRegisters {
    base: NonNull<u8>,
    len: usize,
}

impl UnitRegisters {
    /// Wrap a mapping of a unit's registers.
    ///
    /// # Safety
    /// `region` must be an uncached mapping of a VT-d unit's register set
    /// (a DRHD's register base) that stays mapped while the value lives.
    pub unsafe fn new(region: MmioRegion) -> Option<UnitRegisters> {
        Some(UnitRegisters {
            base: NonNull::new(region.virt.as_mut_ptr::<u8>())?,
            len: usize::try_from(region.len).ok()?,
        })
    }

    fn pointer(&self, offset: usize) -> Option<*mut u32> {
        let in_range = offset.checked_add(4).is_some_and(|end| end <= self.len);
        (in_range && offset.is_multiple_of(4))
            .then(|| self.base.as_ptr().wrapping_add(offset).cast())
    }
}

impl RegisterAccess for UnitRegisters {
    fn read32(&self, offset: usize) -> u32 {
        match self.pointer(offset) {
            // SAFETY: in bounds and aligned (checked), mapped uncached per
            // `UnitRegisters::new`'s contract.
            Some(pointer) => unsafe { pointer.read_volatile() },
            None => u32::MAX,
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        if let Some(pointer) = self.pointer(offset) {
            // SAFETY: as in `read32`.
            unsafe { pointer.write_volatile(value) }
        }
    }
}

/// Deadlines from the calibrated TSC.
#[derive(Clone, Copy, Default)]
pub struct TscClock;

impl Clock for TscClock {
    fn now_ns(&self) -> u64 {
        tsc::now_ns()
    }
}

/// Why a unit could not be checked or turned off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IommuError {
    /// Its register page could not be mapped.
    Map(MmioError),
    /// The unit did not answer or did not obey.
    Unit(UnitError),
}

impl fmt::Display for IommuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IommuError::Map(error) => write!(f, "registers could not be mapped ({error:?})"),
            IommuError::Unit(error) => write!(f, "{error}"),
        }
    }
}

/// What became of one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Translation was off; nothing was changed (protected memory regions
    /// may have been turned off: see [`UnitReport::protected_memory_off`]).
    WasOff,
    /// Translation was on and has been turned off.
    TurnedOff,
    /// The unit could not be checked, or was translating and could not be
    /// turned off: DMA through it is not safe.
    Failed(IommuError),
}

/// One VT-d unit as found and left.
#[derive(Clone, Copy, Debug)]
pub struct UnitReport {
    /// Physical address of its registers (DRHD register base).
    pub register_base: u64,
    /// PCI segment it covers.
    pub segment: u16,
    /// It covers every device of the segment not claimed by another unit.
    pub include_pci_all: bool,
    /// Its registers before anything was changed (None if unreadable).
    pub before: Option<UnitState>,
    /// Whether protected memory regions were in force and turned off.
    pub protected_memory_off: bool,
    /// What was done.
    pub outcome: Outcome,
}

/// Every VT-d unit the DMAR table names, as [`scan`] left it.
#[derive(Clone, Debug, Default)]
pub struct Iommus {
    /// One entry per DRHD, in table order.
    pub units: Vec<UnitReport>,
}

impl Iommus {
    /// Ok if no unit stands in the way of DMA with physical addresses.
    pub fn dma_ready(&self) -> Result<(), IommuError> {
        self.units.iter().try_for_each(|unit| match unit.outcome {
            Outcome::Failed(error) => Err(error),
            _ => Ok(()),
        })
    }
}

static FOUND: Once<Iommus> = Once::new();

/// Turn off every VT-d unit's translation, once per boot (later calls
/// return the first result). Called by [`crate::init`].
pub fn quiesce(memory: &Memory, rsdp: Option<PhysAddr>) -> &'static Iommus {
    FOUND.call_once(|| scan(memory, rsdp))
}

/// Ok unless [`quiesce`] found a unit translating that it could not turn
/// off (the reason is that unit's error).
pub fn dma_ready() -> Result<(), IommuError> {
    FOUND.get().map_or(Ok(()), Iommus::dma_ready)
}

/// Read DMAR and bring every unit it names to translation off, logging
/// what was found; the work behind [`quiesce`], which tests may repeat.
pub fn scan(memory: &Memory, rsdp: Option<PhysAddr>) -> Iommus {
    let mut found = Iommus::default();
    let acpi = Acpi::new(memory.physical_map(), rsdp);
    let Some(bytes) = acpi.table_bytes(RawSignature::Dmar) else {
        log::debug!("IOMMU: no DMAR table");
        return found;
    };
    let dmar = match Dmar::parse(bytes) {
        Ok(dmar) => dmar,
        Err(error) => {
            log::warn!("IOMMU: DMAR table unreadable ({error}); remapping units not checked");
            return found;
        }
    };
    for unit in dmar.units() {
        match unit {
            Ok(unit) => {
                let report = settle(
                    memory,
                    unit.register_base(),
                    unit.segment(),
                    unit.include_pci_all(),
                );
                found.units.push(report);
            }
            Err(error) => log::warn!("IOMMU: DMAR: {error}"),
        }
    }
    found
}

/// Check one unit and turn its translation off.
fn settle(memory: &Memory, base: u64, segment: u16, include_pci_all: bool) -> UnitReport {
    let mut report = UnitReport {
        register_base: base,
        segment,
        include_pci_all,
        before: None,
        protected_memory_off: false,
        outcome: Outcome::WasOff,
    };
    let region = match memory.map_mmio(PhysAddr::new(base), REGISTER_PAGE) {
        Ok(region) => region,
        Err(error) => {
            log::error!(
                "IOMMU: VT-d unit at {base:#x}: registers not mapped ({error:?}); NVMe attach will be refused"
            );
            report.outcome = Outcome::Failed(IommuError::Map(error));
            return report;
        }
    };
    // SAFETY: `region` is a fresh uncached mapping of the register page the
    // DMAR table names for this unit; the MMIO window is never unmapped.
    let Some(registers) = (unsafe { UnitRegisters::new(region) }) else {
        report.outcome = Outcome::Failed(IommuError::Map(MmioError::BadRegion));
        return report;
    };
    let unit = RemappingUnit::new(registers);
    let clock = TscClock;
    let result = unit.state().and_then(|state| {
        report.before = Some(state);
        report.protected_memory_off = unit.disable_protected_memory(&clock, DEFAULT_TIMEOUT_NS)?;
        unit.disable_translation(&clock, DEFAULT_TIMEOUT_NS)
    });
    report.outcome = match result {
        Ok(false) => Outcome::WasOff,
        Ok(true) => Outcome::TurnedOff,
        Err(error) => Outcome::Failed(IommuError::Unit(error)),
    };
    log_report(&report);
    report
}

fn log_report(report: &UnitReport) {
    let base = report.register_base;
    if let Some(state) = report.before {
        log::info!(
            "IOMMU: VT-d {}.{} unit at {base:#x} (segment {}{}): queued invalidation {}, interrupt remapping {}",
            state.version.major(),
            state.version.minor(),
            report.segment,
            if report.include_pci_all {
                ", all PCI devices"
            } else {
                ""
            },
            on_off(state.status.queued_invalidation_enabled()),
            on_off(state.status.interrupt_remapping_enabled()),
        );
    }
    if report.protected_memory_off {
        log::warn!("IOMMU: VT-d unit at {base:#x} had protected memory regions on; turned off");
    }
    match report.outcome {
        Outcome::WasOff => log::info!("IOMMU: VT-d unit at {base:#x}, translation off"),
        Outcome::TurnedOff => log::warn!(
            "IOMMU: VT-d unit at {base:#x} was translating; turned off before NVMe bring-up"
        ),
        Outcome::Failed(error) => {
            log::error!("IOMMU: VT-d unit at {base:#x}: {error}; NVMe attach will be refused")
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
