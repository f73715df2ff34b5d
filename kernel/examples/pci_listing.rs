//! Prints the PCI listing, then waits (up to a minute) for a byte on the
//! serial port before exiting, so the host can ask QEMU's monitor for its
//! own view (`info pci`) of the same, still running, machine.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = kernel::init(boot_info, "warn");
    let pci = kernel::pci::scan(&kernel.memory, kernel.rsdp);
    kernel::println!("BEGIN PCI LISTING");
    pci.print_listing();
    kernel::println!("END PCI LISTING");
    let answered = kernel::console::serial::read_byte(60_000_000_000).is_some();
    kernel::exit(if answered {
        kernel::ExitStatus::Success
    } else {
        kernel::ExitStatus::Failure
    })
}
