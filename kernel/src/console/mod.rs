//! Consoles: COM1 serial and a framebuffer text console, both fed by the
//! `log` crate (see [`logger`]).
//!
//! Normal output goes through locks. Fault and panic handlers use
//! [`emergency_print`], which never waits for a lock: it writes to a fresh
//! handle on the serial port and to the framebuffer only if nobody holds it.

pub mod framebuffer;
pub mod logger;
pub mod serial;

use core::fmt;

/// Print to every console (serial, then framebuffer), taking their locks.
pub fn print(args: fmt::Arguments<'_>) {
    serial::print(args);
    framebuffer::print(args, framebuffer::Colour::Normal);
}

/// Print from a context that may have interrupted a console's lock holder.
pub fn emergency_print(args: fmt::Arguments<'_>) {
    serial::emergency_print(args);
    framebuffer::try_print(args, framebuffer::Colour::Error);
}

/// `print!` to every console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// `println!` to every console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
