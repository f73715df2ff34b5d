//! The COM1 serial port (0x3F8), the console QEMU and the test runner read.
//!
//! `uart_16550` 0.4's `init` programs divisor 3 (38400 baud) and offers no
//! way to choose another, so [`init`] then sets the divisor latch to 1,
//! 115200 baud from the UART's 1.8432 MHz clock (1.8432 MHz / 16 / 1), the
//! speed terminal programs and serial consoles assume. Registers as in the
//! 16550D data sheet, "Register Description" (the divisor latch overlays
//! the data and interrupt-enable registers while LCR.DLAB is set).

use core::fmt::{self, Write};

use spin::Mutex;
use uart_16550::SerialPort;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
/// Divisor latch, low byte (offset 0 while LCR.DLAB is set).
const DIVISOR_LOW: u16 = 0;
/// Divisor latch, high byte (offset 1 while LCR.DLAB is set).
const DIVISOR_HIGH: u16 = 1;
/// Line control register.
const LINE_CONTROL: u16 = 3;
/// Line status register.
const LINE_STATUS: u16 = 5;
/// What an unclaimed I/O port reads as.
const ABSENT: u8 = 0xff;
/// A drain reads at most this many stale bytes (the FIFO holds 16).
const MAX_DRAIN_BYTES: usize = 64;

/// Line control register values (16550D, LCR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LineControl(u8);

impl LineControl {
    /// 8 data bits (WLS = 11b), 1 stop bit, no parity: what the crate sets.
    const EIGHT_N_ONE: LineControl = LineControl(0b0000_0011);
    /// Divisor latch access bit.
    const DLAB: u8 = 1 << 7;

    fn with_divisor_latch(self) -> LineControl {
        LineControl(self.0 | Self::DLAB)
    }
}

/// Divisor for 115200 baud from the standard 1.8432 MHz clock.
const DIVISOR_115200: u16 = 1;

static PORT: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Initialise COM1 (115200 8N1, FIFOs on).
pub fn init() {
    // SAFETY: 0x3F8 is the standard COM1 base; this kernel drives it only
    // through this module (and the lock-free emergency path, which writes
    // whole bytes through the same registers).
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    set_divisor(DIVISOR_115200);
    *PORT.lock() = Some(port);
}

/// Program the baud-rate divisor, keeping 8N1 framing.
fn set_divisor(divisor: u16) {
    let mut line_control: Port<u8> = Port::new(COM1 + LINE_CONTROL);
    let mut low: Port<u8> = Port::new(COM1 + DIVISOR_LOW);
    let mut high: Port<u8> = Port::new(COM1 + DIVISOR_HIGH);
    let [divisor_low, divisor_high] = divisor.to_le_bytes();
    // SAFETY: COM1's registers, driven only by this module (see `init`),
    // before anyone else uses the port. With DLAB set, offsets 0 and 1 are
    // the divisor latch; clearing DLAB restores the data and interrupt-
    // enable registers with the crate's settings intact.
    unsafe {
        line_control.write(LineControl::EIGHT_N_ONE.with_divisor_latch().0);
        low.write(divisor_low);
        high.write(divisor_high);
        line_control.write(LineControl::EIGHT_N_ONE.0);
    }
}

/// Write to COM1 under its lock. Does nothing before [`init`].
pub fn print(args: fmt::Arguments<'_>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(port) = PORT.lock().as_mut() {
            let _ = port.write_fmt(args);
        }
    });
}

/// Write to COM1 without taking the lock (fault and panic paths).
pub fn emergency_print(args: fmt::Arguments<'_>) {
    // SAFETY: see `init`; the port was initialised at boot (or reads back as
    // absent, in which case bytes are dropped). At worst this interleaves
    // bytes with an interrupted writer, which is acceptable for a last word.
    let mut port = unsafe { SerialPort::new(COM1) };
    let _ = port.write_fmt(args);
}

/// Wait up to `timeout_ns` for a byte on COM1 (bounded: real machines may
/// have no serial port at all, or nobody typing).
pub fn read_byte(timeout_ns: u64) -> Option<u8> {
    let deadline = crate::arch::tsc::now_ns().saturating_add(timeout_ns);
    loop {
        let byte = x86_64::instructions::interrupts::without_interrupts(|| {
            PORT.lock()
                .as_mut()
                .and_then(|port| port.try_receive().ok())
        });
        if byte.is_some() || crate::arch::tsc::now_ns() >= deadline {
            return byte;
        }
        core::hint::spin_loop();
    }
}

/// True if COM1 exists: an unclaimed port reads all-ones, which no real
/// line status has (bit 7, "error in FIFO", never comes with all the rest).
pub fn present() -> bool {
    let mut status: Port<u8> = Port::new(COM1 + LINE_STATUS);
    // SAFETY: reading the line status register has no side effect (it
    // clears error bits, which this kernel does not use).
    unsafe { status.read() != ABSENT }
}

/// Drop bytes already received on COM1 (sent before anyone asked).
pub fn drain() {
    for _ in 0..MAX_DRAIN_BYTES {
        if read_byte(0).is_none() {
            return;
        }
    }
}
