//! `boot`: the host-side command behind `./run.sh` and cargo's runner.
//!
//! ```text
//! boot runner KERNEL                     cargo's runner: boot one kernel as a test
//! boot run --kernel KERNEL [options]     build the image, boot it, pass on the status
//! boot image --kernel KERNEL --out PATH  build the dual-firmware image only
//! boot flash --kernel KERNEL DEVICE [--yes] [--allow-non-removable]
//! boot flash --kernel KERNEL --to-file PATH
//! boot stamp PATH [--serial SERIAL]      mark a raw image as owned (data safety)
//! ```
//! `./run.sh --help` documents the options for people; this parser serves
//! `run.sh` and keeps messages short.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use boot::qemu::{self, Firmware, Machine, NvmeDisk};
use boot::{disk, flash, image, runner};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(args: &[String]) -> Result<i32> {
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: boot runner|run|image|flash ... (see ./run.sh --help)");
    };
    match command.as_str() {
        "runner" => {
            let Some(kernel) = rest.first() else {
                bail!("usage: boot runner KERNEL")
            };
            runner::main(Path::new(kernel))
        }
        "run" => run(rest),
        "image" => {
            let options = Options::parse(rest)?;
            let kernel = options.kernel()?;
            let out = options.out.clone().context("--out PATH is required")?;
            image::build(&kernel, &out, &options.image_spec()?)?;
            println!("{}", out.display());
            Ok(0)
        }
        "flash" => flash_command(rest),
        "stamp" => {
            let options = Options::parse(rest)?;
            let [path] = options.positional.as_slice() else {
                bail!("usage: boot stamp PATH [--serial SERIAL]");
            };
            let serial = options
                .serial
                .clone()
                .unwrap_or_else(|| "UNIKERNEL0".into());
            disk::stamp(Path::new(path), &serial, 1)?;
            println!("{path}: stamped as owned by controller {serial}, namespace 1");
            Ok(0)
        }
        other => bail!("unknown command {other:?} (runner, run, image, flash or stamp)"),
    }
}

#[derive(Default)]
struct Options {
    kernel: Option<PathBuf>,
    out: Option<PathBuf>,
    uefi: bool,
    window: bool,
    disks: Vec<PathBuf>,
    disk_size: Option<String>,
    machine: Option<String>,
    memory: Option<String>,
    timeout: Option<u64>,
    settings: Option<PathBuf>,
    yes: bool,
    allow_non_removable: bool,
    to_file: Option<PathBuf>,
    serial: Option<String>,
    backend: Option<String>,
    fresh: bool,
    positional: Vec<String>,
    qemu: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--kernel" => o.kernel = Some(value("--kernel")?.into()),
                "--out" => o.out = Some(value("--out")?.into()),
                "--uefi" => o.uefi = true,
                "--bios" => o.uefi = false,
                "--window" => o.window = true,
                "--headless" => o.window = false,
                "--disk" => o.disks.push(value("--disk")?.into()),
                "--disk-size" => o.disk_size = Some(value("--disk-size")?),
                "--machine" => o.machine = Some(value("--machine")?),
                "--memory" => o.memory = Some(value("--memory")?),
                "--timeout" => {
                    let v = value("--timeout")?;
                    o.timeout = Some(
                        v.parse()
                            .with_context(|| format!("--timeout {v:?}: seconds"))?,
                    );
                }
                "--settings" => o.settings = Some(value("--settings")?.into()),
                "--qemu-arg" => o.qemu.push(value("--qemu-arg")?),
                "--yes" => o.yes = true,
                "--allow-non-removable" => o.allow_non_removable = true,
                "--to-file" => o.to_file = Some(value("--to-file")?.into()),
                "--serial" => o.serial = Some(value("--serial")?),
                "--backend" => o.backend = Some(value("--backend")?),
                "--fresh-disk" => o.fresh = true,
                "--" => o.qemu.extend(it.by_ref().cloned()),
                flag if flag.starts_with('-') => bail!("unknown option {flag:?}"),
                _ => o.positional.push(arg.clone()),
            }
        }
        Ok(o)
    }

    fn kernel(&self) -> Result<PathBuf> {
        self.kernel.clone().context("--kernel PATH is required")
    }

    fn image_spec(&self) -> Result<image::ImageSpec> {
        let settings = match &self.settings {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading settings {}", path.display()))?,
            ),
            None => None,
        };
        Ok(image::ImageSpec { settings })
    }
}

fn run(args: &[String]) -> Result<i32> {
    let o = Options::parse(args)?;
    if let Some(extra) = o.positional.first() {
        bail!("unexpected argument {extra:?}");
    }
    let kernel = o.kernel()?;
    let firmware = if o.uefi {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    qemu::check_installed(firmware)?;
    let image_path = o
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.img", kernel.display())));
    image::build(&kernel, &image_path, &o.image_spec()?)?;
    let size = disk::parse_size(o.disk_size.as_deref().unwrap_or("1G"))?;
    let disks = if o.disks.is_empty() {
        vec![PathBuf::from("disks/scratch.img")]
    } else {
        o.disks.clone()
    };
    let scratch = tempfile::Builder::new()
        .prefix("unikernel-run-")
        .tempdir()?;
    let mut machine = Machine::new(image_path, scratch.path().to_path_buf());
    machine.firmware = firmware;
    machine.window = o.window;
    machine.extra = o.qemu.clone();
    if let Some(m) = &o.machine {
        machine.machine = m.clone();
    }
    if let Some(m) = &o.memory {
        machine.memory = m.clone();
    }
    let null = match o.backend.as_deref() {
        None | Some("file") => false,
        Some("null") => true,
        Some(other) => bail!("--backend {other:?}: file or null"),
    };
    if null {
        if !o.disks.is_empty() || o.fresh {
            bail!("--backend null has no disk file: drop --disk and --fresh-disk");
        }
        // null-co: zeroes, never signed, so the guest treats it as foreign.
        machine.disks.push(NvmeDisk::null(size, "UNIKERNEL0"));
    }
    for (index, path) in disks.iter().enumerate().filter(|_| !null) {
        let serial = format!("UNIKERNEL{index}");
        if o.fresh && path.exists() {
            std::fs::remove_file(path)
                .with_context(|| format!("removing {} to re-create it", path.display()))?;
        }
        if disk::create_if_missing(path, size)? {
            disk::stamp(path, &serial, 1)?;
            eprintln!(
                "created scratch disk {} ({size} bytes), stamped as owned by controller {serial}",
                path.display()
            );
        }
        machine.disks.push(NvmeDisk::new(path.clone(), serial));
    }
    let timeout = Duration::from_secs(o.timeout.unwrap_or(600));
    let result = qemu::run(&machine, timeout, Some(Box::new(std::io::stdout())))?;
    if let Err(reason) = runner::judge(&result) {
        eprintln!("\n{reason}");
    }
    Ok(result.outcome.exit_code())
}

fn flash_command(args: &[String]) -> Result<i32> {
    let o = Options::parse(args)?;
    let kernel = o.kernel()?;
    let image_path = PathBuf::from(format!("{}.usb.img", kernel.display()));
    image::build(&kernel, &image_path, &o.image_spec()?)?;
    let options = flash::FlashOptions {
        yes: o.yes,
        allow_non_removable: o.allow_non_removable,
        to_file: o.to_file.is_some(),
    };
    let target = match (&o.to_file, o.positional.as_slice()) {
        (Some(file), []) => file.clone(),
        (None, [device]) => PathBuf::from(device),
        _ => bail!("usage: flash DEVICE [--yes] [--allow-non-removable] | flash --to-file PATH"),
    };
    flash::flash(&image_path, &target, &options, &mut std::io::stdin().lock())?;
    Ok(0)
}
