//! Timing the TSC against a PIT channel-2 one-shot: the last resort.
//!
//! A one-shot of the window's length is started and polled until its
//! output rises; the TSC ticks in between give the frequency. A missing
//! PIT (port 0x61 reads all-ones), one whose output is high before it
//! counted, and one that never fires (clock-gated on recent Intel
//! chipsets) are rejected. The polling is bounded by a TSC budget that
//! only a TSC faster than any real one could exhaust.

use super::counter::tsc_budget;
use super::select::{self, Rejection, Window};
use crate::arch::pit::{self, OneShot, PitError};
use crate::arch::tsc;

/// The longest one-shot channel 2 can count (16 bits), in nanoseconds.
pub const MAX_WINDOW_NS: u64 = 54_000_000;

/// The TSC frequency: the median of `samples.len()` steady one-shots of
/// `window_ns` (at most [`MAX_WINDOW_NS`]).
pub fn measure(window_ns: u64, samples: &mut [u64]) -> Result<u64, Rejection> {
    let window_ns = window_ns.clamp(1, MAX_WINDOW_NS);
    let ticks = (u128::from(pit::FREQUENCY_HZ) * u128::from(window_ns) / 1_000_000_000)
        .clamp(1, u128::from(u16::MAX)) as u16;
    let budget = tsc_budget(window_ns);
    select::steady_median(samples, pit::FREQUENCY_HZ, || one_shot(ticks, budget))
}

/// Time one countdown of `ticks`: it started during the gate write, and
/// ended between the last poll that saw the output low and the first that
/// saw it high.
fn one_shot(ticks: u16, budget: u64) -> Result<Window, Rejection> {
    let mut shot = OneShot::start(ticks).map_err(|error| match error {
        PitError::NoDevice => Rejection::Absent,
        PitError::OutputStuckHigh => Rejection::OutputStuckHigh,
    })?;
    let (start_before, start_after) = shot.started();
    let mut previous_began = start_after;
    loop {
        let began = tsc::now();
        let fired = shot.fired();
        let after = tsc::now();
        if fired {
            let start = start_before + (start_after - start_before) / 2;
            let end = previous_began + (after - previous_began) / 2;
            return Ok(Window {
                tsc_ticks: end.wrapping_sub(start),
                uncertainty: (start_after - start_before) + (after - previous_began),
                reference_ticks: u64::from(ticks),
            });
        }
        if after.wrapping_sub(start_before) > budget {
            return Err(Rejection::NeverFired);
        }
        previous_began = began;
    }
}
