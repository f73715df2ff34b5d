//! Shared by the kernel tests: boot once, keep the kernel handle, and the
//! PCI checks that every machine topology runs.
//!
//! A test kernel's `main` is one call: [`boot_and_test`], or
//! [`boot_scan_pci_and_test`] where the tests use PCI or NVMe.

#![allow(dead_code, reason = "each test kernel uses a different part")]

use bootloader_api::BootInfo;
use kernel::Kernel;
use kernel::pci::Pci;
use pci::ConfigurationAccess;
use spin::Once;

static KERNEL: Once<&'static Kernel> = Once::new();
static PCI: Once<Pci> = Once::new();

/// Boot the kernel and keep its handle, run the test kernel's
/// `#[test_case]`s (`test_main`, the harness's entry) and exit QEMU with
/// success. A failing test ends the run through the panic path instead.
pub fn boot_and_test(boot_info: &'static mut BootInfo, test_main: impl FnOnce()) -> ! {
    KERNEL.call_once(|| kernel::init(boot_info, "warn"));
    test_main();
    kernel::exit(kernel::ExitStatus::Success)
}

/// [`boot_and_test`], with the PCI scan done (and its listing printed)
/// before the first test.
pub fn boot_scan_pci_and_test(boot_info: &'static mut BootInfo, test_main: impl FnOnce()) -> ! {
    boot_and_test(boot_info, || {
        pci();
        test_main();
    })
}

/// The kernel handle.
pub fn kernel() -> &'static Kernel {
    KERNEL.get().expect("booted before the tests")
}

/// The PCI scan, done once.
pub fn pci() -> &'static Pci {
    PCI.call_once(|| {
        let kernel = kernel();
        let pci = kernel::pci::scan(&kernel.memory, kernel.rsdp);
        pci.print_listing();
        pci
    })
}

/// One expected function: bus, device, function, vendor, device id, class, subclass.
pub type Expected = (u8, u8, u8, u16, u16, u8, u8);

/// The scan found exactly `expected`, in bus order, and no problems.
pub fn assert_exact_devices(expected: &[Expected]) {
    let found: alloc::vec::Vec<Expected> = pci()
        .enumeration
        .functions
        .iter()
        .map(|f| {
            (
                f.address.bus(),
                f.address.device(),
                f.address.function(),
                f.vendor_id,
                f.device_id,
                f.class,
                f.subclass,
            )
        })
        .collect();
    let mut sorted = found.clone();
    sorted.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(
        sorted, want,
        "PCI functions differ from what QEMU was given"
    );
    assert!(
        pci().enumeration.problems.is_empty(),
        "problems: {:?}",
        pci().enumeration.problems
    );
}

const COMMAND: u16 = 0x04;
const MEMORY_SPACE: u32 = 1 << 1;
const BUS_MASTER: u32 = 1 << 2;
const INTX_DISABLE: u32 = 1 << 10;
/// NVMe VS register offset (NVMe base specification 3.1.2).
const NVME_VS: u64 = 0x08;

/// Every NVMe controller is found, enabled for DMA, its BAR0 mapped, and
/// its version register readable through the mapping. Returns how many.
pub fn assert_nvme_ready(expected: usize) -> usize {
    let pci = pci();
    let kernel = kernel();
    let mut ready = 0;
    for function in pci.enumeration.nvme_controllers() {
        let bar = pci
            .prepare_nvme(&kernel.memory, function)
            .expect("NVMe BAR0 mapped");
        let command = pci.config.read(function.address, COMMAND);
        assert_eq!(
            command & (MEMORY_SPACE | BUS_MASTER | INTX_DISABLE),
            MEMORY_SPACE | BUS_MASTER | INTX_DISABLE
        );
        let vs = (bar.virt.as_u64() + NVME_VS) as *const u32;
        // SAFETY: BAR0 was just mapped uncached; VS is a read-only 32-bit
        // register at offset 8 of every NVMe controller.
        let version = unsafe { core::ptr::read_volatile(vs) };
        assert!(
            version >> 16 >= 1,
            "NVMe version {version:#x} at {}",
            function.address
        );
        ready += 1;
    }
    assert_eq!(ready, expected, "NVMe controllers ready");
    ready
}

pub mod topologies;

use kernel::storage::{Attached, attach_all};

static NVME: spin::Mutex<Option<alloc::vec::Vec<Attached>>> = spin::Mutex::new(None);

/// Bring up every NVMe controller once; run `f` with them.
pub fn with_nvme<R>(f: impl FnOnce(&mut alloc::vec::Vec<Attached>) -> R) -> R {
    let mut guard = NVME.lock();
    let controllers = guard.get_or_insert_with(|| {
        let (attached, failed) = attach_all(&kernel().memory, pci(), nvme::Config::default());
        assert!(
            failed.is_empty(),
            "controllers failed to attach: {failed:?}"
        );
        attached
    });
    f(controllers)
}

/// A deterministic pattern for blocks from `first_lba` at `generation`.
#[allow(unused_imports, reason = "only the NVMe tests fill blocks")]
pub use inspector_core::soak::fill as fill_pattern;

/// Soak namespace 1 of `attached` from `first_byte` over `span_bytes` for
/// `duration_ms` (the default application's soak, `inspector_core::soak`).
#[allow(dead_code, reason = "only some NVMe tests soak")]
pub fn soak(
    attached: &mut Attached,
    first_byte: u64,
    span_bytes: u64,
    duration_ms: u64,
) -> inspector_core::soak::SoakReport {
    let area = inspector_core::soak::SoakArea {
        nsid: 1,
        first_byte,
        span_bytes,
        duration_ms,
    };
    let home = attached.dma.home();
    let ticks = inspector_core::ClockTicks(kernel::storage::TscClock);
    inspector_core::soak::run(&mut attached.controller, &home, &area, &ticks, &mut |_| {})
        .expect("the soak runs")
}
