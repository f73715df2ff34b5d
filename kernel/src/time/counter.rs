//! Timing the TSC against a free-running counter of known frequency (HPET
//! main counter, ACPI PM timer).
//!
//! Each end of a window is one read of the counter with the TSC read just
//! before and after it: the counter held that value somewhere in between,
//! so the end is taken at the midpoint and known to within the read's
//! duration (plus one counter tick, at most 0.3 µs for these sources). A
//! window whose reads took long (an SMI, or a virtual CPU descheduled in
//! the middle of one) is retried ([`select::steady_median`]). The counter
//! may wrap during a window: the difference of consecutive reads is taken
//! modulo its width. Every wait is bounded without knowing the TSC
//! frequency: a counter that stops changing is caught by counting identical
//! reads, and one that crawls by a TSC budget that only a TSC faster than
//! any real one could exhaust.

use super::select::{self, MAX_PLAUSIBLE_HZ, Rejection, Window};
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

/// The TSC frequency: the median of `samples.len()` steady windows of
/// `window_ns` nanoseconds each, measured against `counter`.
pub fn measure(
    counter: &impl Counter,
    window_ns: u64,
    samples: &mut [u64],
) -> Result<u64, Rejection> {
    let mask = counter.mask();
    if counter.read() & mask == mask && counter.read() & mask == mask {
        return Err(Rejection::AllOnes);
    }
    let window_ticks = window_ticks(counter.hz(), window_ns);
    let budget = tsc_budget(window_ns);
    select::steady_median(samples, counter.hz(), || {
        one_window(counter, window_ticks, budget)
    })
}

/// Counter ticks in `window_ns` (at least one).
fn window_ticks(hz: u64, window_ns: u64) -> u64 {
    let ticks = u128::from(hz) * u128::from(window_ns) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// One read of the counter with the TSC just before and just after it:
/// the counter held `value` at some instant in between.
#[derive(Clone, Copy)]
struct Sample {
    value: u64,
    began: u64,
    ended: u64,
}

impl Sample {
    fn take(counter: &impl Counter) -> Sample {
        let began = tsc::now();
        let value = counter.read() & counter.mask();
        let ended = tsc::now();
        Sample {
            value,
            began,
            ended,
        }
    }

    fn midpoint(&self) -> u64 {
        self.began + self.ended.wrapping_sub(self.began) / 2
    }

    fn width(&self) -> u64 {
        self.ended.wrapping_sub(self.began)
    }
}

fn one_window(counter: &impl Counter, window_ticks: u64, budget: u64) -> Result<Window, Rejection> {
    let mask = counter.mask();
    let start = Sample::take(counter);
    let mut last = start.value;
    let mut elapsed = 0u64;
    let mut identical = 0u32;
    loop {
        let sample = Sample::take(counter);
        if sample.value == last {
            identical += 1;
            if identical >= MAX_IDENTICAL_READS {
                return Err(Rejection::Stuck);
            }
            continue;
        }
        identical = 0;
        elapsed = elapsed.saturating_add(sample.value.wrapping_sub(last) & mask);
        last = sample.value;
        if elapsed >= window_ticks {
            return Ok(Window {
                tsc_ticks: sample.midpoint().wrapping_sub(start.midpoint()),
                uncertainty: start.width() + sample.width(),
                reference_ticks: elapsed,
            });
        }
        if sample.ended.wrapping_sub(start.began) > budget {
            return Err(Rejection::TooSlow);
        }
    }
}
