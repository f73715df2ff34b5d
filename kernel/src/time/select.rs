//! Choosing the TSC frequency from what the clock sources answered: their
//! ranking, the cross-check between the best two, and the rejection of
//! answers no real machine gives. Pure logic over plain numbers, so the
//! kernel's unit tests can feed it any machine, including one with no
//! source at all.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::tsc;

/// Slowest TSC this kernel believes: every x86_64 CPU runs faster. A
/// result below it (a PIT that fired at once gives a few MHz) is wrong.
pub const MIN_PLAUSIBLE_HZ: u64 = 100_000_000;
/// Fastest TSC this kernel believes. Also the frequency assumed when no
/// source answers ([`tsc::ASSUMED_HZ`]): a deadline converted with it lasts
/// at least as long in real time as asked.
pub const MAX_PLAUSIBLE_HZ: u64 = tsc::ASSUMED_HZ;
/// Two sources agree when they differ by at most 1 / this of the larger.
const AGREEMENT_PARTS: u64 = 100;
/// A timed window is trusted when the uncertainty of its two ends is at
/// most 1 / this of its length (0.5 %: the midpoints are then within
/// 0.25 %, well inside the agreement a cross-check asks for).
const STEADY_PARTS: u64 = 200;
/// Windows tried per sample wanted, before settling for fewer samples.
const ATTEMPTS_PER_SAMPLE: usize = 3;

/// Windows [`steady_median`] has left out since boot (for the log).
static UNSTEADY_WINDOWS: AtomicU32 = AtomicU32::new(0);

/// How many timed windows were left out as unsteady since boot.
pub fn unsteady_windows() -> u32 {
    UNSTEADY_WINDOWS.load(Ordering::Relaxed)
}

/// A place the TSC frequency can come from, in the order they are trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// CPUID leaf 15h (TSC / crystal ratio and crystal frequency), with
    /// leaf 16h standing in for a missing crystal frequency.
    Cpuid,
    /// The HPET main counter (ACPI HPET table).
    Hpet,
    /// The ACPI power-management timer (FADT), 3.579545 MHz.
    PmTimer,
    /// The 8254 PIT, channel 2, 1.193182 MHz.
    Pit,
}

impl Source {
    /// Every source, best first.
    pub const RANKED: [Source; 4] = [Source::Cpuid, Source::Hpet, Source::PmTimer, Source::Pit];
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Cpuid => "CPUID 15h",
            Source::Hpet => "HPET",
            Source::PmTimer => "PM timer",
            Source::Pit => "PIT",
        })
    }
}

/// Why a source gave no frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The machine does not describe or decode this source.
    Absent,
    /// CPUID 15h gives the TSC / crystal ratio but no crystal frequency,
    /// and leaf 16h no base frequency to stand in for it.
    NoCrystalFrequency,
    /// The firmware's description is unusable (too short, or in an
    /// address space the source cannot live in).
    BadDescription,
    /// The registers could not be mapped.
    Unmappable,
    /// The HPET's counter period (femtoseconds) is 0 or above 100 ns.
    BadPeriod {
        /// The period the capabilities register gave.
        femtoseconds: u32,
    },
    /// The registers read all-ones: nothing answers at that address.
    AllOnes,
    /// The counter did not move.
    Stuck,
    /// The counter moved far too slowly for its stated frequency.
    TooSlow,
    /// The PIT's output was high before the countdown ran.
    OutputStuckHigh,
    /// The PIT's countdown never ended (a clock-gated 8254).
    NeverFired,
    /// Every read took so long that no window could be timed precisely
    /// (something keeps stealing the CPU, or the reads stall).
    Unsteady,
    /// The frequency found is outside what any x86_64 TSC runs at.
    Implausible {
        /// What the source gave, in Hz.
        hz: u64,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Absent => f.write_str("absent"),
            Rejection::NoCrystalFrequency => f.write_str("no crystal frequency"),
            Rejection::BadDescription => f.write_str("unusable ACPI description"),
            Rejection::Unmappable => f.write_str("registers could not be mapped"),
            Rejection::BadPeriod { femtoseconds } => {
                write!(f, "counter period {femtoseconds} fs out of range")
            }
            Rejection::AllOnes => f.write_str("reads all-ones"),
            Rejection::Stuck => f.write_str("counter does not move"),
            Rejection::TooSlow => f.write_str("counter too slow"),
            Rejection::OutputStuckHigh => f.write_str("output high before the countdown"),
            Rejection::NeverFired => f.write_str("never fired"),
            Rejection::Unsteady => f.write_str("reads too slow to time"),
            Rejection::Implausible { hz } => write!(f, "absurd result {}", Mhz(*hz)),
        }
    }
}

/// What one source said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The TSC frequency in Hz, enumerated exactly or measured.
    Hz(u64),
    /// An approximate TSC frequency in Hz (CPUID 16h's base frequency in
    /// whole MHz): used, but a measurement that disagrees wins over it.
    Hint(u64),
    /// No frequency from this source.
    Rejected(Rejection),
}

impl Finding {
    /// The same finding with an out-of-range frequency rejected.
    pub fn plausible(self) -> Finding {
        match self {
            Finding::Hz(hz) | Finding::Hint(hz)
                if !(MIN_PLAUSIBLE_HZ..=MAX_PLAUSIBLE_HZ).contains(&hz) =>
            {
                Finding::Rejected(Rejection::Implausible { hz })
            }
            other => other,
        }
    }
}

/// How the second-best source compares with the chosen one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The next usable source agrees within 1 %.
    Agrees(Source),
    /// The named source gave this frequency, more than 1 % away.
    Disagrees(Source, u64),
    /// The next source below the chosen one gave no frequency.
    Unavailable(Source, Rejection),
    /// Nothing ranks below the chosen source.
    NoSecondSource,
}

/// The TSC frequency and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// TSC frequency in Hz.
    pub hz: u64,
    /// Where it came from; None: no source answered and the frequency is
    /// the conservative [`MAX_PLAUSIBLE_HZ`].
    pub source: Option<Source>,
    /// What the cross-check said.
    pub check: Check,
}

impl Calibration {
    /// What a machine without any usable source gets.
    pub const ASSUMED: Calibration = Calibration {
        hz: MAX_PLAUSIBLE_HZ,
        source: None,
        check: Check::NoSecondSource,
    };
}

/// The source and the cross-check, as the boot banner shows them:
/// `HPET, PM timer agrees`, `PM timer; PIT absent`.
impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(source) = self.source else {
            return f.write_str("assumed: no clock source answered; deadlines run long");
        };
        match self.check {
            Check::Agrees(other) => write!(f, "{source}, {other} agrees"),
            Check::Disagrees(other, hz) => write!(f, "{source}; {other} disagrees: {}", Mhz(hz)),
            Check::Unavailable(other, Rejection::Absent) => write!(f, "{source}; {other} absent"),
            Check::Unavailable(other, why) => write!(f, "{source}; {other} rejected: {why}"),
            Check::NoSecondSource => write!(f, "{source}; no second source"),
        }
    }
}

/// A frequency shown in MHz with one decimal.
#[derive(Clone, Copy, Debug)]
pub struct Mhz(pub u64);

impl fmt::Display for Mhz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = (self.0 + 50_000) / 100_000;
        write!(f, "{}.{} MHz", tenths / 10, tenths % 10)
    }
}

/// Whether two frequencies agree within 1 %.
pub fn agree(a: u64, b: u64) -> bool {
    u128::from(a.abs_diff(b)) * u128::from(AGREEMENT_PARTS) <= u128::from(a.max(b))
}

/// Ask the sources in rank order (`find` answers for one) until the best
/// usable one and a second to check it are known, and decide. Sources
/// below the second usable one are never asked, so a machine with a good
/// HPET and PM timer spends no time on the PIT.
pub fn choose(mut find: impl FnMut(Source) -> Finding) -> Calibration {
    let mut chosen: Option<(Source, u64, bool)> = None;
    let mut next_failure: Option<(Source, Rejection)> = None;
    for source in Source::RANKED {
        let (hz, hint) = match find(source).plausible() {
            Finding::Hz(hz) => (hz, false),
            Finding::Hint(hz) => (hz, true),
            Finding::Rejected(why) => {
                if chosen.is_some() && next_failure.is_none() {
                    next_failure = Some((source, why));
                }
                continue;
            }
        };
        let Some((best, best_hz, best_is_hint)) = chosen else {
            chosen = Some((source, hz, hint));
            continue;
        };
        return if agree(best_hz, hz) {
            Calibration {
                hz: best_hz,
                source: Some(best),
                check: Check::Agrees(source),
            }
        } else if best_is_hint && !hint {
            Calibration {
                hz,
                source: Some(source),
                check: Check::Disagrees(best, best_hz),
            }
        } else {
            Calibration {
                hz: best_hz,
                source: Some(best),
                check: Check::Disagrees(source, hz),
            }
        };
    }
    match chosen {
        Some((source, hz, _)) => Calibration {
            hz,
            source: Some(source),
            check: next_failure.map_or(Check::NoSecondSource, |(other, why)| {
                Check::Unavailable(other, why)
            }),
        },
        None => Calibration::ASSUMED,
    }
}

/// The median of `samples` (sorted in place); zero for none.
pub fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or(0)
}

/// One timed window against a reference: the TSC ticks between its two
/// ends (midpoints of the brackets each end is known within) and the sum
/// of those brackets' widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// TSC ticks from start to end.
    pub tsc_ticks: u64,
    /// TSC ticks the two ends are uncertain by, together.
    pub uncertainty: u64,
    /// Reference ticks from start to end.
    pub reference_ticks: u64,
}

impl Window {
    /// Whether the ends are known well enough for the window to count.
    pub fn is_steady(&self) -> bool {
        u128::from(self.uncertainty) * u128::from(STEADY_PARTS) <= u128::from(self.tsc_ticks)
    }
}

/// Time windows with `window` until `samples` is full of steady ones or
/// [`ATTEMPTS_PER_SAMPLE`] times as many were tried, and return the median
/// TSC frequency of the steady ones (the reference counts `reference_hz`).
/// A window that fails fails the whole measurement; none steady is
/// [`Rejection::Unsteady`].
pub fn steady_median(
    samples: &mut [u64],
    reference_hz: u64,
    mut window: impl FnMut() -> Result<Window, Rejection>,
) -> Result<u64, Rejection> {
    let mut filled = 0;
    for _ in 0..samples.len() * ATTEMPTS_PER_SAMPLE {
        if filled == samples.len() {
            break;
        }
        let timed = window()?;
        if timed.is_steady() {
            samples[filled] = tsc_hz(timed.tsc_ticks, timed.reference_ticks, reference_hz)
                .ok_or(Rejection::Stuck)?;
            filled += 1;
        } else {
            UNSTEADY_WINDOWS.fetch_add(1, Ordering::Relaxed);
        }
    }
    if filled == 0 {
        return Err(Rejection::Unsteady);
    }
    Ok(median(&mut samples[..filled]))
}

/// The TSC frequency from `tsc_ticks` counted while a reference of
/// `reference_hz` counted `reference_ticks`; None if the reference did
/// not count.
pub fn tsc_hz(tsc_ticks: u64, reference_ticks: u64, reference_hz: u64) -> Option<u64> {
    if reference_ticks == 0 {
        return None;
    }
    let hz = u128::from(tsc_ticks) * u128::from(reference_hz) / u128::from(reference_ticks);
    Some(u64::try_from(hz).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const GHZ_2_6: u64 = 2_611_200_000;

    /// A machine whose sources answer from a table; records who was asked.
    fn machine(answers: [Finding; 4]) -> (Calibration, [bool; 4]) {
        let mut asked = [false; 4];
        let calibration = choose(|source| {
            let index = Source::RANKED.iter().position(|s| *s == source).unwrap();
            asked[index] = true;
            answers[index]
        });
        (calibration, asked)
    }

    const ABSENT: Finding = Finding::Rejected(Rejection::Absent);

    #[test_case]
    fn hpet_wins_and_the_pm_timer_checks_it_and_the_pit_is_not_asked() {
        let (c, asked) = machine([
            ABSENT,
            Finding::Hz(GHZ_2_6),
            Finding::Hz(GHZ_2_6 + 1_000_000),
            Finding::Hz(5_300_000),
        ]);
        assert_eq!(c.hz, GHZ_2_6);
        assert_eq!(c.source, Some(Source::Hpet));
        assert_eq!(c.check, Check::Agrees(Source::PmTimer));
        assert_eq!(asked, [true, true, true, false]);
        assert_eq!(c.to_string(), "HPET, PM timer agrees");
    }

    #[test_case]
    fn an_absurd_pit_is_rejected_not_believed() {
        // q35 with hpet=off and a PIT that answers at once: the PM timer
        // is used and the PIT's few MHz never become the clock.
        let (c, _) = machine([ABSENT, ABSENT, Finding::Hz(GHZ_2_6), Finding::Hz(5_284_000)]);
        assert_eq!(c.hz, GHZ_2_6);
        assert_eq!(c.source, Some(Source::PmTimer));
        assert_eq!(
            c.check,
            Check::Unavailable(Source::Pit, Rejection::Implausible { hz: 5_284_000 })
        );
        assert_eq!(
            c.to_string(),
            "PM timer; PIT rejected: absurd result 5.3 MHz"
        );
    }

    #[test_case]
    fn the_pit_alone_is_used_when_nothing_else_exists() {
        let (c, _) = machine([ABSENT, ABSENT, ABSENT, Finding::Hz(GHZ_2_6)]);
        assert_eq!(c.source, Some(Source::Pit));
        assert_eq!(c.check, Check::NoSecondSource);
        assert_eq!(c.hz, GHZ_2_6);
    }

    #[test_case]
    fn pm_timer_without_a_pit_says_so() {
        let (c, _) = machine([ABSENT, ABSENT, Finding::Hz(GHZ_2_6), ABSENT]);
        assert_eq!(c.to_string(), "PM timer; PIT absent");
    }

    #[test_case]
    fn no_source_at_all_assumes_the_fastest_clock() {
        let (c, asked) = machine([
            ABSENT,
            Finding::Rejected(Rejection::BadPeriod { femtoseconds: 0 }),
            Finding::Rejected(Rejection::Stuck),
            Finding::Rejected(Rejection::NeverFired),
        ]);
        assert_eq!(c, Calibration::ASSUMED);
        assert_eq!(asked, [true; 4]);
        // Deadlines computed with it are never shorter than asked on any
        // plausible machine.
        assert!(c.hz >= MAX_PLAUSIBLE_HZ);
        assert!(c.to_string().starts_with("assumed"));
    }

    #[test_case]
    fn cpuid_is_checked_against_the_hpet() {
        let (c, asked) = machine([
            Finding::Hz(2_400_000_000),
            Finding::Hz(2_401_000_000),
            Finding::Hz(1),
            ABSENT,
        ]);
        assert_eq!(c.source, Some(Source::Cpuid));
        assert_eq!(c.hz, 2_400_000_000);
        assert_eq!(c.to_string(), "CPUID 15h, HPET agrees");
        assert_eq!(asked, [true, true, false, false]);
    }

    #[test_case]
    fn a_disagreeing_check_is_reported_but_the_better_source_kept() {
        let (c, _) = machine([
            ABSENT,
            Finding::Hz(GHZ_2_6),
            Finding::Hz(2_000_000_000),
            ABSENT,
        ]);
        assert_eq!(c.hz, GHZ_2_6);
        assert_eq!(c.check, Check::Disagrees(Source::PmTimer, 2_000_000_000));
        assert_eq!(c.to_string(), "HPET; PM timer disagrees: 2000.0 MHz");
    }

    #[test_case]
    fn a_cpuid_hint_yields_to_a_measurement_that_disagrees() {
        let (c, _) = machine([
            Finding::Hint(2_000_000_000),
            Finding::Hz(GHZ_2_6),
            ABSENT,
            ABSENT,
        ]);
        assert_eq!(c.hz, GHZ_2_6);
        assert_eq!(c.source, Some(Source::Hpet));
        assert_eq!(c.check, Check::Disagrees(Source::Cpuid, 2_000_000_000));
        // ... and stands when it agrees.
        let (c, _) = machine([
            Finding::Hint(2_600_000_000),
            Finding::Hz(GHZ_2_6),
            ABSENT,
            ABSENT,
        ]);
        assert_eq!(c.hz, 2_600_000_000);
        assert_eq!(c.check, Check::Agrees(Source::Hpet));
    }

    #[test_case]
    fn implausible_frequencies_are_rejected_at_both_ends() {
        for hz in [
            0,
            5_284_000,
            MIN_PLAUSIBLE_HZ - 1,
            MAX_PLAUSIBLE_HZ + 1,
            u64::MAX,
        ] {
            assert_eq!(
                Finding::Hz(hz).plausible(),
                Finding::Rejected(Rejection::Implausible { hz })
            );
        }
        assert_eq!(Finding::Hz(GHZ_2_6).plausible(), Finding::Hz(GHZ_2_6));
    }

    #[test_case]
    fn agreement_is_one_percent() {
        assert!(agree(1_000_000_000, 1_010_000_000));
        assert!(agree(1_010_000_000, 1_000_000_000));
        assert!(!agree(1_000_000_000, 1_010_200_000));
        assert!(agree(MAX_PLAUSIBLE_HZ, MAX_PLAUSIBLE_HZ));
    }

    fn window(tsc_ticks: u64, uncertainty: u64) -> Result<Window, Rejection> {
        Ok(Window {
            tsc_ticks,
            uncertainty,
            reference_ticks: 200_000,
        })
    }

    #[test_case]
    fn unsteady_windows_are_retried_and_left_out() {
        // 100 MHz reference, 2 ms windows; the second one was interrupted
        // at an end (its uncertainty is 1 %) and must not count.
        let mut answers = [
            window(5_222_400, 1_000),
            window(4_900_000, 49_000),
            window(5_222_600, 1_000),
            window(5_222_500, 1_000),
        ]
        .into_iter();
        let hz = steady_median(&mut [0; 3], 100_000_000, || answers.next().unwrap());
        assert_eq!(hz, Ok(2_611_250_000));
        assert_eq!(answers.len(), 0);
        // Never steady: rejected after three tries per sample.
        let mut tries = 0;
        let hz = steady_median(&mut [0; 3], 100_000_000, || {
            tries += 1;
            window(5_222_400, 100_000)
        });
        assert_eq!(hz, Err(Rejection::Unsteady));
        assert_eq!(tries, 9);
        // Some steady: the median of those.
        let mut answers = [window(5_222_400, 100_000), window(5_000_000, 1)]
            .into_iter()
            .cycle();
        let hz = steady_median(&mut [0; 3], 100_000_000, || answers.next().unwrap());
        assert_eq!(hz, Ok(2_500_000_000));
        // A failing window fails the measurement.
        let hz = steady_median(&mut [0; 3], 100_000_000, || Err(Rejection::Stuck));
        assert_eq!(hz, Err(Rejection::Stuck));
    }

    #[test_case]
    fn median_and_ratio() {
        assert_eq!(median(&mut [30, 10, 20]), 20);
        assert_eq!(median(&mut [7]), 7);
        assert_eq!(median(&mut []), 0);
        // 2 ms of a 100 MHz HPET against 5.2224 M TSC ticks: 2611.2 MHz.
        assert_eq!(tsc_hz(5_222_400, 200_000, 100_000_000), Some(GHZ_2_6));
        assert_eq!(tsc_hz(5, 0, 100), None);
        assert_eq!(Mhz(2_611_249_999).to_string(), "2611.2 MHz");
        assert_eq!(Mhz(5_284_000).to_string(), "5.3 MHz");
    }
}
