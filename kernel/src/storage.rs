//! NVMe storage on this machine: the driver's hardware traits (volatile MMIO
//! over a mapped BAR0, DMA memory from the frame allocator, time from the
//! calibrated TSC) and bringing up every controller the PCI scan found.
//!
//! Applications doing queued I/O make their data buffers here, once
//! ([`Attached::dma_buffer`], [`KernelDma::buffer`]): DMA memory from the
//! same frames, which requests take by value and completions hand back,
//! so the data is never copied.

use core::ptr::NonNull;

use nvme::{
    Clock, DmaAllocator, DmaBuffer, DmaError, DmaHome, DmaRegion, PhysAddr, RegisterAccess,
};
use volatile::VolatilePtr;
use x86_64::VirtAddr;

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::arch::tsc;
use crate::memory::Memory;
use crate::memory::mmio::MmioRegion;
use crate::pci::Pci;

/// A controller's registers: BAR0, mapped uncached. Copies are handles to
/// the same registers (the controller and each of its I/O queues hold one).
#[derive(Clone, Copy)]
pub struct Bar0 {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is device memory owned by one controller's driver;
// moving the handle between contexts moves that ownership, and register
// accesses are single volatile loads and stores.
unsafe impl Send for Bar0 {}

impl Bar0 {
    /// Wrap a BAR0 mapping.
    ///
    /// # Safety
    /// `region` must be an uncached mapping of an NVMe controller's BAR0 that
    /// stays mapped for as long as the returned value lives, used by no one
    /// else.
    pub unsafe fn new(region: MmioRegion) -> Option<Bar0> {
        let base = NonNull::new(region.virt.as_mut_ptr::<u8>())?;
        Some(Bar0 {
            base,
            len: usize::try_from(region.len).ok()?,
        })
    }

    /// The register at `offset`, if it lies inside the BAR and is dword
    /// aligned.
    fn register(&self, offset: usize) -> Option<VolatilePtr<'_, u32>> {
        let in_range = offset.checked_add(4).is_some_and(|end| end <= self.len);
        if !in_range || !offset.is_multiple_of(4) {
            return None;
        }
        // SAFETY: `offset + 4 <= len` keeps the pointer inside the mapping
        // (`Bar0::new`'s contract).
        let register = unsafe { self.base.add(offset) }.cast::<u32>();
        // SAFETY: in bounds and dword aligned (checked; the mapping is page
        // aligned), mapped uncached for as long as `self` lives and used by
        // this controller's driver only (`Bar0::new`'s contract).
        Some(unsafe { VolatilePtr::new(register) })
    }
}

impl RegisterAccess for Bar0 {
    fn read32(&self, offset: usize) -> u32 {
        match self.register(offset) {
            Some(register) => register.read(),
            // Outside the BAR reads like a device that is gone.
            None => u32::MAX,
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        if let Some(register) = self.register(offset) {
            register.write(value);
        }
    }
}

/// DMA memory for the driver, from the kernel's frame allocator.
#[derive(Clone, Copy)]
pub struct KernelDma {
    memory: &'static Memory,
}

impl KernelDma {
    /// DMA from `memory`.
    pub fn new(memory: &'static Memory) -> KernelDma {
        KernelDma { memory }
    }

    /// This memory as the home of [`DmaBuffer`]s (they go back to it when
    /// dropped).
    pub fn home(self) -> DmaHome {
        Arc::new(self)
    }

    /// A zeroed, physically contiguous, page-aligned buffer of `len` bytes
    /// for queued I/O; [`nvme::Error::Dma`] when memory runs out. Make
    /// buffers once and reuse them: each completion hands its buffer back.
    pub fn buffer(self, len: usize) -> Result<DmaBuffer, nvme::Error> {
        Ok(DmaBuffer::allocate(&self.home(), len, BUFFER_ALIGN)?)
    }
}

/// Alignment of application buffers: one page (the driver points the
/// device at any 4 KiB-aligned buffer, whatever the controller's page).
const BUFFER_ALIGN: usize = 4096;

impl DmaAllocator for KernelDma {
    fn allocate(&self, len: usize, align: usize) -> Result<DmaRegion, DmaError> {
        let buffer = self
            .memory
            .allocate_dma_aligned(len, align)
            .map_err(|_| DmaError)?;
        let (virt, phys, len) = buffer.into_raw();
        // SAFETY: the frames were just allocated, zeroed and are mapped at
        // `virt`; ownership passes to the region (returned in `deallocate`).
        Ok(unsafe { DmaRegion::new(virt, PhysAddr(phys.as_u64()), len) })
    }

    fn deallocate(&self, region: DmaRegion) {
        let start = x86_64::PhysAddr::new(region.phys().as_u64());
        if let Err(error) = self.memory.free_dma_frames(start, region.len()) {
            log::error!("DMA region at {start:?} not returned: {error:?}");
        }
    }

    fn translate(&self, virt: *const u8) -> Option<PhysAddr> {
        let virt = VirtAddr::try_new(virt as u64).ok()?;
        self.memory.translate(virt).map(|p| PhysAddr(p.as_u64()))
    }
}

/// Time from the TSC.
#[derive(Clone, Copy, Default)]
pub struct TscClock;

impl Clock for TscClock {
    fn now_ns(&self) -> u64 {
        tsc::now_ns()
    }

    fn delay_us(&self, us: u64) {
        tsc::delay_us(us)
    }
}

/// The NVMe driver as this kernel instantiates it.
pub type NvmeController = nvme::Controller<Bar0, KernelDma, TscClock>;

/// A controller that came up, with where it sits on PCI.
pub struct Attached {
    /// PCI address of the controller.
    pub address: pci::PciAddress,
    /// PCI vendor and device ID.
    pub ids: (u16, u16),
    /// The running driver.
    pub controller: NvmeController,
    /// The DMA memory it uses, for the application's buffers.
    pub dma: KernelDma,
}

impl Attached {
    /// A buffer of `len` bytes for this controller's queues (see
    /// [`KernelDma::buffer`]).
    pub fn dma_buffer(&self, len: usize) -> Result<DmaBuffer, nvme::Error> {
        self.dma.buffer(len)
    }

    /// The NSIDs of the controller's active namespaces, in order.
    pub fn nsids(&self) -> Vec<u32> {
        self.controller
            .namespaces()
            .iter()
            .map(|n| n.nsid)
            .collect()
    }
}

/// Why a controller found on PCI is not in service.
#[derive(Clone, Copy, Debug)]
pub enum AttachError {
    /// BAR0 could not be prepared.
    Pci(crate::pci::PciError),
    /// The driver's bring-up failed.
    Driver(nvme::Error),
    /// An IOMMU left translating could not be turned off.
    Iommu(crate::iommu::IommuError),
}

/// Bring up every NVMe controller on PCI with `config` (PCI IDs filled in
/// per controller). Controllers that fail are logged and reported, never
/// fatal: the rest still come up.
pub fn attach_all(
    memory: &'static Memory,
    pci: &Pci,
    config: nvme::Config,
) -> (Vec<Attached>, Vec<(pci::PciAddress, AttachError)>) {
    let mut attached = Vec::new();
    let mut failed = Vec::new();
    if let Err(why) = crate::iommu::dma_ready() {
        log::error!("NVMe attach refused: an IOMMU is still translating DMA ({why})");
        let refused = pci.enumeration.nvme_controllers();
        return (
            attached,
            refused
                .map(|f| (f.address, AttachError::Iommu(why)))
                .collect(),
        );
    }
    for function in pci.enumeration.nvme_controllers() {
        let region = match pci.prepare_nvme(memory, function) {
            Ok(region) => region,
            Err(error) => {
                log::error!("{} NVMe: {error}", function.address);
                failed.push((function.address, AttachError::Pci(error)));
                continue;
            }
        };
        // SAFETY: `prepare_nvme` just mapped this controller's BAR0 uncached,
        // for this driver only; the MMIO window is never unmapped.
        let Some(bar0) = (unsafe { Bar0::new(region) }) else {
            continue;
        };
        let config = nvme::Config {
            pci_vendor: function.vendor_id,
            pci_device: function.device_id,
            ..config
        };
        let started = tsc::now_ns();
        match nvme::Controller::new(bar0, KernelDma::new(memory), TscClock, config) {
            Ok(controller) => {
                log::info!(
                    "NVMe {}: up in {} us, {} namespace(s)",
                    function.address,
                    (tsc::now_ns() - started) / 1000,
                    controller.namespaces().len()
                );
                attached.push(Attached {
                    address: function.address,
                    ids: (function.vendor_id, function.device_id),
                    controller,
                    dma: KernelDma::new(memory),
                });
            }
            Err(error) => {
                log::error!("NVMe {}: bring-up failed: {error}", function.address);
                failed.push((function.address, AttachError::Driver(error)));
            }
        }
    }
    (attached, failed)
}

/// Whether a namespace may be written, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Signed for this controller and namespace, and claimed (or in QEMU).
    Owned,
    /// Signed, but on real hardware the user has not claimed this serial.
    NotClaimed,
    /// No valid signature.
    Unsigned(ownership::Mismatch),
    /// The signature could not be read.
    Unreadable(nvme::Error),
    /// A zoned namespace: it takes only sequential writes at a zone's write
    /// pointer, so it can neither carry the signature (written with a
    /// random write) nor take the application's random writes. Never owned;
    /// its signature is not even read.
    Zoned,
}

impl core::fmt::Display for Ownership {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Ownership::Owned => f.write_str("owned (signed)"),
            Ownership::NotClaimed => {
                f.write_str("read-only: signed, but its serial is not claimed in the settings")
            }
            Ownership::Unsigned(why) => write!(f, "read-only: {why}"),
            Ownership::Unreadable(error) => write!(f, "read-only: signature unreadable ({error})"),
            Ownership::Zoned => f.write_str("read-only: zoned namespace (never owned)"),
        }
    }
}

/// Decide whether namespace `nsid` of `controller` belongs to us, and mark
/// it writable only if so. In QEMU a valid signature suffices; on real
/// hardware the user must also name the controller's serial in the
/// settings (`claims`). A zoned namespace is never owned. A write-protected
/// namespace may be owned (it carries the signature) but the driver still
/// refuses every write to it.
pub fn claim(
    controller: &mut NvmeController,
    nsid: u32,
    in_qemu: bool,
    claims: &dyn Fn(&str) -> bool,
) -> Ownership {
    let serial = controller.info().serial;
    let mut device = match controller.namespace(nsid) {
        Ok(device) => device,
        Err(error) => return Ownership::Unreadable(error),
    };
    device.set_writable(false);
    if device.info().zoned.is_some() {
        return Ownership::Zoned;
    }
    let block_size = device.block_size() as u64;
    let size = device.block_count() * block_size;
    let span = (ownership::LEN as u64).next_multiple_of(block_size) as usize;
    let mut header = alloc::vec![0u8; span];
    if size < ownership::OFFSET + span as u64 {
        return Ownership::Unsigned(ownership::Mismatch::TooShort);
    }
    if let Err(error) = device.read(ownership::OFFSET / block_size, &mut header) {
        return Ownership::Unreadable(error);
    }
    match ownership::Signature::verify(&header, nsid, serial.as_str().as_bytes(), size) {
        Err(why) => Ownership::Unsigned(why),
        Ok(_) if !in_qemu && !claims(serial.as_str()) => Ownership::NotClaimed,
        Ok(_) => {
            device.set_writable(true);
            Ownership::Owned
        }
    }
}
