//! Where things are: the workspace, cargo's target directory; building kernels.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (this crate sits at `boot/cli`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// A `cargo` command run in the workspace.
pub fn cargo() -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(root());
    command
}

/// Build the application crate at `app` (absolute, or relative to the
/// workspace root) for the bare-metal target; returns the ELF.
pub fn build_kernel(app: &Path, release: bool) -> Result<PathBuf> {
    let options = boot::app::BuildOptions {
        workspace: root(),
        release,
        target_dir: None,
    };
    Ok(boot::app::build(&root().join(app), &options)?)
}

/// Run `command`, failing with `what` when it does not succeed; returns
/// its exit status code for the caller to pass on.
pub fn run_step(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!(StepFailed {
            what: what.to_owned(),
            code: status.code().unwrap_or(1)
        });
    }
    Ok(())
}

/// A step of a longer job failed; its exit status is passed on.
#[derive(Debug)]
pub struct StepFailed {
    /// What was running.
    pub what: String,
    /// Its exit status.
    pub code: i32,
}

impl std::fmt::Display for StepFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed (exit status {})", self.what, self.code)
    }
}

impl std::error::Error for StepFailed {}

/// Install Debian packages with apt-get (through sudo unless root).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("run.sh: installing {} with apt-get", packages.join(" "));
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !root {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command.stdout(std::process::Stdio::null());
        command
    };
    run_step(&mut apt(&["update", "-qq"]), "apt-get update")?;
    let mut install = apt(&["install", "-y", "-qq"]);
    install.args(packages);
    run_step(&mut install, "apt-get install")
}

/// True when `program` runs with `--version`.
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
