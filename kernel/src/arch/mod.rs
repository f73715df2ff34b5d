//! CPU-level platform code: descriptor tables, exceptions, timing, and the
//! ways the machine can stop.
//!
//! This is one of the few places in the kernel where `unsafe` lives; each use
//! carries the invariant it relies on.

pub mod exit;
pub mod gdt;
pub mod interrupts;
pub mod keyboard;
pub mod pit;
pub mod reset;
pub mod tsc;

/// Stop the CPU for good: interrupts off, then `hlt` forever.
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
