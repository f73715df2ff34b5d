//! The end of a run on real hardware: the machine shows "Press any key to
//! restart.", keeps running until a key arrives (a PS/2 key through QEMU's
//! monitor, or a byte on serial), then restarts; QEMU runs with
//! `-no-reboot`, so the reset ends it. The kernel logs each reset method on
//! serial before trying it, which tells which one worked. Also checks that
//! COM1 runs at 115200 baud (QEMU's `serial_update_parameters` trace).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use boot::qemu::{Firmware, Outcome, monitor_command};

mod support;

const PROMPT: &str = "Press any key to restart.";
/// Generous: a boot under TCG on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(120);

/// How the key reaches the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    /// `sendkey a` on QEMU's monitor: the PS/2 keyboard.
    Keyboard,
    /// A byte on COM1.
    Serial,
}

struct Ended {
    outcome: Outcome,
    serial: String,
    trace: String,
}

/// Boot the example on `machine_type` with `firmware`, wait for the prompt, check the machine
/// keeps running, press a key, and wait for QEMU to end.
fn press_key_at_prompt(machine_type: &str, firmware: Firmware, settings: &str, key: Key) -> Ended {
    let kernel = support::kernel("example", "restart_on_key");
    let dir = tempfile::tempdir().unwrap();
    let mut machine = support::machine(&kernel, dir.path(), settings, &[]);
    machine.machine = machine_type.into();
    machine.firmware = firmware;
    let socket = dir.path().join("monitor.sock");
    machine.add_monitor(&socket);
    machine
        .extra
        .extend(["-trace".into(), "enable=serial_update_parameters".into()]);
    let mut child = machine
        .command()
        .unwrap()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = read_lines(&mut child);
    let mut serial = String::new();
    let deadline = Instant::now() + DEADLINE;
    while !serial.contains(PROMPT) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => serial.push_str(&line),
            Err(_) => {
                let _ = child.kill();
                panic!("no prompt before the deadline:\n{serial}");
            }
        }
    }
    // The kernel waits for a key: QEMU is still running, and the monitor
    // answers (a round trip through the running machine's main loop).
    monitor_command(&socket, "info status", Duration::from_secs(20)).unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "QEMU ended before a key was pressed:\n{serial}"
    );
    match key {
        Key::Keyboard => {
            monitor_command(&socket, "sendkey a", Duration::from_secs(20)).unwrap();
        }
        Key::Serial => {
            let stdin = child.stdin.as_mut().unwrap();
            stdin.write_all(b"x").unwrap();
            stdin.flush().unwrap();
        }
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no reset before the deadline:\n{serial}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        serial.push_str(&line);
    }
    let trace = std::fs::read_to_string(&machine.trace_log).unwrap_or_default();
    Ended {
        outcome: Outcome::from_exit(status),
        serial,
        trace,
    }
}

/// Serial output, line by line, from a thread (reads block).
fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(line.replace('\r', "") + "\n").is_err() {
                return;
            }
        }
    });
    receiver
}

/// The reset methods the kernel tried, in order.
fn tried(serial: &str) -> Vec<&str> {
    serial
        .lines()
        .filter_map(|line| line.split_once("restart: trying ").map(|(_, m)| m.trim()))
        .collect()
}

fn assert_reset_by(ended: &Ended, methods: &[&str], source: &str) {
    assert_eq!(ended.outcome, Outcome::Reset, "{}", ended.serial);
    assert_eq!(tried(&ended.serial), methods, "{}", ended.serial);
    assert!(
        ended.serial.contains(&format!("on {source}")),
        "the key did not come from the {source}:\n{}",
        ended.serial
    );
    // The kernel programs divisor 1: QEMU reports the speed it decodes.
    let baud = ended
        .trace
        .lines()
        .rfind(|l| l.contains("serial_update_parameters"))
        .unwrap_or_default();
    assert!(baud.contains("115200"), "last serial setting: {baud:?}");
}

#[test]
fn q35_key_press_restarts_through_the_acpi_reset_register() {
    let ended = press_key_at_prompt("q35", Firmware::Bios, "# defaults\n", Key::Keyboard);
    assert_reset_by(&ended, &["acpi"], "keyboard");
    assert!(
        ended.serial.contains("ACPI reset register SystemIo 0xcf9"),
        "{}",
        ended.serial
    );
}

#[test]
fn pc_key_press_restarts_through_the_reset_control_register() {
    let ended = press_key_at_prompt("pc", Firmware::Bios, "# defaults\n", Key::Keyboard);
    // QEMU's pc (PIIX4) FADT does not offer a reset register; the
    // chipset's 0xCF9 register (PIIX3 RCR) restarts it.
    assert_reset_by(&ended, &["acpi", "cf9"], "keyboard");
    assert!(
        ended
            .serial
            .contains("acpi skipped: the FADT has no supported reset register"),
        "{}",
        ended.serial
    );
}

#[test]
fn reset_control_register_restarts_after_a_serial_byte() {
    let ended = press_key_at_prompt("pc", Firmware::Bios, "reset_from = cf9\n", Key::Serial);
    assert_reset_by(&ended, &["cf9"], "serial");
}

#[test]
fn keyboard_controller_pulse_restarts_under_uefi() {
    // OVMF leaves the i8042 usable after ExitBootServices.
    let ended = press_key_at_prompt(
        "q35",
        Firmware::Uefi,
        "reset_from = keyboard\n",
        Key::Keyboard,
    );
    assert_reset_by(&ended, &["keyboard"], "keyboard");
}

#[test]
fn triple_fault_is_the_last_resort() {
    let ended = press_key_at_prompt(
        "pc",
        Firmware::Bios,
        "reset_from = triple-fault\n",
        Key::Serial,
    );
    assert_reset_by(&ended, &["triple-fault"], "serial");
}
