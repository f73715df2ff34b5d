//! Bring-up: from whatever state firmware left to running I/O queues.
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

#![forbid(unsafe_code)]

use super::{Config, Controller, ControllerInfo, State, alloc_pages};
use crate::command::{
    CompletionEntry, FeatureId, IdentifyCns, MAX_IO_QUEUE_PAIRS, MAX_QUEUE_ENTRIES,
    MIN_QUEUE_ENTRIES, PREFERRED_PAGE_SIZE, SubmissionEntry, field,
};
use crate::error::{Error, Stage};
use crate::hal::{Clock, DmaAllocator, RegisterAccess, SharedDwords};
use crate::identify::{self, IDENTIFY_BYTES, IdentifyController, Oncs};
use crate::namespace::{self, IdentifyCommands, WriteGate};
use crate::prp;
use crate::queue::{QueuePair, ShadowBuffers};
use crate::quirks;
use crate::registers::{
    Aqa, Cap, Cc, CommandSet, Csts, DOORBELL_BYTES, Doorbells, PAGE_SIZE_SHIFT, ShutdownStatus,
    Version, offset,
};
use crate::request::Shared;
use crate::sync_queue::SyncQueue;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// How often CSTS is polled while waiting for a state change.
const CSTS_POLL_US: u64 = 100;

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
        let page_size =
            if (cap.min_page_size()..=cap.max_page_size()).contains(&PREFERRED_PAGE_SIZE) {
                PREFERRED_PAGE_SIZE
            } else {
                cap.min_page_size()
            };
        let admin_entries = (u32::from(config.admin_queue_depth) + 1)
            .clamp(MIN_QUEUE_ENTRIES, cap.mqes().min(Aqa::MAX_ENTRIES));
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
                shutdown_wait_ms: super::shutdown_wait_ms(0, config.shutdown_timeout_ms),
            },
            namespaces: Vec::new(),
            shared: Arc::new(Shared::new(Vec::new())),
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
        ctrl.shared = Arc::new(Shared::new(
            ctrl.namespaces.iter().map(WriteGate::new).collect(),
        ));
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

    /// Polls CSTS until `done` holds or the deadline passes. All-ones reads
    /// are fatal; CFS is fatal only if `watch_cfs`.
    pub(super) fn wait_csts(
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
    pub(super) fn disable(&mut self) -> Result<(), Error> {
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
    pub(super) fn enable(&mut self) -> Result<(), Error> {
        self.admin.reset();
        let entries = self.admin.entries();
        self.regs.write32(offset::AQA, Aqa::new(entries, entries).0);
        self.regs
            .write64(offset::ASQ, self.admin.sq_region().phys().as_u64());
        self.regs
            .write64(offset::ACQ, self.admin.cq_region().phys().as_u64());
        let mps = (self.page_size.trailing_zeros() - PAGE_SIZE_SHIFT) as u8;
        let cc = Cc::new()
            .with_command_set(CommandSet::for_capabilities(self.cap))
            .with_mps(mps)
            .with_iosqes(SubmissionEntry::SIZE.trailing_zeros() as u8)
            .with_iocqes(CompletionEntry::SIZE.trailing_zeros() as u8);
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
        i.shutdown_wait_ms = super::shutdown_wait_ms(id.rtd3e_us, self.config.shutdown_timeout_ms);
        self.identity = id;
        Ok(())
    }

    pub(super) fn request_queues(&mut self, want: u16) -> Result<u16, Error> {
        let value = SubmissionEntry::number_of_queues(want, want);
        let done = self.admin_command(SubmissionEntry::set_features(
            FeatureId::NumberOfQueues,
            value,
        ))?;
        let (sq, cq) = SubmissionEntry::queues_granted(done.dw0);
        Ok(want.min(sq).min(cq))
    }

    fn negotiate_queues(&mut self) -> Result<(), Error> {
        let want = if self.quirks.single_io_queue {
            1
        } else {
            self.config.io_queue_pairs.clamp(1, MAX_IO_QUEUE_PAIRS)
        };
        let granted = self.request_queues(want)?;
        if granted == 0 {
            return Err(Error::BadDevice);
        }
        self.io_queue_count = granted;
        self.io_entries = (u32::from(self.config.io_queue_depth) + 1)
            .clamp(MIN_QUEUE_ENTRIES, self.cap.mqes().min(MAX_QUEUE_ENTRIES));
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
        self.info.volatile_write_cache_enabled = field::WCE.is_set32(done.dw0);
        Ok(())
    }

    /// Finds the namespaces (see `namespace`).
    fn discover_namespaces(&mut self) -> Result<(), Error> {
        let (version, nn) = (self.info.version, self.info.namespace_count);
        let list = !self.quirks.no_active_namespace_list;
        self.namespaces = namespace::probe(self, version, nn, list)?;
        Ok(())
    }

    pub(super) fn create_on_device(
        &mut self,
        qid: u16,
        entries: u32,
        sq: u64,
        cq: u64,
    ) -> Result<(), Error> {
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
                self.sync = Some(SyncQueue::new(
                    pair,
                    prp_list,
                    bounce,
                    self.page_size,
                    self.info.max_transfer_bytes,
                    self.config.command_timeout_ms,
                    self.info.write_zeroes,
                    self.info.deallocate,
                ));
            } else {
                self.spare.push(pair);
            }
        }
        self.info.io_queues = self.io_queue_count;
        self.info.io_queue_depth = entries as usize - 1;
        Ok(())
    }

    /// Hands the shadow doorbell pages to the controller (again, after a
    /// reset) and to every I/O queue pair it still holds; queues handed out
    /// got them when they were created.
    pub(super) fn configure_shadow_doorbells(&mut self) -> Result<(), Error> {
        let last = self.doorbells.completion_head(self.io_queue_count) - offset::DOORBELL_BASE;
        let wanted = self.config.shadow_doorbells
            && self.info.doorbell_buffer_config
            && last + DOORBELL_BYTES <= self.page_size;
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
