//! Building an application for the bare-metal target.
//!
//! An application is a cargo package with one binary that depends on the
//! kernel library (`apps/inspector`, `apps/log`). It may sit inside the
//! workspace or anywhere else (`/tmp/myapp`, its `kernel` dependency given
//! by absolute path). A package outside the workspace sees neither the
//! pinned toolchain (`rust-toolchain.toml`), nor the target settings
//! (`.cargo/config.toml`), nor the workspace's profiles, so [`build`]
//! passes all three to cargo explicitly; inside the workspace cargo finds
//! them itself. The result is the ELF that [`crate::image`] turns into a
//! bootable image.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The bare-metal target every application is built for.
pub const TARGET: &str = "x86_64-unknown-none";

/// The workspace's profile settings (its `Cargo.toml`), which a package
/// outside the workspace does not inherit.
const PROFILES: [&str; 2] = ["profile.dev.opt-level=1", "profile.release.debug=1"];

/// How to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The repository's workspace root: its toolchain file, cargo
    /// configuration and lock file apply to the application.
    pub workspace: PathBuf,
    /// Optimised build.
    pub release: bool,
    /// Cargo's target directory; `None` leaves it to cargo (the
    /// application's workspace's `target/`, or `CARGO_TARGET_DIR`).
    pub target_dir: Option<PathBuf>,
}

/// Why an application could not be built.
#[derive(Debug)]
pub enum AppError {
    /// The path is not a directory.
    NotADirectory(PathBuf),
    /// The directory holds no `Cargo.toml`.
    NoManifest(PathBuf),
    /// `cargo metadata` refused the manifest (a syntax error, a missing
    /// path dependency...); cargo's message follows.
    BadManifest { manifest: PathBuf, message: String },
    /// The manifest declares no package (a virtual workspace manifest).
    NoPackage(PathBuf),
    /// The package has no binary target.
    NoBinary { package: String },
    /// The package has several binaries and none is named after it.
    SeveralBinaries {
        package: String,
        binaries: Vec<String>,
    },
    /// Cargo failed to compile the application; its errors were shown.
    BuildFailed { package: String },
    /// A file or a program could not be used.
    Io { what: String, error: std::io::Error },
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NotADirectory(path) => {
                write!(
                    f,
                    "{}: not a directory holding an application crate",
                    path.display()
                )
            }
            AppError::NoManifest(path) => write!(
                f,
                "{}: no Cargo.toml; an application is a cargo package whose binary depends on \
                 the kernel library (see the README, \"Your own application\")",
                path.display()
            ),
            AppError::BadManifest { manifest, message } => {
                write!(f, "{}: cargo cannot read it: {message}", manifest.display())
            }
            AppError::NoPackage(path) => write!(
                f,
                "{}: declares no package (a workspace manifest?); give the application's own directory",
                path.display()
            ),
            AppError::NoBinary { package } => write!(
                f,
                "package {package} has no binary: an application needs src/main.rs (or a [[bin]])"
            ),
            AppError::SeveralBinaries { package, binaries } => write!(
                f,
                "package {package} has several binaries ({}) and none is named {package}",
                binaries.join(", ")
            ),
            AppError::BuildFailed { package } => {
                write!(
                    f,
                    "building the application {package} failed (cargo's errors above)"
                )
            }
            AppError::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for AppError {}

/// What cargo says about an application package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The package's name.
    pub name: String,
    /// The binary to build.
    pub binary: String,
    /// The root of the workspace the package belongs to (itself when alone).
    pub workspace_root: PathBuf,
    /// Where cargo puts what it builds.
    pub target_directory: PathBuf,
}

/// The pinned toolchain: `channel` in the workspace's `rust-toolchain.toml`.
pub fn toolchain(workspace: &Path) -> Result<String, AppError> {
    let path = workspace.join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&path).map_err(|error| AppError::Io {
        what: format!("reading {}", path.display()),
        error,
    })?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "channel")
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .ok_or_else(|| AppError::Io {
            what: format!("reading {}", path.display()),
            error: std::io::Error::other("no `channel = \"...\"` line"),
        })
}

/// True if `path` (canonical) lies inside the workspace.
fn inside(path: &Path, options: &BuildOptions) -> bool {
    let workspace = options.workspace.canonicalize();
    path.starts_with(workspace.as_deref().unwrap_or(&options.workspace))
}

/// A `cargo` command on the pinned toolchain, run in `dir`; outside the
/// workspace it carries the workspace's cargo configuration and profiles.
fn cargo(options: &BuildOptions, dir: &Path, toolchain: &str) -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(dir).env("RUSTUP_TOOLCHAIN", toolchain);
    if !inside(dir, options) {
        command.arg("--config");
        command.arg(options.workspace.join(".cargo/config.toml"));
        for profile in PROFILES {
            command.args(["--config", profile]);
        }
    }
    command
}

/// Read the package at `dir` (which must hold its `Cargo.toml`) with
/// `cargo metadata` and pick its binary.
pub fn package(dir: &Path, options: &BuildOptions) -> Result<Package, AppError> {
    if !dir.is_dir() {
        return Err(AppError::NotADirectory(dir.to_path_buf()));
    }
    let dir = dir.canonicalize().map_err(|error| AppError::Io {
        what: format!("resolving {}", dir.display()),
        error,
    })?;
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(AppError::NoManifest(dir));
    }
    let toolchain = toolchain(&options.workspace)?;
    let output = cargo(options, &dir, &toolchain)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .map_err(|error| AppError::Io {
            what: "running cargo metadata".into(),
            error,
        })?;
    if !output.status.success() {
        return Err(AppError::BadManifest {
            manifest,
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let bad = |message: &str| AppError::BadManifest {
        manifest: manifest.clone(),
        message: message.to_owned(),
    };
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|_| bad("cargo metadata printed no JSON"))?;
    parse_metadata(&metadata, &manifest).ok_or_else(|| bad("unexpected cargo metadata"))?
}

/// The package whose manifest is `manifest` in `cargo metadata`'s output;
/// `None` when the output lacks the fields this reads.
fn parse_metadata(
    metadata: &serde_json::Value,
    manifest: &Path,
) -> Option<Result<Package, AppError>> {
    let path = |v: &serde_json::Value| v.as_str().map(PathBuf::from);
    let workspace_root = path(metadata.get("workspace_root")?)?;
    let target_directory = path(metadata.get("target_directory")?)?;
    let packages = metadata.get("packages")?.as_array()?;
    let Some(package) = packages
        .iter()
        .find(|p| p.get("manifest_path").and_then(path).as_deref() == Some(manifest))
    else {
        return Some(Err(AppError::NoPackage(manifest.to_path_buf())));
    };
    let name = package.get("name")?.as_str()?.to_owned();
    let mut binaries = Vec::new();
    for target in package.get("targets")?.as_array()? {
        let kinds = target.get("kind")?.as_array()?;
        if kinds.iter().any(|k| k.as_str() == Some("bin")) {
            binaries.push(target.get("name")?.as_str()?.to_owned());
        }
    }
    let binary = match binaries.as_slice() {
        [] => return Some(Err(AppError::NoBinary { package: name })),
        [only] => only.clone(),
        _ if binaries.contains(&name) => name.clone(),
        _ => {
            return Some(Err(AppError::SeveralBinaries {
                package: name,
                binaries,
            }));
        }
    };
    Some(Ok(Package {
        name,
        binary,
        workspace_root,
        target_directory,
    }))
}

/// Build the application at `dir` for the bare-metal target; returns the
/// ELF. A package outside the workspace without a `Cargo.lock` gets a copy
/// of the workspace's, so it builds with the same dependency versions
/// (cargo drops what it does not need).
pub fn build(dir: &Path, options: &BuildOptions) -> Result<PathBuf, AppError> {
    let package = package(dir, options)?;
    let dir = dir.canonicalize().map_err(|error| AppError::Io {
        what: format!("resolving {}", dir.display()),
        error,
    })?;
    let lock = package.workspace_root.join("Cargo.lock");
    if !inside(&package.workspace_root, options) && !lock.exists() {
        std::fs::copy(options.workspace.join("Cargo.lock"), &lock).map_err(|error| {
            AppError::Io {
                what: format!("copying the workspace's Cargo.lock to {}", lock.display()),
                error,
            }
        })?;
    }
    let toolchain = toolchain(&options.workspace)?;
    let mut command = cargo(options, &dir, &toolchain);
    command
        .args(["build", "--quiet", "--target", TARGET, "--bin"])
        .arg(&package.binary)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"));
    if options.release {
        command.arg("--release");
    }
    if let Some(target_dir) = &options.target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    let status = command.status().map_err(|error| AppError::Io {
        what: "running cargo build".into(),
        error,
    })?;
    if !status.success() {
        return Err(AppError::BuildFailed {
            package: package.name,
        });
    }
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or(package.target_directory);
    let profile = if options.release { "release" } else { "debug" };
    Ok(target_dir.join(TARGET).join(profile).join(package.binary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(targets: &str) -> serde_json::Value {
        serde_json::from_str(&format!(
            r#"{{"workspace_root":"/w","target_directory":"/w/target","packages":[
                {{"name":"other","manifest_path":"/w/other/Cargo.toml","targets":[]}},
                {{"name":"app","manifest_path":"/w/app/Cargo.toml","targets":[{targets}]}}]}}"#
        ))
        .unwrap()
    }

    fn pick(targets: &str) -> Result<Package, AppError> {
        parse_metadata(&metadata(targets), Path::new("/w/app/Cargo.toml")).unwrap()
    }

    #[test]
    fn the_one_binary_is_picked() {
        let package =
            pick(r#"{"name":"hello","kind":["bin"]},{"name":"app","kind":["lib"]}"#).unwrap();
        assert_eq!(package.name, "app");
        assert_eq!(package.binary, "hello");
        assert_eq!(package.target_directory, Path::new("/w/target"));
    }

    #[test]
    fn of_several_binaries_the_package_s_namesake_is_picked() {
        let package =
            pick(r#"{"name":"tool","kind":["bin"]},{"name":"app","kind":["bin"]}"#).unwrap();
        assert_eq!(package.binary, "app");
        let error = pick(r#"{"name":"a","kind":["bin"]},{"name":"b","kind":["bin"]}"#).unwrap_err();
        assert!(
            matches!(error, AppError::SeveralBinaries { ref binaries, .. } if binaries == &["a", "b"])
        );
    }

    #[test]
    fn a_library_alone_has_no_binary() {
        let error = pick(r#"{"name":"app","kind":["lib"]}"#).unwrap_err();
        assert!(matches!(error, AppError::NoBinary { ref package } if package == "app"));
    }

    #[test]
    fn a_manifest_without_its_package_is_no_package() {
        let result = parse_metadata(&metadata(""), Path::new("/w/Cargo.toml")).unwrap();
        assert!(matches!(result, Err(AppError::NoPackage(_))));
        assert!(parse_metadata(&serde_json::json!({}), Path::new("/w/Cargo.toml")).is_none());
    }

    #[test]
    fn a_directory_without_a_manifest_is_refused_before_cargo_runs() {
        let dir = tempfile::tempdir().unwrap();
        let options = BuildOptions {
            workspace: PathBuf::from("/nonexistent"),
            release: false,
            target_dir: None,
        };
        let error = build(dir.path(), &options).unwrap_err();
        assert!(matches!(error, AppError::NoManifest(_)), "{error}");
        assert!(error.to_string().contains("no Cargo.toml"));
        let missing = dir.path().join("absent");
        assert!(matches!(
            build(&missing, &options),
            Err(AppError::NotADirectory(_))
        ));
    }
}
