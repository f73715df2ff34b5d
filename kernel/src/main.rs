//! The default application: boots the platform and reports what it found.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::ExitStatus;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    let _kernel = kernel::init(boot_info, "info");
    log::info!("nothing else to do yet");
    kernel::exit(ExitStatus::Success)
}
