//! Bootable disk images from a kernel ELF.
//!
//! One image boots under both firmwares: the `bootloader` crate's BIOS
//! image (MBR, boot sector and stages, a FAT partition holding the kernel)
//! gets the UEFI bootloader added as `efi/boot/bootx64.efi` on that same FAT
//! partition, where UEFI firmware looks for removable media. That is the
//! image written to USB sticks, and the one QEMU boots with SeaBIOS or OVMF.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use bootloader::DiskImageBuilder;

/// Where the UEFI loader sits on the FAT partition.
const UEFI_LOADER_PATH: &str = "efi/boot/bootx64.efi";
/// Name of the file the bootloader loads as the ramdisk: the settings, a
/// plain text file a person can edit on the stick.
pub const SETTINGS_FILE: &str = "ramdisk";

/// What goes into an image besides the kernel.
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    /// Contents of the settings file handed to the kernel as its ramdisk.
    pub settings: Option<Vec<u8>>,
}

/// Build (or reuse, if newer than the kernel and the spec is unchanged) the
/// dual-firmware image for `kernel` at `out`.
pub fn build(kernel: &Path, out: &Path, spec: &ImageSpec) -> Result<PathBuf> {
    let stamp = out.with_extension("spec");
    let spec_text = format!("{:?}", spec.settings);
    if is_fresh(kernel, out) && fs::read_to_string(&stamp).ok().as_deref() == Some(&spec_text) {
        return Ok(out.to_path_buf());
    }
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let uefi_dir = tempfile::tempdir().context("temporary directory for the UEFI loader")?;
    let mut builder = DiskImageBuilder::new(kernel.to_path_buf());
    builder
        .create_uefi_tftp_folder(uefi_dir.path())
        .context("extracting the UEFI loader")?;
    builder.set_file(UEFI_LOADER_PATH.into(), uefi_dir.path().join("bootloader"));
    if let Some(settings) = &spec.settings {
        builder.set_file_contents(SETTINGS_FILE.into(), settings.clone());
    }
    builder
        .create_bios_image(out)
        .with_context(|| format!("building the disk image {}", out.display()))?;
    fs::write(&stamp, spec_text).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(out.to_path_buf())
}

fn is_fresh(input: &Path, output: &Path) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(input), modified(output)) {
        (Some(i), Some(o)) => o >= i && o > SystemTime::UNIX_EPOCH,
        _ => false,
    }
}
