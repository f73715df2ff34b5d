//! Typed controller registers (NVMe 1.4 §3.1, "Register Definition").
//!
//! Offsets are named constants; values are newtypes with named accessors and
//! builders, so no call site shifts or masks bits. Reserved bits are written
//! as zero. 0-based fields (MQES, AQA) are converted to 1-based counts by
//! the accessors; the raw form is available where the spec's number is
//! wanted.

#![forbid(unsafe_code)]

/// Register offsets in BAR0 (§3.1, Figure 78).
pub mod offset {
    /// Controller Capabilities (64 bit).
    pub const CAP: usize = 0x00;
    /// Version.
    pub const VS: usize = 0x08;
    /// Interrupt Mask Set.
    pub const INTMS: usize = 0x0C;
    /// Interrupt Mask Clear.
    pub const INTMC: usize = 0x10;
    /// Controller Configuration.
    pub const CC: usize = 0x14;
    /// Controller Status.
    pub const CSTS: usize = 0x1C;
    /// NVM Subsystem Reset.
    pub const NSSR: usize = 0x20;
    /// Admin Queue Attributes.
    pub const AQA: usize = 0x24;
    /// Admin Submission Queue Base Address (64 bit).
    pub const ASQ: usize = 0x28;
    /// Admin Completion Queue Base Address (64 bit).
    pub const ACQ: usize = 0x30;
    /// First doorbell (SQ 0 Tail Doorbell).
    pub const DOORBELL_BASE: usize = 0x1000;
}

/// One field of a register or a queue entry dword: `width` bits from bit
/// `low`. Each field is declared once, as a constant next to its
/// register, and read and written only through [`Field::get`] and
/// [`Field::set`] (and their 32-bit forms), so no call site shifts or
/// masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Lowest bit.
    pub low: u32,
    /// Number of bits.
    pub width: u32,
}

impl Field {
    /// The field of `width` bits from bit `low` (checked at compile time
    /// where used in constants: it must fit 64 bits).
    pub const fn new(low: u32, width: u32) -> Field {
        assert!(width > 0 && low + width <= u64::BITS);
        Field { low, width }
    }

    /// The mask of the field's width, unshifted.
    pub const fn max(self) -> u64 {
        if self.width == u64::BITS {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        }
    }

    /// The field's value in `v`.
    pub const fn get(self, v: u64) -> u64 {
        (v >> self.low) & self.max()
    }

    /// `v` with the field set to `value` (truncated to the field's width).
    pub const fn set(self, v: u64, value: u64) -> u64 {
        let mask = self.max() << self.low;
        (v & !mask) | ((value << self.low) & mask)
    }

    /// Whether a one-bit field is set in `v`.
    pub const fn is_set(self, v: u64) -> bool {
        self.get(v) != 0
    }

    /// [`Self::get`] for a 32-bit register or dword.
    pub const fn get32(self, v: u32) -> u32 {
        self.get(v as u64) as u32
    }

    /// [`Self::set`] for a 32-bit register or dword.
    pub const fn set32(self, v: u32, value: u32) -> u32 {
        self.set(v as u64, value as u64) as u32
    }

    /// [`Self::is_set`] for a 32-bit register or dword.
    pub const fn is_set32(self, v: u32) -> bool {
        self.is_set(v as u64)
    }
}

/// Fields of CAP (§3.1.1, Figure 79).
pub mod cap {
    use super::Field;
    /// Maximum Queue Entries Supported (0-based).
    pub const MQES: Field = Field::new(0, 16);
    /// Contiguous Queues Required.
    pub const CQR: Field = Field::new(16, 1);
    /// Timeout (500 ms units).
    pub const TO: Field = Field::new(24, 8);
    /// Doorbell Stride.
    pub const DSTRD: Field = Field::new(32, 4);
    /// NVM Subsystem Reset Supported.
    pub const NSSRS: Field = Field::new(36, 1);
    /// Command Sets Supported.
    pub const CSS: Field = Field::new(37, 8);
    /// Memory Page Size Minimum.
    pub const MPSMIN: Field = Field::new(48, 4);
    /// Memory Page Size Maximum.
    pub const MPSMAX: Field = Field::new(52, 4);
    /// CSS bit: the NVM command set.
    pub const CSS_NVM: u8 = 1 << 0;
    /// CSS bit: one or more I/O command sets (NVMe 2.0 §3.1.3.1).
    pub const CSS_IO_COMMAND_SETS: u8 = 1 << 6;
    /// Milliseconds per TO unit.
    pub const TO_UNIT_MS: u64 = 500;
}

/// Fields of VS (§3.1.2, Figure 80).
pub mod vs {
    use super::Field;
    /// Major Version Number.
    pub const MJR: Field = Field::new(16, 16);
    /// Minor Version Number.
    pub const MNR: Field = Field::new(8, 8);
    /// Tertiary Version Number.
    pub const TER: Field = Field::new(0, 8);
}

/// Fields of CC (§3.1.5, Figure 83).
pub mod cc {
    use super::Field;
    /// Enable.
    pub const EN: Field = Field::new(0, 1);
    /// I/O Command Set Selected.
    pub const CSS: Field = Field::new(4, 3);
    /// Memory Page Size.
    pub const MPS: Field = Field::new(7, 4);
    /// Arbitration Mechanism Selected.
    pub const AMS: Field = Field::new(11, 3);
    /// Shutdown Notification.
    pub const SHN: Field = Field::new(14, 2);
    /// I/O Submission Queue Entry Size.
    pub const IOSQES: Field = Field::new(16, 4);
    /// I/O Completion Queue Entry Size.
    pub const IOCQES: Field = Field::new(20, 4);
}

/// Fields of CSTS (§3.1.6, Figure 84).
pub mod csts {
    use super::Field;
    /// Ready.
    pub const RDY: Field = Field::new(0, 1);
    /// Controller Fatal Status.
    pub const CFS: Field = Field::new(1, 1);
    /// Shutdown Status.
    pub const SHST: Field = Field::new(2, 2);
    /// NVM Subsystem Reset Occurred.
    pub const NSSRO: Field = Field::new(4, 1);
    /// Processing Paused.
    pub const PP: Field = Field::new(5, 1);
}

/// Fields of AQA (§3.1.8, Figure 86).
pub mod aqa {
    use super::Field;
    /// Admin Submission Queue Size (0-based).
    pub const ASQS: Field = Field::new(0, 12);
    /// Admin Completion Queue Size (0-based).
    pub const ACQS: Field = Field::new(16, 12);
}

/// Bytes of one doorbell register (and of its shadow).
pub const DOORBELL_BYTES: usize = 4;

/// Doorbells per queue pair: submission tail, then completion head.
const DOORBELLS_PER_QUEUE: usize = 2;

/// Memory page sizes are `2 ^ (12 + n)` bytes (CAP.MPSMIN, CC.MPS).
pub const PAGE_SIZE_SHIFT: u32 = 12;

// The register map of §3.1, Figure 78: offsets and 64-bit registers' sizes.
const _: () = {
    assert!(offset::CAP == 0x00 && offset::VS == offset::CAP + 8);
    assert!(offset::INTMS == 0x0C && offset::INTMC == 0x10);
    assert!(offset::CC == 0x14 && offset::CSTS == 0x1C && offset::NSSR == 0x20);
    assert!(offset::AQA == 0x24 && offset::ASQ == offset::AQA + 4);
    assert!(offset::ACQ == offset::ASQ + 8 && offset::DOORBELL_BASE == 0x1000);
    assert!(cc::IOCQES.low + cc::IOCQES.width <= u32::BITS);
    assert!(csts::PP.low + csts::PP.width <= u32::BITS);
    assert!(aqa::ACQS.low + aqa::ACQS.width <= u32::BITS);
};

/// Controller Capabilities, CAP (§3.1.1, Figure 79).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// Maximum Queue Entries Supported as entries (MQES is 0-based).
    pub const fn mqes(self) -> u32 {
        cap::MQES.get(self.0) as u32 + 1
    }
    /// Contiguous Queues Required.
    pub const fn cqr(self) -> bool {
        cap::CQR.is_set(self.0)
    }
    /// Timeout, in 500 ms units (worst-case time for CSTS.RDY to change).
    pub const fn to(self) -> u8 {
        cap::TO.get(self.0) as u8
    }
    /// Timeout in milliseconds (a reported 0 is treated as one unit).
    pub const fn timeout_ms(self) -> u64 {
        let units = if self.to() == 0 { 1 } else { self.to() as u64 };
        units * cap::TO_UNIT_MS
    }
    /// Doorbell Stride exponent: doorbells are `4 << DSTRD` bytes apart.
    pub const fn dstrd(self) -> u8 {
        cap::DSTRD.get(self.0) as u8
    }
    /// NVM Subsystem Reset Supported.
    pub const fn nssrs(self) -> bool {
        cap::NSSRS.is_set(self.0)
    }
    /// Command Sets Supported (bit 0 = NVM command set).
    pub const fn css(self) -> u8 {
        cap::CSS.get(self.0) as u8
    }
    /// Whether the NVM command set is supported (CSS bit 0).
    pub const fn supports_nvm(self) -> bool {
        self.css() & cap::CSS_NVM != 0
    }
    /// Whether the controller supports one or more I/O command sets and
    /// the Identify I/O Command Set data structures (CSS bit 6, NVMe 2.0
    /// §3.1.3.1): CC.CSS may then select all of them (110b), which
    /// controllers with zoned namespaces require before exposing those.
    pub const fn supports_io_command_sets(self) -> bool {
        self.css() & cap::CSS_IO_COMMAND_SETS != 0
    }
    /// Memory Page Size Minimum exponent (page = 2^(12 + MPSMIN)).
    pub const fn mpsmin(self) -> u8 {
        cap::MPSMIN.get(self.0) as u8
    }
    /// Memory Page Size Maximum exponent.
    pub const fn mpsmax(self) -> u8 {
        cap::MPSMAX.get(self.0) as u8
    }
    /// Minimum memory page size in bytes.
    pub const fn min_page_size(self) -> usize {
        1usize << (PAGE_SIZE_SHIFT + self.mpsmin() as u32)
    }
    /// Maximum memory page size in bytes.
    pub const fn max_page_size(self) -> usize {
        1usize << (PAGE_SIZE_SHIFT + self.mpsmax() as u32)
    }
    /// Whether every bit reads as one (device gone or BAR unmapped).
    pub const fn is_all_ones(self) -> bool {
        self.0 == u64::MAX
    }
}

/// Version, VS (§3.1.2, Figure 80).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32);

impl Version {
    /// Major Version Number.
    pub const fn major(self) -> u16 {
        vs::MJR.get32(self.0) as u16
    }
    /// Minor Version Number.
    pub const fn minor(self) -> u8 {
        vs::MNR.get32(self.0) as u8
    }
    /// Tertiary Version Number.
    pub const fn tertiary(self) -> u8 {
        vs::TER.get32(self.0) as u8
    }
    /// Builds a version value.
    pub const fn new(major: u16, minor: u8, tertiary: u8) -> Version {
        Version(vs::TER.set32(
            vs::MNR.set32(vs::MJR.set32(0, major as u32), minor as u32),
            tertiary as u32,
        ))
    }
}

/// Shutdown Notification, CC.SHN (§3.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownNotification {
    /// No notification; no effect.
    None,
    /// Normal shutdown notification.
    Normal,
    /// Abrupt shutdown notification.
    Abrupt,
}

/// I/O command set selected in CC.CSS (§3.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandSet {
    /// NVM Command Set (000b).
    Nvm,
    /// All supported I/O command sets (110b; NVMe 2.0 §3.1.3.5), allowed
    /// only when CAP.CSS bit 6 is set.
    AllSupported,
    /// Admin Command Set only (111b).
    AdminOnly,
}

impl CommandSet {
    /// What bring-up selects for a controller with capabilities `cap`:
    /// every supported I/O command set where CAP.CSS allows it (so zoned
    /// namespaces are exposed), the NVM command set otherwise.
    pub const fn for_capabilities(cap: Cap) -> CommandSet {
        if cap.supports_io_command_sets() {
            CommandSet::AllSupported
        } else {
            CommandSet::Nvm
        }
    }
}

/// Controller Configuration, CC (§3.1.5, Figure 83).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cc(pub u32);

impl Cc {
    /// All fields zero (disabled).
    pub const fn new() -> Cc {
        Cc(0)
    }
    /// Enable (EN).
    pub const fn enabled(self) -> bool {
        cc::EN.is_set32(self.0)
    }
    /// Sets EN.
    pub const fn with_enable(self, en: bool) -> Cc {
        Cc(cc::EN.set32(self.0, en as u32))
    }
    /// I/O Command Set Selected (CSS).
    pub const fn css(self) -> u8 {
        cc::CSS.get32(self.0) as u8
    }
    /// Sets CSS.
    pub const fn with_command_set(self, set: CommandSet) -> Cc {
        let v = match set {
            CommandSet::Nvm => 0,
            CommandSet::AllSupported => 6,
            CommandSet::AdminOnly => 7,
        };
        Cc(cc::CSS.set32(self.0, v))
    }
    /// Memory Page Size exponent (page = 2^(12 + MPS)).
    pub const fn mps(self) -> u8 {
        cc::MPS.get32(self.0) as u8
    }
    /// Sets MPS.
    pub const fn with_mps(self, mps: u8) -> Cc {
        Cc(cc::MPS.set32(self.0, mps as u32))
    }
    /// Arbitration Mechanism Selected (0 = round robin).
    pub const fn ams(self) -> u8 {
        cc::AMS.get32(self.0) as u8
    }
    /// Shutdown Notification.
    pub const fn shn(self) -> ShutdownNotification {
        match cc::SHN.get32(self.0) {
            0 => ShutdownNotification::None,
            1 => ShutdownNotification::Normal,
            _ => ShutdownNotification::Abrupt,
        }
    }
    /// Sets SHN.
    pub const fn with_shutdown(self, shn: ShutdownNotification) -> Cc {
        let v = match shn {
            ShutdownNotification::None => 0,
            ShutdownNotification::Normal => 1,
            ShutdownNotification::Abrupt => 2,
        };
        Cc(cc::SHN.set32(self.0, v))
    }
    /// I/O Submission Queue Entry Size exponent (2^n bytes).
    pub const fn iosqes(self) -> u8 {
        cc::IOSQES.get32(self.0) as u8
    }
    /// Sets IOSQES.
    pub const fn with_iosqes(self, exp: u8) -> Cc {
        Cc(cc::IOSQES.set32(self.0, exp as u32))
    }
    /// I/O Completion Queue Entry Size exponent.
    pub const fn iocqes(self) -> u8 {
        cc::IOCQES.get32(self.0) as u8
    }
    /// Sets IOCQES.
    pub const fn with_iocqes(self, exp: u8) -> Cc {
        Cc(cc::IOCQES.set32(self.0, exp as u32))
    }
}

/// Shutdown Status, CSTS.SHST (§3.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownStatus {
    /// Normal operation.
    Normal,
    /// Shutdown processing occurring.
    Occurring,
    /// Shutdown processing complete.
    Complete,
    /// Reserved value 11b.
    Reserved,
}

/// Controller Status, CSTS (§3.1.6, Figure 84).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Csts(pub u32);

impl Csts {
    /// Ready.
    pub const fn rdy(self) -> bool {
        csts::RDY.is_set32(self.0)
    }
    /// Controller Fatal Status.
    pub const fn cfs(self) -> bool {
        csts::CFS.is_set32(self.0)
    }
    /// Shutdown Status.
    pub const fn shst(self) -> ShutdownStatus {
        match csts::SHST.get32(self.0) {
            0 => ShutdownStatus::Normal,
            1 => ShutdownStatus::Occurring,
            2 => ShutdownStatus::Complete,
            _ => ShutdownStatus::Reserved,
        }
    }
    /// NVM Subsystem Reset Occurred.
    pub const fn nssro(self) -> bool {
        csts::NSSRO.is_set32(self.0)
    }
    /// Processing Paused.
    pub const fn pp(self) -> bool {
        csts::PP.is_set32(self.0)
    }
    /// Whether the register read as all ones (device gone).
    pub const fn is_all_ones(self) -> bool {
        self.0 == u32::MAX
    }
    /// Builds a value (for simulated devices).
    pub const fn new(rdy: bool, cfs: bool, shst: ShutdownStatus) -> Csts {
        let s = match shst {
            ShutdownStatus::Normal => 0,
            ShutdownStatus::Occurring => 1,
            ShutdownStatus::Complete => 2,
            ShutdownStatus::Reserved => 3,
        };
        Csts(csts::SHST.set32(
            csts::CFS.set32(csts::RDY.set32(0, rdy as u32), cfs as u32),
            s,
        ))
    }
}

/// Admin Queue Attributes, AQA (§3.1.8, Figure 86); sizes are 0-based in
/// the register and 1-based here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aqa(pub u32);

impl Aqa {
    /// Largest admin queue the register can express (4096 entries).
    pub const MAX_ENTRIES: u32 = 4096;

    /// Admin submission and completion queue sizes in entries (2..=4096).
    pub const fn new(submission_entries: u32, completion_entries: u32) -> Aqa {
        let sq = submission_entries.saturating_sub(1);
        let cq = completion_entries.saturating_sub(1);
        Aqa(aqa::ACQS.set32(aqa::ASQS.set32(0, sq), cq))
    }
    /// Admin Submission Queue Size in entries.
    pub const fn submission_entries(self) -> u32 {
        aqa::ASQS.get32(self.0) + 1
    }
    /// Admin Completion Queue Size in entries.
    pub const fn completion_entries(self) -> u32 {
        aqa::ACQS.get32(self.0) + 1
    }
}

/// Doorbell register offsets for a given CAP.DSTRD (§3.1.24, §3.1.25):
/// SQ y tail at `0x1000 + (2y) * (4 << DSTRD)`, CQ y head at
/// `0x1000 + (2y + 1) * (4 << DSTRD)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbells {
    stride: usize,
}

impl Doorbells {
    /// Doorbell layout for the controller's capabilities.
    pub const fn new(cap: Cap) -> Doorbells {
        Doorbells {
            stride: DOORBELL_BYTES << cap.dstrd(),
        }
    }
    /// Distance between doorbells in bytes.
    pub const fn stride(self) -> usize {
        self.stride
    }
    /// Offset of Submission Queue `qid` Tail Doorbell.
    pub const fn submission_tail(self, qid: u16) -> usize {
        offset::DOORBELL_BASE + (DOORBELLS_PER_QUEUE * qid as usize) * self.stride
    }
    /// Offset of Completion Queue `qid` Head Doorbell.
    pub const fn completion_head(self, qid: u16) -> usize {
        offset::DOORBELL_BASE + (DOORBELLS_PER_QUEUE * qid as usize + 1) * self.stride
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields() {
        // MQES 63, CQR, TO 20, DSTRD 2, CSS NVM, MPSMIN 1, MPSMAX 4.
        let cap = Cap(63 | (1 << 16) | (20 << 24) | (2 << 32) | (1 << 37) | (1 << 48) | (4 << 52));
        assert_eq!(cap.mqes(), 64);
        assert!(cap.cqr());
        assert_eq!(cap.timeout_ms(), 10_000);
        assert_eq!(cap.dstrd(), 2);
        assert!(cap.supports_nvm());
        assert_eq!(cap.min_page_size(), 8192);
        assert_eq!(cap.max_page_size(), 65536);
        let db = Doorbells::new(cap);
        assert_eq!(db.submission_tail(0), 0x1000);
        assert_eq!(db.completion_head(0), 0x1010);
        assert_eq!(db.submission_tail(1), 0x1020);
    }

    #[test]
    fn cc_builders() {
        let cc = Cc::new()
            .with_command_set(CommandSet::Nvm)
            .with_mps(0)
            .with_iosqes(6)
            .with_iocqes(4)
            .with_enable(true);
        assert_eq!(cc.0, 0x0046_0001);
        let s = cc.with_shutdown(ShutdownNotification::Normal);
        assert_eq!(s.shn(), ShutdownNotification::Normal);
        assert_eq!(s.0 & 0xC000, 0x4000);
        assert!(!s.with_enable(false).enabled());
    }

    #[test]
    fn csts_and_aqa() {
        let c = Csts::new(true, false, ShutdownStatus::Complete);
        assert!(c.rdy() && !c.cfs());
        assert_eq!(c.shst(), ShutdownStatus::Complete);
        assert!(Csts(u32::MAX).is_all_ones());
        let a = Aqa::new(32, 64);
        assert_eq!(a.0, 31 | (63 << 16));
        assert_eq!((a.submission_entries(), a.completion_entries()), (32, 64));
    }
}
