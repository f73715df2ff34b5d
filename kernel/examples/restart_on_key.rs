//! The end of a run on real hardware, in QEMU: prints a line, then waits
//! for a key (PS/2 keyboard or serial) and restarts the machine, exactly as
//! the default application does when it is not under QEMU.
//!
//! A `reset_from = NAME` line in the settings (`acpi`, `cf9`, `keyboard`,
//! `triple-fault`) starts the chain of reset methods further down, so
//! tests reach the fallbacks on machines where the first method works.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::reset::{self, ResetMethod};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = kernel::init(boot_info, "info");
    let settings = core::str::from_utf8(kernel.ramdisk.unwrap_or(&[])).unwrap_or("");
    let first = settings
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "reset_from")
        .map(|(_, value)| value.trim())
        .map_or(Some(ResetMethod::AcpiRegister), ResetMethod::parse);
    let Some(first) = first else {
        log::error!("reset_from: unknown method");
        kernel::exit(kernel::ExitStatus::Failure)
    };
    if let Some((width, height, scale)) = kernel::console::framebuffer::resolution() {
        kernel::println!("screen {width}x{height}, font scale {scale}");
    }
    kernel::println!("the report would end here");
    reset::wait_for_key_then_restart_from(&kernel.memory, kernel.rsdp, first)
}
