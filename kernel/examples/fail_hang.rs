//! A kernel that never exits: the host runner must time it out.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
// Long enough to print its line on a loaded machine (boot takes a few
// seconds under TCG), short enough to keep the test quick.
kernel::qemu_machine!("timeout=20");

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info, "warn");
    kernel::println!("hanging on purpose");
    kernel::arch::halt_forever()
}
