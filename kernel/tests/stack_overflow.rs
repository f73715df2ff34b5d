//! A kernel stack overflow reaches the double-fault handler (on its own
//! stack) instead of triple-faulting.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::interrupts::{Expected, expect_fault};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info, "warn");
    kernel::print!("test stack_overflow_reaches_double_fault_handler ... ");
    expect_fault(Expected::DoubleFault, 0);
    recurse(0);
    kernel::println!("FAILED: recursion returned");
    kernel::exit(kernel::ExitStatus::Failure)
}

#[allow(unconditional_recursion, reason = "the point is to overflow the stack")]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 32];
    core::hint::black_box(&frame);
    recurse(depth + 1) + core::hint::black_box(frame[3])
}
