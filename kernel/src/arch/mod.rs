//! CPU-level platform code: descriptor tables, the time-stamp counter, the
//! PIT and i8042 registers, and the exit path (isa-debug-exit, halt).
//!
//! The bottom layer of the kernel: it imports no other module and prints
//! nothing, so everything above it (consoles, the panic path, the exception
//! handlers, restarting the machine) can use it. This is one of the few
//! places in the kernel where `unsafe` lives; each use carries the invariant
//! it relies on.

pub mod exit;
pub mod gdt;
pub mod keyboard;
pub mod pit;
pub mod tsc;

/// Stop the CPU for good: interrupts off, then `hlt` forever.
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
