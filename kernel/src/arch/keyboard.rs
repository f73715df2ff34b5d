//! The PS/2 keyboard through the i8042 controller, polled: enough to wait
//! for "any key" at the end of a run, with interrupts off.
//!
//! Ports and status bits as in the IBM PC/AT technical reference (8042):
//! data at 0x60, status (read) and command (write) at 0x64. A machine
//! without the controller leaves port 0x64 unclaimed, so it reads as
//! all-ones. On PCs with a USB keyboard the firmware's legacy emulation
//! usually presents it as this controller, at least under BIOS.

use x86_64::instructions::port::{PortReadOnly, PortWriteOnly};

use super::tsc;

/// Data port: scan codes and command responses.
const DATA_PORT: u16 = 0x60;
/// Status register (read) and command register (write).
const STATUS_COMMAND_PORT: u16 = 0x64;
/// A flush reads at most this many stale bytes (the buffer holds one; a
/// controller that keeps reporting more is broken).
const MAX_FLUSH_BYTES: usize = 64;
/// How long the controller may take to accept a command.
const INPUT_READY_TIMEOUT_NS: u64 = 100_000_000;

/// Status register bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Status(u8);

impl Status {
    /// Output buffer full: a byte waits at the data port.
    const OUTPUT_FULL: u8 = 1 << 0;
    /// Input buffer full: the controller has not taken the last command.
    const INPUT_FULL: u8 = 1 << 1;
    /// The waiting byte comes from the auxiliary (mouse) port.
    const AUXILIARY: u8 = 1 << 5;
    /// What an unclaimed port reads as.
    const ABSENT: u8 = 0xff;

    fn output_full(self) -> bool {
        self.0 & Self::OUTPUT_FULL != 0
    }

    fn input_full(self) -> bool {
        self.0 & Self::INPUT_FULL != 0
    }

    fn is_auxiliary(self) -> bool {
        self.0 & Self::AUXILIARY != 0
    }
}

/// Controller commands (written to the command port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    /// Pulse output port bit 0 (the CPU reset line) low: resets the
    /// machine on PCs that still wire it.
    PulseReset = 0xfe,
}

/// Bytes from the keyboard that are not a key being pressed.
mod scan {
    /// Set 1 (translated): the high bit marks a key release.
    pub const RELEASE_BIT: u8 = 0x80;
    /// Set 2: the prefix of a release.
    pub const SET2_RELEASE: u8 = 0xf0;
    /// Prefixes of extended keys.
    pub const EXTENDED: [u8; 2] = [0xe0, 0xe1];
    /// Keyboard responses: self-test passed, acknowledge, resend, errors.
    pub const RESPONSES: [u8; 6] = [0xaa, 0xfa, 0xfe, 0xfc, 0xfd, 0x00];
}

/// The i8042 controller, found present.
pub struct Keyboard {
    status: PortReadOnly<u8>,
    data: PortReadOnly<u8>,
}

/// Why the controller did not take a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyboardError {
    /// The input buffer stayed full past the deadline.
    Busy,
}

impl Keyboard {
    /// The controller, if one answers (status port not all-ones).
    pub fn find() -> Option<Keyboard> {
        let mut keyboard = Keyboard {
            status: PortReadOnly::new(STATUS_COMMAND_PORT),
            data: PortReadOnly::new(DATA_PORT),
        };
        (keyboard.status().0 != Status::ABSENT).then_some(keyboard)
    }

    fn status(&mut self) -> Status {
        // SAFETY: reading the i8042 status register has no side effect; on
        // a machine without one the port is unclaimed and reads all-ones.
        Status(unsafe { self.status.read() })
    }

    /// Drop whatever bytes wait in the output buffer (keys pressed during
    /// the run), so only keys pressed from now on count.
    pub fn flush(&mut self) {
        for _ in 0..MAX_FLUSH_BYTES {
            if !self.status().output_full() {
                return;
            }
            // SAFETY: reading the data port takes the waiting byte; the
            // kernel has no keyboard interrupt handler that wants it.
            unsafe { self.data.read() };
        }
    }

    /// A key press, if one is waiting (polled; releases, prefixes,
    /// controller responses and mouse bytes are consumed and ignored).
    pub fn poll_key_press(&mut self) -> Option<u8> {
        let status = self.status();
        if !status.output_full() {
            return None;
        }
        // SAFETY: as in `flush`.
        let byte = unsafe { self.data.read() };
        let ignored = status.is_auxiliary()
            || byte & scan::RELEASE_BIT != 0
            || byte == scan::SET2_RELEASE
            || scan::EXTENDED.contains(&byte)
            || scan::RESPONSES.contains(&byte);
        (!ignored).then_some(byte)
    }

    /// Send `command` to the controller once it accepts input (bounded wait).
    pub fn command(&mut self, command: Command) -> Result<(), KeyboardError> {
        let deadline = tsc::now_ns().saturating_add(INPUT_READY_TIMEOUT_NS);
        while self.status().input_full() {
            if tsc::now_ns() >= deadline {
                return Err(KeyboardError::Busy);
            }
            core::hint::spin_loop();
        }
        let mut port: PortWriteOnly<u8> = PortWriteOnly::new(STATUS_COMMAND_PORT);
        // SAFETY: the controller was found and its input buffer is empty;
        // the commands this kernel sends are listed in `Command`.
        unsafe { port.write(command as u8) };
        Ok(())
    }
}
