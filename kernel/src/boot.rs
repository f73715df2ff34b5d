//! From the bootloader's hand-off to a running platform: consoles, CPU
//! tables, memory, heap, time, and the boot banner.

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::MemoryRegionKind;
use spin::Once;
use x86_64::PhysAddr;

use crate::arch::{gdt, tsc};
use crate::console::{framebuffer, logger, serial};
use crate::interrupts;
use crate::memory::{self, Memory, PhysicalMap, frames::FrameBitmap};
use crate::time;

/// How every kernel image asks the bootloader to set up the machine: all
/// physical memory mapped (frames, page tables and DMA need it) and a
/// 256 KiB kernel stack.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.kernel_stack_size = 256 * 1024;
    config
};

/// Largest heap the kernel sets up.
const MAX_HEAP: usize = 64 << 20;

/// Which firmware started the bootloader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// Legacy BIOS.
    Bios,
    /// UEFI.
    Uefi,
}

impl core::fmt::Display for Firmware {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        })
    }
}

/// The running platform, handed to the application.
pub struct Kernel {
    /// Physical memory, page tables, MMIO and DMA.
    pub memory: Memory,
    /// Which firmware booted us.
    pub firmware: Firmware,
    /// Physical address of the ACPI RSDP, if the firmware gave one.
    pub rsdp: Option<PhysAddr>,
    /// The ramdisk the bootloader loaded (settings), if any.
    pub ramdisk: Option<&'static [u8]>,
    /// Bytes of usable RAM in the memory map.
    pub usable_memory: u64,
    /// Heap size in bytes.
    pub heap_size: usize,
    /// TSC frequency in Hz (the same as `clock.hz`).
    pub tsc_hz: u64,
    /// Where the TSC frequency came from and what the cross-check said.
    pub clock: time::Calibration,
    /// TSC value when the kernel was entered.
    pub entry_tsc: u64,
}

static KERNEL: Once<Kernel> = Once::new();

/// Bring the platform up and print the boot banner. `log_filter` is the
/// initial log filter (`info`, `info,nvme=debug`, ...); a bad one falls back
/// to `info` with a warning.
///
/// Panics (and so stops the machine with a message) only if the bootloader
/// broke its contract: no physical-memory mapping, or no usable memory.
pub fn init(boot_info: &'static mut BootInfo, log_filter: &str) -> &'static Kernel {
    let entry_tsc = tsc::mark_entry();
    serial::init();
    if let Some(fb) = boot_info.framebuffer.take() {
        framebuffer::init(fb);
    }
    let filter = logger::Filter::parse(log_filter);
    logger::init(filter.unwrap_or(logger::Filter::new(log::LevelFilter::Info)));
    if let Err(error) = filter {
        log::warn!("log filter {log_filter:?} ignored: {error}");
    }
    gdt::init();
    interrupts::init();

    let firmware = if boot_info
        .memory_regions
        .iter()
        .any(|r| matches!(r.kind, MemoryRegionKind::UnknownUefi(_)))
    {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let offset = boot_info
        .physical_memory_offset
        .into_option()
        .expect("bootloader did not map physical memory (BOOTLOADER_CONFIG asks for it)");
    let map = PhysicalMap::new(offset);
    let mut frames = match FrameBitmap::new(&boot_info.memory_regions, map) {
        Ok(frames) => frames,
        Err(error) => panic!("no frame allocator: {error:?}"),
    };
    let usable_memory = frames.usable_frames() as u64 * memory::PAGE_SIZE;
    let heap_size =
        (frames.free_frames() / 8 * memory::PAGE_SIZE as usize).clamp(1 << 20, MAX_HEAP);
    let heap_start = match frames.allocate_contiguous(heap_size / memory::PAGE_SIZE as usize) {
        Ok(start) => start,
        Err(error) => panic!("no room for a {heap_size}-byte heap: {error:?}"),
    };
    // SAFETY: the frames were just taken from the allocator for the heap
    // alone, and `init` runs once (KERNEL is set below, once).
    unsafe { memory::heap::init(map, heap_start, heap_size) };
    // SAFETY: this is the only place that builds an OffsetPageTable, and
    // `map` is the bootloader's complete physical mapping.
    let tables = unsafe { memory::paging::active(map) };
    let memory =
        Memory::new(map, frames, tables).expect("no free level-4 entry for the MMIO window");
    framebuffer::use_write_combining(&memory);
    // Time needs memory: the HPET's registers are mapped like any device's.
    let rsdp = boot_info.rsdp_addr.into_option().map(PhysAddr::new);
    let clock = time::calibrate(&memory, rsdp);
    let ramdisk = boot_info.ramdisk_addr.into_option().map(|addr| {
        let len = boot_info.ramdisk_len as usize;
        // SAFETY: the bootloader loaded the ramdisk at `addr` (virtual) with
        // `len` bytes and never touches it again; nothing in the kernel
        // writes to it.
        unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
    });
    let kernel = KERNEL.call_once(|| Kernel {
        memory,
        firmware,
        rsdp,
        ramdisk,
        usable_memory,
        heap_size,
        tsc_hz: clock.hz,
        clock,
        entry_tsc,
    });
    kernel.print_banner();
    crate::iommu::quiesce(&kernel.memory, kernel.rsdp);
    kernel
}

impl Kernel {
    /// Nanoseconds since the kernel was entered.
    pub fn uptime_ns(&self) -> u64 {
        tsc::ticks_to_ns(tsc::now().saturating_sub(self.entry_tsc))
    }

    fn print_banner(&self) {
        let banner_ns = self.uptime_ns();
        crate::println!(
            "\nnvme-unikernel {} | firmware {} | memory {} MiB usable | heap {} MiB | TSC {}.{:03} MHz ({}) | entry to banner {}.{:03} ms",
            env!("CARGO_PKG_VERSION"),
            self.firmware,
            self.usable_memory >> 20,
            self.heap_size >> 20,
            self.tsc_hz / 1_000_000,
            self.tsc_hz / 1_000 % 1_000,
            self.clock,
            banner_ns / 1_000_000,
            banner_ns / 1_000 % 1_000,
        );
    }
}
