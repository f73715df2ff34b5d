//! The 8254 programmable interval timer, used only as a known-frequency
//! reference to measure the TSC, and only where nothing better exists.
//!
//! Channel 2 is gated by bit 0 of port 0x61 and its output is visible in bit
//! 5 of the same port, so it can be used as a one-shot countdown without
//! interrupts: program mode 0 ("interrupt on terminal count"), open the gate,
//! and poll the output bit (8254 data sheet, mode 0; port 0x61 as the
//! PC/AT "NMI status and control" register).
//!
//! Modern chipsets may clock-gate the 8254 or leave it out entirely (QEMU's
//! `pit=off`). Without a device behind port 0x61 the port reads all-ones,
//! so the output bit looks high before the countdown even starts; a gated
//! PIT never raises it. [`OneShot::start`] reports the first, and the caller
//! bounds its polling for the second.

use x86_64::instructions::port::Port;

/// Input clock of the PIT, in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const SPEAKER_CONTROL: u16 = 0x61;
/// Command: channel 2, access lobyte/hibyte, mode 0, binary.
const CHANNEL2_ONE_SHOT: u8 = 0b1011_0000;
/// Port 0x61 bit 0: channel 2 gate.
const GATE_BIT: u8 = 0b01;
/// Port 0x61 bit 1: speaker data enable (kept off).
const SPEAKER_BIT: u8 = 0b10;
/// Port 0x61 bit 5: channel 2 output.
const OUTPUT_BIT: u8 = 0b10_0000;
/// Port 0x61 bits 0-3 are writable; the upper ones are status.
const WRITABLE_BITS: u8 = 0x0f;
/// What an I/O port with nothing behind it reads.
const NO_DEVICE: u8 = 0xff;

/// Why a one-shot could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitError {
    /// Port 0x61 reads all-ones: nothing decodes it.
    NoDevice,
    /// The output was already high right after the countdown was loaded,
    /// which mode 0 rules out.
    OutputStuckHigh,
}

/// A channel-2 countdown in progress.
pub struct OneShot {
    control: Port<u8>,
    started: (u64, u64),
}

impl OneShot {
    /// Load `ticks` PIT ticks (at most 65535) into channel 2 and start it.
    pub fn start(ticks: u16) -> Result<OneShot, PitError> {
        let mut control: Port<u8> = Port::new(SPEAKER_CONTROL);
        let mut command: Port<u8> = Port::new(COMMAND);
        let mut data: Port<u8> = Port::new(CHANNEL2_DATA);
        let [low, high] = ticks.to_le_bytes();
        // SAFETY: ports 0x42/0x43/0x61 belong to the PIT and the speaker
        // gate; nothing else in this kernel uses channel 2 or the speaker,
        // and the speaker bit is kept off.
        let (output_at_start, started) = unsafe {
            let gate = control.read();
            if gate == NO_DEVICE {
                return Err(PitError::NoDevice);
            }
            control.write(gate & !(GATE_BIT | SPEAKER_BIT) & WRITABLE_BITS);
            command.write(CHANNEL2_ONE_SHOT);
            data.write(low);
            data.write(high);
            // Rising edge on the gate loads the count and starts it.
            let before = super::tsc::now();
            control.write((gate & !SPEAKER_BIT & WRITABLE_BITS) | GATE_BIT);
            let after = super::tsc::now();
            (control.read() & OUTPUT_BIT, (before, after))
        };
        if output_at_start != 0 {
            return Err(PitError::OutputStuckHigh);
        }
        Ok(OneShot { control, started })
    }

    /// The TSC just before and just after the write that started the
    /// countdown.
    pub fn started(&self) -> (u64, u64) {
        self.started
    }

    /// Whether the countdown has reached zero.
    pub fn fired(&mut self) -> bool {
        // SAFETY: reading port 0x61 has no side effect.
        unsafe { self.control.read() & OUTPUT_BIT != 0 }
    }
}
