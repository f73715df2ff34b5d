//! Controller bring-up, admin commands, recovery and shutdown.
//!
//! Bring-up (NVMe 1.4 §7.6.1, "Initialization"): whatever state firmware
//! left (enabled, disabled, enabled but not ready, shutdown in progress,
//! fatal), the controller is first settled and disabled (CC.EN = 0, wait for
//! CSTS.RDY = 0 within CAP.TO). Clearing EN while RDY is still 0 after an
//! enable is undefined (§3.1.5), so a pending enable is first waited out.
//! Then the admin queue is programmed (AQA/ASQ/ACQ), CC is written with the
//! command sets (all I/O command sets where CAP.CSS bit 6 allows, which
//! zoned namespaces need; NVM otherwise), the memory page size (4 KiB if
//! within CAP.MPSMIN..MPSMAX, else MPSMIN) and entry sizes 64/16 bytes, and
//! EN is set; CSTS.RDY = 1 is awaited within CAP.TO while watching CSTS.CFS
//! and all-ones reads (device gone). Then: Identify Controller, Set Features
//! Number of Queues (whatever is granted up to the configuration), the
//! Volatile Write Cache feature, the namespaces (see `namespace`: active
//! list or NSID walk, Identify Namespace, command set), and the I/O queues
//! (completion queue before its submission queue, interrupts disabled: the
//! driver polls).
//!
//! Ownership: the `Controller` owns the admin queue, I/O queue 1 (used by
//! the synchronous block API through `namespace(nsid)`, which borrows the
//! controller mutably) and the other I/O queue pairs until
//! `take_io_queue()` hands one out by value as an [`IoQueue`]. No globals.
//!
//! Recovery: on a command timeout, CSTS.CFS or an all-ones register read,
//! [`Controller::recover`] resets the controller (which aborts every
//! outstanding command and DMA), reprograms the admin queue and recreates
//! every I/O queue on the same memory, including queues handed out; those
//! notice a generation counter change, reset their rings and report their
//! in-flight commands as [`Error::Reset`]. `recover` must not run while an
//! `IoQueue` is being used on another CPU (the unikernel is single-threaded).
//!
//! Shadow doorbells (Doorbell Buffer Config, §5.7), when the configuration
//! asks for them and OACS reports the command: after the I/O queues exist,
//! one page of shadow doorbells and one of EventIdx values are handed to the
//! controller and every I/O queue pair (also the ones handed out later)
//! writes its doorbells there first (see `queue`). A controller that refuses
//! the command keeps plain MMIO doorbells. After a reset the command is sent
//! again; a refusal then fails the recovery, because queues already handed
//! out rely on the shadow.
//!
//! Host Memory Buffer (see `hmb`): after the I/O queues, for drives that
//! ask for one; enabled again after a reset, disabled before shutdown.
//!
//! Autonomous Power State Transitions: the driver never asks for a power
//! state, but for drives with the "no deepest power state" quirk it takes
//! transitions into the deepest state out of an APST table firmware left
//! enabled.
//!
//! Shutdown waits as long as the drive says it may take: RTD3E (Identify
//! Controller, RTD3 Entry Latency) bounded to 1 s..60 s, and never longer
//! than `Config::shutdown_timeout_ms`.
//!
//! Every DMA allocation asks for the controller memory page size as its
//! alignment (above 4 KiB when CAP.MPSMIN > 0).
//!
//! DMA memory is never returned to the allocator while the device might
//! still access it (a reset that failed): queues are allocated once at
//! bring-up (and when an `IoQueue` is taken); the Host Memory Buffer goes
//! back only after the controller confirmed it stopped using it.

#![forbid(unsafe_code)]

use crate::block::{BlockDevice, IoQueue, NamespaceLimits};
use crate::command::{CompletionEntry, FeatureId, IdentifyCns, LogPageId, SubmissionEntry};
use crate::error::{Error, Stage};
use crate::hal::SharedDwords;
use crate::hal::{Clock, DmaAllocator, DmaRegion, RegisterAccess};
use crate::hmb::{self, HostMemoryBuffer};
use crate::identify::{self, IDENTIFY_BYTES, IdentifyController, Oncs};
use crate::log_page::{ERROR_LOG_ENTRY_BYTES, ErrorLogEntry, SMART_LOG_BYTES, SmartLog};
use crate::namespace::{self, IdentifyCommands, WriteGate};
use crate::prp;
use crate::queue::{Polled, QueuePair, ShadowBuffers};
use crate::quirks::{self, Quirks};
use crate::registers::{
    Aqa, Cap, Cc, CommandSet, Csts, Doorbells, ShutdownNotification, ShutdownStatus, Version,
    offset,
};
use crate::zoned::ZoneInfo;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use dma::ordering;

/// How often CSTS is polled while waiting for a state change.
const CSTS_POLL_US: u64 = 100;
/// Check CSTS for fatal status every this many empty completion polls.
const FATAL_CHECK_INTERVAL: u32 = 64;
/// Maximum blocks per Read/Write/Write Zeroes command (NLB is 16 bits).
pub(crate) const MAX_BLOCKS_PER_COMMAND: u64 = 65_536;
/// Maximum ranges per Dataset Management command.
const MAX_DSM_RANGES: usize = 256;

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
    /// Per-slot buffer of a taken [`IoQueue`], in bytes.
    pub slot_buffer_bytes: usize,
    /// Use shadow doorbells (Doorbell Buffer Config) when the controller
    /// supports them: fewer MMIO writes, which matters in virtual machines.
    /// QEMU 7.2 under TCG needs `-smp N,maxcpus=M` with M > 1 for them (a
    /// single-CPU TCG guest loses its memory barriers and hangs).
    pub shadow_doorbells: bool,
    /// Most memory lent to a drive as its Host Memory Buffer, in bytes
    /// (drives without DRAM ask for one; 0 = never lend any).
    pub host_memory_buffer_max_bytes: usize,
}

/// Shortest shutdown wait: for drives that report no RTD3E, or less.
pub const SHUTDOWN_WAIT_MIN_MS: u64 = 1_000;
/// Longest shutdown wait, whatever RTD3E says.
pub const SHUTDOWN_WAIT_MAX_MS: u64 = 60_000;
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
            slot_buffer_bytes: 64 * 1024,
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

/// One active namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Namespace identifier.
    pub nsid: u32,
    /// Size in blocks (NSZE).
    pub block_count: u64,
    /// Data bytes per block; 0 if the format is unusable.
    pub block_size: usize,
    /// Metadata bytes per block of the formatted LBA format.
    pub metadata_size: u16,
    /// Write protected: NSATTR bit 0; through `BlockDevice::info`, also a
    /// write refused with a write-protect status since bring-up. Never
    /// written.
    pub write_protected: bool,
    /// Zoned (Zoned Namespace Command Set), with its zone details: never
    /// given random writes.
    pub zoned: Option<ZoneInfo>,
}

impl NamespaceInfo {
    /// Whether the driver can do I/O on it (no metadata, sane block size).
    pub fn usable(&self) -> Result<(), Error> {
        if self.metadata_size != 0 {
            Err(Error::NamespaceHasMetadata)
        } else if self.block_size == 0 {
            Err(Error::Unsupported)
        } else {
            Ok(())
        }
    }
}

/// State shared between the controller and the I/O queues it handed out.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Bumped after every controller reset.
    pub(crate) generation: AtomicU32,
    /// Set once shutdown started.
    pub(crate) shut_down: AtomicBool,
    /// Per namespace (index into `namespaces`): who may write.
    pub(crate) writable: Vec<WriteGate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    Failed,
    ShutDown,
}

#[derive(Debug)]
pub(crate) struct SyncQueue {
    pub(crate) pair: QueuePair,
    pub(crate) prp_list: DmaRegion,
    pub(crate) bounce: DmaRegion,
}

#[derive(Clone, Copy, Debug)]
struct TakenQueue {
    qid: u16,
    entries: u32,
    sq: u64,
    cq: u64,
}

/// Data direction of a synchronous transfer.
pub(crate) enum Data<'a> {
    /// Device to memory.
    Read(&'a mut [u8]),
    /// Memory to device.
    Write(&'a [u8], bool),
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

fn ns_to_deadline(now: u64, ms: u64) -> u64 {
    now.saturating_add(ms.saturating_mul(1_000_000))
}

/// Waits for the completion of `slot` on `pair`. Completions with unknown
/// identifiers are counted and ignored.
pub(crate) fn wait_for_slot<R: RegisterAccess, C: Clock>(
    pair: &mut QueuePair,
    regs: &R,
    clock: &C,
    slot: u16,
    deadline_ns: u64,
    stage: Stage,
    unknown: &mut u64,
) -> Result<CompletionEntry, Error> {
    let mut empty = 0u32;
    loop {
        match pair.poll(regs) {
            Polled::Done { slot: s, entry, .. } if s == slot => {
                return if entry.status.is_success() {
                    Ok(entry)
                } else {
                    Err(Error::Device(entry.status))
                };
            }
            Polled::Done { entry, .. } => {
                log::warn!(
                    "nvme: unexpected completion for cid {:#x} on queue {}",
                    entry.cid,
                    pair.qid()
                );
            }
            Polled::Unknown(entry) => {
                *unknown += 1;
                log::warn!(
                    "nvme: completion with unknown cid {:#x} (sq {}) on queue {} ignored",
                    entry.cid,
                    entry.sq_id,
                    pair.qid()
                );
            }
            Polled::Empty => {
                empty = empty.wrapping_add(1);
                if empty.is_multiple_of(FATAL_CHECK_INTERVAL) {
                    let csts = Csts(regs.read32(offset::CSTS));
                    if csts.is_all_ones() || csts.cfs() {
                        return Err(Error::ControllerFatal);
                    }
                }
                if clock.now_ns() > deadline_ns {
                    return Err(Error::Timeout { stage });
                }
                core::hint::spin_loop();
            }
        }
    }
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// Brings the controller up (see the module documentation).
    pub fn new(regs: R, dma: D, clock: C, config: Config) -> Result<Controller<R, D, C>, Error> {
        let quirks =
            quirks::lookup(config.pci_vendor, config.pci_device).union(config.extra_quirks);
        let cap = Cap(regs.read64(offset::CAP));
        if cap.is_all_ones() {
            return Err(Error::ControllerFatal);
        }
        if !cap.supports_nvm() {
            log::warn!(
                "nvme: controller does not support the NVM command set (CAP {:#x})",
                cap.0
            );
            return Err(Error::Unsupported);
        }
        let page_size = if cap.min_page_size() <= 4096 && 4096 <= cap.max_page_size() {
            4096
        } else {
            cap.min_page_size()
        };
        let admin_entries =
            (u32::from(config.admin_queue_depth) + 1).clamp(2, cap.mqes().min(Aqa::MAX_ENTRIES));
        let doorbells = Doorbells::new(cap);
        let (sq_bytes, cq_bytes) = QueuePair::ring_bytes(admin_entries);
        let admin_sq = alloc_pages(&dma, sq_bytes, page_size)?;
        let admin_cq = alloc_pages(&dma, cq_bytes, page_size)?;
        let scratch = alloc_pages(&dma, IDENTIFY_BYTES.max(page_size), page_size)?;
        let admin = QueuePair::new(0, admin_entries, admin_sq, admin_cq, doorbells);
        let version = Version(regs.read32(offset::VS));
        let mut ctrl = Controller {
            regs,
            dma,
            clock,
            config,
            quirks,
            cap,
            page_size,
            doorbells,
            admin,
            scratch,
            sync: None,
            spare: Vec::new(),
            taken: Vec::new(),
            io_queue_count: 0,
            io_entries: 0,
            info: ControllerInfo {
                model: identify::AsciiField::from_text(""),
                serial: identify::AsciiField::from_text(""),
                firmware: identify::AsciiField::from_text(""),
                version,
                mdts_bytes: None,
                max_transfer_bytes: 0,
                page_size,
                io_queues: 0,
                io_queue_depth: 0,
                volatile_write_cache_present: false,
                volatile_write_cache_enabled: false,
                oncs: Oncs(0),
                write_zeroes: false,
                deallocate: false,
                namespace_count: 0,
                error_log_entries: 1,
                quirks,
                doorbell_buffer_config: false,
                shadow_doorbells: false,
                host_memory_buffer_bytes: 0,
                rtd3e_us: 0,
                shutdown_wait_ms: shutdown_wait_ms(0, config.shutdown_timeout_ms),
            },
            namespaces: Vec::new(),
            shared: Arc::new(Shared {
                generation: AtomicU32::new(0),
                shut_down: AtomicBool::new(false),
                writable: Vec::new(),
            }),
            state: State::Failed,
            unknown_completions: 0,
            shadow: None,
            identity: IdentifyController::parse(&[]),
            host_memory: None,
        };
        ctrl.disable()?;
        ctrl.enable()?;
        ctrl.identify_controller()?;
        ctrl.negotiate_queues()?;
        ctrl.configure_write_cache()?;
        ctrl.discover_namespaces()?;
        ctrl.create_io_queues()?;
        ctrl.configure_shadow_doorbells()?;
        ctrl.limit_power_states()?;
        ctrl.setup_host_memory_buffer()?;
        ctrl.shared = Arc::new(Shared {
            generation: AtomicU32::new(0),
            shut_down: AtomicBool::new(false),
            writable: ctrl.namespaces.iter().map(WriteGate::new).collect(),
        });
        ctrl.state = State::Running;
        log::info!(
            "nvme: {} ({}, fw {}) NVMe {}.{}: {} namespace(s), {} I/O queue(s) x {}, max transfer {} bytes",
            ctrl.info.model,
            ctrl.info.serial,
            ctrl.info.firmware,
            version.major(),
            version.minor(),
            ctrl.namespaces.len(),
            ctrl.info.io_queues,
            ctrl.info.io_queue_depth,
            ctrl.info.max_transfer_bytes
        );
        Ok(ctrl)
    }

    fn deadline_ms(&self, ms: u64) -> u64 {
        ns_to_deadline(self.clock.now_ns(), ms)
    }

    /// Polls CSTS until `done` holds or the deadline passes. All-ones reads
    /// are fatal; CFS is fatal only if `watch_cfs`.
    fn wait_csts(
        &self,
        deadline: u64,
        watch_cfs: bool,
        done: impl Fn(Csts) -> bool,
    ) -> Result<(), Option<Error>> {
        loop {
            let csts = Csts(self.regs.read32(offset::CSTS));
            if csts.is_all_ones() || (watch_cfs && csts.cfs()) {
                return Err(Some(Error::ControllerFatal));
            }
            if done(csts) {
                return Ok(());
            }
            if self.clock.now_ns() > deadline {
                return Err(None);
            }
            self.clock.delay_us(CSTS_POLL_US);
        }
    }

    /// Settles whatever state the controller is in and disables it.
    fn disable(&mut self) -> Result<(), Error> {
        let csts = Csts(self.regs.read32(offset::CSTS));
        let cc = Cc(self.regs.read32(offset::CC));
        if csts.is_all_ones() {
            return Err(Error::ControllerFatal);
        }
        let to = self.cap.timeout_ms();
        if csts.shst() == ShutdownStatus::Occurring {
            // Let a shutdown in progress finish before resetting.
            let deadline = self.deadline_ms(to);
            if let Err(Some(e)) =
                self.wait_csts(deadline, false, |c| c.shst() != ShutdownStatus::Occurring)
            {
                return Err(e);
            }
        }
        if cc.enabled() && !csts.rdy() && !csts.cfs() {
            // An enable is in progress; clearing EN now is undefined.
            let deadline = self.deadline_ms(to);
            if let Err(Some(e)) = self.wait_csts(deadline, true, |c| c.rdy())
                && (e != Error::ControllerFatal || !Csts(self.regs.read32(offset::CSTS)).cfs())
            {
                return Err(e);
            }
        }
        self.regs.write32(offset::CC, Cc::new().0);
        if self.quirks.delay_before_ready_check_us != 0 {
            self.clock
                .delay_us(u64::from(self.quirks.delay_before_ready_check_us));
        }
        let deadline = self.deadline_ms(to);
        match self.wait_csts(deadline, false, |c| !c.rdy()) {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Error::Timeout {
                stage: Stage::Disable,
            }),
        }
    }

    /// Programs the admin queue and CC, enables, waits for ready.
    fn enable(&mut self) -> Result<(), Error> {
        self.admin.reset();
        let entries = self.admin.entries();
        self.regs.write32(offset::AQA, Aqa::new(entries, entries).0);
        self.regs
            .write64(offset::ASQ, self.admin.sq_region().phys().as_u64());
        self.regs
            .write64(offset::ACQ, self.admin.cq_region().phys().as_u64());
        let mps = (self.page_size.trailing_zeros() - 12) as u8;
        let cc = Cc::new()
            .with_command_set(CommandSet::for_capabilities(self.cap))
            .with_mps(mps)
            .with_iosqes(6)
            .with_iocqes(4);
        self.regs.write32(offset::CC, cc.0);
        self.regs.write32(offset::CC, cc.with_enable(true).0);
        if self.quirks.delay_before_ready_check_us != 0 {
            self.clock
                .delay_us(u64::from(self.quirks.delay_before_ready_check_us));
        }
        let deadline = self.deadline_ms(self.cap.timeout_ms());
        match self.wait_csts(deadline, true, |c| c.rdy()) {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Error::NeverReady),
        }
    }

    /// Runs one admin command to completion, without recovery.
    fn admin_command(&mut self, cmd: SubmissionEntry) -> Result<CompletionEntry, Error> {
        let slot = self.admin.alloc_slot().ok_or(Error::QueueFull)?;
        let deadline = self.deadline_ms(self.config.command_timeout_ms);
        self.admin.submit(&self.regs, slot, &cmd, deadline);
        wait_for_slot(
            &mut self.admin,
            &self.regs,
            &self.clock,
            slot,
            deadline,
            Stage::AdminCommand,
            &mut self.unknown_completions,
        )
    }

    /// Runs an admin command on a running controller, recovering after a
    /// timeout or fatal status.
    fn admin_checked(&mut self, cmd: SubmissionEntry) -> Result<CompletionEntry, Error> {
        self.ensure_running()?;
        let result = self.admin_command(cmd);
        self.after_failure(result)
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

    fn identify_into_scratch(&mut self, cns: IdentifyCns, nsid: u32) -> Result<(), Error> {
        self.scratch.zero();
        let cmd = SubmissionEntry::identify(cns, nsid).with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_command(cmd).map(|_| ())
    }

    fn identify_controller(&mut self) -> Result<(), Error> {
        self.identify_into_scratch(IdentifyCns::Controller, 0)?;
        let id = IdentifyController::parse(self.scratch.as_slice());
        if !id.entry_sizes_supported() {
            log::warn!(
                "nvme: SQES {:#x} / CQES {:#x} exclude 64/16-byte entries",
                id.sqes,
                id.cqes
            );
            return Err(Error::BadDevice);
        }
        let mdts = id.max_transfer_bytes(self.cap.min_page_size());
        let max_transfer = mdts
            .unwrap_or(usize::MAX)
            .min(prp::max_transfer_without_chaining(self.page_size));
        let i = &mut self.info;
        i.model = id.model;
        i.serial = id.serial;
        i.firmware = id.firmware;
        i.mdts_bytes = mdts;
        i.max_transfer_bytes = max_transfer;
        i.volatile_write_cache_present = id.volatile_write_cache_present();
        i.oncs = id.oncs;
        i.write_zeroes = id.oncs.write_zeroes() && !self.quirks.no_write_zeroes;
        i.deallocate = id.oncs.dataset_management() && !self.quirks.no_dataset_management;
        i.namespace_count = id.nn;
        i.error_log_entries = usize::from(id.elpe) + 1;
        i.doorbell_buffer_config = id.doorbell_buffer_config();
        i.rtd3e_us = id.rtd3e_us;
        i.shutdown_wait_ms = shutdown_wait_ms(id.rtd3e_us, self.config.shutdown_timeout_ms);
        self.identity = id;
        Ok(())
    }

    /// Hands the shadow doorbell pages to the controller (again, after a
    /// reset) and to every I/O queue pair it still holds; queues handed out
    /// got them when they were created.
    fn configure_shadow_doorbells(&mut self) -> Result<(), Error> {
        let last = self.doorbells.completion_head(self.io_queue_count) - offset::DOORBELL_BASE;
        let wanted = self.config.shadow_doorbells
            && self.info.doorbell_buffer_config
            && last + 4 <= self.page_size;
        if !wanted {
            return Ok(());
        }
        let buffers = match &self.shadow {
            Some(buffers) => buffers.clone(),
            None => Arc::new(ShadowBuffers {
                doorbells: SharedDwords::new(alloc_pages(
                    &self.dma,
                    self.page_size,
                    self.page_size,
                )?),
                event_indexes: SharedDwords::new(alloc_pages(
                    &self.dma,
                    self.page_size,
                    self.page_size,
                )?),
            }),
        };
        // Every queue was just created empty: tails and heads are 0.
        buffers.doorbells.zero();
        buffers.event_indexes.zero();
        let cmd = SubmissionEntry::doorbell_buffer_config(
            buffers.doorbells.phys().as_u64(),
            buffers.event_indexes.phys().as_u64(),
        );
        match self.admin_command(cmd) {
            Ok(_) => {}
            Err(Error::Device(status)) if self.shadow.is_none() => {
                log::info!(
                    "nvme: Doorbell Buffer Config refused ({}); MMIO doorbells",
                    status.name()
                );
                return Ok(());
            }
            Err(error) => return Err(error),
        }
        if let Some(sync) = self.sync.as_mut() {
            sync.pair.set_shadow(Some(buffers.clone()));
        }
        for pair in &mut self.spare {
            pair.set_shadow(Some(buffers.clone()));
        }
        self.shadow = Some(buffers);
        self.info.shadow_doorbells = true;
        Ok(())
    }

    fn request_queues(&mut self, want: u16) -> Result<u16, Error> {
        let value = SubmissionEntry::number_of_queues(want, want);
        let done = self.admin_command(SubmissionEntry::set_features(
            FeatureId::NumberOfQueues,
            value,
        ))?;
        let sq = (done.dw0 & 0xFFFF) as u16;
        let cq = (done.dw0 >> 16) as u16;
        Ok(want.min(sq.saturating_add(1)).min(cq.saturating_add(1)))
    }

    fn negotiate_queues(&mut self) -> Result<(), Error> {
        let want = if self.quirks.single_io_queue {
            1
        } else {
            self.config.io_queue_pairs.clamp(1, 0xFFFE)
        };
        let granted = self.request_queues(want)?;
        if granted == 0 {
            return Err(Error::BadDevice);
        }
        self.io_queue_count = granted;
        self.io_entries =
            (u32::from(self.config.io_queue_depth) + 1).clamp(2, self.cap.mqes().min(65_536));
        Ok(())
    }

    fn configure_write_cache(&mut self) -> Result<(), Error> {
        if !self.info.volatile_write_cache_present {
            return Ok(());
        }
        if let Some(on) = self.config.volatile_write_cache {
            self.admin_command(SubmissionEntry::set_features(
                FeatureId::VolatileWriteCache,
                u32::from(on),
            ))?;
        }
        let done =
            self.admin_command(SubmissionEntry::get_features(FeatureId::VolatileWriteCache))?;
        self.info.volatile_write_cache_enabled = done.dw0 & 1 != 0;
        Ok(())
    }

    /// Finds the namespaces (see `namespace`).
    fn discover_namespaces(&mut self) -> Result<(), Error> {
        let (version, nn) = (self.info.version, self.info.namespace_count);
        let list = !self.quirks.no_active_namespace_list;
        self.namespaces = namespace::probe(self, version, nn, list)?;
        Ok(())
    }

    fn create_on_device(&mut self, qid: u16, entries: u32, sq: u64, cq: u64) -> Result<(), Error> {
        self.admin_command(SubmissionEntry::create_io_completion_queue(
            qid, entries, cq,
        ))?;
        self.admin_command(SubmissionEntry::create_io_submission_queue(
            qid, entries, sq, qid,
        ))?;
        Ok(())
    }

    fn create_io_queues(&mut self) -> Result<(), Error> {
        let entries = self.io_entries;
        let (sq_bytes, cq_bytes) = QueuePair::ring_bytes(entries);
        for qid in 1..=self.io_queue_count {
            let sq = alloc_pages(&self.dma, sq_bytes, self.page_size)?;
            let cq = alloc_pages(&self.dma, cq_bytes, self.page_size)?;
            let pair = QueuePair::new(qid, entries, sq, cq, self.doorbells);
            self.create_on_device(
                qid,
                entries,
                pair.sq_region().phys().as_u64(),
                pair.cq_region().phys().as_u64(),
            )?;
            if qid == 1 {
                let prp_list = alloc_pages(&self.dma, self.page_size, self.page_size)?;
                let bounce_len = self.config.bounce_buffer_bytes.clamp(
                    self.page_size,
                    self.info.max_transfer_bytes.max(self.page_size),
                );
                let bounce = alloc_pages(&self.dma, bounce_len, self.page_size)?;
                self.sync = Some(SyncQueue {
                    pair,
                    prp_list,
                    bounce,
                });
            } else {
                self.spare.push(pair);
            }
        }
        self.info.io_queues = self.io_queue_count;
        self.info.io_queue_depth = entries as usize - 1;
        Ok(())
    }

    /// Resets the controller and rebuilds its admin and I/O queues (also
    /// the ones handed out, which then report their in-flight commands as
    /// [`Error::Reset`]). Called automatically after a timeout or fatal
    /// status; callable by the kernel, e.g. after an [`IoQueue`] reported a
    /// timeout.
    pub fn recover(&mut self) -> Result<(), Error> {
        if self.state == State::ShutDown {
            return Err(Error::ShutDown);
        }
        log::warn!("nvme: resetting controller");
        self.state = State::Failed;
        self.disable()?;
        self.enable()?;
        let granted = self.request_queues(self.io_queue_count)?;
        if granted < self.io_queue_count {
            return Err(Error::BadDevice);
        }
        if self.info.volatile_write_cache_present
            && let Some(on) = self.config.volatile_write_cache
        {
            self.admin_command(SubmissionEntry::set_features(
                FeatureId::VolatileWriteCache,
                u32::from(on),
            ))?;
        }
        if let Some(sync) = self.sync.as_mut() {
            sync.pair.reset();
            let (qid, entries) = (sync.pair.qid(), sync.pair.entries());
            let (sq, cq) = (
                sync.pair.sq_region().phys().as_u64(),
                sync.pair.cq_region().phys().as_u64(),
            );
            self.create_on_device(qid, entries, sq, cq)?;
        }
        for i in 0..self.spare.len() {
            let pair = &mut self.spare[i];
            pair.reset();
            let (qid, entries) = (pair.qid(), pair.entries());
            let (sq, cq) = (
                pair.sq_region().phys().as_u64(),
                pair.cq_region().phys().as_u64(),
            );
            self.create_on_device(qid, entries, sq, cq)?;
        }
        for i in 0..self.taken.len() {
            let t = self.taken[i];
            self.create_on_device(t.qid, t.entries, t.sq, t.cq)?;
        }
        if self.shadow.is_some() {
            self.configure_shadow_doorbells()?;
        }
        self.reenable_host_memory_buffer()?;
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.state = State::Running;
        Ok(())
    }

    /// Normal shutdown (CC.SHN = 01b, wait for CSTS.SHST = complete, for
    /// as long as [`ControllerInfo::shutdown_wait_ms`]). Deletes the I/O
    /// queues and releases the Host Memory Buffer first (best effort).
    /// Idempotent; all I/O afterwards fails with [`Error::ShutDown`].
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.state == State::ShutDown {
            return Ok(());
        }
        self.shared.shut_down.store(true, Ordering::Release);
        if self.state == State::Running {
            let mut qids: Vec<u16> = self.taken.iter().map(|t| t.qid).collect();
            qids.extend(self.spare.iter().map(|p| p.qid()));
            qids.extend(self.sync.as_ref().map(|s| s.pair.qid()));
            for qid in qids {
                let _ = self
                    .admin_command(SubmissionEntry::delete_io_submission_queue(qid))
                    .and_then(|_| {
                        self.admin_command(SubmissionEntry::delete_io_completion_queue(qid))
                    });
            }
            self.release_host_memory_buffer();
        }
        self.state = State::ShutDown;
        let cc = Cc(self.regs.read32(offset::CC));
        if cc.0 == u32::MAX {
            return Err(Error::ControllerFatal);
        }
        self.regs
            .write32(offset::CC, cc.with_shutdown(ShutdownNotification::Normal).0);
        let deadline = self.deadline_ms(self.info.shutdown_wait_ms);
        match self.wait_csts(deadline, false, |c| c.shst() == ShutdownStatus::Complete) {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Error::Timeout {
                stage: Stage::Shutdown,
            }),
        }
    }

    /// Whether [`Self::shutdown`] has run.
    pub fn is_shut_down(&self) -> bool {
        self.state == State::ShutDown
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

    /// Block device handle for namespace `nsid`, doing synchronous I/O on
    /// I/O queue 1. Read-only until [`BlockDevice::set_writable`].
    pub fn namespace(&mut self, nsid: u32) -> Result<BlockDevice<'_, R, D, C>, Error> {
        let index = self.namespace_index(nsid)?;
        self.namespaces[index].usable()?;
        Ok(BlockDevice::new(self, index))
    }

    pub(crate) fn namespace_index(&self, nsid: u32) -> Result<usize, Error> {
        self.namespaces
            .iter()
            .position(|n| n.nsid == nsid)
            .ok_or(Error::NoSuchNamespace)
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

    /// Whether a write to namespace `index` may be sent, and why not.
    pub(crate) fn check_write(&self, index: usize) -> Result<(), Error> {
        self.shared
            .writable
            .get(index)
            .map_or(Err(Error::NotOwned), WriteGate::check)
    }

    /// Runs a write command to namespace `index`, noting a write-protect
    /// refusal.
    fn execute_write(&mut self, index: usize, cmd: SubmissionEntry) -> Result<(), Error> {
        match self.execute_io(cmd) {
            Ok(_) => {
                if let Some(gate) = self.shared.writable.get(index) {
                    gate.after_write_ok();
                }
                Ok(())
            }
            Err(error) => Err(self
                .shared
                .writable
                .get(index)
                .map_or(error, |gate| gate.after_write_error(error))),
        }
    }

    pub(crate) fn is_writable(&self, index: usize) -> bool {
        self.check_write(index).is_ok()
    }

    /// SMART / Health Information log (global).
    pub fn smart_log(&mut self) -> Result<SmartLog, Error> {
        self.scratch.zero();
        let cmd =
            SubmissionEntry::get_log_page(LogPageId::SmartHealth, (SMART_LOG_BYTES / 4) as u32, 0)
                .with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_checked(cmd)?;
        Ok(SmartLog::parse(self.scratch.as_slice()))
    }

    /// Reads up to `out.len()` Error Information entries (newest first);
    /// returns how many were filled.
    pub fn error_log(&mut self, out: &mut [ErrorLogEntry]) -> Result<usize, Error> {
        let n = out
            .len()
            .min(self.info.error_log_entries)
            .min(self.scratch.len().min(self.page_size) / ERROR_LOG_ENTRY_BYTES);
        if n == 0 {
            return Ok(0);
        }
        self.scratch.zero();
        let cmd = SubmissionEntry::get_log_page(
            LogPageId::ErrorInformation,
            (n * ERROR_LOG_ENTRY_BYTES / 4) as u32,
            0,
        )
        .with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_checked(cmd)?;
        let bytes = self.scratch.as_slice();
        for (i, e) in out.iter_mut().take(n).enumerate() {
            *e = ErrorLogEntry::parse(
                &bytes[i * ERROR_LOG_ENTRY_BYTES..(i + 1) * ERROR_LOG_ENTRY_BYTES],
            );
        }
        Ok(n)
    }

    /// Reads the Volatile Write Cache feature (true = enabled).
    pub fn volatile_write_cache(&mut self) -> Result<bool, Error> {
        if !self.info.volatile_write_cache_present {
            return Err(Error::Unsupported);
        }
        let done =
            self.admin_checked(SubmissionEntry::get_features(FeatureId::VolatileWriteCache))?;
        Ok(done.dw0 & 1 != 0)
    }

    /// Sets the Volatile Write Cache feature.
    pub fn set_volatile_write_cache(&mut self, enabled: bool) -> Result<(), Error> {
        if !self.info.volatile_write_cache_present {
            return Err(Error::Unsupported);
        }
        self.admin_checked(SubmissionEntry::set_features(
            FeatureId::VolatileWriteCache,
            u32::from(enabled),
        ))?;
        self.info.volatile_write_cache_enabled = enabled;
        Ok(())
    }

    /// Sends Abort for command `cid` on submission queue `sqid`; true if the
    /// controller reports the command aborted (completion dword 0 bit 0
    /// clear, §5.1).
    pub fn abort(&mut self, sqid: u16, cid: u16) -> Result<bool, Error> {
        let done = self.admin_checked(SubmissionEntry::abort(sqid, cid))?;
        Ok(done.dw0 & 1 == 0)
    }

    /// Hands out one I/O queue pair (not queue 1, which serves the
    /// synchronous API) with its per-slot buffers. Fails with
    /// [`Error::NoFreeQueue`] when all are taken.
    pub fn take_io_queue(&mut self) -> Result<IoQueue<R, C>, Error>
    where
        R: Clone,
        C: Clone,
    {
        self.ensure_running()?;
        let Some(pair) = self.spare.pop() else {
            return Err(Error::NoFreeQueue);
        };
        let buffer_size = self
            .config
            .slot_buffer_bytes
            .clamp(
                self.page_size,
                self.info.max_transfer_bytes.max(self.page_size),
            )
            .next_multiple_of(self.page_size);
        let mut slots = Vec::with_capacity(pair.depth());
        for _ in 0..pair.depth() {
            let buffer = match alloc_pages(&self.dma, buffer_size, self.page_size) {
                Ok(b) => b,
                Err(e) => {
                    self.spare.push(pair);
                    return Err(e);
                }
            };
            let list = match alloc_pages(&self.dma, self.page_size, self.page_size) {
                Ok(l) => l,
                Err(e) => {
                    self.spare.push(pair);
                    return Err(e);
                }
            };
            slots.push((buffer, list));
        }
        self.taken.push(TakenQueue {
            qid: pair.qid(),
            entries: pair.entries(),
            sq: pair.sq_region().phys().as_u64(),
            cq: pair.cq_region().phys().as_u64(),
        });
        let limits = self
            .namespaces
            .iter()
            .enumerate()
            .map(|(index, n)| NamespaceLimits { index, info: *n })
            .collect();
        Ok(IoQueue::new(
            self.regs.clone(),
            self.clock.clone(),
            pair,
            slots,
            self.shared.clone(),
            limits,
            self.page_size,
            buffer_size,
            self.config.command_timeout_ms,
            self.info.write_zeroes,
        ))
    }

    /// Takes back a queue obtained from [`Self::take_io_queue`] so it can be
    /// handed out again; its slot buffers go back to the allocator. Refused
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
        let (pair, buffers) = queue.into_parts();
        self.taken.retain(|t| t.qid != pair.qid());
        for (buffer, list) in buffers {
            self.dma.deallocate(buffer);
            self.dma.deallocate(list);
        }
        self.spare.push(pair);
        Ok(())
    }

    /// Synchronous data transfer on queue 1, split at the transfer limit.
    pub(crate) fn transfer(
        &mut self,
        index: usize,
        lba: u64,
        mut data: Data<'_>,
    ) -> Result<(), Error> {
        self.ensure_running()?;
        let ns = self
            .namespaces
            .get(index)
            .copied()
            .ok_or(Error::NoSuchNamespace)?;
        ns.usable()?;
        let (len, write) = match &data {
            Data::Read(b) => (b.len(), false),
            Data::Write(b, _) => (b.len(), true),
        };
        check_range(&ns, lba, len)?;
        if write {
            self.check_write(index)?;
        }
        let bs = ns.block_size;
        let page = self.page_size;
        let direct_max = (self.info.max_transfer_bytes / bs).min(MAX_BLOCKS_PER_COMMAND as usize);
        let sync = self.sync.as_ref().ok_or(Error::BadDevice)?;
        let bounce_max = direct_max.min(sync.bounce.len() / bs);
        if bounce_max == 0 {
            return Err(Error::Unsupported);
        }
        let mut done = 0usize;
        let total_blocks = len / bs;
        while done < total_blocks {
            let sync = self.sync.as_mut().ok_or(Error::BadDevice)?;
            let mut blocks = (total_blocks - done).min(direct_max);
            if let Some(left) = ns
                .zoned
                .and_then(|zone| zone.blocks_to_boundary(lba + done as u64))
            {
                // Zoned namespace without RAZB: one command per zone.
                blocks = blocks.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            let offset = done * bs;
            // Reads take the pointer from the mutable borrow: the device
            // writes through it.
            let ptr: *const u8 = match &mut data {
                Data::Read(b) => b.as_mut_ptr().wrapping_add(offset),
                Data::Write(b, _) => b.as_ptr().wrapping_add(offset),
            };
            let dma = &self.dma;
            let direct = prp::translated(ptr, blocks * bs, page, &mut sync.prp_list, |v| {
                dma.translate(v)
            });
            let prps = match direct {
                Some(p) => p,
                None => {
                    blocks = blocks.min(bounce_max);
                    if let Data::Write(b, _) = &data {
                        sync.bounce.copy_in(0, &b[offset..offset + blocks * bs]);
                    }
                    prp::contiguous(sync.bounce.phys(), blocks * bs, page, &mut sync.prp_list)?
                }
            };
            let slba = lba + done as u64;
            let cmd = match &data {
                Data::Read(_) => SubmissionEntry::read(ns.nsid, slba, blocks as u32),
                Data::Write(_, fua) => SubmissionEntry::write(ns.nsid, slba, blocks as u32, *fua),
            }
            .with_prps(prps.prp1, prps.prp2);
            if write {
                self.execute_write(index, cmd)?;
            } else {
                self.execute_io(cmd)?;
            }
            if direct.is_none()
                && let (Data::Read(b), Some(sync)) = (&mut data, self.sync.as_ref())
            {
                sync.bounce
                    .copy_out(0, &mut b[offset..offset + blocks * bs]);
            }
            done += blocks;
        }
        Ok(())
    }

    /// Flush (§6.8) on queue 1.
    pub(crate) fn flush_namespace(&mut self, index: usize) -> Result<(), Error> {
        self.ensure_running()?;
        let ns = self
            .namespaces
            .get(index)
            .copied()
            .ok_or(Error::NoSuchNamespace)?;
        ns.usable()?;
        self.execute_io(SubmissionEntry::flush(ns.nsid)).map(|_| ())
    }

    /// Write Zeroes (§6.16) over `count` blocks, split at 65536 blocks.
    pub(crate) fn write_zeroes_namespace(
        &mut self,
        index: usize,
        lba: u64,
        count: u64,
    ) -> Result<(), Error> {
        self.ensure_running()?;
        let ns = self
            .namespaces
            .get(index)
            .copied()
            .ok_or(Error::NoSuchNamespace)?;
        ns.usable()?;
        check_blocks(&ns, lba, count)?;
        self.check_write(index)?;
        if !self.info.write_zeroes {
            return Err(Error::Unsupported);
        }
        let mut done = 0u64;
        while done < count {
            let n = (count - done).min(MAX_BLOCKS_PER_COMMAND);
            self.execute_write(
                index,
                SubmissionEntry::write_zeroes(ns.nsid, lba + done, n as u32),
            )?;
            done += n;
        }
        Ok(())
    }

    /// Dataset Management deallocate (§6.7) over `count` blocks: ranges of
    /// up to 2^32 - 1 blocks, 256 ranges per command, built in the bounce
    /// buffer.
    pub(crate) fn discard_namespace(
        &mut self,
        index: usize,
        lba: u64,
        count: u64,
    ) -> Result<(), Error> {
        self.ensure_running()?;
        let ns = self
            .namespaces
            .get(index)
            .copied()
            .ok_or(Error::NoSuchNamespace)?;
        ns.usable()?;
        check_blocks(&ns, lba, count)?;
        self.check_write(index)?;
        if !self.info.deallocate {
            return Err(Error::Unsupported);
        }
        const RANGE_MAX: u64 = u32::MAX as u64;
        let per_command = MAX_DSM_RANGES.min(self.page_size / 16);
        let mut done = 0u64;
        while done < count {
            let sync = self.sync.as_mut().ok_or(Error::BadDevice)?;
            let mut ranges = 0usize;
            while ranges < per_command && done < count {
                let n = (count - done).min(RANGE_MAX);
                let mut entry = [0u8; 16];
                entry[4..8].copy_from_slice(&(n as u32).to_le_bytes());
                entry[8..16].copy_from_slice(&(lba + done).to_le_bytes());
                sync.bounce.copy_in(ranges * 16, &entry);
                ranges += 1;
                done += n;
            }
            let prps = prp::contiguous(
                sync.bounce.phys(),
                ranges * 16,
                self.page_size,
                &mut sync.prp_list,
            )?;
            self.execute_write(
                index,
                SubmissionEntry::deallocate(ns.nsid, ranges as u32).with_prps(prps.prp1, prps.prp2),
            )?;
        }
        Ok(())
    }

    /// Runs one command on queue 1 with a deadline, recovering on failure.
    pub(crate) fn execute_io(&mut self, cmd: SubmissionEntry) -> Result<CompletionEntry, Error> {
        self.ensure_running()?;
        let deadline = self.deadline_ms(self.config.command_timeout_ms);
        let sync = self.sync.as_mut().ok_or(Error::BadDevice)?;
        let slot = sync.pair.alloc_slot().ok_or(Error::QueueFull)?;
        sync.pair.submit(&self.regs, slot, &cmd, deadline);
        let result = wait_for_slot(
            &mut sync.pair,
            &self.regs,
            &self.clock,
            slot,
            deadline,
            Stage::IoCommand,
            &mut self.unknown_completions,
        );
        self.after_failure(result)
    }
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> IdentifyCommands for Controller<R, D, C> {
    fn identify(&mut self, cns: IdentifyCns, nsid: u32, csi: u8) -> Result<&[u8], Error> {
        self.scratch.zero();
        let cmd = SubmissionEntry::identify(cns, nsid)
            .with_command_set_identifier(csi)
            .with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_command(cmd)?;
        Ok(self.scratch.as_slice())
    }
}

/// Bring-up and shutdown steps for real drives: power states, the Host
/// Memory Buffer.
impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// For drives with the "no deepest power state" quirk: if firmware left
    /// Autonomous Power State Transitions enabled, rewrites the APST table
    /// (§5.21.1.12, 32 entries of 8 bytes) without the transitions into
    /// the deepest state (NPSS). Other drives' power settings are left
    /// alone. A refused Get/Set Features is logged, not fatal.
    fn limit_power_states(&mut self) -> Result<(), Error> {
        if !self.quirks.no_deepest_power_state || !self.identity.apst_supported() {
            return Ok(());
        }
        self.scratch.zero();
        let get = SubmissionEntry::get_features(FeatureId::AutonomousPowerStateTransition)
            .with_prps(self.scratch.phys().as_u64(), 0);
        let enabled = match self.admin_command(get) {
            Ok(done) => done.dw0 & APST_ENABLE != 0,
            Err(Error::Device(status)) => {
                log::warn!("nvme: Get Features APST refused ({})", status.name());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !enabled {
            return Ok(());
        }
        let deepest = self.identity.npss;
        let mut removed = 0;
        for index in 0..APST_ENTRIES {
            let at = index * APST_ENTRY_BYTES;
            let mut raw = [0u8; APST_ENTRY_BYTES];
            if !self.scratch.copy_out(at, &mut raw) {
                break;
            }
            let entry = u64::from_le_bytes(raw);
            let idle_time_ms = (entry >> APST_IDLE_TIME_SHIFT) & APST_IDLE_TIME_MASK;
            let target = ((entry >> APST_TARGET_SHIFT) & APST_TARGET_MASK) as u8;
            if idle_time_ms != 0 && target == deepest {
                self.scratch.copy_in(at, &[0u8; APST_ENTRY_BYTES]);
                removed += 1;
            }
        }
        if removed == 0 {
            return Ok(());
        }
        let set =
            SubmissionEntry::set_features(FeatureId::AutonomousPowerStateTransition, APST_ENABLE)
                .with_prps(self.scratch.phys().as_u64(), 0);
        match self.admin_command(set) {
            Ok(_) => {
                log::info!(
                    "nvme: quirk: {removed} autonomous transition(s) into power state {deepest} removed"
                );
                Ok(())
            }
            Err(Error::Device(status)) => {
                log::warn!("nvme: Set Features APST refused ({})", status.name());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Lends the controller a Host Memory Buffer if it asks for one and
    /// memory allows (see `hmb`). Not enough memory or a refusal is logged
    /// and bring-up goes on without one.
    fn setup_host_memory_buffer(&mut self) -> Result<(), Error> {
        let request = match hmb::Request::new(
            &self.identity,
            self.page_size,
            self.config.host_memory_buffer_max_bytes,
        ) {
            None => return Ok(()),
            Some(Ok(request)) => request,
            Some(Err(_)) => {
                log::info!(
                    "nvme: host memory buffer of at least {} KiB wanted, at most {} KiB allowed: none",
                    u64::from(self.identity.hmmin) * 4,
                    self.config.host_memory_buffer_max_bytes / 1024
                );
                return Ok(());
            }
        };
        let buffer = match HostMemoryBuffer::allocate(&self.dma, &request) {
            Ok(buffer) => buffer,
            Err(skipped) => {
                let got = match skipped {
                    hmb::Skipped::NotEnoughMemory(bytes) => bytes,
                    hmb::Skipped::CapBelowMinimum => 0,
                };
                log::warn!(
                    "nvme: not enough DMA memory for a host memory buffer ({} KiB of at least {} KiB): none",
                    got / 1024,
                    request.minimum / 1024
                );
                return Ok(());
            }
        };
        match self.admin_command(buffer.enable_command()) {
            Ok(_) => {
                log::info!(
                    "nvme: host memory buffer: {} KiB in {} chunk(s) (preferred {} KiB, minimum {} KiB)",
                    buffer.bytes() / 1024,
                    buffer.chunk_count(),
                    request.preferred / 1024,
                    request.minimum / 1024
                );
                self.info.host_memory_buffer_bytes = buffer.bytes();
                self.host_memory = Some(buffer);
                Ok(())
            }
            Err(Error::Device(status)) => {
                log::warn!(
                    "nvme: Set Features Host Memory Buffer refused ({}): none",
                    status.name()
                );
                // The refusal's completion: the controller never took it.
                buffer.free(&self.dma, &ordering::after_device_signal());
                Ok(())
            }
            // Whether the controller took the buffer is unknown: it stays
            // allocated (leaked) rather than freed under the device.
            Err(e) => Err(e),
        }
    }

    /// After a controller reset (which disables the buffer): hands the same
    /// buffer to the controller again. A refusal frees it.
    fn reenable_host_memory_buffer(&mut self) -> Result<(), Error> {
        let Some(buffer) = self.host_memory.as_ref() else {
            return Ok(());
        };
        match self.admin_command(buffer.enable_command()) {
            Ok(_) => Ok(()),
            Err(Error::Device(status)) => {
                log::warn!(
                    "nvme: host memory buffer refused after reset ({}): none",
                    status.name()
                );
                // The refusal's completion: the controller dropped it.
                if let Some(buffer) = self.host_memory.take() {
                    buffer.free(&self.dma, &ordering::after_device_signal());
                }
                self.info.host_memory_buffer_bytes = 0;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Before shutdown: tells the controller to stop using the buffer and,
    /// once it confirmed, returns the memory. Without confirmation the
    /// memory stays allocated.
    fn release_host_memory_buffer(&mut self) {
        if self.host_memory.is_none() {
            return;
        }
        match self.admin_command(HostMemoryBuffer::disable_command()) {
            Ok(_) => {
                // The completion confirms the controller stopped using it.
                if let Some(buffer) = self.host_memory.take() {
                    buffer.free(&self.dma, &ordering::after_device_signal());
                }
                self.info.host_memory_buffer_bytes = 0;
            }
            Err(e) => log::warn!("nvme: host memory buffer not released ({e}); memory kept"),
        }
    }
}

/// Enable bit of the Autonomous Power State Transition feature (CDW11 and
/// completion dword 0 bit 0, §5.21.1.12).
const APST_ENABLE: u32 = 1;
/// Entries in the APST data structure (Figure 292), one per power state.
const APST_ENTRIES: usize = 32;
/// Bytes per APST entry.
const APST_ENTRY_BYTES: usize = 8;
/// Idle Transition Power State (ITPS): bits 7:3 of an entry.
const APST_TARGET_SHIFT: u32 = 3;
const APST_TARGET_MASK: u64 = 0x1F;
/// Idle Time Prior to Transition (ITPT, milliseconds): bits 31:8.
const APST_IDLE_TIME_SHIFT: u32 = 8;
const APST_IDLE_TIME_MASK: u64 = 0xFF_FFFF;

/// The shutdown wait for a drive reporting `rtd3e_us`: RTD3E rounded up to
/// milliseconds, bounded to [`SHUTDOWN_WAIT_MIN_MS`]..[`SHUTDOWN_WAIT_MAX_MS`]
/// (0 = not reported gets the minimum), never above `cap_ms`.
pub fn shutdown_wait_ms(rtd3e_us: u32, cap_ms: u64) -> u64 {
    u64::from(rtd3e_us)
        .div_ceil(1000)
        .clamp(SHUTDOWN_WAIT_MIN_MS, SHUTDOWN_WAIT_MAX_MS)
        .min(cap_ms)
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

/// Validates a transfer of `len` bytes at `lba` against the namespace.
pub(crate) fn check_range(ns: &NamespaceInfo, lba: u64, len: usize) -> Result<(), Error> {
    if ns.block_size == 0 || len == 0 || !len.is_multiple_of(ns.block_size) {
        return Err(Error::InvalidLength);
    }
    check_blocks(ns, lba, (len / ns.block_size) as u64)
}

/// Validates `count` blocks at `lba` against the namespace.
pub(crate) fn check_blocks(ns: &NamespaceInfo, lba: u64, count: u64) -> Result<(), Error> {
    if count == 0 {
        return Err(Error::InvalidLength);
    }
    match lba.checked_add(count) {
        Some(end) if end <= ns.block_count => Ok(()),
        _ => Err(Error::OutOfRange),
    }
}
