//! A kernel that triple-faults: the host runner must report the reset.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use x86_64::VirtAddr;
use x86_64::structures::DescriptorTablePointer;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info, "warn");
    kernel::println!("loading an empty IDT, then raising an exception");
    let empty = DescriptorTablePointer {
        limit: 0,
        base: VirtAddr::zero(),
    };
    // SAFETY: deliberately unsound for the rest of this kernel's (short)
    // life: with no IDT, the breakpoint below escalates to a triple fault.
    unsafe { x86_64::instructions::tables::lidt(&empty) };
    x86_64::instructions::interrupts::int3();
    kernel::exit(kernel::ExitStatus::Success)
}
