//! Writing the bootable image to a USB stick, carefully.
//!
//! A wrong device name destroys someone's data, so before writing the
//! target must be a block device, not mounted (nor any of its partitions),
//! not holding the running system or swap, and removable (USB or flagged
//! removable by the kernel) — each check can be overridden only by an
//! explicit flag. The user sees the device's model and size and must type
//! `yes` (or pass `--yes`). After writing: fsync, drop the device's cached
//! pages, read back and compare.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::progress::{Progress, Unit};

/// Overrides and answers for [`flash`].
#[derive(Clone, Debug, Default)]
pub struct FlashOptions {
    /// Do not ask for confirmation.
    pub yes: bool,
    /// Write even if the device does not look removable.
    pub allow_non_removable: bool,
    /// Write to a regular file instead of a block device.
    pub to_file: bool,
}

/// What the checks found about a target block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Kernel name, such as `sdb`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Vendor and model, as sysfs reports them.
    pub model: String,
    /// Removable (kernel flag) or attached over USB.
    pub removable: bool,
}

/// Why a target was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a block device (use `--to-file` for a file).
    NotBlockDevice,
    /// The device or one of its partitions is mounted at this path.
    Mounted(String),
    /// The device holds the running system (mounted at `/` or a system path).
    RunningSystem(String),
    /// The device or a partition is in use as swap.
    Swap,
    /// The device does not look removable.
    NotRemovable,
    /// Smaller than the image.
    TooSmall {
        /// Device size in bytes.
        device: u64,
        /// Image size in bytes.
        image: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotBlockDevice => write!(
                f,
                "not a block device (to write a file, use --to-file PATH)"
            ),
            Refusal::Mounted(at) => write!(
                f,
                "it (or a partition) is mounted at {at}: unmount it first"
            ),
            Refusal::RunningSystem(at) => {
                write!(f, "it holds the running system (mounted at {at})")
            }
            Refusal::Swap => write!(f, "it (or a partition) is in use as swap"),
            Refusal::NotRemovable => write!(
                f,
                "it does not look removable (not USB, removable flag off); pass --allow-non-removable if you are sure"
            ),
            Refusal::TooSmall { device, image } => {
                write!(f, "it holds {device} bytes, the image needs {image}")
            }
        }
    }
}

/// Mount points (from `/proc/mounts` text) whose source is `device` or one
/// of its partitions (`partitions` are kernel names such as `sdb1`).
pub fn mounts_of(mounts: &str, device: &str, partitions: &[String]) -> Vec<String> {
    let names: Vec<String> = std::iter::once(device.to_owned())
        .chain(partitions.iter().cloned())
        .collect();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let source = fields.next()?;
            let target = fields.next()?;
            let resolved = fs::canonicalize(source).unwrap_or_else(|_| PathBuf::from(source));
            let base = resolved.file_name()?.to_str()?.to_owned();
            names.contains(&base).then(|| target.replace("\\040", " "))
        })
        .collect()
}

/// System mount points: writing over their device breaks the running host.
const SYSTEM_MOUNTS: &[&str] = &["/", "/boot", "/boot/efi", "/usr", "/var", "/home"];

fn sysfs_read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Gather the facts about a block device, and the reasons to refuse it.
pub fn inspect(device: &Path) -> Result<(DeviceInfo, Vec<Refusal>)> {
    let resolved =
        fs::canonicalize(device).with_context(|| format!("{} not found", device.display()))?;
    let meta = fs::metadata(&resolved)?;
    let name = resolved
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let mut refusals = Vec::new();
    if !meta.file_type().is_block_device() {
        refusals.push(Refusal::NotBlockDevice);
        let info = DeviceInfo {
            name,
            size: meta.len(),
            model: String::new(),
            removable: false,
        };
        return Ok((info, refusals));
    }
    let sys = Path::new("/sys/class/block").join(&name);
    let size = sysfs_read(sys.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 512;
    let model = [
        sysfs_read(sys.join("device/vendor")),
        sysfs_read(sys.join("device/model")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let on_usb = fs::canonicalize(&sys)
        .map(|p| p.to_string_lossy().contains("/usb"))
        .unwrap_or(false);
    let removable = on_usb || sysfs_read(sys.join("removable")).as_deref() == Some("1");
    let partitions: Vec<String> = fs::read_dir(&sys)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("partition").exists())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    for at in mounts_of(&mounts, &name, &partitions) {
        if SYSTEM_MOUNTS.contains(&at.as_str()) {
            refusals.push(Refusal::RunningSystem(at));
        } else {
            refusals.push(Refusal::Mounted(at));
        }
    }
    let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
    if !mounts_of(&swaps, &name, &partitions).is_empty() {
        refusals.push(Refusal::Swap);
    }
    if !removable {
        refusals.push(Refusal::NotRemovable);
    }
    Ok((
        DeviceInfo {
            name,
            size,
            model,
            removable,
        },
        refusals,
    ))
}

/// Write `image` to `target` after the checks, then verify. `answers` is
/// where the confirmation is read from (standard input in the CLI).
pub fn flash(
    image: &Path,
    target: &Path,
    options: &FlashOptions,
    answers: &mut dyn BufRead,
) -> Result<()> {
    let image_len = fs::metadata(image)
        .with_context(|| format!("reading {}", image.display()))?
        .len();
    if options.to_file {
        if target.exists() && fs::metadata(target)?.file_type().is_block_device() {
            bail!(
                "{} is a block device; --to-file writes regular files only",
                target.display()
            );
        }
    } else {
        let (info, refusals) = inspect(target)?;
        let mut blocking: Vec<&Refusal> = refusals
            .iter()
            .filter(|r| !(options.allow_non_removable && **r == Refusal::NotRemovable))
            .collect();
        let too_small = Refusal::TooSmall {
            device: info.size,
            image: image_len,
        };
        if info.size > 0 && info.size < image_len {
            blocking.push(&too_small);
        }
        if !blocking.is_empty() {
            let reasons: Vec<String> = blocking.iter().map(|r| format!("  - {r}")).collect();
            bail!(
                "refusing to write {}:\n{}",
                target.display(),
                reasons.join("\n")
            );
        }
        println!(
            "target: {} ({}), {:.1} GB{}",
            target.display(),
            if info.model.is_empty() {
                "unknown model"
            } else {
                &info.model
            },
            info.size as f64 / 1e9,
            if info.removable {
                ", removable"
            } else {
                ", NOT removable (override given)"
            },
        );
        if !options.yes {
            print!(
                "Everything on {} will be destroyed. Type `yes` to continue: ",
                target.display()
            );
            std::io::stdout().flush()?;
            let mut answer = String::new();
            answers.read_line(&mut answer)?;
            if answer.trim() != "yes" {
                bail!("not confirmed; nothing was written");
            }
        }
    }
    write_and_verify(image, target, options.to_file)?;
    println!(
        "wrote and verified {image_len} bytes to {}",
        target.display()
    );
    Ok(())
}

/// Bytes written or read back between progress updates.
const CHUNK: usize = 1 << 20;

/// Copy `image` to the start of `target`, sync, and compare by reading back.
pub fn write_and_verify(image: &Path, target: &Path, create: bool) -> Result<()> {
    let data = fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .open(target)
        .with_context(|| format!("opening {} for writing", target.display()))?;
    // Written, then read back: the bar covers both passes.
    let progress = Progress::new("flash", 2 * data.len() as u64, Unit::Bytes);
    progress.step(&format!("writing {}", target.display()));
    for (index, chunk) in data.chunks(CHUNK).enumerate() {
        out.write_all(chunk)
            .with_context(|| format!("writing {}", target.display()))?;
        progress.set_position((index * CHUNK + chunk.len()) as u64);
    }
    out.sync_all()
        .with_context(|| format!("syncing {}", target.display()))?;
    drop_cache(&out);
    drop(out);
    let mut back = File::open(target)?;
    drop_cache(&back);
    progress.step(&format!("verifying {}", target.display()));
    let mut read = vec![0u8; data.len()];
    for (index, chunk) in read.chunks_mut(CHUNK).enumerate() {
        back.read_exact(chunk)
            .with_context(|| format!("reading back {}", target.display()))?;
        progress.set_position((data.len() + index * CHUNK + chunk.len()) as u64);
    }
    progress.finish();
    if let Some(offset) = data.iter().zip(&read).position(|(a, b)| a != b) {
        bail!(
            "verification failed: {} differs from the image at byte {offset}",
            target.display()
        );
    }
    Ok(())
}

/// Ask the kernel to forget cached pages, so the read-back sees the device.
fn drop_cache(file: &File) {
    const BLKFLSBUF: libc::c_ulong = 0x1261;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a valid open descriptor for the duration of the call;
    // both calls only drop page cache and fail harmlessly on files that do
    // not support them (BLKFLSBUF on regular files).
    unsafe {
        libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    // SAFETY: as above; BLKFLSBUF takes no argument.
    unsafe {
        libc::ioctl(fd, BLKFLSBUF as _, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_of_device_and_partitions() {
        let mounts = "/dev/sdb1 /media/stick vfat rw 0 0\n/dev/sda2 / ext4 rw 0 0\n/dev/sdb2 /mnt/My\\040Files ext4 rw 0 0\nproc /proc proc rw 0 0\n";
        let parts = vec!["sdb1".to_owned(), "sdb2".to_owned()];
        assert_eq!(
            mounts_of(mounts, "sdb", &parts),
            vec!["/media/stick", "/mnt/My Files"]
        );
        assert_eq!(mounts_of(mounts, "sda", &["sda2".to_owned()]), vec!["/"]);
        assert!(mounts_of(mounts, "sdc", &[]).is_empty());
    }
}
