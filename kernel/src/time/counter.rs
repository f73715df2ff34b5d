//! Timing the TSC against a free-running counter of known frequency (HPET
//! main counter, ACPI PM timer).
//!
//! Each sample starts on a tick edge of the counter (the TSC is read right
//! after the read that saw it change) and ends on one the same way, so the
//! two read latencies cancel. The counter may wrap during a window: the
//! difference of consecutive reads is taken modulo its width. Every wait is
//! bounded without knowing the TSC frequency: a counter that stops changing
//! is caught by counting identical reads, and one that crawls by a TSC
//! budget that only a TSC faster than any real one could exhaust.

use super::select::{self, MAX_PLAUSIBLE_HZ, Rejection};
use crate::arch::tsc;

/// Consecutive identical reads after which a counter is declared stuck.
/// Every real source ticks at least every 1 µs and a read takes longer
/// than 100 ns, so this is tens of milliseconds at the very least.
const MAX_IDENTICAL_READS: u32 = 200_000;
/// A window may take this many times its length at the fastest plausible
/// TSC before the counter is declared too slow.
const TIME_BUDGET_FACTOR: u64 = 4;

/// A counter the TSC can be timed against.
pub trait Counter {
    /// The counter's value; only the bits in [`Counter::mask`] count.
    fn read(&self) -> u64;
    /// The counter's width as a mask (`0xff_ffff` for 24 bits).
    fn mask(&self) -> u64;
    /// Ticks per second.
    fn hz(&self) -> u64;
}

/// TSC ticks that `window_ns` may take at most, by [`MAX_PLAUSIBLE_HZ`].
pub fn tsc_budget(window_ns: u64) -> u64 {
    let ticks = u128::from(window_ns) * u128::from(MAX_PLAUSIBLE_HZ) / 1_000_000_000;
    u64::try_from(ticks)
        .unwrap_or(u64::MAX)
        .saturating_mul(TIME_BUDGET_FACTOR)
}

/// The TSC frequency: the median of `samples.len()` windows of `window_ns`
/// nanoseconds each, measured against `counter`.
pub fn measure(
    counter: &impl Counter,
    window_ns: u64,
    samples: &mut [u64],
) -> Result<u64, Rejection> {
    let first = counter.read() & counter.mask();
    if first == counter.mask() && counter.read() & counter.mask() == counter.mask() {
        return Err(Rejection::AllOnes);
    }
    let window_ticks = window_ticks(counter.hz(), window_ns);
    for sample in samples.iter_mut() {
        *sample = one_window(counter, window_ticks, window_ns)?;
    }
    Ok(select::median(samples))
}

/// Counter ticks in `window_ns` (at least one).
fn window_ticks(hz: u64, window_ns: u64) -> u64 {
    let ticks = u128::from(hz) * u128::from(window_ns) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Read the counter until it changes: (new value, TSC right after).
fn next_edge(counter: &impl Counter, from: u64) -> Result<(u64, u64), Rejection> {
    for _ in 0..MAX_IDENTICAL_READS {
        let value = counter.read() & counter.mask();
        let now = tsc::now();
        if value != from {
            return Ok((value, now));
        }
    }
    Err(Rejection::Stuck)
}

fn one_window(counter: &impl Counter, window_ticks: u64, window_ns: u64) -> Result<u64, Rejection> {
    let mask = counter.mask();
    let (mut last, start) = next_edge(counter, counter.read() & mask)?;
    let budget = tsc_budget(window_ns);
    let mut elapsed = 0u64;
    loop {
        let (value, now) = next_edge(counter, last)?;
        elapsed = elapsed.saturating_add(value.wrapping_sub(last) & mask);
        last = value;
        let tsc_ticks = now.wrapping_sub(start);
        if elapsed >= window_ticks {
            return select::tsc_hz(tsc_ticks, elapsed, counter.hz()).ok_or(Rejection::Stuck);
        }
        if tsc_ticks > budget {
            return Err(Rejection::TooSlow);
        }
    }
}
