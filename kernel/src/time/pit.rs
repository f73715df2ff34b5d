//! Timing the TSC against a PIT channel-2 one-shot: the last resort.
//!
//! A one-shot of the window's length is started and polled until its
//! output rises; the TSC ticks in between give the frequency. A missing
//! PIT (port 0x61 reads all-ones), one whose output is high before it
//! counted, and one that never fires (clock-gated on recent Intel
//! chipsets) are rejected. The polling is bounded by a TSC budget that
//! only a TSC faster than any real one could exhaust.

use super::counter::tsc_budget;
use super::select::{self, Rejection};
use crate::arch::pit::{self, OneShot, PitError};
use crate::arch::tsc;

/// The longest one-shot channel 2 can count (16 bits), in nanoseconds.
pub const MAX_WINDOW_NS: u64 = 54_000_000;

/// The TSC frequency: the median of `samples.len()` one-shots of
/// `window_ns` (at most [`MAX_WINDOW_NS`]).
pub fn measure(window_ns: u64, samples: &mut [u64]) -> Result<u64, Rejection> {
    let window_ns = window_ns.clamp(1, MAX_WINDOW_NS);
    let ticks = (u128::from(pit::FREQUENCY_HZ) * u128::from(window_ns) / 1_000_000_000)
        .clamp(1, u128::from(u16::MAX)) as u16;
    let budget = tsc_budget(window_ns);
    for sample in samples.iter_mut() {
        let mut shot = OneShot::start(ticks).map_err(|error| match error {
            PitError::NoDevice => Rejection::Absent,
            PitError::OutputStuckHigh => Rejection::OutputStuckHigh,
        })?;
        let start = tsc::now();
        let end = loop {
            let now = tsc::now();
            if shot.fired() {
                break now;
            }
            if now.wrapping_sub(start) > budget {
                return Err(Rejection::NeverFired);
            }
        };
        *sample = select::tsc_hz(end.wrapping_sub(start), u64::from(ticks), pit::FREQUENCY_HZ)
            .ok_or(Rejection::NeverFired)?;
    }
    Ok(select::median(samples))
}
