//! The COM1 serial port (0x3F8), the console QEMU and the test runner read.

use core::fmt::{self, Write};

use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;

static PORT: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Initialise COM1 (115200 8N1, FIFOs on).
pub fn init() {
    // SAFETY: 0x3F8 is the standard COM1 base; this kernel drives it only
    // through this module (and the lock-free emergency path, which writes
    // whole bytes through the same registers).
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    *PORT.lock() = Some(port);
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
