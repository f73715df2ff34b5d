//! An application of one's own, outside the repository: the README's
//! example ("Your own application": its `Cargo.toml` and `src/main.rs`),
//! written into a fresh temporary directory with its paths pointed at this
//! repository, built and booted by the command-line program's `--app PATH`
//! exactly as `./run.sh --app PATH` does. It must print what it read back,
//! exit with success and leave its greeting on the disk. Directories that
//! hold no application are refused with a message saying why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

/// What the README's `Cargo.toml` calls this repository.
const PLACEHOLDER: &str = "/path/to/nvme-unikernel";
const GREETING: &str = "hello from an application of my own";

/// The first fenced block of `language` in the README's section "Your own
/// application".
fn readme_block(language: &str) -> String {
    let readme = std::fs::read_to_string(support::workspace().join("README.md")).unwrap();
    let start = readme
        .find("\n## Your own application\n")
        .expect("README has a section \"Your own application\"");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fence = format!("```{language}\n");
    let open = section
        .find(&fence)
        .unwrap_or_else(|| panic!("no {language} block in the section"));
    let body = &section[open + fence.len()..];
    body[..body.find("```").expect("unclosed block")].to_owned()
}

/// The command-line program `./run.sh` builds and runs.
fn cli() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .current_dir(support::workspace())
        .args(["build", "--quiet", "--package", "cli", "--bin", "unikernel"])
        .status()
        .expect("running cargo");
    assert!(status.success(), "building the command-line program failed");
    target_dir().join("debug/unikernel")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| support::workspace().join("target"), PathBuf::from)
}

/// `./run.sh --app APP` with a scratch disk of its own in `dir`. The
/// application builds in a target directory kept between runs.
fn run_app(app: &Path, dir: &Path) -> Output {
    Command::new(cli())
        .current_dir(support::workspace())
        .env("CARGO_TARGET_DIR", target_dir().join("app-outside"))
        .arg("--app")
        .arg(app)
        .arg("--disk")
        .arg(dir.join("scratch.img"))
        .args(["--disk-size", "64M", "--timeout", "300"])
        .output()
        .expect("running the command-line program")
}

#[test]
fn the_readme_application_builds_outside_the_repository_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("hello");
    assert!(!app.starts_with(support::workspace()));
    std::fs::create_dir_all(app.join("src")).unwrap();
    let manifest = readme_block("toml");
    assert_eq!(manifest.matches(PLACEHOLDER).count(), 2, "{manifest}");
    let repository = support::workspace().canonicalize().unwrap();
    let manifest = manifest.replace(PLACEHOLDER, repository.to_str().unwrap());
    std::fs::write(app.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(app.join("src/main.rs"), readme_block("rust")).unwrap();

    let output = run_app(&app, dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("read back: {GREETING}")),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("created scratch disk"), "{stderr}");
    // The repository's lock file was copied: the same dependency versions.
    assert!(app.join("Cargo.lock").is_file());
    // The greeting really reached the disk, at byte 1 MiB.
    let disk = std::fs::read(dir.path().join("scratch.img")).unwrap();
    assert_eq!(
        &disk[1 << 20..(1 << 20) + GREETING.len()],
        GREETING.as_bytes()
    );
}

#[test]
fn directories_that_hold_no_application_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = run_app(&empty, dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no Cargo.toml"), "{stderr}");

    let library = dir.path().join("library");
    std::fs::create_dir_all(library.join("src")).unwrap();
    std::fs::write(
        library.join("Cargo.toml"),
        "[package]\nname = \"only-a-library\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(library.join("src/lib.rs"), "#![no_std]\n").unwrap();
    let output = run_app(&library, dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("package only-a-library has no binary"),
        "{stderr}"
    );

    let broken = dir.path().join("broken");
    std::fs::create_dir_all(broken.join("src")).unwrap();
    std::fs::write(
        broken.join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(
        broken.join("src/main.rs"),
        "#![no_std]\n#![no_main]\nconst X: u32 = \"not a number\";\n",
    )
    .unwrap();
    let output = run_app(&broken, dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("building the application broken failed"),
        "{stderr}"
    );
    assert!(!dir.path().join("scratch.img").exists());
}
