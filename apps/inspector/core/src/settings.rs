//! Settings handed to the application from the host without a rebuild: a
//! plain-text file the bootloader loads as the ramdisk (`ramdisk` on the
//! image's FAT partition, editable on a USB stick).
//!
//! One `key = value` per line; `#` starts a comment. Unknown keys and bad
//! values are reported and ignored, never fatal.
//!
//! | key            | meaning                                           | default |
//! |----------------|---------------------------------------------------|---------|
//! | `log`          | log filter, e.g. `info,nvme=debug`                | `info`  |
//! | `steps`        | comma list of `identify,smart,verify,bench,soak`  | all but `soak` |
//! | `verify_span`  | bytes the write-read-verify pass covers (`16M`)   | `16M`   |
//! | `bench_ms`     | duration of each benchmark job in milliseconds    | `1000`  |
//! | `bench_jobs`   | comma list of benchmark jobs (fio names such as `randread-4k-qd1`), or `all` | the short five |
//! | `bench_unowned_reads` | `yes`: run the benchmark's read jobs also on namespaces the image does not own (reads only; write jobs are skipped there) | `no` |
//! | `bench_all_namespaces` | `yes`: run each benchmark job on every namespace it may use at once, each with its own queue, one row per namespace and a `sum` row | `no` |
//! | `soak_ms`      | duration of the soak (mixed verified I/O)         | `10000` |
//! | `soak_span`    | bytes the soak covers                             | `64M`   |
//! | `linger_ms`    | keep the final screen this long before exiting QEMU (a byte on serial ends it early) | `0` |
//! | `claim`        | a controller serial whose signed namespaces may be written on real hardware (repeatable) | none |

use alloc::string::String;
use alloc::vec::Vec;

/// Which steps the inspector runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Print controller and namespace identity.
    pub identify: bool,
    /// Print the SMART / health log.
    pub smart: bool,
    /// Write-read-verify on owned namespaces.
    pub verify: bool,
    /// Benchmark owned namespaces.
    pub bench: bool,
    /// Soak owned namespaces with verified mixed I/O.
    pub soak: bool,
}

/// Parsed settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Log filter.
    pub log: String,
    /// Steps to run.
    pub steps: Steps,
    /// Bytes covered by the verify pass.
    pub verify_span: u64,
    /// Milliseconds per benchmark job.
    pub bench_ms: u64,
    /// Benchmark jobs by name (`all` stands for every job); empty means
    /// the default application's short list.
    pub bench_jobs: Vec<String>,
    /// Run the benchmark's read jobs on namespaces that are not owned.
    pub bench_unowned_reads: bool,
    /// Run each benchmark job on every namespace at once.
    pub bench_all_namespaces: bool,
    /// Milliseconds of soak.
    pub soak_ms: u64,
    /// Bytes the soak covers.
    pub soak_span: u64,
    /// Milliseconds to keep the final screen before exiting QEMU.
    pub linger_ms: u64,
    /// Serials the user claims on real hardware.
    pub claims: Vec<String>,
    /// Problems found while parsing (reported by the application).
    pub warnings: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            log: "info".into(),
            steps: Steps {
                identify: true,
                smart: true,
                verify: true,
                bench: true,
                soak: false,
            },
            verify_span: 16 << 20,
            bench_ms: 1000,
            bench_jobs: Vec::new(),
            bench_unowned_reads: false,
            bench_all_namespaces: false,
            soak_ms: 10_000,
            soak_span: 64 << 20,
            linger_ms: 0,
            claims: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

impl Settings {
    /// Parse the settings text (invalid UTF-8 counts as no settings).
    pub fn parse(bytes: &[u8]) -> Settings {
        let mut settings = Settings::default();
        let Ok(text) = core::str::from_utf8(bytes) else {
            settings
                .warnings
                .push("settings are not UTF-8 text; using defaults".into());
            return settings;
        };
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                settings
                    .warnings
                    .push(alloc::format!("line {}: expected key = value", number + 1));
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let ok = match key {
                "log" => {
                    settings.log = value.into();
                    true
                }
                "steps" => {
                    let mut steps = Steps {
                        identify: false,
                        smart: false,
                        verify: false,
                        bench: false,
                        soak: false,
                    };
                    let mut ok = true;
                    for step in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        match step {
                            "identify" => steps.identify = true,
                            "smart" => steps.smart = true,
                            "verify" => steps.verify = true,
                            "bench" => steps.bench = true,
                            "soak" => steps.soak = true,
                            _ => ok = false,
                        }
                    }
                    if ok {
                        settings.steps = steps;
                    }
                    ok
                }
                "verify_span" => parse_size(value)
                    .map(|v| settings.verify_span = v)
                    .is_some(),
                "bench_ms" => value.parse().map(|v| settings.bench_ms = v).is_ok(),
                "bench_jobs" => {
                    let jobs: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    let ok = !jobs.is_empty();
                    if ok {
                        settings.bench_jobs = jobs;
                    }
                    ok
                }
                "bench_unowned_reads" => parse_bool(value)
                    .map(|v| settings.bench_unowned_reads = v)
                    .is_some(),
                "bench_all_namespaces" => parse_bool(value)
                    .map(|v| settings.bench_all_namespaces = v)
                    .is_some(),
                "soak_ms" => value.parse().map(|v| settings.soak_ms = v).is_ok(),
                "soak_span" => parse_size(value).map(|v| settings.soak_span = v).is_some(),
                "linger_ms" => value.parse().map(|v| settings.linger_ms = v).is_ok(),
                "claim" => {
                    settings.claims.push(value.into());
                    true
                }
                _ => false,
            };
            if !ok {
                settings.warnings.push(alloc::format!(
                    "line {}: `{line}` not understood; ignored",
                    number + 1
                ));
            }
        }
        settings
    }

    /// True if the user claimed the controller with `serial`.
    pub fn claims(&self, serial: &str) -> bool {
        self.claims.iter().any(|c| c.trim() == serial.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_report_problems() {
        let s = Settings::parse(b"# comment\nlog = warn\nsteps = identify, verify\nverify_span=2M\nbench_ms = 250\nclaim = S123\nclaim=S456\nbogus = 1\nsteps = launch\nnonsense\n");
        assert_eq!(s.log, "warn");
        assert_eq!(
            s.steps,
            Steps {
                identify: true,
                smart: false,
                verify: true,
                bench: false,
                soak: false,
            }
        );
        assert_eq!(s.verify_span, 2 << 20);
        assert_eq!(s.bench_ms, 250);
        assert!(s.bench_jobs.is_empty() && !s.bench_unowned_reads);
        assert!(s.claims("S123") && s.claims("S456 ") && !s.claims("S789"));
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
    }

    #[test]
    fn bench_jobs_and_unowned_reads_parse() {
        let s = Settings::parse(
            b"bench_jobs = randread-4k-qd1, write-128k-qd8\nbench_unowned_reads = yes\n",
        );
        assert_eq!(s.bench_jobs, ["randread-4k-qd1", "write-128k-qd8"]);
        assert!(s.bench_unowned_reads);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(!s.bench_all_namespaces);
        let s = Settings::parse(
            b"bench_jobs = all\nbench_unowned_reads = maybe\nbench_jobs = ,\nbench_all_namespaces = yes\n",
        );
        assert_eq!(s.bench_jobs, ["all"]);
        assert!(!s.bench_unowned_reads && s.bench_all_namespaces);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        let s = Settings::parse(b"bench_all_namespaces = both\n");
        assert!(!s.bench_all_namespaces);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    }

    #[test]
    fn empty_or_binary_settings_are_defaults() {
        assert_eq!(Settings::parse(b""), Settings::default());
        let s = Settings::parse(&[0xff, 0xfe, 0x00]);
        assert_eq!(s.steps, Settings::default().steps);
        assert_eq!(s.warnings.len(), 1);
    }
}
