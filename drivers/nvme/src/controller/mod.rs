//! The controller: bring-up, admin commands, recovery and shutdown on top
//! of the request paths.
//!
//! Ownership: the `Controller` owns the admin queue, I/O queue 1 (the
//! synchronous request path, used by `BlockDevice`s, which borrow the
//! controller mutably) and the other I/O queue pairs until
//! [`Controller::take_io_queue`] hands one out by value as an [`IoQueue`].
//! No globals.
//!
//! - `init`: bring-up (NVMe 1.4 §7.6.1), from whatever state firmware left
//!   to running I/O queues, shadow doorbells, power states and the Host
//!   Memory Buffer.
//! - `admin`: admin commands (Identify, logs, features, Abort).
//! - `host_memory`: lending the Host Memory Buffer, again after a reset,
//!   and taking it back before shutdown.
//! - `recovery`: the reset that rebuilds every queue after a timeout or a
//!   fatal status.
//! - `shutdown`: the shutdown notification and its wait (RTD3E).
//!
//! Every DMA allocation asks for the controller memory page size as its
//! alignment (above 4 KiB when CAP.MPSMIN > 0).
//!
//! DMA memory is never returned to the allocator while the device might
//! still access it (a reset that failed): queues are allocated once at
//! bring-up (and when an `IoQueue` is taken); the Host Memory Buffer goes
//! back only after the controller confirmed it stopped using it.

#![forbid(unsafe_code)]

mod admin;
mod host_memory;
mod init;
mod recovery;
mod shutdown;

pub use crate::namespace::NamespaceInfo;
pub use shutdown::{SHUTDOWN_WAIT_MAX_MS, SHUTDOWN_WAIT_MIN_MS, shutdown_wait_ms};

use crate::error::Error;
use crate::hal::{Clock, DmaAllocator, DmaRegion, RegisterAccess};
use crate::hmb::HostMemoryBuffer;
use crate::identify::{self, IdentifyController, Oncs};
use crate::io_queue::{IoQueue, IoQueueSetup};
use crate::namespace::{Namespace, WriteGate};
use crate::prp::PageSize;
use crate::queue::{QueuePair, ShadowBuffers};
use crate::quirks::Quirks;
use crate::registers::{Cap, Doorbells, Version};
use crate::request::{Request, Shared, deadline_ns};
use crate::sync_queue::{Data, Device, SyncQueue};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Bring-up parameters.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// I/O queue pairs wanted (at least 1; the controller may grant fewer).
    pub io_queue_pairs: u16,
    /// Commands in flight wanted per I/O queue (capped by CAP.MQES).
    pub io_queue_depth: u16,
    /// Commands in flight on the admin queue.
    pub admin_queue_depth: u16,
    /// Deadline for every command, in milliseconds.
    pub command_timeout_ms: u64,
    /// Longest wait for shutdown processing, in milliseconds. The wait is
    /// what the drive reports (RTD3E, bounded to
    /// [`SHUTDOWN_WAIT_MIN_MS`]..[`SHUTDOWN_WAIT_MAX_MS`]), cut to this.
    pub shutdown_timeout_ms: u64,
    /// PCI vendor ID (for the quirk table).
    pub pci_vendor: u16,
    /// PCI device ID (for the quirk table).
    pub pci_device: u16,
    /// Quirks to apply on top of the table's.
    pub extra_quirks: Quirks,
    /// Set the volatile write cache on (`Some(true)`) or off, or leave it.
    pub volatile_write_cache: Option<bool>,
    /// Bounce buffer of the synchronous queue, in bytes.
    pub bounce_buffer_bytes: usize,
    /// Use shadow doorbells (Doorbell Buffer Config) when the controller
    /// supports them: fewer MMIO writes, which matters in virtual machines.
    /// QEMU 7.2 under TCG needs `-smp N,maxcpus=M` with M > 1 for them (a
    /// single-CPU TCG guest loses its memory barriers and hangs).
    pub shadow_doorbells: bool,
    /// Most memory lent to a drive as its Host Memory Buffer, in bytes
    /// (drives without DRAM ask for one; 0 = never lend any).
    pub host_memory_buffer_max_bytes: usize,
}

/// Default cap on a Host Memory Buffer (as Linux's default).
pub const HOST_MEMORY_BUFFER_DEFAULT_MAX_BYTES: usize = 128 << 20;

impl Default for Config {
    fn default() -> Config {
        Config {
            io_queue_pairs: 4,
            io_queue_depth: 32,
            admin_queue_depth: 16,
            command_timeout_ms: 5_000,
            shutdown_timeout_ms: SHUTDOWN_WAIT_MAX_MS,
            pci_vendor: 0,
            pci_device: 0,
            extra_quirks: Quirks::NONE,
            volatile_write_cache: None,
            bounce_buffer_bytes: 128 * 1024,
            shadow_doorbells: false,
            host_memory_buffer_max_bytes: HOST_MEMORY_BUFFER_DEFAULT_MAX_BYTES,
        }
    }
}

/// What bring-up learned about the controller.
#[derive(Clone, Copy, Debug)]
pub struct ControllerInfo {
    /// Model number.
    pub model: identify::AsciiField<40>,
    /// Serial number.
    pub serial: identify::AsciiField<20>,
    /// Firmware revision.
    pub firmware: identify::AsciiField<8>,
    /// NVMe version (VS register).
    pub version: Version,
    /// MDTS in bytes, `None` = no limit reported.
    pub mdts_bytes: Option<usize>,
    /// Largest transfer the driver issues in one command.
    pub max_transfer_bytes: usize,
    /// Controller memory page size in use.
    pub page_size: usize,
    /// I/O queue pairs created.
    pub io_queues: u16,
    /// Commands in flight per I/O queue.
    pub io_queue_depth: usize,
    /// A volatile write cache is present.
    pub volatile_write_cache_present: bool,
    /// The volatile write cache is enabled.
    pub volatile_write_cache_enabled: bool,
    /// Optional NVM commands as reported.
    pub oncs: Oncs,
    /// Write Zeroes usable (reported and not quirked off).
    pub write_zeroes: bool,
    /// Dataset Management deallocate usable.
    pub deallocate: bool,
    /// Number of Namespaces (NN).
    pub namespace_count: u32,
    /// Entries in the Error Information log (ELPE + 1).
    pub error_log_entries: usize,
    /// Quirks in effect.
    pub quirks: Quirks,
    /// Doorbell Buffer Config supported (OACS bit 8).
    pub doorbell_buffer_config: bool,
    /// Shadow doorbells in use.
    pub shadow_doorbells: bool,
    /// Host Memory Buffer lent to the controller, in bytes (0 = none).
    pub host_memory_buffer_bytes: usize,
    /// RTD3 Entry Latency as reported, microseconds (0 = not reported).
    pub rtd3e_us: u32,
    /// How long shutdown waits for the controller, milliseconds.
    pub shutdown_wait_ms: u64,
}

/// Where the controller is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Running,
    Failed,
    ShutDown,
}

/// A queue handed out: what recreating it after a reset needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct TakenQueue {
    pub(super) qid: u16,
    pub(super) entries: u32,
    pub(super) sq: u64,
    pub(super) cq: u64,
}

/// One NVMe controller.
pub struct Controller<R: RegisterAccess, D: DmaAllocator, C: Clock> {
    regs: R,
    dma: D,
    clock: C,
    config: Config,
    quirks: Quirks,
    cap: Cap,
    page_size: usize,
    doorbells: Doorbells,
    admin: QueuePair,
    scratch: DmaRegion,
    sync: Option<SyncQueue>,
    spare: Vec<QueuePair>,
    taken: Vec<TakenQueue>,
    io_queue_count: u16,
    io_entries: u32,
    info: ControllerInfo,
    namespaces: Vec<NamespaceInfo>,
    shared: Arc<Shared>,
    state: State,
    unknown_completions: u64,
    shadow: Option<Arc<ShadowBuffers>>,
    identity: IdentifyController,
    host_memory: Option<HostMemoryBuffer>,
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    fn deadline_ms(&self, ms: u64) -> u64 {
        deadline_ns(self.clock.now_ns(), ms)
    }

    fn after_failure<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::Timeout { .. } | Error::ControllerFatal) = result
            && let Err(e) = self.recover()
        {
            log::warn!("nvme: recovery failed: {e}");
        }
        result
    }

    fn ensure_running(&self) -> Result<(), Error> {
        match self.state {
            State::Running => Ok(()),
            State::Failed => Err(Error::ControllerFatal),
            State::ShutDown => Err(Error::ShutDown),
        }
    }

    /// Whether [`Self::shutdown`] has run.
    pub fn is_shut_down(&self) -> bool {
        self.state == State::ShutDown
    }

    /// Whether the controller reports a fatal status (CSTS.CFS) or its
    /// registers read as all ones (the device is gone): one register read.
    pub fn is_fatal(&self) -> bool {
        crate::request::controller_fatal(&self.regs)
    }

    /// The controller's clock, in nanoseconds.
    pub(crate) fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// What bring-up learned.
    pub fn info(&self) -> &ControllerInfo {
        &self.info
    }

    /// The controller capabilities register as read at bring-up.
    pub fn capabilities(&self) -> Cap {
        self.cap
    }

    /// Every active namespace, usable or not.
    pub fn namespaces(&self) -> &[NamespaceInfo] {
        &self.namespaces
    }

    /// Completions seen with a command identifier not in flight (ignored).
    pub fn unknown_completions(&self) -> u64 {
        self.unknown_completions
    }

    /// The handle of namespace `nsid` for submissions on this
    /// controller's [`IoQueue`]s: found and checked usable once, here.
    /// Fails with [`Error::NoSuchNamespace`] for an NSID that is not
    /// active and [`Error::NamespaceHasMetadata`] or
    /// [`Error::Unsupported`] for a namespace the driver cannot do I/O on.
    /// A queue of another controller refuses the handle
    /// ([`Error::ForeignNamespace`]).
    pub fn namespace_handle(&self, nsid: u32) -> Result<Namespace, Error> {
        Namespace::find(&self.namespaces, self.shared.id, nsid, |index| {
            self.shared.check_write(index).is_ok()
        })
    }

    pub(crate) fn namespace_info(&self, index: usize) -> NamespaceInfo {
        let mut info = self
            .namespaces
            .get(index)
            .copied()
            .unwrap_or(NamespaceInfo {
                nsid: 0,
                block_count: 0,
                block_size: 0,
                metadata_size: 0,
                write_protected: false,
                zoned: None,
            });
        info.write_protected |= self
            .shared
            .writable
            .get(index)
            .is_some_and(WriteGate::is_protected);
        info
    }

    pub(crate) fn set_writable(&self, index: usize, writable: bool) {
        if let Some(gate) = self.shared.writable.get(index) {
            gate.set_owned(writable);
        }
    }

    /// Whether writes to namespace `index` may be sent.
    pub(crate) fn is_writable(&self, index: usize) -> bool {
        self.shared.check_write(index).is_ok()
    }

    /// Runs a synchronous request on I/O queue 1 (see `sync_queue`),
    /// recovering after a timeout or fatal status.
    pub(crate) fn run(
        &mut self,
        ns: &Namespace,
        request: &Request,
        data: Data<'_>,
    ) -> Result<(), Error> {
        self.ensure_running()?;
        let sync = self.sync.as_mut().ok_or(Error::BadDevice)?;
        let mut device = Device {
            regs: &self.regs,
            dma: &self.dma,
            clock: &self.clock,
            shared: &self.shared,
            unknown: &mut self.unknown_completions,
        };
        let result = sync.run(&mut device, ns, request, data);
        self.after_failure(result)
    }

    /// Hands out one I/O queue pair (not queue 1, which serves the
    /// synchronous API) with a PRP list page per slot. Fails with
    /// [`Error::NoFreeQueue`] when all are taken.
    pub fn take_io_queue(&mut self) -> Result<IoQueue<R, C>, Error>
    where
        R: Clone,
        C: Clone,
    {
        self.ensure_running()?;
        // A power of two (CAP.MPSMIN..MPSMAX), so never refused here.
        let page_size = PageSize::new(self.page_size).ok_or(Error::Unsupported)?;
        let Some(pair) = self.spare.pop() else {
            return Err(Error::NoFreeQueue);
        };
        let mut lists = Vec::with_capacity(pair.depth());
        for _ in 0..pair.depth() {
            match alloc_pages(&self.dma, self.page_size, self.page_size) {
                Ok(list) => lists.push(list),
                Err(e) => {
                    for list in lists {
                        self.dma.deallocate(list);
                    }
                    self.spare.push(pair);
                    return Err(e);
                }
            }
        }
        self.taken.push(TakenQueue {
            qid: pair.qid(),
            entries: pair.entries(),
            sq: pair.sq_region().phys().as_u64(),
            cq: pair.cq_region().phys().as_u64(),
        });
        Ok(IoQueue::new(
            self.regs.clone(),
            self.clock.clone(),
            pair,
            lists,
            self.shared.clone(),
            IoQueueSetup {
                page_size,
                max_transfer_bytes: self.info.max_transfer_bytes,
                timeout_ms: self.config.command_timeout_ms,
                write_zeroes: self.info.write_zeroes,
                deallocate: self.info.deallocate,
            },
        ))
    }

    /// Takes back a queue obtained from [`Self::take_io_queue`] so it can be
    /// handed out again; its PRP list pages go back to the allocator. Refused
    /// (the queue is returned) while requests are in flight, or if the
    /// queue belongs to another controller.
    #[allow(
        clippy::result_large_err,
        reason = "a refused queue goes back by value; boxing it would allocate"
    )]
    pub fn return_io_queue(&mut self, queue: IoQueue<R, C>) -> Result<(), IoQueue<R, C>> {
        if queue.in_flight() != 0 || !queue.belongs_to(&self.shared) {
            return Err(queue);
        }
        let (pair, lists) = queue.into_parts();
        self.taken.retain(|t| t.qid != pair.qid());
        for list in lists {
            self.dma.deallocate(list);
        }
        self.spare.push(pair);
        Ok(())
    }
}

/// Allocates `len` bytes rounded up to whole pages, checking the page
/// alignment the controller needs.
fn alloc_pages<D: DmaAllocator>(dma: &D, len: usize, page: usize) -> Result<DmaRegion, Error> {
    let len = len.max(1).next_multiple_of(page);
    let region = dma.allocate(len, page)?;
    if !region.phys().is_aligned(page as u64) || region.len() < len {
        log::warn!(
            "nvme: DMA region at {:#x} not aligned to {page} bytes",
            region.phys().as_u64()
        );
        dma.deallocate(region);
        return Err(Error::Dma);
    }
    Ok(region)
}
