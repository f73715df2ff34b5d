//! The cargo runner for kernel binaries (`cargo test`/`cargo run` with
//! `--target x86_64-unknown-none`): image, fresh NVMe disks, QEMU, verdict.
//!
//! A test kernel states the machine it needs inside its own ELF, as a
//! string `UNIKERNEL-QEMU:` followed by `key=value` lines and a NUL byte
//! (see the kernel's `qemu_machine!` macro). Keys:
//! `machine=pc|q35`, `firmware=bios|uefi|bios,uefi` (a list boots the
//! same test once under each, in order), `memory=512M`, `timeout=SECS`,
//! `nvme=SIZE[,property...]` (one NVMe controller with a fresh disk of that
//! size; repeatable; `nvme=none` for no disk), `qemu=ARG` (one extra QEMU argument; repeatable).
//! Without it a test gets a `pc` machine under BIOS with one 64 MiB disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::qemu::{self, Firmware, Machine, NvmeController, NvmeDisk, NvmeNamespace, Outcome};
use crate::{disk, image};

const MARKER: &[u8] = b"UNIKERNEL-QEMU:";
/// Deadline of one test kernel, unless it states another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What a test kernel asks of its machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestMachine {
    /// `-machine` type.
    pub machine: String,
    /// Firmware to boot under, each in turn (one boot per entry).
    pub firmwares: Vec<Firmware>,
    /// Guest memory.
    pub memory: String,
    /// Deadline.
    pub timeout: Duration,
    /// NVMe disks: size in bytes and extra device properties.
    pub nvme: Vec<(u64, Vec<String>)>,
    /// Per disk (by index): blkdebug `[inject-error]` rules
    /// (event, errno, sector, once) and extra `-drive` options.
    pub faults: Vec<(usize, Fault)>,
    /// Extra QEMU arguments.
    pub qemu: Vec<String>,
    /// NVMe controllers without a drive of their own, each with its
    /// namespaces (`nvme-ns` devices): controller properties, then each
    /// namespace's size and properties.
    pub controllers: Vec<(Vec<String>, Vec<Namespace>)>,
}

/// A fault injected under one disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail requests of `event` (`read_aio`, `write_aio`, `flush_to_disk`)
    /// touching 512-byte `sector` with `errno`; every time, or `once`.
    Error {
        /// blkdebug event name.
        event: String,
        /// errno to return (5 = EIO, 28 = ENOSPC).
        errno: u32,
        /// 512-byte sector the rule applies to.
        sector: u64,
        /// Only the first matching request.
        once: bool,
    },
    /// An extra `-drive` option, such as `throttling.iops-total=40`.
    DriveOption(String),
}

/// An `nvme-ns` a test asks for: disk size in bytes and device properties.
pub type Namespace = (u64, Vec<String>);

impl Default for TestMachine {
    fn default() -> Self {
        TestMachine {
            machine: "pc".into(),
            firmwares: vec![Firmware::Bios],
            memory: "512M".into(),
            timeout: DEFAULT_TIMEOUT,
            nvme: vec![(64 << 20, Vec::new())],
            faults: Vec::new(),
            qemu: Vec::new(),
            controllers: Vec::new(),
        }
    }
}

impl TestMachine {
    /// Read the machine description embedded in a kernel ELF.
    pub fn from_elf(elf: &[u8]) -> Result<TestMachine> {
        let Some(at) = elf.windows(MARKER.len()).position(|w| w == MARKER) else {
            return Ok(TestMachine::default());
        };
        let rest = &elf[at + MARKER.len()..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let text = std::str::from_utf8(&rest[..end]).context("machine description is not UTF-8")?;
        TestMachine::parse(text)
    }

    /// Parse `key=value` lines.
    pub fn parse(text: &str) -> Result<TestMachine> {
        let mut machine = TestMachine::default();
        let mut nvme = Vec::new();
        let mut saw_nvme = false;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((key, value)) = line.split_once('=') else {
                bail!("machine description line {line:?} is not key=value");
            };
            match key {
                "machine" => machine.machine = value.into(),
                "memory" => machine.memory = value.into(),
                "firmware" => {
                    machine.firmwares = Vec::new();
                    for name in value.split(',') {
                        machine.firmwares.push(match name {
                            "bios" => Firmware::Bios,
                            "uefi" => Firmware::Uefi,
                            _ => bail!("unknown firmware {name:?}"),
                        });
                    }
                }
                "timeout" => {
                    machine.timeout = Duration::from_secs(value.parse().context("timeout")?)
                }
                "nvme" if value == "none" => saw_nvme = true,
                "nvme" => {
                    saw_nvme = true;
                    let mut parts = value.split(',');
                    let size = disk::parse_size(parts.next().unwrap_or_default())?;
                    nvme.push((size, parts.map(str::to_owned).collect()));
                }
                "qemu" => machine.qemu.push(value.into()),
                "inject" => {
                    // EVENT,ERRNO,SECTOR[,once] on the most recent nvme= disk.
                    let parts: Vec<&str> = value.split(',').collect();
                    let (Some(disk), [event, errno, sector, rest @ ..]) =
                        (nvme.len().checked_sub(1), parts.as_slice())
                    else {
                        bail!(
                            "inject={value}: expected EVENT,ERRNO,SECTOR[,once] after an nvme= line"
                        );
                    };
                    machine.faults.push((
                        disk,
                        Fault::Error {
                            event: (*event).into(),
                            errno: errno.parse().context("inject errno")?,
                            sector: sector.parse().context("inject sector")?,
                            once: rest.first() == Some(&"once"),
                        },
                    ));
                }
                "drive" => {
                    let Some(disk) = nvme.len().checked_sub(1) else {
                        bail!("drive={value} comes before any nvme= line");
                    };
                    machine
                        .faults
                        .push((disk, Fault::DriveOption(value.into())));
                }
                "controller" => {
                    let properties = value
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned);
                    machine.controllers.push((properties.collect(), Vec::new()));
                }
                "namespace" => {
                    let mut parts = value.split(',');
                    let size = disk::parse_size(parts.next().unwrap_or_default())?;
                    let Some((_, namespaces)) = machine.controllers.last_mut() else {
                        bail!("namespace={value} comes before any controller=");
                    };
                    namespaces.push((size, parts.map(str::to_owned).collect()));
                }
                _ => bail!("unknown machine description key {key:?}"),
            }
        }
        if saw_nvme {
            machine.nvme = nvme;
        }
        Ok(machine)
    }
}

/// The test's name: the ELF's file name without cargo's hash suffix.
pub fn test_name(kernel: &Path) -> String {
    let stem = kernel
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("kernel");
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            name.to_owned()
        }
        _ => stem.to_owned(),
    }
}

/// Boot a kernel ELF as a test, under each firmware it asks for, and judge
/// it. Returns the last run (or the first that failed) and a verdict:
/// `Ok(())` when every boot passed, `Err(reason)` with a readable reason
/// otherwise.
pub fn run_test(kernel: &Path, echo: bool) -> Result<(qemu::Run, std::result::Result<(), String>)> {
    let elf = std::fs::read(kernel).with_context(|| format!("reading {}", kernel.display()))?;
    let spec = TestMachine::from_elf(&elf)?;
    let image_path = PathBuf::from(format!("{}.img", kernel.display()));
    image::build(kernel, &image_path, &image::ImageSpec::default())?;
    let mut last = None;
    for &firmware in &spec.firmwares {
        qemu::check_installed(firmware)?;
        let several = spec.firmwares.len() > 1;
        if echo && several {
            println!("runner: booting under {firmware}");
        }
        let (run, verdict) = boot_once(&spec, firmware, &image_path, echo)?;
        match verdict {
            Err(reason) if several => return Ok((run, Err(format!("under {firmware}: {reason}")))),
            Err(reason) => return Ok((run, Err(reason))),
            Ok(()) => last = Some(run),
        }
    }
    let run = last.context("the machine description names no firmware")?;
    Ok((run, Ok(())))
}

/// One boot of `spec` under `firmware`, with fresh disks.
fn boot_once(
    spec: &TestMachine,
    firmware: Firmware,
    image_path: &Path,
    echo: bool,
) -> Result<(qemu::Run, std::result::Result<(), String>)> {
    let scratch = tempfile::Builder::new()
        .prefix("unikernel-test-")
        .tempdir()
        .context("scratch directory")?;
    let mut machine = Machine::new(image_path.to_path_buf(), scratch.path().to_path_buf());
    machine.firmware = firmware;
    machine.machine = spec.machine.clone();
    machine.memory = spec.memory.clone();
    machine.extra = spec.qemu.clone();
    for (c, (properties, namespaces)) in spec.controllers.iter().enumerate() {
        let mut controller = NvmeController {
            id: format!("ctrl{c}"),
            serial: format!("TESTCTRL{c}"),
            properties: properties.clone(),
            namespaces: Vec::new(),
        };
        for (n, (size, properties)) in namespaces.iter().enumerate() {
            let path = scratch.path().join(format!("ctrl{c}-ns{n}.img"));
            disk::create_if_missing(&path, *size)?;
            let properties = properties.clone();
            controller
                .namespaces
                .push(NvmeNamespace { path, properties });
        }
        machine.controllers.push(controller);
    }
    for (index, (size, properties)) in spec.nvme.iter().enumerate() {
        let path = scratch.path().join(format!("nvme{index}.img"));
        disk::create_if_missing(&path, *size)?;
        let mut disk = NvmeDisk::new(path, format!("TESTDISK{index}"));
        disk.properties = properties.clone();
        let mut rules = String::new();
        for (_, fault) in spec.faults.iter().filter(|(d, _)| *d == index) {
            match fault {
                Fault::Error { event, errno, sector, once } => rules.push_str(&format!(
                    "[inject-error]\nevent = \"{event}\"\nerrno = \"{errno}\"\nsector = \"{sector}\"\nonce = \"{}\"\n\n",
                    if *once { "on" } else { "off" }
                )),
                Fault::DriveOption(option) => disk.drive_options.push(option.clone()),
            }
        }
        if !rules.is_empty() {
            let path = scratch.path().join(format!("blkdebug{index}.conf"));
            std::fs::write(&path, rules)?;
            disk.blkdebug = Some(path);
        }
        machine.disks.push(disk);
    }
    let echo: Option<Box<dyn Write + Send>> = if echo {
        Some(Box::new(std::io::stdout()))
    } else {
        None
    };
    let run = qemu::run(&machine, spec.timeout, echo)?;
    let verdict = judge(&run);
    Ok((run, verdict))
}

/// Pass only on a clean exit with no NVMe protocol violation.
pub fn judge(run: &qemu::Run) -> std::result::Result<(), String> {
    if !run.outcome.is_success() {
        let mut reason = run.outcome.to_string();
        let stopped = matches!(run.outcome, Outcome::CpuException | Outcome::Panic);
        if stopped
            && let Some(line) = run
                .serial
                .lines()
                .find(|l| l.contains("CPU EXCEPTION") || l.contains("KERNEL PANIC"))
        {
            reason.push_str(&format!(": {}", line.trim()));
        }
        return Err(reason);
    }
    if !run.nvme_violations.is_empty() {
        return Err(format!(
            "QEMU's NVMe device saw protocol violations:\n  {}",
            run.nvme_violations.join("\n  ")
        ));
    }
    Ok(())
}

/// `./run.sh runner ELF` (hidden): what cargo calls for every kernel binary.
pub fn main(kernel: &Path) -> Result<i32> {
    let name = test_name(kernel);
    let (run, verdict) = run_test(kernel, true)?;
    match verdict {
        Ok(()) => Ok(0),
        Err(reason) => {
            eprintln!(
                "\nerror: kernel `{name}` failed after {:.1} s: {reason}",
                run.elapsed.as_secs_f64()
            );
            Ok(run.outcome.exit_code().max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_machine_description_in_elf_bytes() {
        let mut elf = b"\x7fELF....junk".to_vec();
        elf.extend_from_slice(b"UNIKERNEL-QEMU:machine=q35\nfirmware=uefi\nnvme=16M,mdts=2\nnvme=8M\nqemu=-device\nqemu=pci-bridge,chassis_nr=1\ntimeout=30\0tail");
        let m = TestMachine::from_elf(&elf).unwrap();
        assert_eq!(m.machine, "q35");
        assert_eq!(m.firmwares, [Firmware::Uefi]);
        assert_eq!(m.timeout, Duration::from_secs(30));
        assert_eq!(
            m.nvme,
            vec![(16 << 20, vec!["mdts=2".to_owned()]), (8 << 20, vec![])]
        );
        assert_eq!(m.qemu, vec!["-device", "pci-bridge,chassis_nr=1"]);
    }

    #[test]
    fn fault_rules_attach_to_the_last_disk() {
        let m = TestMachine::parse("nvme=8M\nnvme=8M\ninject=read_aio,5,8192\ninject=write_aio,28,16,once\ndrive=throttling.iops-total=40").unwrap();
        assert_eq!(m.faults.len(), 3);
        assert_eq!(
            m.faults[1],
            (
                1,
                Fault::Error {
                    event: "write_aio".into(),
                    errno: 28,
                    sector: 16,
                    once: true
                }
            )
        );
        assert_eq!(
            m.faults[2],
            (1, Fault::DriveOption("throttling.iops-total=40".into()))
        );
        assert!(TestMachine::parse("inject=read_aio,5,1").is_err());
        assert!(TestMachine::parse("nvme=8M\ninject=read_aio,x,1").is_err());
    }

    #[test]
    fn controllers_with_namespaces() {
        let m = TestMachine::parse(
            "nvme=none\ncontroller=mdts=3\nnamespace=8M,logical_block_size=4096\nnamespace=4M",
        )
        .unwrap();
        assert!(m.nvme.is_empty());
        assert_eq!(
            m.controllers,
            vec![(
                vec!["mdts=3".to_owned()],
                vec![
                    (8 << 20, vec!["logical_block_size=4096".to_owned()]),
                    (4 << 20, vec![])
                ]
            )]
        );
        assert!(TestMachine::parse("namespace=8M").is_err());
    }

    #[test]
    fn one_test_names_several_firmwares() {
        let m = TestMachine::parse("machine=q35\nfirmware=bios,uefi").unwrap();
        assert_eq!(m.firmwares, [Firmware::Bios, Firmware::Uefi]);
        assert_eq!(TestMachine::default().firmwares, [Firmware::Bios]);
    }

    #[test]
    fn default_machine_without_description() {
        assert_eq!(
            TestMachine::from_elf(b"no marker here").unwrap(),
            TestMachine::default()
        );
    }

    #[test]
    fn bad_descriptions_are_errors() {
        assert!(TestMachine::parse("firmware=coreboot").is_err());
        assert!(TestMachine::parse("firmware=bios,").is_err());
        assert!(TestMachine::parse("colour=blue").is_err());
        assert!(TestMachine::parse("just words").is_err());
        assert!(TestMachine::parse("nvme=12Q").is_err());
    }

    #[test]
    fn test_names_drop_cargo_hash() {
        assert_eq!(
            test_name(Path::new("/t/deps/heap-0123456789abcdef")),
            "heap"
        );
        assert_eq!(test_name(Path::new("/t/debug/kernel")), "kernel");
        assert_eq!(
            test_name(Path::new("/t/deps/stack-overflow-0123456789abcdef")),
            "stack-overflow"
        );
    }
}
