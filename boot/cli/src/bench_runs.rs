//! `bench --runs N`: the figures of several boots of the benchmark, side by
//! side. One boot's IOPS move by 10-20 % from run to run on a shared host,
//! so a comparison of two jobs (the async path against the raw queue, say)
//! is read from the medians and from each run's own ratio, both jobs
//! having run in the same boot.

use compare::parse::Measurement;
use compare::report::Spread;

/// Suffix of a job that is its twin without the suffix run another way.
const ASYNC_SUFFIX: &str = "-async";

/// The summary of `runs` (each the jobs of one boot, in their order): each
/// job's IOPS as median (min-max) over the runs, then for every `-async`
/// job whose twin ran in the same boots, its IOPS over the twin's, per run
/// and their median.
pub fn summary(runs: &[Vec<Measurement>]) -> String {
    let mut jobs: Vec<&str> = Vec::new();
    for m in runs.iter().flatten() {
        if !jobs.contains(&m.job.as_str()) {
            jobs.push(&m.job);
        }
    }
    let width = jobs.iter().map(|j| j.len()).max().unwrap_or(0);
    let mut out = format!("bench: {} runs; IOPS median (min-max)\n", runs.len());
    for job in &jobs {
        let iops: Vec<f64> = runs.iter().filter_map(|run| iops(run, job)).collect();
        if let Some(s) = Spread::of(&iops) {
            out.push_str(&format!(
                "  {job:<width$}  {:>9.0}  ({:.0}-{:.0})\n",
                s.median, s.min, s.max
            ));
        }
    }
    for job in &jobs {
        let Some(twin) = job.strip_suffix(ASYNC_SUFFIX) else {
            continue;
        };
        let ratios: Vec<f64> = runs
            .iter()
            .filter_map(|run| Some(iops(run, job)? / iops(run, twin)?))
            .filter(|r| r.is_finite())
            .collect();
        let Some(s) = Spread::of(&ratios) else {
            continue;
        };
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        out.push_str(&format!(
            "  {job} / {twin}: median {:.3} (runs: {})\n",
            s.median,
            each.join(" ")
        ));
    }
    out
}

/// The IOPS of `job` in one run, if it ran.
fn iops(run: &[Measurement], job: &str) -> Option<f64> {
    run.iter().find(|m| m.job == job).map(|m| m.iops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(job: &str, iops: f64) -> Measurement {
        Measurement {
            job: job.to_owned(),
            iops,
            ..Measurement::default()
        }
    }

    #[test]
    fn medians_and_ratios_are_taken_per_run() {
        let runs = vec![
            vec![
                m("randread-4k-qd32", 100.0),
                m("randread-4k-qd32-async", 90.0),
            ],
            vec![
                m("randread-4k-qd32", 50.0),
                m("randread-4k-qd32-async", 50.0),
            ],
            vec![
                m("randread-4k-qd32", 80.0),
                m("randread-4k-qd32-async", 60.0),
            ],
        ];
        let text = summary(&runs);
        assert!(text.starts_with("bench: 3 runs"), "{text}");
        assert!(
            text.contains("randread-4k-qd32               80  (50-100)"),
            "{text}"
        );
        assert!(
            text.contains("randread-4k-qd32-async         60  (50-90)"),
            "{text}"
        );
        // Per run: 0.900, 1.000, 0.750 (not 60 / 80 of the medians).
        assert!(
            text.contains(
                "randread-4k-qd32-async / randread-4k-qd32: median 0.900 (runs: 0.900 1.000 0.750)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_job_without_its_twin_has_no_ratio() {
        let runs = vec![
            vec![m("randread-4k-qd32-async", 90.0)],
            vec![m("randread-4k-qd32-async", 70.0)],
        ];
        let text = summary(&runs);
        assert!(
            text.contains("randread-4k-qd32-async         80  (70-90)"),
            "{text}"
        );
        assert!(!text.contains(" / "), "{text}");
    }
}
