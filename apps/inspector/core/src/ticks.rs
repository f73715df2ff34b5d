//! A tick counter and its frequency: the time the benchmark and the soak
//! keep. In the image it is the TSC at its calibrated frequency; on the host
//! (and wherever nanoseconds are enough) any `nvme::Clock` serves, through
//! [`ClockTicks`].

use nvme::Clock;

/// A monotonic tick counter.
pub trait Ticks {
    /// The counter now.
    fn now(&self) -> u64;
    /// Ticks per second.
    fn hz(&self) -> u64;
    /// `ticks` in nanoseconds.
    fn to_ns(&self, ticks: u64) -> u64 {
        match self.hz() {
            0 => 0,
            hz => (u128::from(ticks) * 1_000_000_000 / u128::from(hz)).min(u128::from(u64::MAX))
                as u64,
        }
    }
}

/// Nanosecond ticks from a driver clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockTicks<C>(pub C);

impl<C: Clock> Ticks for ClockTicks<C> {
    fn now(&self) -> u64 {
        self.0.now_ns()
    }

    fn hz(&self) -> u64 {
        1_000_000_000
    }

    fn to_ns(&self, ticks: u64) -> u64 {
        ticks
    }
}
