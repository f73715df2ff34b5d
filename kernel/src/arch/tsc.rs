//! Time from the time-stamp counter, calibrated against the PIT at boot.
//!
//! `qemu64` advertises no invariant TSC, and real machines differ, so the
//! frequency is measured, never assumed: a PIT one-shot is timed with
//! `rdtsc`, three times, and the median kept. At boot the one-shot lasts
//! 2 ms (the time to the first I/O matters); [`calibrate_ms`] measures
//! again with a longer one when precision matters more (benchmarks).

use core::sync::atomic::{AtomicU64, Ordering};

static FREQUENCY_HZ: AtomicU64 = AtomicU64::new(0);
static ENTRY: AtomicU64 = AtomicU64::new(0);
/// Used when the PIT does not answer: a plausible 2 GHz, flagged in the log.
const FALLBACK_HZ: u64 = 2_000_000_000;
/// PIT ticks per millisecond (1.193182 MHz).
const PIT_TICKS_PER_MS: u64 = 1_193;
/// The boot calibration's one-shot, in milliseconds.
const BOOT_CALIBRATION_MS: u64 = 2;
/// Port reads before giving up on a PIT that never fires (some firmware
/// gates the 8254 off): about a second at worst on real hardware, where a
/// port read takes about a microsecond.
const MAX_POLLS: u64 = 1_000_000;

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

/// Measure the TSC frequency against the PIT and remember it.
/// Returns the frequency and whether it was measured (false: fallback).
pub fn calibrate() -> (u64, bool) {
    calibrate_ms(BOOT_CALIBRATION_MS)
}

/// As [`calibrate`], with one-shots of `ms` milliseconds (at most 54).
pub fn calibrate_ms(ms: u64) -> (u64, bool) {
    let ticks = (ms.clamp(1, 54) * PIT_TICKS_PER_MS) as u16;
    let mut samples = [0u64; 3];
    let mut measured = true;
    for sample in &mut samples {
        let mut start = 0;
        let ok = super::pit::one_shot(ticks, MAX_POLLS, || start = now());
        let end = now();
        if !ok {
            measured = false;
            break;
        }
        *sample = (end - start) * super::pit::FREQUENCY_HZ / u64::from(ticks);
    }
    let hz = if measured {
        samples.sort_unstable();
        samples[1]
    } else {
        FALLBACK_HZ
    };
    FREQUENCY_HZ.store(hz, Ordering::Relaxed);
    (hz, measured)
}

/// The calibrated frequency in Hz (the fallback before calibration).
pub fn frequency_hz() -> u64 {
    match FREQUENCY_HZ.load(Ordering::Relaxed) {
        0 => FALLBACK_HZ,
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
