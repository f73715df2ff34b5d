//! The time-stamp counter: reading it, and turning ticks into nanoseconds
//! with the frequency found at boot.
//!
//! `qemu64` advertises no invariant TSC, and real machines differ, so the
//! frequency is never assumed from the CPU model; the `time` module, one
//! layer up, reads it from CPUID or measures it against a counter of known
//! frequency (HPET, ACPI PM timer, PIT) and stores it here. Until then, and on a machine where no
//! source answers, the frequency is taken as [`ASSUMED_HZ`]: higher than any
//! real TSC, so a deadline converted with it lasts at least as long in real
//! time as asked (longer, never shorter).

use core::sync::atomic::{AtomicU64, Ordering};

static FREQUENCY_HZ: AtomicU64 = AtomicU64::new(0);
static ENTRY: AtomicU64 = AtomicU64::new(0);

/// The frequency used before calibration and when no source answers: the
/// fastest TSC the kernel believes in (the `time` module rejects anything
/// faster), so a deadline converted with it lasts at least as long in real
/// time as asked.
pub const ASSUMED_HZ: u64 = 10_000_000_000;

/// Read the time-stamp counter.
#[inline]
pub fn now() -> u64 {
    // SAFETY: `rdtsc` is available on every x86_64 CPU and has no side
    // effects; CR4.TSD is clear in ring 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Remember the TSC at kernel entry; [`since_entry_ns`] counts from here.
pub fn mark_entry() -> u64 {
    let now = now();
    ENTRY.store(now, Ordering::Relaxed);
    now
}

/// Nanoseconds since [`mark_entry`].
pub fn since_entry_ns() -> u64 {
    ticks_to_ns(now().saturating_sub(ENTRY.load(Ordering::Relaxed)))
}

/// Use `hz` from now on (zero is ignored).
pub fn set_frequency_hz(hz: u64) {
    if hz != 0 {
        FREQUENCY_HZ.store(hz, Ordering::Relaxed);
    }
}

/// The calibrated frequency in Hz ([`ASSUMED_HZ`] before calibration).
pub fn frequency_hz() -> u64 {
    match FREQUENCY_HZ.load(Ordering::Relaxed) {
        0 => ASSUMED_HZ,
        hz => hz,
    }
}

/// Convert a TSC tick count to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(frequency_hz())) as u64
}

/// Nanoseconds since the TSC was reset (boot), by the calibrated frequency.
pub fn now_ns() -> u64 {
    ticks_to_ns(now())
}

/// Busy-wait for `us` microseconds.
pub fn delay_us(us: u64) {
    let end = now_ns().saturating_add(us.saturating_mul(1000));
    while now_ns() < end {
        core::hint::spin_loop();
    }
}
