//! The command line as people meet it: `--help` everywhere, and every bad
//! option or value refused in clap's shape with exit status 2, before
//! anything is built or booted.

use std::process::{Command, Output};

fn unikernel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unikernel"))
        .args(args)
        .output()
        .expect("running the command-line program")
}

const SUBCOMMANDS: [&str; 11] = [
    "run", "test", "bench", "compare", "cost", "fuzz", "soak", "stamp", "image", "flash", "setup",
];

#[test]
fn help_lists_every_subcommand_and_the_run_options() {
    let out = unikernel(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: ./run.sh"), "{text}");
    for name in SUBCOMMANDS {
        assert!(
            text.contains(&format!("\n  {name} ")),
            "{name} missing from\n{text}"
        );
    }
    for option in [
        "--uefi",
        "--disk",
        "--disk-size",
        "--window",
        "--machine",
        "--memory",
        "--timeout",
        "--release",
        "--app",
        "--settings",
        "--qemu-arg",
    ] {
        assert!(text.contains(option), "{option} missing from\n{text}");
    }
    assert!(
        !text.contains("runner"),
        "the cargo runner stays hidden\n{text}"
    );
}

#[test]
fn every_subcommand_has_help() {
    for name in SUBCOMMANDS {
        let out = unikernel(&[name, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{name} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Usage: ./run.sh {name}")),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn bad_command_lines_exit_with_status_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "unexpected argument '--bogus'"),
        (&["frobnicate"], "unexpected argument 'frobnicate'"),
        (
            &["--timeout", "soon"],
            "invalid value 'soon' for '--timeout <SECS>'",
        ),
        (
            &["--disk-size", "12Q"],
            "invalid value '12Q' for '--disk-size <SIZE>'",
        ),
        (&["--disk"], "a value is required for '--disk <PATH>'"),
        (&["run", "extra"], "unexpected argument 'extra'"),
        (
            &["bench", "--disk", "x.img"],
            "unexpected argument '--disk'",
        ),
        (
            &["bench", "--backend", "floppy"],
            "invalid value 'floppy' for '--backend <BACKEND>'",
        ),
        (
            &["bench", "--namespaces", "0"],
            "invalid value '0' for '--namespaces <N>'",
        ),
        (
            &["bench", "--seconds", "0"],
            "invalid value '0' for '--seconds <S>'",
        ),
        (
            &["bench", "--jobs", "randread-4k-qd2"],
            "unknown job \"randread-4k-qd2\"",
        ),
        (
            &["compare", "--runs", "0"],
            "invalid value '0' for '--runs <N>'",
        ),
        (
            &["compare", "--systems", "unikernel,bsd"],
            "invalid value 'bsd' for '--systems <LIST>'",
        ),
        (&["compare", "--jobs", "short,"], "unknown job"),
        (&["compare", "--page-only"], "--results <PATH>"),
        (&["cost", "0"], "invalid value '0' for '[READS]'"),
        (
            &["fuzz", "60", "floppy"],
            "not a number of seconds nor a fuzz target",
        ),
        (&["soak", "ten"], "invalid value 'ten' for '[SECONDS]'"),
        (&["stamp"], "required arguments were not provided"),
        (&["flash"], "required arguments were not provided"),
        (
            &["flash", "/dev/sdz", "--to-file", "x.img"],
            "cannot be used with",
        ),
        (&["test", "--fast"], "unexpected argument '--fast'"),
        (&["setup", "now"], "unexpected argument 'now'"),
    ];
    for (args, message) in cases {
        let out = unikernel(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in\n{stderr}"
        );
    }
}

#[test]
fn stamp_marks_an_image_as_owned_by_the_serial() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    boot::disk::create_if_missing(&path, 1 << 20).unwrap();
    let out = unikernel(&["stamp", path.to_str().unwrap(), "--serial", "S123"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signature = boot::disk::read_stamp(&path)
        .unwrap()
        .expect("a valid signature");
    assert_eq!(signature, ownership::Signature::new(1, "S123", 1 << 20));
    let missing = unikernel(&["stamp", dir.path().join("none.img").to_str().unwrap()]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "a missing image is an error"
    );
}
