//! The kernel's clock: the TSC, with its frequency from the best source the
//! machine has.
//!
//! Sources, best first: CPUID leaf 15h (enumerated, exact; 16h as a hint),
//! the HPET, the ACPI PM timer, and the 8254 PIT last, since recent chipsets
//! clock-gate it or leave it out. The counters are timed against the TSC
//! over short windows (3 × 2 ms, the time to the first I/O matters) and the
//! median kept; the best usable source is checked against the next one
//! (within 1 %). [`select`] holds the decision, free of hardware, so it is
//! unit-tested with made-up machines; the other modules read the sources.
//!
//! Every deadline in the kernel (NVMe timeouts, delays, serial reads, soak
//! and benchmark windows) converts through [`crate::arch::tsc`], which uses
//! the frequency chosen here. With no source at all the frequency assumed is
//! the fastest plausible one, so deadlines run long rather than short.

pub mod counter;
pub mod cpuid;
pub mod hpet;
pub mod pit;
pub mod pm_timer;
pub mod select;

use spin::Once;
use x86_64::PhysAddr;

pub use select::{Calibration, Check, Mhz, Rejection, Source};

use crate::acpi::{Acpi, RawSignature};
use crate::arch::tsc;
use crate::memory::Memory;
use hpet::Hpet;
use pm_timer::PmTimer;
use select::Finding;

/// One boot-time sample window.
const BOOT_WINDOW_NS: u64 = 2_000_000;
/// Samples per source; the median is kept.
const SAMPLES: usize = 3;

/// What the frequency can be measured against again later.
#[derive(Clone, Copy, Debug)]
enum Reference {
    Hpet(Hpet),
    PmTimer(PmTimer),
    Pit,
    /// Enumerated by the CPU, or assumed: nothing to measure.
    Fixed,
}

static REFERENCE: Once<Reference> = Once::new();
static CALIBRATION: Once<Calibration> = Once::new();

/// Find the TSC frequency (see the module documentation), make every
/// conversion in [`tsc`] use it, and return it with its provenance.
/// Runs once, at boot, after memory is set up (the HPET and a memory-mapped
/// PM timer need mapping); later calls return the first result.
pub fn calibrate(memory: &Memory, rsdp: Option<PhysAddr>) -> Calibration {
    *CALIBRATION.call_once(|| calibrate_once(memory, rsdp))
}

/// The boot calibration, if it ran.
pub fn calibration() -> Option<Calibration> {
    CALIBRATION.get().copied()
}

fn calibrate_once(memory: &Memory, rsdp: Option<PhysAddr>) -> Calibration {
    let started = tsc::now();
    let acpi = Acpi::new(memory.physical_map(), rsdp);
    let mut hpet = None;
    let mut pm_timer = None;
    let mut cpuid_leaves = cpuid::Leaves::default();
    // What each source said and how many TSC ticks it took, logged once
    // the frequency is known (and so that logging takes no window's time).
    let mut asked: [Option<(Source, Finding, u64)>; Source::RANKED.len()] =
        [None; Source::RANKED.len()];
    let calibration = select::choose(|source| {
        let source_started = tsc::now();
        let finding = match source {
            Source::Cpuid => {
                let leaves = cpuid::read();
                cpuid_leaves = leaves;
                cpuid::decode(leaves)
            }
            Source::Hpet => match find_hpet(&acpi, memory) {
                Ok(found) => {
                    hpet = Some(found);
                    measured(measure_hpet(&found, BOOT_WINDOW_NS))
                }
                Err(why) => Finding::Rejected(why),
            },
            Source::PmTimer => match PmTimer::from_acpi(&acpi, memory) {
                Ok(found) => {
                    pm_timer = Some(found);
                    measured(counter::measure(&found, BOOT_WINDOW_NS, &mut [0; SAMPLES]))
                }
                Err(why) => Finding::Rejected(why),
            },
            Source::Pit => measured(pit::measure(BOOT_WINDOW_NS, &mut [0; SAMPLES])),
        }
        .plausible();
        if let Some(slot) = asked.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some((source, finding, tsc::now().wrapping_sub(source_started)));
        }
        finding
    });
    tsc::set_frequency_hz(calibration.hz);
    let took_us = tsc::ticks_to_ns(tsc::now().wrapping_sub(started)) / 1000;
    log::debug!("time: CPUID {cpuid_leaves:x?}");
    for (source, finding, ticks) in asked.into_iter().flatten() {
        log_finding(source, finding, tsc::ticks_to_ns(ticks) / 1000);
    }
    let reference = match calibration.source {
        Some(Source::Hpet) => hpet.map_or(Reference::Fixed, Reference::Hpet),
        Some(Source::PmTimer) => pm_timer.map_or(Reference::Fixed, Reference::PmTimer),
        Some(Source::Pit) => Reference::Pit,
        Some(Source::Cpuid) | None => Reference::Fixed,
    };
    REFERENCE.call_once(|| reference);
    match (calibration.source, calibration.check) {
        (None, _) => log::warn!(
            "time: no clock source answered; assuming a {} TSC, so every deadline \
             lasts longer than asked and every rate reads low",
            Mhz(calibration.hz)
        ),
        (Some(_), Check::Disagrees(..)) => {
            log::warn!("time: TSC {} ({calibration})", Mhz(calibration.hz))
        }
        (Some(_), _) => log::info!(
            "time: TSC {} ({calibration}) in {took_us} us, {} window(s) retried",
            Mhz(calibration.hz),
            select::unsteady_windows()
        ),
    }
    calibration
}

fn measured(result: Result<u64, Rejection>) -> Finding {
    result.map_or_else(Finding::Rejected, Finding::Hz)
}

fn log_finding(source: Source, finding: Finding, took_us: u64) {
    match finding {
        Finding::Hz(hz) => log::debug!("time: {source}: TSC {} in {took_us} us", Mhz(hz)),
        Finding::Hint(hz) => log::debug!(
            "time: {source}: TSC about {} (CPUID 16h) in {took_us} us",
            Mhz(hz)
        ),
        Finding::Rejected(Rejection::Absent) => {
            log::debug!("time: {source}: absent ({took_us} us)")
        }
        Finding::Rejected(why) => log::warn!("time: {source} rejected: {why} ({took_us} us)"),
    }
}

fn find_hpet(acpi: &Acpi, memory: &Memory) -> Result<Hpet, Rejection> {
    let table = acpi
        .table_bytes(RawSignature::Hpet)
        .ok_or(Rejection::Absent)?;
    let base = hpet::base_from_table(table)?;
    Hpet::new(memory, base)
}

fn measure_hpet(hpet: &Hpet, window_ns: u64) -> Result<u64, Rejection> {
    hpet.with_counter_running(|hpet| counter::measure(hpet, window_ns, &mut [0; SAMPLES]))
}

/// The HPET, if the boot calibration chose it.
pub fn chosen_hpet() -> Option<Hpet> {
    match REFERENCE.get() {
        Some(Reference::Hpet(hpet)) => Some(*hpet),
        _ => None,
    }
}

/// The result of measuring the TSC again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remeasurement {
    /// Measured against the boot's source; every conversion now uses it.
    Measured {
        /// The source measured against.
        source: Source,
        /// The TSC frequency in Hz.
        hz: u64,
    },
    /// The frequency is enumerated by the CPU or assumed: nothing to
    /// measure against, the boot's value stands.
    Fixed,
    /// The source failed this time; the boot's value stands.
    Failed {
        /// The source measured against.
        source: Source,
        /// Why it failed.
        why: Rejection,
    },
}

/// Measure the TSC again against the source chosen at boot, with windows
/// of `window_ns` (three of them; the PIT allows at most 54 ms), for
/// figures that need more precision than the boot's short windows give
/// (benchmarks). A plausible result replaces the frequency in use.
pub fn remeasure(window_ns: u64) -> Remeasurement {
    let mut samples = [0; SAMPLES];
    let (source, result) = match REFERENCE.get().copied().unwrap_or(Reference::Fixed) {
        Reference::Fixed => return Remeasurement::Fixed,
        Reference::Hpet(hpet) => (Source::Hpet, measure_hpet(&hpet, window_ns)),
        Reference::PmTimer(pm_timer) => (
            Source::PmTimer,
            counter::measure(&pm_timer, window_ns, &mut samples),
        ),
        Reference::Pit => (Source::Pit, pit::measure(window_ns, &mut samples)),
    };
    match measured(result).plausible() {
        Finding::Hz(hz) | Finding::Hint(hz) => {
            tsc::set_frequency_hz(hz);
            Remeasurement::Measured { source, hz }
        }
        Finding::Rejected(why) => Remeasurement::Failed { source, why },
    }
}
