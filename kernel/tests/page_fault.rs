//! A page fault is reported with its address (and stops the machine).

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::interrupts::{Expected, expect_fault};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

const UNMAPPED: u64 = 0x0000_5a5a_0000_1238;

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info, "warn");
    kernel::print!("test page_fault_is_reported_with_its_address ... ");
    expect_fault(Expected::PageFault, UNMAPPED);
    // SAFETY: none needed beyond the test's intent: the address is canonical
    // and unmapped, so this read faults and never returns a value.
    let value = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
    kernel::println!("FAILED: read {value:#x} from an unmapped address");
    kernel::exit(kernel::ExitStatus::Failure)
}
