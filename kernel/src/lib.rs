//! The unikernel as a library: boot-time initialisation, platform glue for
//! the drivers, and the in-QEMU test framework.
//!
//! An application is a cargo package of its own (`apps/inspector`, the
//! default; `apps/log`; or one anywhere, see the README) whose binary
//! declares its entry with
//! `bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG)`,
//! calls [`init`] first and [`exit`] last. Test kernels reuse the same
//! [`init`], so they run on exactly the platform the application gets.
//!
//! Modules, bottom to top; each imports only modules listed before it:
//! - `arch`: the CPU and its ports (descriptor tables, TSC, PIT, i8042) and
//!   the exit path (isa-debug-exit, halt). It prints nothing.
//! - `memory`: frames, paging, heap, MMIO and DMA mappings.
//! - `acpi`: the firmware's tables.
//! - `time`: the TSC frequency from CPUID, HPET, PM timer or PIT.
//! - `console`: serial and framebuffer consoles, `print!`, the `log` backend.
//! - `testing`: the in-QEMU test runner and the panic path.
//! - `interrupts`: the CPU exception handlers, which print and end the run
//!   (or the test that provoked the fault).
//! - `reset`, `iommu`, `pci`, then `storage`: platform services for the
//!   application.
//! - `boot`: [`init`], which brings the layers up in order.
//!
//! `executor`, the `async` runtime whose idle step polls the NVMe queue
//! pairs in use, is plain logic that imports no other module.

#![no_std]
#![cfg_attr(test, no_main)]
#![feature(abi_x86_interrupt)]
#![feature(custom_test_frameworks)]
#![test_runner(crate::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]
#![warn(missing_docs)]

extern crate alloc;

pub mod acpi;
pub mod arch;
mod boot;
pub mod console;
pub mod executor;
pub mod interrupts;
pub mod iommu;
pub mod memory;
pub mod pci;
pub mod reset;
pub mod storage;
pub mod testing;
pub mod time;

pub use arch::exit::ExitStatus;
pub use boot::{BOOTLOADER_CONFIG, Firmware, Kernel, init};

/// Declare, inside a test kernel, the QEMU machine it must boot on. The
/// host runner finds the text in the ELF; see `boot/src/runner.rs` for the
/// keys (`machine=q35`, `firmware=uefi`, `nvme=64M,mdts=2`, `timeout=30`...),
/// one per line.
#[macro_export]
macro_rules! qemu_machine {
    ($($line:literal),* $(,)?) => {
        #[used]
        static UNIKERNEL_QEMU_MACHINE: &[u8] =
            concat!("UNIKERNEL-QEMU:", $($line, "\n",)* "\0").as_bytes();
    };
}

/// Stop the machine with `status` (QEMU exits, real hardware halts).
pub fn exit(status: ExitStatus) -> ! {
    arch::exit::exit(status)
}

// Only on the bare-metal target: a host program (the `cost_executor`
// example) that links the library panics through std.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    testing::panic(info)
}

#[cfg(test)]
bootloader_api::entry_point!(test_kernel_main, config = &BOOTLOADER_CONFIG);

#[cfg(test)]
fn test_kernel_main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
    init(boot_info, "warn");
    test_main();
    exit(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use crate::console::logger::Filter;
    use log::LevelFilter;

    #[test_case]
    fn log_filter_picks_longest_module_prefix() {
        let filter = Filter::parse("warn,nvme=debug,nvme::queue=trace,kernel::pci=off").unwrap();
        assert_eq!(filter.level_for("kernel"), LevelFilter::Warn);
        assert_eq!(filter.level_for("nvme"), LevelFilter::Debug);
        assert_eq!(filter.level_for("nvme::controller"), LevelFilter::Debug);
        assert_eq!(filter.level_for("nvme::queue"), LevelFilter::Trace);
        assert_eq!(filter.level_for("nvmex"), LevelFilter::Warn);
        assert_eq!(filter.level_for("kernel::pci::scan"), LevelFilter::Off);
        assert_eq!(filter.max_level(), LevelFilter::Trace);
    }

    #[test_case]
    fn log_filter_rejects_bad_levels() {
        assert!(Filter::parse("loud").is_err());
        assert!(Filter::parse("info,nvme=shouty").is_err());
        assert!(
            Filter::parse("a=info,b=info,c=info,d=info,e=info,f=info,g=info,h=info,i=info")
                .is_err()
        );
    }

    #[test_case]
    fn breakpoint_is_handled_and_execution_resumes() {
        let before = crate::interrupts::breakpoint_count();
        x86_64::instructions::interrupts::int3();
        x86_64::instructions::interrupts::int3();
        assert_eq!(crate::interrupts::breakpoint_count(), before + 2);
    }

    #[test_case]
    fn tsc_is_calibrated_and_monotonic() {
        let hz = crate::arch::tsc::frequency_hz();
        assert!(
            (100_000_000..20_000_000_000).contains(&hz),
            "TSC at {hz} Hz"
        );
        let a = crate::arch::tsc::now();
        let b = crate::arch::tsc::now();
        assert!(b >= a);
    }

    #[test_case]
    fn boot_clock_comes_from_a_counter_and_is_cross_checked() {
        // The lib tests boot QEMU's default `pc`: HPET, PM timer and PIT
        // all present, so the HPET is used and the PM timer agrees.
        let clock = crate::time::calibration().expect("calibrated at boot");
        assert_eq!(clock.source, Some(crate::time::Source::Hpet));
        assert_eq!(
            clock.check,
            crate::time::Check::Agrees(crate::time::Source::PmTimer)
        );
        assert_eq!(clock.hz, crate::arch::tsc::frequency_hz());
    }

    #[test_case]
    fn remeasuring_agrees_with_boot_and_leaves_the_hpet_as_found() {
        let boot = crate::arch::tsc::frequency_hz();
        let hpet = crate::time::chosen_hpet().expect("pc has an HPET");
        // SeaBIOS leaves the counter halted: the boot calibration ran it
        // and must have put it back so, and so must this measurement.
        let running = hpet.counter_running();
        assert!(!running, "the HPET was left running after calibration");
        match crate::time::remeasure(10_000_000) {
            crate::time::Remeasurement::Measured { source, hz } => {
                assert_eq!(source, crate::time::Source::Hpet);
                assert!(crate::time::select::agree(boot, hz), "{boot} vs {hz}");
            }
            other => panic!("remeasure: {other:?}"),
        }
        assert_eq!(hpet.counter_running(), running);
    }

    #[test_case]
    fn the_pit_measures_what_the_hpet_does() {
        let boot = crate::arch::tsc::frequency_hz();
        let hz = crate::time::pit::measure(2_000_000, &mut [0; 3]).expect("pc has a PIT");
        assert!(crate::time::select::agree(boot, hz), "{boot} vs {hz}");
    }
}
