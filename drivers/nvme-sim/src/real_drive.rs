//! Real-drive behaviours of the simulated controller.
//!
//! What QEMU's controller does not model and real drives do: a Host Memory
//! Buffer (HMPRE/HMMIN/HMMINDS/HMMAXD in Identify Controller, Set Features
//! 0Dh, NVMe 1.4 §5.21.1.13), shutdown that takes as long as RTD3E says (or
//! never finishes), drives that need a pause after CC.EN changes before
//! CSTS is read, and Autonomous Power State Transitions (APSTA, Set/Get
//! Features 0Ch, §5.21.1.12). The rest of the simulator calls in here
//! through a few hooks; everything else about these features lives here.

use super::{Exec, Sim, State, err, ok, violation};
use nvme::command::{Status, SubmissionEntry};

/// Real-drive settings of a simulated controller (all off by default).
#[derive(Clone, Debug, Default)]
pub struct RealDrive {
    /// Host Memory Buffer Preferred Size, 4 KiB units (0 = no HMB).
    pub hmpre: u32,
    /// Host Memory Buffer Minimum Size, 4 KiB units.
    pub hmmin: u32,
    /// Host Memory Buffer Minimum Descriptor Entry Size, 4 KiB units.
    pub hmminds: u32,
    /// Host Memory Maximum Descriptors Entries (0 = no limit).
    pub hmmaxd: u16,
    /// Refuse Set Features 0Dh with Invalid Field.
    pub refuse_hmb: bool,
    /// RTD3 Entry Latency reported in Identify Controller, microseconds.
    pub rtd3e_us: u32,
    /// Time from CC.SHN to CSTS.SHST = complete (`None`: the ready delay).
    pub shutdown_ms: Option<u64>,
    /// Shutdown processing never completes.
    pub never_shuts_down: bool,
    /// Number of power states minus one (NPSS).
    pub npss: u8,
    /// Autonomous Power State Transitions supported (APSTA bit 0).
    pub apsta: bool,
    /// APST enabled by firmware before the driver runs, with a table that
    /// moves every operational state to the deepest one after 100 ms idle.
    pub apst_enabled: bool,
}

/// One Set Features Host Memory Buffer command as the controller saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmbCommand {
    /// Enable Host Memory (EHM, CDW11 bit 0).
    pub enable: bool,
    /// Memory Return (MR, CDW11 bit 1).
    pub memory_return: bool,
    /// HSIZE in memory pages.
    pub size_pages: u32,
    /// Descriptor list address.
    pub list: u64,
    /// Descriptor list entry count.
    pub entries: u32,
    /// (address, pages) of every descriptor read.
    pub descriptors: Vec<(u64, u32)>,
    /// Status the controller answered.
    pub status: Status,
    /// Position among all commands the controller received.
    pub command_index: usize,
}

/// Run-time state of the real-drive features.
#[derive(Default)]
pub(super) struct RealState {
    /// The buffer in use: (address, bytes) of each descriptor.
    hmb: Option<Vec<(u64, usize)>>,
    hmb_commands: Vec<HmbCommand>,
    shutdowns_with_hmb: u32,
    /// When CC.EN last changed, until CSTS is next read.
    enable_changed_at: Option<u64>,
    ready_check_gaps: Vec<u64>,
    apst_enabled: bool,
    apst_table: [u64; 32],
}

impl RealState {
    pub(super) fn new(cfg: &RealDrive) -> RealState {
        let mut apst_table = [0u64; 32];
        if cfg.apst_enabled {
            for entry in apst_table.iter_mut().take(usize::from(cfg.npss)) {
                *entry = apst_entry(cfg.npss, 100);
            }
        }
        RealState {
            apst_enabled: cfg.apst_enabled,
            apst_table,
            ..RealState::default()
        }
    }
}

/// An APST table entry: go to state `target` after `idle_ms` (§5.21.1.12,
/// Figure 292: ITPS bits 7:3, ITPT bits 31:8).
pub fn apst_entry(target: u8, idle_ms: u32) -> u64 {
    (u64::from(target) << 3) | (u64::from(idle_ms) << 8)
}

/// Target state of an APST entry (0 with no idle time means "no transition").
pub fn apst_target(entry: u64) -> Option<u8> {
    (entry >> 8 != 0).then_some(((entry >> 3) & 0x1F) as u8)
}

/// Fills the real-drive fields of Identify Controller (NVMe 1.4 Figure 247).
pub(super) fn identify_controller(cfg: &RealDrive, buf: &mut [u8]) {
    buf[88..92].copy_from_slice(&cfg.rtd3e_us.to_le_bytes());
    buf[263] = cfg.npss;
    buf[265] = u8::from(cfg.apsta);
    buf[272..276].copy_from_slice(&cfg.hmpre.to_le_bytes());
    buf[276..280].copy_from_slice(&cfg.hmmin.to_le_bytes());
    buf[332..336].copy_from_slice(&cfg.hmminds.to_le_bytes());
    buf[336..338].copy_from_slice(&cfg.hmmaxd.to_le_bytes());
}

impl State {
    /// A controller reset disables the Host Memory Buffer (§5.21.1.13).
    pub(super) fn real_reset(&mut self) {
        self.real.hmb = None;
    }

    /// CC.EN changed at `now`.
    pub(super) fn real_enable_changed(&mut self, now: u64) {
        self.real.enable_changed_at = Some(now);
    }

    /// CSTS is read at `now`.
    pub(super) fn real_csts_read(&mut self, now: u64) {
        if let Some(at) = self.real.enable_changed_at.take() {
            self.real.ready_check_gaps.push(now - at);
        }
    }

    /// When shutdown processing started at `now` completes (`None`: never).
    pub(super) fn real_shutdown_done_at(&mut self, now: u64, default_ns: u64) -> Option<u64> {
        if self.real.hmb.is_some() {
            self.real.shutdowns_with_hmb += 1;
        }
        if self.cfg.real.never_shuts_down {
            return None;
        }
        let delay = self
            .cfg
            .real
            .shutdown_ms
            .map_or(default_ns, |ms| ms * 1_000_000);
        Some(now + delay)
    }
}

impl Sim {
    /// Panics if memory of the Host Memory Buffer in use went back to the
    /// allocator (the controller would now scribble over someone else's
    /// memory).
    pub(super) fn check_hmb_memory(&self, s: &State) {
        if let Some(chunks) = &s.real.hmb {
            for &(addr, len) in chunks {
                if !self.dma.valid(addr as usize, len) {
                    violation(format!(
                        "Host Memory Buffer chunk {addr:#x} (+{len}) freed while the controller uses it"
                    ));
                }
            }
        }
    }

    /// Set Features, Host Memory Buffer (0Dh): validates the command and
    /// its descriptor list as a drive would.
    pub(super) fn set_host_memory_buffer(&self, s: &mut State, e: &SubmissionEntry) -> Exec {
        let enable = e.cdw[1] & 1 != 0;
        let memory_return = e.cdw[1] & 2 != 0;
        let size_pages = e.cdw[2];
        let list = u64::from(e.cdw[3]) | (u64::from(e.cdw[4]) << 32);
        let entries = e.cdw[5];
        let mut record = HmbCommand {
            enable,
            memory_return,
            size_pages,
            list,
            entries,
            descriptors: Vec::new(),
            status: Status::SUCCESS,
            command_index: s.commands.len(),
        };
        let exec = self.host_memory_buffer(s, &mut record);
        record.status = exec.status;
        s.real.hmb_commands.push(record);
        exec
    }

    fn host_memory_buffer(&self, s: &mut State, r: &mut HmbCommand) -> Exec {
        let cfg = s.cfg.real.clone();
        if cfg.hmpre == 0 {
            return err(0, 0x02);
        }
        if !r.enable {
            s.real.hmb = None;
            return ok(0);
        }
        if s.real.hmb.is_some() {
            return err(0, 0x0C); // Command Sequence Error
        }
        if cfg.refuse_hmb {
            return err(0, 0x02);
        }
        let page = s.page_size() as u64;
        if !r.list.is_multiple_of(16) {
            violation(format!(
                "HMB descriptor list {:#x} not 16-byte aligned",
                r.list
            ));
        }
        if r.entries == 0 || (cfg.hmmaxd != 0 && r.entries > u32::from(cfg.hmmaxd)) {
            return err(0, 0x02);
        }
        if u64::from(r.size_pages) * page < u64::from(cfg.hmmin) * 4096 {
            return err(0, 0x02);
        }
        let mut raw = vec![0u8; r.entries as usize * 16];
        self.read_mem(r.list, &mut raw);
        let mut chunks: Vec<(u64, usize)> = Vec::new();
        let mut total = 0u64;
        for d in raw.chunks(16) {
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let pages = u32::from_le_bytes(d[8..12].try_into().unwrap());
            r.descriptors.push((addr, pages));
            if !addr.is_multiple_of(page) {
                violation(format!(
                    "HMB buffer {addr:#x} not aligned to the page {page}"
                ));
            }
            let bytes = u64::from(pages) * page;
            if pages == 0 || bytes < u64::from(cfg.hmminds) * 4096 {
                return err(0, 0x02);
            }
            if !self.dma.valid(addr as usize, bytes as usize) {
                violation(format!(
                    "HMB buffer {addr:#x} (+{bytes}) outside DMA memory"
                ));
            }
            if chunks
                .iter()
                .any(|&(a, l)| addr < a + l as u64 && a < addr + bytes)
            {
                violation(format!("HMB buffer {addr:#x} overlaps another"));
            }
            chunks.push((addr, bytes as usize));
            total += u64::from(pages);
        }
        if total != u64::from(r.size_pages) {
            violation(format!(
                "HSIZE {} pages but the descriptors add up to {total}",
                r.size_pages
            ));
        }
        s.real.hmb = Some(chunks);
        ok(0)
    }

    /// Set Features, Autonomous Power State Transition (0Ch): the 256-byte
    /// table comes from the data buffer.
    pub(super) fn set_apst(&self, s: &mut State, e: &SubmissionEntry) -> Exec {
        if !s.cfg.real.apsta {
            return err(0, 0x02);
        }
        let raw = self.dma_out(s, e, 256);
        for (i, entry) in s.real.apst_table.iter_mut().enumerate() {
            *entry = u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        }
        s.real.apst_enabled = e.cdw[1] & 1 != 0;
        ok(0)
    }

    /// Get Features, Autonomous Power State Transition (0Ch).
    pub(super) fn get_apst(&self, s: &mut State, e: &SubmissionEntry) -> Exec {
        if !s.cfg.real.apsta {
            return err(0, 0x02);
        }
        let mut raw = vec![0u8; 256];
        for (i, entry) in s.real.apst_table.iter().enumerate() {
            raw[i * 8..i * 8 + 8].copy_from_slice(&entry.to_le_bytes());
        }
        self.dma_in(s, e, &raw);
        ok(u32::from(s.real.apst_enabled))
    }

    /// Every Set Features Host Memory Buffer command received.
    pub fn hmb_commands(&self) -> Vec<HmbCommand> {
        self.lock().real.hmb_commands.clone()
    }
    /// Bytes of Host Memory Buffer in use by the controller now.
    pub fn hmb_bytes_in_use(&self) -> usize {
        self.lock()
            .real
            .hmb
            .as_ref()
            .map_or(0, |c| c.iter().map(|&(_, l)| l).sum())
    }
    /// Times shutdown was requested while a Host Memory Buffer was enabled.
    pub fn shutdowns_with_hmb(&self) -> u32 {
        self.lock().real.shutdowns_with_hmb
    }
    /// For each CC.EN change, nanoseconds until CSTS was next read.
    pub fn ready_check_gaps(&self) -> Vec<u64> {
        self.lock().real.ready_check_gaps.clone()
    }
    /// APST enabled, and its table.
    pub fn apst(&self) -> (bool, [u64; 32]) {
        let s = self.lock();
        (s.real.apst_enabled, s.real.apst_table)
    }
}
