//! The kernel's clock on every machine shape QEMU offers: `pc` and `q35`,
//! BIOS and UEFI, each with all timers, without the PIT (`pit=off`, as on
//! chipsets that clock-gate it), without the HPET (`hpet=off`), and without
//! both. Every shape must boot the default application to `result: PASS`,
//! name in its banner a source that exists on that shape (and the source
//! this kernel ranks best there), and find the same TSC frequency as the
//! same machine with all timers, within 2 %.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use boot::qemu::{Firmware, Machine, NvmeDisk, Outcome, run};

mod support;

/// A short run that still waits on the device for every kind of deadline:
/// bring-up, verify, a timed benchmark window, shutdown.
const SETTINGS: &str =
    "steps=identify,verify,bench\nverify_span=1M\nbench_ms=100\nbench_jobs=randread-4k-qd1\n";
/// QEMU boots at a time (the machines running this have two cores).
const PARALLEL_BOOTS: usize = 2;
/// Largest relative difference from the machine's normal boot.
const AGREEMENT_PERCENT: f64 = 2.0;

/// Which timers a shape takes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timers {
    pit: bool,
    hpet: bool,
}

impl Timers {
    const ALL: [Timers; 4] = [
        Timers {
            pit: true,
            hpet: true,
        },
        Timers {
            pit: false,
            hpet: true,
        },
        Timers {
            pit: true,
            hpet: false,
        },
        Timers {
            pit: false,
            hpet: false,
        },
    ];

    fn machine_options(self) -> String {
        let mut options = String::new();
        if !self.pit {
            options.push_str(",pit=off");
        }
        if !self.hpet {
            options.push_str(",hpet=off");
        }
        options
    }

    /// The source the kernel must choose: CPUID 15h is absent under TCG's
    /// `qemu64`, the HPET is next, then the PM timer (present on both
    /// chipsets, PIIX4 and ICH9).
    fn best_source(self) -> &'static str {
        if self.hpet { "HPET" } else { "PM timer" }
    }

    /// Whether the banner may name `source` at all on this shape.
    fn has(self, source: &str) -> bool {
        match source {
            "HPET" => self.hpet,
            "PIT" => self.pit,
            "PM timer" => true,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Shape {
    machine: &'static str,
    firmware: Firmware,
    timers: Timers,
}

impl Shape {
    fn name(&self) -> String {
        format!(
            "{}{} {:?}",
            self.machine,
            self.timers.machine_options(),
            self.firmware
        )
    }
}

/// What a boot's banner said about the clock.
#[derive(Debug)]
struct Clock {
    hz: f64,
    description: String,
}

/// `... | TSC 2596.139 MHz (HPET, PM timer agrees) | ...` from the banner.
fn banner_clock(serial: &str) -> Option<Clock> {
    let banner = serial.lines().find(|l| l.starts_with("nvme-unikernel "))?;
    let rest = banner.split(" | TSC ").nth(1)?;
    let (mhz, rest) = rest.split_once(" MHz (")?;
    let (description, _) = rest.split_once(") |")?;
    Some(Clock {
        hz: mhz.parse::<f64>().ok()? * 1e6,
        description: description.to_owned(),
    })
}

/// Boot `shape` from a copy of `image`, with a fresh owned disk, in `dir`.
fn boot(shape: &Shape, image: &Path, dir: &Path) -> (Clock, String) {
    std::fs::create_dir_all(dir).unwrap();
    // Every QEMU locks its image for writing: each boot gets its own copy.
    let own_image = dir.join("boot.img");
    std::fs::copy(image, &own_image).unwrap();
    let disk = support::disk_image(dir, "owned.img", 16 << 20, Some("OWNED0"));
    let mut machine = Machine::new(own_image, dir.to_path_buf());
    machine.machine = format!("{}{}", shape.machine, shape.timers.machine_options());
    machine.firmware = shape.firmware;
    machine.disks.push(NvmeDisk::new(disk, "OWNED0"));
    let result = run(&machine, Duration::from_secs(240), None).unwrap();
    let name = shape.name();
    assert_eq!(
        result.outcome,
        Outcome::Success,
        "{name}: serial:\n{}",
        result.serial
    );
    assert!(
        result.serial.contains("result: PASS"),
        "{name}: serial:\n{}",
        result.serial
    );
    assert!(
        result.nvme_violations.is_empty(),
        "{name}: {:?}",
        result.nvme_violations
    );
    let clock = banner_clock(&result.serial)
        .unwrap_or_else(|| panic!("{name}: no TSC in the banner:\n{}", result.serial));
    (clock, result.serial)
}

/// Every source the description names, with the chosen one first:
/// `PM timer; PIT absent` names `PM timer` and `PIT`.
fn named_sources(description: &str) -> Vec<&'static str> {
    let mut named: Vec<(usize, &'static str)> = ["CPUID 15h", "HPET", "PM timer", "PIT"]
        .into_iter()
        .filter_map(|source| description.find(source).map(|at| (at, source)))
        .collect();
    named.sort();
    named.into_iter().map(|(_, source)| source).collect()
}

#[test]
fn every_machine_shape_finds_the_same_clock_and_passes() {
    let kernel = support::app("inspector");
    let dir = tempfile::tempdir().unwrap();
    let image = support::machine(&kernel, dir.path(), SETTINGS, &[]).image;

    let mut shapes = Vec::new();
    for machine in ["pc", "q35"] {
        for firmware in [Firmware::Bios, Firmware::Uefi] {
            for timers in Timers::ALL {
                shapes.push(Shape {
                    machine,
                    firmware,
                    timers,
                });
            }
        }
    }
    let queue = Mutex::new(shapes.clone().into_iter().enumerate().collect::<Vec<_>>());
    let results: Mutex<Vec<(usize, Clock)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_BOOTS {
            scope.spawn(|| {
                loop {
                    let Some((index, shape)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let boot_dir: PathBuf = dir.path().join(format!("boot-{index}"));
                    let (clock, _) = boot(&shape, &image, &boot_dir);
                    eprintln!(
                        "{}: TSC {:.1} MHz ({})",
                        shape.name(),
                        clock.hz / 1e6,
                        clock.description
                    );
                    results.lock().unwrap().push((index, clock));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    assert_eq!(results.len(), shapes.len());

    for (index, clock) in &results {
        let shape = &shapes[*index];
        let name = shape.name();
        let named = named_sources(&clock.description);
        assert_eq!(
            named.first().copied(),
            Some(shape.timers.best_source()),
            "{name}: banner says ({})",
            clock.description
        );
        for source in &named {
            // "PIT absent" is the truth on a shape without one.
            let denied = clock.description.contains(&format!("{source} absent"));
            assert!(
                shape.timers.has(source) || denied,
                "{name}: banner names {source}, which this shape lacks: ({})",
                clock.description
            );
        }
        if !shape.timers.pit && !shape.timers.hpet {
            assert_eq!(clock.description, "PM timer; PIT absent", "{name}");
        }
        let normal = results
            .iter()
            .find(|(i, _)| {
                let other = &shapes[*i];
                other.machine == shape.machine
                    && other.firmware == shape.firmware
                    && other.timers == Timers::ALL[0]
            })
            .map(|(_, clock)| clock.hz)
            .unwrap();
        let off_percent = (clock.hz - normal).abs() / normal * 100.0;
        assert!(
            off_percent <= AGREEMENT_PERCENT,
            "{name}: TSC {:.1} MHz, {off_percent:.2} % from the same machine with every timer ({:.1} MHz)",
            clock.hz / 1e6,
            normal / 1e6
        );
    }
}

#[test]
fn banner_parsing() {
    let serial = "x\nnvme-unikernel 0.1.0 | firmware UEFI | memory 497 MiB usable | heap 62 MiB | TSC 2596.139 MHz (PM timer; PIT absent) | entry to banner 30.948 ms\n";
    let clock = banner_clock(serial).unwrap();
    assert_eq!(clock.hz, 2_596_139_000.0);
    assert_eq!(clock.description, "PM timer; PIT absent");
    assert_eq!(named_sources(&clock.description), ["PM timer", "PIT"]);
    assert_eq!(named_sources("HPET, PM timer agrees"), ["HPET", "PM timer"]);
    assert!(banner_clock("nvme-unikernel 0.1.0 | TSC 5.284 MHz | entry").is_none());
}
