//! Shared by the host tests that boot real kernels: building them, making
//! images with settings, stamped disks, and machines.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::process::Command;

use boot::qemu::{Machine, NvmeDisk};
use boot::{app, disk, image};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("boot/ has a parent")
        .to_path_buf()
}

/// Build the workspace's application `apps/NAME` for the bare-metal
/// target, as `./run.sh --app apps/NAME` does; returns the ELF's path.
pub fn app(name: &str) -> PathBuf {
    let options = app::BuildOptions {
        workspace: workspace(),
        release: false,
        target_dir: None,
    };
    app::build(&workspace().join("apps").join(name), &options)
        .unwrap_or_else(|error| panic!("building apps/{name}: {error}"))
}

/// Build example `name` of the kernel crate for the bare-metal target;
/// returns the ELF's path.
pub fn kernel(kind: &str, name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["build", "--quiet", "--package", "kernel"])
        .args(["--target", "x86_64-unknown-none"])
        .args([format!("--{kind}"), name.to_owned()])
        .status()
        .expect("running cargo");
    assert!(status.success(), "building kernel {kind} {name} failed");
    // Cargo put it under CARGO_TARGET_DIR when that is set.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let dir = target.join("x86_64-unknown-none/debug");
    match kind {
        "example" => dir.join("examples").join(name),
        _ => dir.join(name),
    }
}

/// A fresh sparse disk of `size` bytes in `dir`, stamped as owned by
/// controller `serial` when one is given.
pub fn disk_image(dir: &Path, name: &str, size: u64, owner: Option<&str>) -> PathBuf {
    let path = dir.join(name);
    disk::create_if_missing(&path, size).expect("creating disk image");
    if let Some(serial) = owner {
        disk::stamp(&path, serial, 1).expect("stamping disk image");
    }
    path
}

/// A headless machine booting `kernel` with `settings`, with one NVMe
/// controller per `(disk, serial)`.
pub fn machine(kernel: &Path, dir: &Path, settings: &str, disks: &[(&Path, &str)]) -> Machine {
    let tag = settings
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let image_path = dir.join(format!("boot-{tag:016x}.img"));
    let spec = image::ImageSpec {
        settings: Some(settings.as_bytes().to_vec()),
    };
    image::build(kernel, &image_path, &spec).expect("building image");
    let mut machine = Machine::new(image_path, dir.to_path_buf());
    for (path, serial) in disks {
        machine
            .disks
            .push(NvmeDisk::new(path.to_path_buf(), *serial));
    }
    machine
}
