//! The 8254 programmable interval timer, used only as a known-frequency
//! reference to measure the TSC.
//!
//! Channel 2 is gated by bit 0 of port 0x61 and its output is visible in bit
//! 5 of the same port, so it can be used as a one-shot countdown without
//! interrupts: program mode 0 ("interrupt on terminal count"), open the gate,
//! and poll the output bit.

use x86_64::instructions::port::Port;

/// Input clock of the PIT, in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const SPEAKER_CONTROL: u16 = 0x61;
/// Command: channel 2, access lobyte/hibyte, mode 0, binary.
const CHANNEL2_ONE_SHOT: u8 = 0b1011_0000;
const GATE_BIT: u8 = 0b01;
const SPEAKER_BIT: u8 = 0b10;
const OUTPUT_BIT: u8 = 0b10_0000;

/// Count down `ticks` PIT ticks (at most 65535), calling `on_start` right after
/// the countdown starts. Returns false if the output never rose within
/// `max_polls` reads (no PIT), so the caller can fall back.
pub fn one_shot(ticks: u16, max_polls: u64, on_start: impl FnOnce()) -> bool {
    let mut control: Port<u8> = Port::new(SPEAKER_CONTROL);
    let mut command: Port<u8> = Port::new(COMMAND);
    let mut data: Port<u8> = Port::new(CHANNEL2_DATA);
    let [low, high] = ticks.to_le_bytes();
    // SAFETY: ports 0x42/0x43/0x61 belong to the PIT and the speaker gate;
    // nothing else in this kernel uses channel 2 or the speaker, and the
    // speaker bit is kept off.
    unsafe {
        let gate = control.read();
        control.write((gate & !(GATE_BIT | SPEAKER_BIT)) & 0x0f);
        command.write(CHANNEL2_ONE_SHOT);
        data.write(low);
        data.write(high);
        // Rising edge on the gate loads the count and starts the countdown.
        control.write((gate & !SPEAKER_BIT & 0x0f) | GATE_BIT);
    }
    on_start();
    for _ in 0..max_polls {
        // SAFETY: reading port 0x61 has no side effect.
        if unsafe { control.read() } & OUTPUT_BIT != 0 {
            return true;
        }
    }
    false
}
