//! The default application: boots the platform and reports what it found.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::ExitStatus;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = kernel::init(boot_info, "info");
    let pci = kernel::pci::scan(&kernel.memory, kernel.rsdp);
    pci.print_listing();
    for function in pci.enumeration.nvme_controllers() {
        match pci.prepare_nvme(&kernel.memory, function) {
            Ok(bar) => log::info!(
                "NVMe controller {} ready: BAR0 mapped at {:#x}",
                function.address,
                bar.virt.as_u64()
            ),
            Err(error) => log::error!("NVMe controller {} not usable: {error:?}", function.address),
        }
    }
    kernel::exit(ExitStatus::Success)
}
