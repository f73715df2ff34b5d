//! A simulated NVMe controller: the hardware behind the nvme crate's host tests.
//!
//! It implements `RegisterAccess` (sees every register access), models the
//! CC.EN / CSTS.RDY / shutdown transitions with a configurable delay on a
//! fake clock, walks the real submission queues in "DMA memory" (host
//! memory, physical address == host address), executes admin and NVM
//! commands against in-memory namespaces, moves data exactly as the PRP
//! rules say, and posts completions with phase tags. It is strict: any
//! protocol violation (doorbell beyond the queue, CID reuse, PRP misuse,
//! transfer over MDTS, DMA outside allocated memory, CC misuse) panics,
//! failing the test. Faults can be injected per command.
//!
//! Used by the nvme crate's tests, its documentation's examples, the cost
//! example (`./run.sh cost`) and the fuzz targets. The parts:
//! [`FakeClock`] (time that only moves when read or delayed), [`TestDma`]
//! (the DMA allocator over host memory, and the home of the tests'
//! `DmaBuffer`s: [`TestDma::buffer`]), [`Sim`] (the controller,
//! configured by [`SimConfig`], with [`real_drive`] behaviours) and
//! [`Bench`], which ties the three together.
//!
//! The `unsafe` here is the device side of DMA: allocating host memory for
//! regions and reading and writing it as the controller would, always after
//! checking the range lies inside memory handed out (or registered).
//!
//! ```
//! use nvme_sim::{Bench, SimConfig, test_config};
//!
//! let bench = Bench::new(SimConfig::default());
//! let mut controller = bench.controller(test_config())?;
//! let mut block = [0u8; 512];
//! controller.namespace(1)?.read(0, &mut block)?;
//! // The simulator saw the Read (opcode 02h) on I/O queue 1.
//! let last = bench.sim.commands().pop().unwrap();
//! assert_eq!((last.qid, last.entry.opcode), (1, 0x02));
//! # Ok::<(), nvme::Error>(())
//! ```
#![warn(missing_docs)]

use nvme::command::{CompletionEntry, Status, SubmissionEntry};
use nvme::registers::{Cc, Csts, ShutdownNotification, ShutdownStatus, offset};
use nvme::{
    Clock, DmaAllocator, DmaBuffer, DmaError, DmaHome, DmaRegion, PhysAddr, RegisterAccess,
};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

// Real-drive behaviours (HMB, RTD3E, ready-check delay, APST) live in their
// own module; the rest of this file calls it through marked hooks.
pub mod real_drive;
use real_drive::RealDrive;

// What the instruction-counting examples share.
pub mod cost;

// ---------------------------------------------------------------- clock --

/// Time that advances 1 µs whenever it is read, and by the amount asked
/// when delaying, so timeouts run instantly.
#[derive(Clone, Default)]
pub struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    /// The time now in nanoseconds, without advancing it.
    pub fn peek(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// Moves time forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::SeqCst) + 1_000
    }
    fn delay_us(&self, us: u64) {
        self.0.fetch_add(us * 1_000, Ordering::SeqCst);
    }
}

// ------------------------------------------------------------------ DMA --

/// One allocation: the host memory (`base`, `layout`) and the part handed
/// to the driver (`start`, `len`).
struct DmaBlock {
    base: usize,
    layout: Layout,
    start: usize,
    len: usize,
}

#[derive(Default)]
struct DmaInner {
    regions: Vec<DmaBlock>,
    registered: Vec<(usize, usize)>,
    align: usize,
    translate_any: bool,
    allocations: usize,
    fail_after: Option<usize>,
    /// Hand out memory aligned to what was asked and deliberately not to
    /// twice that (the worst an allocator may do).
    misalign: bool,
    /// Most bytes outstanding at once (`None` = unlimited).
    limit_bytes: Option<usize>,
    /// Largest single allocation (`None` = unlimited).
    max_chunk: Option<usize>,
    /// Start addresses of the regions given back, in order.
    freed: Vec<usize>,
}

impl Drop for DmaInner {
    fn drop(&mut self) {
        // The last handle is gone, so no controller or queue can use the
        // memory any more (they hold a handle): give it back, so fuzzing
        // and Miri runs do not accumulate it.
        for block in &self.regions {
            // SAFETY: allocated in `allocate` with this layout and not yet
            // deallocated (deallocation removes the entry).
            unsafe { dealloc(block.base as *mut u8, block.layout) };
        }
    }
}

/// Page-aligned host memory; physical address == host address.
#[derive(Clone)]
pub struct TestDma(Arc<Mutex<DmaInner>>);

impl TestDma {
    /// An allocator aligning every region to at least `align` bytes (and
    /// always to 4 KiB).
    pub fn new(align: usize) -> TestDma {
        let mut inner = DmaInner::default();
        inner.align = align;
        TestDma(Arc::new(Mutex::new(inner)))
    }
    /// This memory as the home of [`DmaBuffer`]s: they come from it and go
    /// back to it when dropped (so [`Self::freed`] and
    /// [`Self::outstanding_bytes`] count them too).
    pub fn home(&self) -> DmaHome {
        Arc::new(self.clone())
    }
    /// A zeroed buffer of `len` bytes, 4 KiB aligned (or as this allocator
    /// aligns everything), or why not (see [`Self::fail_after`]).
    pub fn try_buffer(&self, len: usize) -> Result<DmaBuffer, DmaError> {
        DmaBuffer::allocate(&self.home(), len, 4096)
    }
    /// As [`Self::try_buffer`]; panics if the allocator refuses (tests).
    pub fn buffer(&self, len: usize) -> DmaBuffer {
        match self.try_buffer(len) {
            Ok(buffer) => buffer,
            Err(DmaError) => panic!("test DMA memory refused a buffer of {len} bytes"),
        }
    }
    /// A buffer holding a copy of `data` (see [`Self::buffer`]).
    pub fn buffer_from(&self, data: &[u8]) -> DmaBuffer {
        let mut buffer = self.buffer(data.len());
        buffer.as_mut_slice().copy_from_slice(data);
        buffer
    }
    /// Make `translate` give identity addresses for any pointer.
    pub fn set_translate_any(&self, on: bool) {
        self.0.lock().unwrap().translate_any = on;
    }
    /// Make `translate` give identity addresses inside `buf`.
    pub fn register(&self, buf: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .registered
            .push((buf.as_ptr() as usize, buf.len()));
    }
    /// Allocations that succeeded so far.
    pub fn allocations(&self) -> usize {
        self.0.lock().unwrap().allocations
    }
    /// Fail every allocation after `n` more succeeded.
    pub fn fail_after(&self, n: usize) {
        self.0.lock().unwrap().fail_after = Some(n);
    }
    /// Hand out memory aligned exactly to the alignment asked for (at least
    /// 4 KiB) and never to twice that.
    pub fn set_misalign(&self, on: bool) {
        self.0.lock().unwrap().misalign = on;
    }
    /// Fail allocations that would take the bytes outstanding over `bytes`.
    pub fn set_limit_bytes(&self, bytes: Option<usize>) {
        self.0.lock().unwrap().limit_bytes = bytes;
    }
    /// Fail single allocations larger than `bytes` (fragmented memory).
    pub fn set_max_chunk(&self, bytes: Option<usize>) {
        self.0.lock().unwrap().max_chunk = bytes;
    }
    /// Bytes handed out and not yet given back.
    pub fn outstanding_bytes(&self) -> usize {
        self.0.lock().unwrap().regions.iter().map(|b| b.len).sum()
    }
    /// Whether the region starting at `addr` is still allocated.
    pub fn is_allocated(&self, addr: u64) -> bool {
        let d = self.0.lock().unwrap();
        d.regions.iter().any(|b| b.start as u64 == addr)
    }
    /// Start addresses of the regions given back so far, in order.
    pub fn freed(&self) -> Vec<u64> {
        let d = self.0.lock().unwrap();
        d.freed.iter().map(|&a| a as u64).collect()
    }
    fn valid(&self, addr: usize, len: usize) -> bool {
        let d = self.0.lock().unwrap();
        let inside = |&(s, l): &(usize, usize)| addr >= s && addr + len <= s + l;
        d.translate_any
            || d.regions.iter().any(|b| inside(&(b.start, b.len)))
            || d.registered.iter().any(inside)
    }
}

impl DmaAllocator for TestDma {
    fn allocate(&self, len: usize, align: usize) -> Result<DmaRegion, DmaError> {
        let mut d = self.0.lock().unwrap();
        if !align.is_power_of_two() || align < 4096 {
            panic!("DMA allocation with alignment {align}: not a power of two of at least 4 KiB");
        }
        let len = len.max(1);
        if d.max_chunk.is_some_and(|max| len > max) {
            return Err(DmaError);
        }
        let outstanding: usize = d.regions.iter().map(|b| b.len).sum();
        if d.limit_bytes.is_some_and(|limit| outstanding + len > limit) {
            return Err(DmaError);
        }
        if let Some(n) = d.fail_after.as_mut() {
            if *n == 0 {
                return Err(DmaError);
            }
            *n -= 1;
        }
        let align = align.max(d.align).max(4096);
        // Misaligned mode: allocate aligned to twice the alignment and hand
        // out the part starting `align` bytes in.
        let (layout, skip) = if d.misalign {
            (
                Layout::from_size_align(len + align, align * 2).map_err(|_| DmaError)?,
                align,
            )
        } else {
            (
                Layout::from_size_align(len, align).map_err(|_| DmaError)?,
                0,
            )
        };
        // SAFETY: non-zero size layout.
        let base = unsafe { alloc_zeroed(layout) };
        if base.is_null() {
            return Err(DmaError);
        }
        let ptr = base.wrapping_add(skip);
        let virt = NonNull::new(ptr).ok_or(DmaError)?;
        d.regions.push(DmaBlock {
            base: base as usize,
            layout,
            start: ptr as usize,
            len,
        });
        d.allocations += 1;
        // SAFETY: fresh zeroed allocation of at least `skip + len` bytes,
        // aligned, owned by the region until `deallocate`; identity
        // physical address.
        Ok(unsafe { DmaRegion::new(virt, PhysAddr(ptr as u64), len) })
    }

    fn deallocate(&self, region: DmaRegion) {
        let mut d = self.0.lock().unwrap();
        let start = region.virt().as_ptr() as usize;
        if let Some(i) = d.regions.iter().position(|r| r.start == start) {
            let block = d.regions.remove(i);
            d.freed.push(start);
            // SAFETY: allocated above with this layout; the driver gives a
            // region back only when the device no longer uses it.
            unsafe { dealloc(block.base as *mut u8, block.layout) };
        }
    }

    fn translate(&self, virt: *const u8) -> Option<PhysAddr> {
        let d = self.0.lock().unwrap();
        let a = virt as usize;
        let ok = d.translate_any || d.registered.iter().any(|&(s, l)| a >= s && a < s + l);
        ok.then_some(PhysAddr(a as u64))
    }
}

// ----------------------------------------------------------- simulation --

/// The state firmware (or an earlier driver) left the controller in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartState {
    /// CC.EN = 0, CSTS.RDY = 0.
    Disabled,
    /// CC.EN = 1, CSTS.RDY = 1.
    EnabledReady,
    /// CC.EN = 1, CSTS.RDY becoming 1 after the ready delay.
    EnabledNotReady,
    /// CC.EN = 1, CSTS.SHST = shutdown occurring (complete after the ready
    /// delay).
    ShutdownInProgress,
    /// CC.EN = 1, CSTS.CFS = 1.
    Fatal,
}

/// One namespace of the simulated controller.
#[derive(Clone, Debug)]
pub struct NsConfig {
    /// Namespace identifier.
    pub nsid: u32,
    /// Bytes per logical block (a power of two).
    pub block_size: usize,
    /// Number of logical blocks (NSZE = NCAP).
    pub blocks: u64,
    /// Metadata bytes per block of the formatted LBA format (MS).
    pub metadata: u16,
}

/// What the simulated controller reports and how it behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// CAP.MQES: maximum queue entries, 0-based.
    pub mqes: u16,
    /// CAP.DSTRD: doorbell stride is `4 << dstrd` bytes.
    pub dstrd: u8,
    /// CAP.TO: worst-case ready time, 500 ms units.
    pub to: u8,
    /// CAP.MPSMIN: smallest memory page is `4096 << mpsmin` bytes.
    pub mpsmin: u8,
    /// CAP.MPSMAX: largest memory page is `4096 << mpsmax` bytes.
    pub mpsmax: u8,
    /// Identify Controller MDTS: largest transfer is `2^mdts` minimum
    /// pages (0: no limit).
    pub mdts: u8,
    /// Identify Controller ONCS (bit 2 Dataset Management, bit 3 Write
    /// Zeroes).
    pub oncs: u16,
    /// Identify Controller VWC: a volatile write cache is present.
    pub vwc: bool,
    /// Most I/O submission and completion queues Set Features Number of
    /// Queues grants.
    pub max_io_queues: u16,
    /// Time CSTS.RDY (and CSTS.SHST) take to follow CC, milliseconds.
    pub ready_delay_ms: u64,
    /// The state at power-on.
    pub start: StartState,
    /// VS: the NVMe version (`0x0001_0400` is 1.4).
    pub version: u32,
    /// Identify CNS 02h (Active Namespace ID list) is supported.
    pub active_list: bool,
    /// The namespaces, each with zero-filled blocks.
    pub namespaces: Vec<NsConfig>,
    /// Real-drive behaviours (see `real_drive`).
    pub real: real_drive::RealDrive,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            mqes: 1023,
            dstrd: 0,
            to: 20,
            mpsmin: 0,
            mpsmax: 4,
            mdts: 5,
            oncs: (1 << 2) | (1 << 3),
            vwc: true,
            max_io_queues: 8,
            ready_delay_ms: 5,
            start: StartState::Disabled,
            version: 0x0001_0400,
            active_list: true,
            namespaces: vec![NsConfig {
                nsid: 1,
                block_size: 512,
                blocks: 8192,
                metadata: 0,
            }],
            real: RealDrive::default(),
        }
    }
}

/// What happens to a command a [`FaultRule`] picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// It completes with this status, doing nothing else.
    Status(Status),
    /// It never completes (a lost completion: the driver's deadline runs
    /// out).
    Lose,
    /// The controller sets CSTS.CFS and the command never completes.
    Fatal,
    /// It runs and succeeds, but a Read hands back its first block with
    /// one bit flipped (byte 100, or the last byte of a smaller block); the
    /// medium keeps the right data. Data corrupted on its way to the host
    /// (an admin command it picks runs as usual).
    Corrupt,
}

/// A fault for one command: the first matching command after `skip`
/// matching ones gets `fault`; the rule is then used up.
#[derive(Clone, Copy, Debug)]
pub struct FaultRule {
    /// Match admin commands (queue 0) rather than I/O commands.
    pub admin: bool,
    /// Match this opcode.
    pub opcode: u8,
    /// Matching commands to let through first.
    pub skip: u32,
    /// What happens to the command picked.
    pub fault: Fault,
}

/// One command the controller fetched, in the order fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// Submission queue it came from (0: admin).
    pub qid: u16,
    /// Command identifier.
    pub cid: u16,
    /// The submission entry as decoded.
    pub entry: SubmissionEntry,
    /// The status it completed (or, when lost, would have completed) with.
    pub status: Status,
}

struct Sq {
    base: u64,
    size: u32,
    head: u32,
    tail: u32,
    cqid: u16,
}

struct Cq {
    base: u64,
    size: u32,
    head: u32,
    tail: u32,
    phase: bool,
}

struct Disk {
    cfg: NsConfig,
    data: Vec<u8>,
}

struct Pending {
    cqid: u16,
    entry: CompletionEntry,
}

struct State {
    cfg: SimConfig,
    cc: Cc,
    rdy: bool,
    cfs: bool,
    shst: ShutdownStatus,
    ready_at: Option<u64>,
    not_ready_at: Option<u64>,
    shst_at: Option<u64>,
    aqa: u32,
    asq: u64,
    acq: u64,
    sqs: HashMap<u16, Sq>,
    cqs: HashMap<u16, Cq>,
    in_flight: HashMap<u16, Vec<u16>>,
    granted_queues: Option<u16>,
    vwc_enabled: bool,
    disks: Vec<Disk>,
    pub faults: Vec<FaultRule>,
    never_ready: bool,
    all_ones: bool,
    unknown_cid_next: bool,
    defer: bool,
    pending: Vec<Pending>,
    doorbell_writes: u64,
    register_writes: u64,
    enables: u32,
    reset_during_shutdown: u32,
    commands: Vec<CommandRecord>,
    smart: [u8; 512],
    error_entries: Vec<[u8; 64]>,
    identify_pages: Vec<(u8, Vec<u8>)>,
    /// Namespaces as real drives present them (see the section below).
    extras: NamespaceExtras,
    real: real_drive::RealState,
}

/// The simulated controller (cheap to clone: shared state).
#[derive(Clone)]
pub struct Sim {
    state: Arc<Mutex<State>>,
    clock: FakeClock,
    dma: TestDma,
}

fn violation(msg: String) -> ! {
    panic!("NVMe protocol violation: {msg}");
}

impl Sim {
    /// A controller in `cfg.start` state, on `clock`, doing DMA in the
    /// memory `dma` hands out.
    pub fn new(cfg: SimConfig, clock: FakeClock, dma: TestDma) -> Sim {
        let disks = cfg
            .namespaces
            .iter()
            .map(|n| Disk {
                cfg: n.clone(),
                data: vec![0u8; n.block_size * n.blocks as usize],
            })
            .collect();
        let (enabled, rdy, cfs, shst) = match cfg.start {
            StartState::Disabled => (false, false, false, ShutdownStatus::Normal),
            StartState::EnabledReady => (true, true, false, ShutdownStatus::Normal),
            StartState::EnabledNotReady => (true, false, false, ShutdownStatus::Normal),
            StartState::ShutdownInProgress => (true, true, false, ShutdownStatus::Occurring),
            StartState::Fatal => (true, false, true, ShutdownStatus::Normal),
        };
        let now = clock.peek();
        let delay = cfg.ready_delay_ms * 1_000_000;
        let mut smart = [0u8; 512];
        smart[0] = 0b0000_0100;
        smart[1..3].copy_from_slice(&300u16.to_le_bytes());
        smart[5] = 3;
        smart[112] = 42;
        smart[128..130].copy_from_slice(&1000u16.to_le_bytes());
        smart[144] = 5;
        smart[160] = 1;
        let mut err = [0u8; 64];
        err[0] = 1;
        err[8] = 1;
        err[10] = 7;
        err[12..14].copy_from_slice(&(((2u16 << 8) | 0x81) << 1).to_le_bytes());
        err[24] = 1;
        let state = State {
            cfg: cfg.clone(),
            cc: Cc::new().with_enable(enabled),
            rdy,
            cfs,
            shst,
            ready_at: (cfg.start == StartState::EnabledNotReady).then_some(now + delay),
            not_ready_at: None,
            shst_at: (cfg.start == StartState::ShutdownInProgress).then_some(now + delay),
            aqa: 0,
            asq: 0,
            acq: 0,
            sqs: HashMap::new(),
            cqs: HashMap::new(),
            in_flight: HashMap::new(),
            granted_queues: None,
            vwc_enabled: true,
            disks,
            faults: Vec::new(),
            never_ready: false,
            all_ones: false,
            unknown_cid_next: false,
            defer: false,
            pending: Vec::new(),
            doorbell_writes: 0,
            register_writes: 0,
            enables: 0,
            reset_during_shutdown: 0,
            commands: Vec::new(),
            smart,
            error_entries: vec![err],
            identify_pages: Vec::new(),
            extras: NamespaceExtras::default(),
            real: real_drive::RealState::new(&cfg.real),
        };
        Sim {
            state: Arc::new(Mutex::new(state)),
            clock,
            dma,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a fault rule (rules are tried in the order added).
    pub fn add_fault(&self, rule: FaultRule) {
        self.lock().faults.push(rule);
    }
    /// The next I/O command with `opcode` completes with `status`.
    pub fn fail_io(&self, opcode: u8, status: Status) {
        self.add_fault(FaultRule {
            admin: false,
            opcode,
            skip: 0,
            fault: Fault::Status(status),
        });
    }
    /// CSTS.RDY never becomes 1 after CC.EN is set.
    pub fn set_never_ready(&self, on: bool) {
        self.lock().never_ready = on;
    }
    /// Every register reads as all-ones and writes are ignored (the device
    /// is gone from the bus).
    pub fn set_all_ones(&self, on: bool) {
        self.lock().all_ones = on;
    }
    /// Sets (or clears) CSTS.CFS, Controller Fatal Status; while set, no
    /// submission is processed.
    pub fn set_cfs(&self, on: bool) {
        self.lock().cfs = on;
    }
    /// Before the next completion, post one with a command identifier that
    /// is not in flight.
    pub fn inject_unknown_cid(&self) {
        self.lock().unknown_cid_next = true;
    }
    /// Hold I/O completions back until [`Sim::release_completions`].
    pub fn set_defer(&self, on: bool) {
        self.lock().defer = on;
    }
    /// Answer Identify with CNS `cns` (any NSID) with `page` (zero-padded
    /// to 4096 bytes) instead of the simulated structure.
    pub fn set_identify_page(&self, cns: u8, page: &[u8]) {
        let mut s = self.lock();
        s.identify_pages.retain(|(c, _)| *c != cns);
        s.identify_pages.push((cns, page.to_vec()));
    }
    /// Replace the SMART / Health log page (zero-padded to 512 bytes).
    pub fn set_smart_page(&self, page: &[u8]) {
        let mut s = self.lock();
        s.smart = [0; 512];
        let n = page.len().min(512);
        s.smart[..n].copy_from_slice(&page[..n]);
    }
    /// Replace the Error Information log entries (at most
    /// `ERROR_LOG_ENTRIES` are kept).
    pub fn set_error_entries(&self, entries: &[[u8; 64]]) {
        let n = entries.len().min(ERROR_LOG_ENTRIES as usize);
        self.lock().error_entries = entries[..n].to_vec();
    }
    /// Size in entries of completion queue `qid`, if it exists.
    pub fn cq_entries(&self, qid: u16) -> Option<u32> {
        self.lock().cqs.get(&qid).map(|c| c.size)
    }
    /// Writes the raw 16-byte entry `dwords` (phase bit included) into slot
    /// `index` of completion queue `qid`, as a misbehaving device might;
    /// the simulation's own tail and phase are left alone.
    pub fn write_completion_raw(&self, qid: u16, index: u32, dwords: [u32; 4]) {
        let s = self.lock();
        let Some(cq) = s.cqs.get(&qid) else {
            return;
        };
        let addr = cq.base + u64::from(index % cq.size) * 16;
        if !self.dma.valid(addr as usize, 16) {
            violation("CQ outside DMA memory".into());
        }
        for (i, v) in dwords.iter().enumerate() {
            // SAFETY: inside the CQ memory the driver allocated (checked);
            // the driver is not running while the test calls this.
            unsafe { std::ptr::write_volatile((addr as usize + i * 4) as *mut u32, *v) };
        }
    }
    /// Doorbell register writes so far.
    pub fn doorbell_writes(&self) -> u64 {
        self.lock().doorbell_writes
    }
    /// Register writes of any kind so far.
    pub fn register_writes(&self) -> u64 {
        self.lock().register_writes
    }
    /// Times CC.EN went from 0 to 1.
    pub fn enables(&self) -> u32 {
        self.lock().enables
    }
    /// Times CC.EN was cleared while shutdown processing was under way.
    pub fn resets_during_shutdown(&self) -> u32 {
        self.lock().reset_during_shutdown
    }
    /// Every command fetched so far (see [`Sim::clear_commands`]).
    pub fn commands(&self) -> Vec<CommandRecord> {
        self.lock().commands.clone()
    }
    /// Forgets the commands recorded so far.
    pub fn clear_commands(&self) {
        self.lock().commands.clear();
    }
    /// Submission queues that exist now, the admin queue included.
    pub fn io_queue_count(&self) -> usize {
        self.lock().sqs.len()
    }
    /// The Controller Configuration register as last written.
    pub fn cc(&self) -> Cc {
        self.lock().cc
    }
    /// CSTS.SHST now.
    pub fn shutdown_status(&self) -> ShutdownStatus {
        let mut s = self.lock();
        let now = self.clock.peek();
        s.settle(now);
        s.shst
    }
    /// Whether the volatile write cache is enabled (Set Features 06h).
    pub fn vwc_enabled(&self) -> bool {
        self.lock().vwc_enabled
    }
    /// A copy of namespace `nsid`'s blocks `lba..lba+count`.
    pub fn disk(&self, nsid: u32, lba: u64, count: u64) -> Vec<u8> {
        let s = self.lock();
        let d = s.disks.iter().find(|d| d.cfg.nsid == nsid).unwrap();
        let bs = d.cfg.block_size;
        d.data[lba as usize * bs..(lba + count) as usize * bs].to_vec()
    }
    /// Sets byte `i` of namespace `nsid` to `f(i)`, for every byte.
    pub fn fill_disk(&self, nsid: u32, f: impl Fn(usize) -> u8) {
        let mut s = self.lock();
        let d = s.disks.iter_mut().find(|d| d.cfg.nsid == nsid).unwrap();
        for (i, b) in d.data.iter_mut().enumerate() {
            *b = f(i);
        }
    }
    /// A hash of namespace `nsid`'s whole content, to tell whether it
    /// changed.
    pub fn disk_checksum(&self, nsid: u32) -> u64 {
        let s = self.lock();
        let d = s.disks.iter().find(|d| d.cfg.nsid == nsid).unwrap();
        d.data.iter().enumerate().fold(0u64, |h, (i, &b)| {
            h.wrapping_mul(31).wrapping_add(b as u64 ^ i as u64)
        })
    }
    /// Posts deferred completions (in reverse order if asked).
    pub fn release_completions(&self, reverse: bool) {
        let mut s = self.lock();
        let mut p = std::mem::take(&mut s.pending);
        if reverse {
            p.reverse();
        }
        for c in p {
            s.post(&self.dma, c.cqid, c.entry);
        }
    }

    fn read_mem(&self, addr: u64, buf: &mut [u8]) {
        if !self.dma.valid(addr as usize, buf.len()) {
            violation(format!(
                "DMA read outside DMA memory at {addr:#x} (+{})",
                buf.len()
            ));
        }
        // SAFETY: the range lies inside memory the test allocator handed
        // out (or the test registered); the driver is blocked in a register
        // access while the simulation runs, so nothing races.
        unsafe {
            std::ptr::copy_nonoverlapping(addr as usize as *const u8, buf.as_mut_ptr(), buf.len())
        };
    }
}

impl State {
    fn page_size(&self) -> usize {
        1 << (12 + self.cc.mps())
    }

    fn settle(&mut self, now: u64) {
        if let Some(t) = self.ready_at
            && now >= t
            && !self.never_ready
            && !self.cfs
        {
            self.rdy = true;
            self.ready_at = None;
        }
        if let Some(t) = self.not_ready_at
            && now >= t
        {
            self.rdy = false;
            self.not_ready_at = None;
        }
        if let Some(t) = self.shst_at
            && now >= t
        {
            self.shst = ShutdownStatus::Complete;
            self.shst_at = None;
        }
    }

    fn reset(&mut self) {
        self.sqs.clear();
        self.cqs.clear();
        self.in_flight.clear();
        self.pending.clear();
        self.granted_queues = None;
        self.cfs = false;
        self.shst = ShutdownStatus::Normal;
        self.shst_at = None;
        self.real_reset(); // real-drive hook
    }

    fn write_cc(&mut self, new: Cc, now: u64) {
        let old = self.cc;
        let delay = self.cfg.ready_delay_ms * 1_000_000;
        if old.enabled() != new.enabled() {
            self.real_enable_changed(now); // real-drive hook
        }
        if !old.enabled() && new.enabled() {
            if self.rdy {
                violation("CC.EN set while CSTS.RDY is still 1".into());
            }
            if self.aqa == 0 || self.asq == 0 || self.acq == 0 {
                violation("CC.EN set before AQA/ASQ/ACQ".into());
            }
            if !self.extras.css_allowed(new.css()) || new.iosqes() != 6 || new.iocqes() != 4 {
                violation(format!("bad CC {:#x}", new.0));
            }
            if new.mps() < self.cfg.mpsmin || new.mps() > self.cfg.mpsmax {
                violation(format!("CC.MPS {} outside CAP.MPSMIN..MPSMAX", new.mps()));
            }
            let page = 1u64 << (12 + new.mps());
            if !self.asq.is_multiple_of(page) || !self.acq.is_multiple_of(page) {
                violation("admin queues not page aligned".into());
            }
            self.reset();
            // Admin queues from AQA/ASQ/ACQ.
            let sq_size = (self.aqa & 0xFFF) + 1;
            let cq_size = ((self.aqa >> 16) & 0xFFF) + 1;
            self.sqs.insert(
                0,
                Sq {
                    base: self.asq,
                    size: sq_size,
                    head: 0,
                    tail: 0,
                    cqid: 0,
                },
            );
            self.cqs.insert(
                0,
                Cq {
                    base: self.acq,
                    size: cq_size,
                    head: 0,
                    tail: 0,
                    phase: true,
                },
            );
            self.enables += 1;
            self.not_ready_at = None;
            self.ready_at = Some(now + delay);
        } else if old.enabled() && !new.enabled() {
            if !self.rdy && !self.cfs && self.ready_at.is_some() {
                violation("CC.EN cleared while CSTS.RDY is 0 (enable in progress)".into());
            }
            if self.shst == ShutdownStatus::Occurring {
                self.reset_during_shutdown += 1;
            }
            self.reset();
            self.ready_at = None;
            self.not_ready_at = Some(now + delay);
        }
        if new.enabled()
            && new.shn() != ShutdownNotification::None
            && old.shn() == ShutdownNotification::None
        {
            self.shst = ShutdownStatus::Occurring;
            self.shst_at = self.real_shutdown_done_at(now, delay); // real-drive hook
        }
        self.cc = new;
    }
}

impl RegisterAccess for Sim {
    fn read32(&self, off: usize) -> u32 {
        let now = self.clock.peek();
        let mut s = self.lock();
        if s.all_ones {
            return u32::MAX;
        }
        s.settle(now);
        let c = &s.cfg;
        let cap: u64 = c.mqes as u64
            | (1 << 16)
            | ((c.to as u64) << 24)
            | ((c.dstrd as u64) << 32)
            | (1 << 37)
            | (u64::from(s.extras.io_command_sets) << 43)
            | ((c.mpsmin as u64) << 48)
            | ((c.mpsmax as u64) << 52);
        match off {
            offset::CAP => cap as u32,
            o if o == offset::CAP + 4 => (cap >> 32) as u32,
            offset::VS => c.version,
            offset::CC => s.cc.0,
            offset::CSTS => {
                s.real_csts_read(now); // real-drive hook
                Csts::new(s.rdy, s.cfs, s.shst).0
            }
            offset::AQA => s.aqa,
            offset::ASQ => s.asq as u32,
            o if o == offset::ASQ + 4 => (s.asq >> 32) as u32,
            offset::ACQ => s.acq as u32,
            o if o == offset::ACQ + 4 => (s.acq >> 32) as u32,
            o => violation(format!("read of register {o:#x}")),
        }
    }

    fn write32(&self, off: usize, value: u32) {
        let now = self.clock.peek();
        let mut s = self.lock();
        s.register_writes += 1;
        if s.all_ones {
            return;
        }
        s.settle(now);
        self.check_hmb_memory(&s); // real-drive hook
        match off {
            offset::CC => s.write_cc(Cc(value), now),
            offset::AQA => s.aqa = value,
            offset::ASQ => s.asq = (s.asq & !0xFFFF_FFFF) | value as u64,
            o if o == offset::ASQ + 4 => s.asq = (s.asq & 0xFFFF_FFFF) | ((value as u64) << 32),
            offset::ACQ => s.acq = (s.acq & !0xFFFF_FFFF) | value as u64,
            o if o == offset::ACQ + 4 => s.acq = (s.acq & 0xFFFF_FFFF) | ((value as u64) << 32),
            o if o >= offset::DOORBELL_BASE => {
                s.doorbell_writes += 1;
                let stride = 4usize << s.cfg.dstrd;
                let rel = o - offset::DOORBELL_BASE;
                if !rel.is_multiple_of(stride) {
                    violation(format!(
                        "doorbell write at {o:#x} not on the stride {stride}"
                    ));
                }
                if !s.cc.enabled() || !s.rdy {
                    violation("doorbell write while controller not ready".into());
                }
                let index = rel / stride;
                let qid = (index / 2) as u16;
                if index % 2 == 1 {
                    let cq = s.cqs.get_mut(&qid).unwrap_or_else(|| {
                        violation(format!("CQ {qid} head doorbell, no such CQ"))
                    });
                    if value >= cq.size {
                        violation(format!("CQ {qid} head {value} beyond size {}", cq.size));
                    }
                    cq.head = value;
                } else {
                    let size = s
                        .sqs
                        .get(&qid)
                        .unwrap_or_else(|| violation(format!("SQ {qid} tail doorbell, no such SQ")))
                        .size;
                    if value >= size {
                        violation(format!("SQ {qid} tail {value} beyond size {size}"));
                    }
                    s.sqs.get_mut(&qid).unwrap().tail = value;
                    if !s.cfs {
                        self.process(&mut s, qid);
                    }
                }
            }
            o => violation(format!("write of register {o:#x}")),
        }
    }
}

struct Exec {
    status: Status,
    dw0: u32,
    post: bool,
}

fn ok(dw0: u32) -> Exec {
    Exec {
        status: Status::SUCCESS,
        dw0,
        post: true,
    }
}
fn err(sct: u8, sc: u8) -> Exec {
    Exec {
        status: Status::new(sct, sc),
        dw0: 0,
        post: true,
    }
}

impl Sim {
    fn process(&self, s: &mut State, qid: u16) {
        loop {
            let (base, head, tail, size, cqid) = {
                let sq = &s.sqs[&qid];
                (sq.base, sq.head, sq.tail, sq.size, sq.cqid)
            };
            if head == tail {
                return;
            }
            let mut raw = [0u8; 64];
            self.read_mem(base + head as u64 * 64, &mut raw);
            let mut d = [0u32; 16];
            for (i, v) in d.iter_mut().enumerate() {
                *v = u32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().unwrap());
            }
            let (entry, cid) = SubmissionEntry::from_dwords(&d);
            let new_head = (head + 1) % size;
            s.sqs.get_mut(&qid).unwrap().head = new_head;
            let flight = s.in_flight.entry(qid).or_default();
            if flight.contains(&cid) {
                violation(format!("CID {cid:#x} reused on SQ {qid} while in flight"));
            }
            flight.push(cid);
            if d[0] & (3 << 14) != 0 || d[0] & (3 << 8) != 0 {
                violation("PSDT or FUSE set".into());
            }
            // Fault injection.
            let admin = qid == 0;
            let mut fault = None;
            if let Some(i) = s
                .faults
                .iter()
                .position(|f| f.admin == admin && f.opcode == entry.opcode)
            {
                if s.faults[i].skip == 0 {
                    fault = Some(s.faults.remove(i).fault);
                } else {
                    s.faults[i].skip -= 1;
                }
            }
            let exec = match fault {
                Some(Fault::Status(st)) => Exec {
                    status: st,
                    dw0: 0,
                    post: true,
                },
                Some(Fault::Lose) => Exec {
                    status: Status::SUCCESS,
                    dw0: 0,
                    post: false,
                },
                Some(Fault::Fatal) => {
                    s.cfs = true;
                    Exec {
                        status: Status::SUCCESS,
                        dw0: 0,
                        post: false,
                    }
                }
                None | Some(Fault::Corrupt) if admin => self.admin(s, &entry),
                Some(Fault::Corrupt) => self.corrupted_io(s, qid, &entry),
                None => self.io(s, qid, &entry),
            };
            if !exec.post {
                s.commands.push(CommandRecord {
                    qid,
                    cid,
                    entry,
                    status: exec.status,
                });
                continue;
            }
            s.commands.push(CommandRecord {
                qid,
                cid,
                entry,
                status: exec.status,
            });
            let completion = CompletionEntry {
                dw0: exec.dw0,
                dw1: 0,
                sq_head: new_head as u16,
                sq_id: qid,
                cid,
                phase: false,
                status: exec.status,
            };
            if s.unknown_cid_next {
                s.unknown_cid_next = false;
                let bogus = CompletionEntry {
                    cid: cid ^ 0x8000,
                    ..completion
                };
                s.post(&self.dma, cqid, bogus);
            }
            if s.defer && !admin {
                s.pending.push(Pending {
                    cqid,
                    entry: completion,
                });
            } else {
                s.post(&self.dma, cqid, completion);
            }
        }
    }

    // ------------------------------------------------------------ PRPs --

    /// The (address, length) segments of a PRP-described transfer, checked
    /// strictly.
    fn prp_segments(&self, s: &State, prp1: u64, prp2: u64, len: usize) -> Vec<(u64, usize)> {
        let page = s.page_size() as u64;
        if !prp1.is_multiple_of(4) {
            violation(format!("PRP1 {prp1:#x} not dword aligned"));
        }
        let mut segs = Vec::new();
        let first = (page - prp1 % page).min(len as u64) as usize;
        segs.push((prp1, first));
        let mut remaining = len - first;
        if remaining == 0 {
            return segs;
        }
        if remaining as u64 <= page {
            if !prp2.is_multiple_of(page) {
                violation(format!("PRP2 {prp2:#x} (data page) has an offset"));
            }
            segs.push((prp2, remaining));
            return segs;
        }
        if !prp2.is_multiple_of(8) {
            violation(format!("PRP list pointer {prp2:#x} not qword aligned"));
        }
        let mut list = prp2;
        loop {
            let entries_here = ((page - list % page) / 8) as usize;
            for i in 0..entries_here {
                let mut b = [0u8; 8];
                self.read_mem(list + i as u64 * 8, &mut b);
                let e = u64::from_le_bytes(b);
                let last_slot = i == entries_here - 1;
                if last_slot && remaining as u64 > page {
                    // Chain to the next list page.
                    if e % page != 0 {
                        violation(format!("chained PRP list pointer {e:#x} not page aligned"));
                    }
                    list = e;
                    break;
                }
                if e % page != 0 {
                    violation(format!("PRP list entry {e:#x} has an offset"));
                }
                let n = (remaining as u64).min(page) as usize;
                segs.push((e, n));
                remaining -= n;
                if remaining == 0 {
                    return segs;
                }
            }
        }
    }

    fn dma_out(&self, s: &State, e: &SubmissionEntry, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut at = 0;
        for (addr, n) in self.prp_segments(s, e.prp1, e.prp2, len) {
            self.read_mem(addr, &mut out[at..at + n]);
            at += n;
        }
        out
    }

    fn dma_in(&self, s: &State, e: &SubmissionEntry, data: &[u8]) {
        let mut at = 0;
        for (addr, n) in self.prp_segments(s, e.prp1, e.prp2, data.len()) {
            if !self.dma.valid(addr as usize, n) {
                violation(format!("DMA write outside DMA memory at {addr:#x} (+{n})"));
            }
            // SAFETY: inside test-owned DMA memory (checked above); the
            // driver is blocked in a register access.
            unsafe {
                std::ptr::copy_nonoverlapping(data[at..].as_ptr(), addr as usize as *mut u8, n)
            };
            at += n;
        }
    }

    // ----------------------------------------------------------- admin --

    fn admin(&self, s: &mut State, e: &SubmissionEntry) -> Exec {
        let cdw10 = e.cdw[0];
        let cdw11 = e.cdw[1];
        match e.opcode {
            0x06 => {
                let mut buf = vec![0u8; 4096];
                let cns = (cdw10 & 0xFF) as u8;
                if let Some((_, page)) = s.identify_pages.iter().find(|(c, _)| *c == cns) {
                    let n = page.len().min(4096);
                    buf[..n].copy_from_slice(&page[..n]);
                    self.dma_in(s, e, &buf);
                    return ok(0);
                }
                match cdw10 & 0xFF {
                    1 => {
                        buf[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
                        buf[4..24].copy_from_slice(b"SIMSERIAL0001       ");
                        buf[24..64].copy_from_slice(b"Simulated NVMe Controller               ");
                        buf[64..72].copy_from_slice(b"1.0     ");
                        buf[77] = s.cfg.mdts;
                        buf[80..84].copy_from_slice(&s.cfg.version.to_le_bytes());
                        buf[262] = ERROR_LOG_ENTRIES - 1;
                        buf[512] = 0x66;
                        buf[513] = 0x44;
                        let nn = s.extras.namespace_count.unwrap_or_else(|| {
                            s.disks.iter().map(|d| d.cfg.nsid).max().unwrap_or(0)
                        });
                        buf[516..520].copy_from_slice(&nn.to_le_bytes());
                        buf[520..522].copy_from_slice(&s.cfg.oncs.to_le_bytes());
                        buf[525] = s.cfg.vwc as u8;
                        real_drive::identify_controller(&s.cfg.real, &mut buf); // real-drive hook
                    }
                    0 => {
                        if let Some(exec) = self.identify_namespace_extras(s, e, &mut buf) {
                            return exec;
                        }
                        let Some(d) = s.disks.iter().find(|d| d.cfg.nsid == e.nsid) else {
                            return err(0, 0x0B);
                        };
                        buf[0..8].copy_from_slice(&d.cfg.blocks.to_le_bytes());
                        buf[8..16].copy_from_slice(&d.cfg.blocks.to_le_bytes());
                        buf[25] = 1; // two formats
                        buf[26] = 0;
                        let lbads = d.cfg.block_size.trailing_zeros();
                        let f0 = d.cfg.metadata as u32 | (lbads << 16);
                        buf[128..132].copy_from_slice(&f0.to_le_bytes());
                        let f1 = 12u32 << 16;
                        buf[132..136].copy_from_slice(&f1.to_le_bytes());
                        if s.extras.write_protected.contains(&e.nsid) {
                            buf[99] = 1;
                        }
                    }
                    2 => {
                        if !s.cfg.active_list {
                            return err(0, 0x02);
                        }
                        let mut ids: Vec<u32> = s
                            .disks
                            .iter()
                            .map(|d| d.cfg.nsid)
                            .filter(|&n| n > e.nsid)
                            .collect();
                        ids.sort();
                        for (i, id) in ids.iter().take(1024).enumerate() {
                            buf[i * 4..i * 4 + 4].copy_from_slice(&id.to_le_bytes());
                        }
                    }
                    3 | 5 | 6 => return self.identify_command_set(s, e),
                    _ => return err(0, 0x02),
                }
                self.dma_in(s, e, &buf);
                ok(0)
            }
            0x09 => match cdw10 & 0xFF {
                0x07 => {
                    if s.sqs.len() > 1 {
                        return err(0, 0x0C);
                    }
                    let max = s.cfg.max_io_queues;
                    let nsq = ((cdw11 & 0xFFFF) as u16 + 1).min(max);
                    let ncq = ((cdw11 >> 16) as u16 + 1).min(max);
                    s.granted_queues = Some(nsq.min(ncq));
                    ok((nsq - 1) as u32 | (((ncq - 1) as u32) << 16))
                }
                0x06 => {
                    if !s.cfg.vwc {
                        return err(0, 0x02);
                    }
                    s.vwc_enabled = cdw11 & 1 != 0;
                    ok(0)
                }
                0x0C => self.set_apst(s, e), // real-drive hook
                0x0D => self.set_host_memory_buffer(s, e), // real-drive hook
                _ => err(0, 0x02),
            },
            0x0A => match cdw10 & 0xFF {
                0x06 if s.cfg.vwc => ok(s.vwc_enabled as u32),
                0x0C => self.get_apst(s, e), // real-drive hook
                _ => err(0, 0x02),
            },
            0x05 | 0x01 => {
                let qid = (cdw10 & 0xFFFF) as u16;
                let size = (cdw10 >> 16) + 1;
                let granted = s.granted_queues.unwrap_or(0);
                if qid == 0 || qid > granted {
                    return err(1, 0x01);
                }
                if size < 2 || size > s.cfg.mqes as u32 + 1 {
                    return err(1, 0x02);
                }
                if cdw11 & 1 == 0 {
                    violation("queue not physically contiguous".into());
                }
                if !e.prp1.is_multiple_of(s.page_size() as u64) {
                    violation(format!("queue base {:#x} not page aligned", e.prp1));
                }
                if e.opcode == 0x05 {
                    if cdw11 & 2 != 0 {
                        violation("interrupts enabled on a polled CQ".into());
                    }
                    if s.cqs.contains_key(&qid) {
                        return err(1, 0x01);
                    }
                    s.cqs.insert(
                        qid,
                        Cq {
                            base: e.prp1,
                            size,
                            head: 0,
                            tail: 0,
                            phase: true,
                        },
                    );
                } else {
                    let cqid = (cdw11 >> 16) as u16;
                    if !s.cqs.contains_key(&cqid) || cqid == 0 {
                        return err(1, 0x00);
                    }
                    if s.sqs.contains_key(&qid) {
                        return err(1, 0x01);
                    }
                    s.sqs.insert(
                        qid,
                        Sq {
                            base: e.prp1,
                            size,
                            head: 0,
                            tail: 0,
                            cqid,
                        },
                    );
                }
                ok(0)
            }
            0x00 => {
                let qid = (cdw10 & 0xFFFF) as u16;
                if qid == 0 || s.sqs.remove(&qid).is_none() {
                    return err(1, 0x01);
                }
                s.in_flight.remove(&qid);
                ok(0)
            }
            0x04 => {
                let qid = (cdw10 & 0xFFFF) as u16;
                if qid == 0 || !s.cqs.contains_key(&qid) {
                    return err(1, 0x01);
                }
                if s.sqs.values().any(|q| q.cqid == qid) {
                    return err(1, 0x0C);
                }
                s.cqs.remove(&qid);
                ok(0)
            }
            0x02 => {
                let lid = cdw10 & 0xFF;
                let dwords = ((cdw10 >> 16) | ((cdw11 & 0xFFFF) << 16)) as usize + 1;
                let len = dwords * 4;
                let mut buf = vec![0u8; len];
                match lid {
                    2 => {
                        let n = len.min(512);
                        buf[..n].copy_from_slice(&s.smart[..n]);
                    }
                    1 => {
                        if len > ERROR_LOG_ENTRIES as usize * 64 {
                            violation(format!("error log read of {len} bytes beyond its size"));
                        }
                        for (i, entry) in s.error_entries.iter().enumerate() {
                            if (i + 1) * 64 <= len {
                                buf[i * 64..(i + 1) * 64].copy_from_slice(entry);
                            }
                        }
                    }
                    _ => return err(1, 0x09),
                }
                self.dma_in(s, e, &buf);
                ok(0)
            }
            0x08 => ok(1),
            _ => err(0, 0x01),
        }
    }

    // -------------------------------------------------------------- I/O --

    /// Runs I/O command `e` with its Read data corrupted (see
    /// [`Fault::Corrupt`]): the bit is flipped on the medium for the
    /// transfer and flipped back after it.
    fn corrupted_io(&self, s: &mut State, qid: u16, e: &SubmissionEntry) -> Exec {
        let lba = e.cdw[0] as u64 | ((e.cdw[1] as u64) << 32);
        let at = s
            .disks
            .iter()
            .position(|d| d.cfg.nsid == e.nsid)
            .and_then(|di| {
                let bs = s.disks[di].cfg.block_size;
                let byte = (lba as usize).checked_mul(bs)? + 100.min(bs.saturating_sub(1));
                (e.opcode == 0x02 && byte < s.disks[di].data.len()).then_some((di, byte))
            });
        if let Some((di, byte)) = at {
            s.disks[di].data[byte] ^= 0x10;
        }
        let exec = self.io(s, qid, e);
        if let Some((di, byte)) = at {
            s.disks[di].data[byte] ^= 0x10;
        }
        exec
    }

    fn io(&self, s: &mut State, _qid: u16, e: &SubmissionEntry) -> Exec {
        let Some(di) = s.disks.iter().position(|d| d.cfg.nsid == e.nsid) else {
            return err(0, 0x0B);
        };
        let bs = s.disks[di].cfg.block_size;
        let blocks_total = s.disks[di].cfg.blocks;
        let lba = e.cdw[0] as u64 | ((e.cdw[1] as u64) << 32);
        let nlb = (e.cdw[2] & 0xFFFF) as u64 + 1;
        let in_range = lba.checked_add(nlb).is_some_and(|end| end <= blocks_total);
        let mdts_bytes = if s.cfg.mdts == 0 {
            usize::MAX
        } else {
            (1usize << s.cfg.mdts) * (4096 << s.cfg.mpsmin)
        };
        match e.opcode {
            0x00 => ok(0),
            0x01 | 0x02 => {
                if let Some(exec) = s.extras.check_io(e.opcode, e.nsid, lba, nlb) {
                    return exec;
                }
                let len = nlb as usize * bs;
                if len > mdts_bytes {
                    violation(format!("transfer of {len} bytes over MDTS ({mdts_bytes})"));
                }
                if !in_range {
                    return err(0, 0x80);
                }
                let start = lba as usize * bs;
                if e.opcode == 0x02 {
                    let data = s.disks[di].data[start..start + len].to_vec();
                    self.dma_in(s, e, &data);
                } else {
                    let data = self.dma_out(s, e, len);
                    s.disks[di].data[start..start + len].copy_from_slice(&data);
                }
                ok(0)
            }
            0x08 => {
                if let Some(exec) = s.extras.write_refused(e.nsid) {
                    return exec;
                }
                if s.cfg.oncs & (1 << 3) == 0 {
                    violation("Write Zeroes sent although ONCS does not list it".into());
                }
                if !in_range {
                    return err(0, 0x80);
                }
                let start = lba as usize * bs;
                s.disks[di].data[start..start + nlb as usize * bs].fill(0);
                ok(0)
            }
            0x09 => {
                if s.cfg.oncs & (1 << 2) == 0 {
                    violation("Dataset Management sent although ONCS does not list it".into());
                }
                let ranges = (e.cdw[0] & 0xFF) as usize + 1;
                let raw = self.dma_out(s, e, ranges * 16);
                for r in raw.chunks(16) {
                    let len = u32::from_le_bytes(r[4..8].try_into().unwrap()) as u64;
                    let slba = u64::from_le_bytes(r[8..16].try_into().unwrap());
                    if slba.checked_add(len).is_none_or(|end| end > blocks_total) {
                        return err(0, 0x80);
                    }
                    let start = slba as usize * bs;
                    s.disks[di].data[start..start + len as usize * bs].fill(0);
                }
                ok(0)
            }
            _ => err(0, 0x01),
        }
    }
}

impl State {
    fn post(&mut self, dma: &TestDma, cqid: u16, mut entry: CompletionEntry) {
        // The SQ head as of posting time, like a real controller.
        if let Some(sq) = self.sqs.get(&entry.sq_id) {
            entry.sq_head = sq.head as u16;
        }
        let Some(cq) = self.cqs.get_mut(&cqid) else {
            return;
        };
        if (cq.tail + 1) % cq.size == cq.head {
            violation(format!("CQ {cqid} overflow"));
        }
        entry.phase = cq.phase;
        let addr = cq.base + cq.tail as u64 * 16;
        if !dma.valid(addr as usize, 16) {
            violation("CQ outside DMA memory".into());
        }
        let d = entry.to_dwords();
        for (i, v) in d.iter().enumerate() {
            // SAFETY: inside the CQ memory the driver allocated (checked);
            // volatile so the write is not merged or reordered oddly.
            unsafe { std::ptr::write_volatile((addr as usize + i * 4) as *mut u32, *v) };
        }
        cq.tail += 1;
        if cq.tail == cq.size {
            cq.tail = 0;
            cq.phase = !cq.phase;
        }
        if let Some(f) = self.in_flight.get_mut(&entry.sq_id) {
            f.retain(|&c| c != entry.cid);
        }
    }
}

/// Error Information log entries the simulated controller keeps (ELPE + 1).
pub const ERROR_LOG_ENTRIES: u8 = 8;

// -------------------------------------------------------------- harness --

/// The driver's controller over the simulated one.
pub type TestController = nvme::Controller<Sim, TestDma, FakeClock>;

/// A simulated controller with its clock and DMA memory, ready for a
/// driver to be brought up on.
pub struct Bench {
    /// The controller (a handle to it; clones share it).
    pub sim: Sim,
    /// Its DMA memory.
    pub dma: TestDma,
    /// Its clock.
    pub clock: FakeClock,
}

impl Bench {
    /// A controller as `cfg` says, DMA regions aligned to 4 KiB.
    pub fn new(cfg: SimConfig) -> Bench {
        Bench::with_align(cfg, 4096)
    }
    /// A controller as `cfg` says, DMA regions aligned to at least `align`.
    pub fn with_align(cfg: SimConfig, align: usize) -> Bench {
        let clock = FakeClock::default();
        let dma = TestDma::new(align);
        let sim = Sim::new(cfg, clock.clone(), dma.clone());
        Bench { sim, dma, clock }
    }
    /// Brings the driver up on the simulated controller.
    pub fn controller(&self, config: nvme::Config) -> Result<TestController, nvme::Error> {
        nvme::Controller::new(
            self.sim.clone(),
            self.dma.clone(),
            self.clock.clone(),
            config,
        )
    }
}

/// Short command deadlines; Host Memory Buffers of at most 4 MiB, so that
/// fuzzed Identify data asking for large ones keeps fuzzing fast.
pub fn test_config() -> nvme::Config {
    nvme::Config {
        command_timeout_ms: 100,
        host_memory_buffer_max_bytes: 4 << 20,
        ..nvme::Config::default()
    }
}

/// Deterministic pattern for buffers.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ------------------------------------------ namespaces as drives show them --
//
// Additions for the namespace tests: an NN larger than the highest NSID
// (inactive NSIDs read as zero-filled Identify data, as the specification
// says), Identify Namespace failing for chosen NSIDs, write-protected
// namespaces (NSATTR bit 0; writes complete with "Namespace is Write
// Protected"), namespaces refusing writes with a chosen status, and zoned
// namespaces (CAP.CSS bit 6, CC.CSS = 110b, the Command Set Identifier
// descriptor, ZNS Identify Namespace). A write reaching a zoned namespace
// is a violation: the driver must never send one.

#[derive(Default)]
struct NamespaceExtras {
    io_command_sets: bool,
    namespace_count: Option<u32>,
    identify_failures: HashMap<u32, Status>,
    write_protected: Vec<u32>,
    refuse_writes: HashMap<u32, Status>,
    /// NSID -> (zone size in blocks, MOR, MAR).
    zoned: HashMap<u32, (u64, u32, u32)>,
    writes_refused: u64,
}

impl NamespaceExtras {
    fn css_allowed(&self, css: u8) -> bool {
        css == 0 || (css == 6 && self.io_command_sets)
    }

    /// Reads crossing a zone boundary fail with Zone Boundary Error (the
    /// simulated zoned namespaces do not set RAZB); writes go to
    /// `write_refused`.
    fn check_io(&mut self, opcode: u8, nsid: u32, lba: u64, nlb: u64) -> Option<Exec> {
        if opcode == 0x01 {
            return self.write_refused(nsid);
        }
        let &(zone_blocks, _, _) = self.zoned.get(&nsid)?;
        (lba / zone_blocks != (lba + nlb - 1) / zone_blocks).then(|| err(1, 0xB8))
    }

    fn write_refused(&mut self, nsid: u32) -> Option<Exec> {
        if self.zoned.contains_key(&nsid) {
            violation(format!("write sent to zoned namespace {nsid}"));
        }
        let status = if self.write_protected.contains(&nsid) {
            Some(Status::new(0, 0x20))
        } else {
            self.refuse_writes.get(&nsid).copied()
        };
        status.map(|status| {
            self.writes_refused += 1;
            Exec {
                status,
                dw0: 0,
                post: true,
            }
        })
    }
}

impl Sim {
    /// Report CAP.CSS bit 6 (I/O command sets) and accept CC.CSS = 110b.
    pub fn set_io_command_sets(&self, on: bool) {
        self.lock().extras.io_command_sets = on;
    }
    /// Report `nn` as Number of Namespaces (NSIDs up to it without a
    /// namespace are inactive).
    pub fn set_namespace_count(&self, nn: u32) {
        self.lock().extras.namespace_count = Some(nn);
    }
    /// Identify Namespace (CNS 00h) of `nsid` completes with `status`.
    pub fn fail_identify_namespace(&self, nsid: u32, status: Status) {
        self.lock().extras.identify_failures.insert(nsid, status);
    }
    /// Namespace `nsid` is write protected (NSATTR bit 0).
    pub fn set_write_protected(&self, nsid: u32) {
        self.lock().extras.write_protected.push(nsid);
    }
    /// Every write to `nsid` completes with `status`.
    pub fn refuse_writes(&self, nsid: u32, status: Status) {
        self.lock().extras.refuse_writes.insert(nsid, status);
    }
    /// Namespace `nsid` is zoned with zones of `zone_blocks` blocks and
    /// the 0-based open / active limits `mor` / `mar`.
    pub fn set_zoned(&self, nsid: u32, zone_blocks: u64, mor: u32, mar: u32) {
        self.lock()
            .extras
            .zoned
            .insert(nsid, (zone_blocks, mor, mar));
    }
    /// Writes (and Write Zeroes) refused by the rules above.
    pub fn writes_refused(&self) -> u64 {
        self.lock().extras.writes_refused
    }

    /// Identify Namespace for failing or inactive NSIDs; `None` for the
    /// simulation's own answer.
    fn identify_namespace_extras(
        &self,
        s: &mut State,
        e: &SubmissionEntry,
        buf: &mut [u8],
    ) -> Option<Exec> {
        if let Some(&status) = s.extras.identify_failures.get(&e.nsid) {
            return Some(Exec {
                status,
                dw0: 0,
                post: true,
            });
        }
        let present = s.disks.iter().any(|d| d.cfg.nsid == e.nsid);
        let nn = s.extras.namespace_count?;
        if !present && e.nsid >= 1 && e.nsid <= nn {
            buf.fill(0);
            self.dma_in(s, e, buf);
            return Some(ok(0));
        }
        None
    }

    /// Identify CNS 03h (descriptor list), 05h and 06h (command set
    /// specific namespace / controller data).
    fn identify_command_set(&self, s: &mut State, e: &SubmissionEntry) -> Exec {
        let cns = (e.cdw[0] & 0xFF) as u8;
        let csi = (e.cdw[1] >> 24) as u8;
        if s.cfg.version < 0x0001_0300 {
            violation(format!(
                "Identify CNS {cns:#x} sent to a controller before NVMe 1.3"
            ));
        }
        let mut buf = vec![0u8; 4096];
        let zoned = s.extras.zoned.get(&e.nsid).copied();
        match cns {
            3 => {
                if !s.disks.iter().any(|d| d.cfg.nsid == e.nsid) {
                    return err(0, 0x0B);
                }
                // An EUI-64, then the Command Set Identifier when the
                // controller has I/O command sets.
                buf[0] = 1;
                buf[1] = 8;
                buf[4..12].copy_from_slice(&u64::from(e.nsid).to_be_bytes());
                if s.extras.io_command_sets {
                    buf[12] = 4;
                    buf[13] = 1;
                    buf[16] = if zoned.is_some() { 2 } else { 0 };
                }
            }
            5 => {
                if !s.extras.io_command_sets || s.cc.css() != 6 {
                    return err(0, 0x02);
                }
                let Some((zone_blocks, mor, mar)) = zoned else {
                    return err(0, 0x02);
                };
                if csi != 2 {
                    return err(0, 0x02);
                }
                buf[4..8].copy_from_slice(&mar.to_le_bytes());
                buf[8..12].copy_from_slice(&mor.to_le_bytes());
                // LBA format 0 (the formatted one) and 1.
                buf[2816..2824].copy_from_slice(&zone_blocks.to_le_bytes());
                buf[2832..2840].copy_from_slice(&(zone_blocks / 8).max(1).to_le_bytes());
            }
            _ => return err(0, 0x02),
        }
        self.dma_in(s, e, &buf);
        ok(0)
    }
}
