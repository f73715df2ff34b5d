//! A kernel that panics: the host runner must report it as a failure.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info, "warn");
    let answer = core::hint::black_box(41);
    assert_eq!(answer, 42, "deliberate failure");
    kernel::exit(kernel::ExitStatus::Success)
}
