//! Submission and completion queue entries and opcodes.
//!
//! A submission entry is 64 bytes (NVMe 1.4 §4.2, Figure 104), a completion
//! entry 16 bytes (§4.6, Figure 123). Commands are built with named
//! constructors (`SubmissionEntry::read(..)`), never by poking dwords at call
//! sites. The command identifier is filled in by the queue at submission
//! time. The status of a completion (its code type, code and name) is in
//! `status`, re-exported here.

#![forbid(unsafe_code)]

pub use crate::status::{Status, StatusCodeType, generic, media};

use crate::registers::Field;

/// Dword positions in a 64-byte submission entry (§4.2, Figure 105).
pub mod dword {
    /// Command Dword 0: opcode, fused operation, PSDT, command identifier.
    pub const CDW0: usize = 0;
    /// Namespace Identifier.
    pub const NSID: usize = 1;
    /// PRP Entry 1 (two dwords, low first).
    pub const PRP1: usize = 6;
    /// PRP Entry 2 (two dwords, low first).
    pub const PRP2: usize = 8;
    /// Command Dword 10, the first command-specific dword.
    pub const CDW10: usize = 10;
    /// Dwords in an entry.
    pub const COUNT: usize = 16;
}

/// Indexes into [`SubmissionEntry::cdw`] (command dwords 10 to 15).
pub mod cdw {
    /// Command Dword 10.
    pub const CDW10: usize = 0;
    /// Command Dword 11.
    pub const CDW11: usize = 1;
    /// Command Dword 12.
    pub const CDW12: usize = 2;
    /// Command Dword 13.
    pub const CDW13: usize = 3;
    /// Command Dword 14.
    pub const CDW14: usize = 4;
    /// Command Dword 15.
    pub const CDW15: usize = 5;
    /// Command dwords 10 to 15.
    pub const COUNT: usize = 6;
}

/// Fields of submission and completion entry dwords, each declared once
/// (NVMe 1.4 §4.2, §4.6 and the commands' sections).
pub mod field {
    use super::Field;
    /// CDW0: Opcode.
    pub const OPCODE: Field = Field::new(0, 8);
    /// CDW0: Command Identifier.
    pub const CID: Field = Field::new(16, 16);
    /// Create/Delete queue CDW10: Queue Identifier (§5.3, §5.4).
    pub const QID: Field = Field::new(0, 16);
    /// Create queue CDW10: Queue Size (0-based).
    pub const QSIZE: Field = Field::new(16, 16);
    /// Create queue CDW11: Physically Contiguous.
    pub const PC: Field = Field::new(0, 1);
    /// Create I/O Submission Queue CDW11: Completion Queue Identifier.
    pub const CQID: Field = Field::new(16, 16);
    /// Identify CDW11: Command Set Identifier (NVMe 2.0 §5.17.1).
    pub const CSI: Field = Field::new(24, 8);
    /// Number of Queues: Submission Queues Requested/Allocated (0-based).
    pub const NSQ: Field = Field::new(0, 16);
    /// Number of Queues: Completion Queues Requested/Allocated (0-based).
    pub const NCQ: Field = Field::new(16, 16);
    /// Get Log Page CDW10: Log Page Identifier (§5.14).
    pub const LID: Field = Field::new(0, 8);
    /// Get Log Page CDW10: Number of Dwords Lower (0-based).
    pub const NUMDL: Field = Field::new(16, 16);
    /// Get Log Page CDW11: Number of Dwords Upper.
    pub const NUMDU: Field = Field::new(0, 16);
    /// The part of a 0-based dword count that NUMDL holds.
    pub const NUMD_LOWER: Field = Field::new(0, 16);
    /// The part of a 0-based dword count that NUMDU holds.
    pub const NUMD_UPPER: Field = Field::new(16, 16);
    /// Abort CDW10: Submission Queue Identifier (§5.1).
    pub const ABORT_SQID: Field = Field::new(0, 16);
    /// Abort CDW10: Command Identifier.
    pub const ABORT_CID: Field = Field::new(16, 16);
    /// Abort completion dword 0: command not aborted.
    pub const ABORT_NOT_ABORTED: Field = Field::new(0, 1);
    /// Read/Write/Write Zeroes CDW12: Number of Logical Blocks (0-based).
    pub const NLB: Field = Field::new(0, 16);
    /// Read/Write CDW12: Force Unit Access.
    pub const FUA: Field = Field::new(30, 1);
    /// Dataset Management CDW10: Number of Ranges (0-based, §6.7).
    pub const NR: Field = Field::new(0, 8);
    /// Dataset Management CDW11: Attribute - Deallocate.
    pub const AD: Field = Field::new(2, 1);
    /// Volatile Write Cache feature: Volatile Write Cache Enable (§5.21.1.6).
    pub const WCE: Field = Field::new(0, 1);
    /// Completion dword 2: SQ Head Pointer.
    pub const SQHD: Field = Field::new(0, 16);
    /// Completion dword 2: SQ Identifier.
    pub const SQID: Field = Field::new(16, 16);
    /// Completion dword 3: Command Identifier.
    pub const CQE_CID: Field = Field::new(0, 16);
    /// Completion dword 3: Phase Tag.
    pub const PHASE: Field = Field::new(16, 1);
    /// Completion dword 3: Status Field.
    pub const STATUS: Field = Field::new(17, 15);
}

/// The low dword of a 64-bit value.
const fn low(v: u64) -> u32 {
    v as u32
}

/// The high dword of a 64-bit value.
const fn high(v: u64) -> u32 {
    (v >> u32::BITS) as u32
}

/// Two dwords as a 64-bit value, low first.
const fn join(low: u32, high: u32) -> u64 {
    low as u64 | ((high as u64) << u32::BITS)
}

/// Bytes per dword: Get Log Page counts its transfer in dwords.
pub const DWORD_BYTES: usize = 4;

/// Controller memory page size the driver prefers (CC.MPS = 0), where
/// CAP.MPSMIN..MPSMAX allows it.
pub const PREFERRED_PAGE_SIZE: usize = 4096;

/// Largest I/O queue a controller can create (QSIZE is 16 bits, 0-based).
pub const MAX_QUEUE_ENTRIES: u32 = 1 << 16;

/// Most I/O queue pairs that can be requested: Number of Queues is 0-based
/// and 65535 (FFFFh) is reserved (§5.21.1.7).
pub const MAX_IO_QUEUE_PAIRS: u16 = 0xFFFE;

/// Smallest ring: one entry in flight and the one a full ring leaves free.
pub const MIN_QUEUE_ENTRIES: u32 = 2;

/// NSID that names every namespace (global scope, §4.5).
pub const NSID_ALL: u32 = u32::MAX;

/// Admin command opcodes (NVMe 1.4 §5, Figure 139).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)] // Names are the specification's.
pub enum AdminOpcode {
    DeleteIoSubmissionQueue = 0x00,
    CreateIoSubmissionQueue = 0x01,
    GetLogPage = 0x02,
    DeleteIoCompletionQueue = 0x04,
    CreateIoCompletionQueue = 0x05,
    Identify = 0x06,
    Abort = 0x08,
    SetFeatures = 0x09,
    GetFeatures = 0x0A,
    DoorbellBufferConfig = 0x7C,
}

/// NVM command set I/O opcodes (NVMe 1.4 §6, Figure 346).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)] // Names are the specification's.
pub enum NvmOpcode {
    Flush = 0x00,
    Write = 0x01,
    Read = 0x02,
    WriteZeroes = 0x08,
    DatasetManagement = 0x09,
}

/// Identify Controller or Namespace Structure values (CNS, §5.15.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IdentifyCns {
    /// Identify Namespace data structure for the NSID.
    Namespace = 0x00,
    /// Identify Controller data structure.
    Controller = 0x01,
    /// Active Namespace ID list (NSIDs greater than the given NSID).
    ActiveNamespaceList = 0x02,
    /// Namespace Identification Descriptor list (NVMe 1.3+; the Command
    /// Set Identifier descriptor from NVMe 2.0).
    NamespaceDescriptors = 0x03,
    /// I/O Command Set specific Identify Namespace (CSI in CDW11).
    CommandSetNamespace = 0x05,
    /// I/O Command Set specific Identify Controller (CSI in CDW11).
    CommandSetController = 0x06,
}

/// Feature identifiers used by the driver (§5.21.1, Figure 271).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FeatureId {
    /// Volatile Write Cache (§5.21.1.6).
    VolatileWriteCache = 0x06,
    /// Number of Queues (§5.21.1.7).
    NumberOfQueues = 0x07,
    /// Autonomous Power State Transition (§5.21.1.12).
    AutonomousPowerStateTransition = 0x0C,
    /// Host Memory Buffer (§5.21.1.13).
    HostMemoryBuffer = 0x0D,
}

/// Log page identifiers used by the driver (§5.14.1, Figure 191).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LogPageId {
    /// Error Information (§5.14.1.1).
    ErrorInformation = 0x01,
    /// SMART / Health Information (§5.14.1.2).
    SmartHealth = 0x02,
}

/// Most logical blocks one Read, Write or Write Zeroes command names (NLB
/// is a 16-bit, 0-based field).
pub const MAX_BLOCKS_PER_COMMAND: u64 = 1 << 16;

/// A 64-byte submission queue entry (§4.2). The command identifier lives
/// outside (assigned by the queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubmissionEntry {
    /// Opcode (CDW0 bits 7:0).
    pub opcode: u8,
    /// Namespace identifier (dword 1).
    pub nsid: u32,
    /// PRP entry 1 (dwords 6-7).
    pub prp1: u64,
    /// PRP entry 2 (dwords 8-9).
    pub prp2: u64,
    /// Command dwords 10 to 15.
    pub cdw: [u32; cdw::COUNT],
}

impl SubmissionEntry {
    /// Size in bytes (IOSQES = 6).
    pub const SIZE: usize = 64;

    const fn with_opcode(opcode: u8) -> SubmissionEntry {
        SubmissionEntry {
            opcode,
            nsid: 0,
            prp1: 0,
            prp2: 0,
            cdw: [0; cdw::COUNT],
        }
    }

    /// Sets the data pointer (PRP1, PRP2).
    pub const fn with_prps(mut self, prp1: u64, prp2: u64) -> SubmissionEntry {
        self.prp1 = prp1;
        self.prp2 = prp2;
        self
    }

    /// Identify (§5.15): `cns` for `nsid`, data into the page at PRP1.
    pub const fn identify(cns: IdentifyCns, nsid: u32) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::Identify as u8);
        e.nsid = nsid;
        e.cdw[cdw::CDW10] = cns as u32;
        e
    }

    /// Sets the Command Set Identifier of an Identify command (CDW11 bits
    /// 31:24, NVMe 2.0 §5.17.1).
    pub const fn with_command_set_identifier(mut self, csi: u8) -> SubmissionEntry {
        self.cdw[cdw::CDW11] = field::CSI.set32(self.cdw[cdw::CDW11], csi as u32);
        self
    }

    /// Set Features (§5.21) with CDW11 `value`.
    pub const fn set_features(fid: FeatureId, value: u32) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::SetFeatures as u8);
        e.cdw[cdw::CDW10] = fid as u32;
        e.cdw[cdw::CDW11] = value;
        e
    }

    /// Get Features (§5.9), current value (SEL = 0).
    pub const fn get_features(fid: FeatureId) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::GetFeatures as u8);
        e.cdw[cdw::CDW10] = fid as u32;
        e
    }

    /// Number of Queues value (§5.21.1.7): counts are 1-based here and
    /// encoded 0-based.
    pub const fn number_of_queues(submission: u16, completion: u16) -> u32 {
        let nsq = field::NSQ.set32(0, submission.saturating_sub(1) as u32);
        field::NCQ.set32(nsq, completion.saturating_sub(1) as u32)
    }

    /// Create I/O Completion Queue (§5.3), physically contiguous, interrupts
    /// disabled (PC = 1, IEN = 0). `entries` is 1-based.
    pub const fn create_io_completion_queue(qid: u16, entries: u32, base: u64) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::CreateIoCompletionQueue as u8);
        e.prp1 = base;
        e.cdw[cdw::CDW10] = Self::queue_dword(qid, entries);
        // IEN = 0, IV = 0.
        e.cdw[cdw::CDW11] = field::PC.set32(0, 1);
        e
    }

    /// Create I/O Submission Queue (§5.4), physically contiguous, bound to
    /// completion queue `cqid`, medium priority ignored under round robin.
    pub const fn create_io_submission_queue(
        qid: u16,
        entries: u32,
        base: u64,
        cqid: u16,
    ) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::CreateIoSubmissionQueue as u8);
        e.prp1 = base;
        e.cdw[cdw::CDW10] = Self::queue_dword(qid, entries);
        e.cdw[cdw::CDW11] = field::CQID.set32(field::PC.set32(0, 1), cqid as u32);
        e
    }

    /// CDW10 of the queue commands: QID and the 0-based QSIZE.
    const fn queue_dword(qid: u16, entries: u32) -> u32 {
        field::QSIZE.set32(field::QID.set32(0, qid as u32), entries.saturating_sub(1))
    }

    /// Delete I/O Submission Queue (§5.7).
    pub const fn delete_io_submission_queue(qid: u16) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::DeleteIoSubmissionQueue as u8);
        e.cdw[cdw::CDW10] = field::QID.set32(0, qid as u32);
        e
    }

    /// Delete I/O Completion Queue (§5.6).
    pub const fn delete_io_completion_queue(qid: u16) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::DeleteIoCompletionQueue as u8);
        e.cdw[cdw::CDW10] = field::QID.set32(0, qid as u32);
        e
    }

    /// Get Log Page (§5.14): `dwords` (1-based) of log `lid` from byte
    /// `offset`, global scope (NSID all-ones).
    pub const fn get_log_page(lid: LogPageId, dwords: u32, offset: u64) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::GetLogPage as u8);
        e.nsid = NSID_ALL;
        let numd = dwords.saturating_sub(1);
        e.cdw[cdw::CDW10] = field::NUMDL.set32(
            field::LID.set32(0, lid as u32),
            field::NUMD_LOWER.get32(numd),
        );
        e.cdw[cdw::CDW11] = field::NUMDU.set32(0, field::NUMD_UPPER.get32(numd));
        e.cdw[cdw::CDW12] = low(offset);
        e.cdw[cdw::CDW13] = high(offset);
        e
    }

    /// Doorbell Buffer Config (NVMe 1.4 §5.7): PRP1 is the page of shadow
    /// doorbells, PRP2 the page of EventIdx values (both page aligned).
    pub const fn doorbell_buffer_config(doorbells: u64, event_indexes: u64) -> SubmissionEntry {
        Self::with_opcode(AdminOpcode::DoorbellBufferConfig as u8)
            .with_prps(doorbells, event_indexes)
    }

    /// Abort (§5.1) the command `cid` on submission queue `sqid`.
    pub const fn abort(sqid: u16, cid: u16) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::Abort as u8);
        e.cdw[cdw::CDW10] =
            field::ABORT_CID.set32(field::ABORT_SQID.set32(0, sqid as u32), cid as u32);
        e
    }

    const fn rw(op: NvmOpcode, nsid: u32, lba: u64, blocks: u32, fua: bool) -> SubmissionEntry {
        let mut e = Self::with_opcode(op as u8);
        e.nsid = nsid;
        e.cdw[cdw::CDW10] = low(lba);
        e.cdw[cdw::CDW11] = high(lba);
        e.cdw[cdw::CDW12] =
            field::FUA.set32(field::NLB.set32(0, blocks.saturating_sub(1)), fua as u32);
        e
    }

    /// Read (§6.9): `blocks` (1..=65536) from `lba`.
    pub const fn read(nsid: u32, lba: u64, blocks: u32) -> SubmissionEntry {
        Self::rw(NvmOpcode::Read, nsid, lba, blocks, false)
    }

    /// Write (§6.15), optionally Force Unit Access.
    pub const fn write(nsid: u32, lba: u64, blocks: u32, fua: bool) -> SubmissionEntry {
        Self::rw(NvmOpcode::Write, nsid, lba, blocks, fua)
    }

    /// Write Zeroes (§6.16): `blocks` (1..=65536) from `lba`.
    pub const fn write_zeroes(nsid: u32, lba: u64, blocks: u32) -> SubmissionEntry {
        Self::rw(NvmOpcode::WriteZeroes, nsid, lba, blocks, false)
    }

    /// Flush (§6.8).
    pub const fn flush(nsid: u32) -> SubmissionEntry {
        let mut e = Self::with_opcode(NvmOpcode::Flush as u8);
        e.nsid = nsid;
        e
    }

    /// Dataset Management (§6.7) with the Deallocate attribute over `ranges`
    /// (1..=256) range entries at PRP1.
    pub const fn deallocate(nsid: u32, ranges: u32) -> SubmissionEntry {
        let mut e = Self::with_opcode(NvmOpcode::DatasetManagement as u8);
        e.nsid = nsid;
        e.cdw[cdw::CDW10] = field::NR.set32(0, ranges.saturating_sub(1));
        e.cdw[cdw::CDW11] = field::AD.set32(0, 1);
        e
    }

    /// The queue counts granted in a Number of Queues completion (dword 0),
    /// 1-based: (submission, completion).
    pub const fn queues_granted(dw0: u32) -> (u16, u16) {
        (
            (field::NSQ.get32(dw0) as u16).saturating_add(1),
            (field::NCQ.get32(dw0) as u16).saturating_add(1),
        )
    }

    /// Whether the command changes a namespace's contents (Write, Write
    /// Zeroes, Dataset Management).
    pub const fn writes(&self) -> bool {
        self.opcode == NvmOpcode::Write as u8
            || self.opcode == NvmOpcode::WriteZeroes as u8
            || self.opcode == NvmOpcode::DatasetManagement as u8
    }

    /// The 16 dwords as placed in the queue, with command identifier `cid`
    /// (CDW0: opcode 7:0, FUSE 9:8 = 0, PSDT 15:14 = 0 (PRPs), CID 31:16).
    pub const fn to_dwords(&self, cid: u16) -> [u32; dword::COUNT] {
        let mut d = [0u32; dword::COUNT];
        d[dword::CDW0] = field::CID.set32(field::OPCODE.set32(0, self.opcode as u32), cid as u32);
        d[dword::NSID] = self.nsid;
        d[dword::PRP1] = low(self.prp1);
        d[dword::PRP1 + 1] = high(self.prp1);
        d[dword::PRP2] = low(self.prp2);
        d[dword::PRP2 + 1] = high(self.prp2);
        let mut i = 0;
        while i < cdw::COUNT {
            d[dword::CDW10 + i] = self.cdw[i];
            i += 1;
        }
        d
    }

    /// [`Self::to_dwords`] in pairs, low dword first: the entry as eight
    /// qwords, for writing it in half the stores.
    #[inline]
    pub const fn to_qwords(&self, cid: u16) -> [u64; dword::COUNT / 2] {
        let d = self.to_dwords(cid);
        let mut q = [0u64; dword::COUNT / 2];
        let mut i = 0;
        while i < q.len() {
            q[i] = join(d[2 * i], d[2 * i + 1]);
            i += 1;
        }
        q
    }

    /// Parses the 16 dwords of an entry (inverse of [`Self::to_dwords`]);
    /// returns the entry and its command identifier.
    pub const fn from_dwords(d: &[u32; dword::COUNT]) -> (SubmissionEntry, u16) {
        let mut cdw = [0u32; cdw::COUNT];
        let mut i = 0;
        while i < cdw::COUNT {
            cdw[i] = d[dword::CDW10 + i];
            i += 1;
        }
        (
            SubmissionEntry {
                opcode: field::OPCODE.get32(d[dword::CDW0]) as u8,
                nsid: d[dword::NSID],
                prp1: join(d[dword::PRP1], d[dword::PRP1 + 1]),
                prp2: join(d[dword::PRP2], d[dword::PRP2 + 1]),
                cdw,
            },
            field::CID.get32(d[dword::CDW0]) as u16,
        )
    }
}

// Figure 105: CDW0 and NSID first, PRP1 at byte 24, PRP2 at 32, CDW10 at
// 40, 64 bytes in all; a completion entry is 16 bytes (Figure 123).
const _: () = {
    assert!(dword::COUNT * 4 == SubmissionEntry::SIZE && SubmissionEntry::SIZE == 64);
    assert!(dword::PRP1 * 4 == 24 && dword::PRP2 * 4 == 32 && dword::CDW10 * 4 == 40);
    assert!(dword::CDW10 + cdw::COUNT == dword::COUNT);
    assert!(CompletionEntry::DWORDS * 4 == CompletionEntry::SIZE && CompletionEntry::SIZE == 16);
    assert!(field::STATUS.low + field::STATUS.width == u32::BITS);
    assert!(DsmRange::SIZE == 16 && DsmRange::STARTING_LBA + 8 == DsmRange::SIZE);
};

/// One range of a Dataset Management command (§6.7, Figure 364): 16 bytes,
/// context attributes (dword 0, left zero), length in logical blocks (dword
/// 1), starting LBA (dwords 2-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DsmRange {
    /// Starting LBA.
    pub lba: u64,
    /// Length in logical blocks.
    pub blocks: u32,
}

impl DsmRange {
    /// Bytes per range.
    pub const SIZE: usize = 16;
    /// Byte offset of the length.
    const LENGTH: usize = 4;
    /// Byte offset of the starting LBA.
    const STARTING_LBA: usize = 8;

    /// A range of `blocks` blocks from `lba`.
    pub const fn new(lba: u64, blocks: u32) -> DsmRange {
        DsmRange { lba, blocks }
    }

    /// The range as the controller reads it.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0u8; Self::SIZE];
        bytes[Self::LENGTH..Self::STARTING_LBA].copy_from_slice(&self.blocks.to_le_bytes());
        bytes[Self::STARTING_LBA..].copy_from_slice(&self.lba.to_le_bytes());
        bytes
    }
}

/// A 16-byte completion queue entry (§4.6, Figure 123).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletionEntry {
    /// Dword 0, command specific.
    pub dw0: u32,
    /// Dword 1, command specific (reserved for most commands).
    pub dw1: u32,
    /// SQ Head Pointer.
    pub sq_head: u16,
    /// SQ Identifier.
    pub sq_id: u16,
    /// Command Identifier.
    pub cid: u16,
    /// Phase Tag.
    pub phase: bool,
    /// Status Field.
    pub status: Status,
}

impl CompletionEntry {
    /// Size in bytes (IOCQES = 4).
    pub const SIZE: usize = 16;
    /// Dwords in an entry.
    pub const DWORDS: usize = 4;
    /// Index of the dword holding the phase tag and the status.
    pub const STATUS_DWORD: usize = 3;

    /// The phase tag in dword 3: the one place it is decoded.
    pub const fn phase_of(dw3: u32) -> bool {
        field::PHASE.is_set32(dw3)
    }

    /// The phase tag's bit in dword 3, in place: a queue compares it with
    /// the bit its new entries carry, without shifting it down.
    pub const PHASE_BIT: u32 = field::PHASE.set32(0, 1);

    /// Decodes the four dwords.
    pub const fn from_dwords(d: [u32; 4]) -> CompletionEntry {
        CompletionEntry {
            dw0: d[0],
            dw1: d[1],
            sq_head: field::SQHD.get32(d[2]) as u16,
            sq_id: field::SQID.get32(d[2]) as u16,
            cid: field::CQE_CID.get32(d[3]) as u16,
            phase: Self::phase_of(d[3]),
            status: Status::from_field(field::STATUS.get32(d[3]) as u16),
        }
    }

    /// The status in dword 3 as a result: success is read from the status
    /// bits directly, the [`Status`] decoded only for an error.
    #[inline]
    pub const fn outcome_of(dw3: u32) -> Result<(), Status> {
        let status = field::STATUS.get32(dw3) as u16;
        if Status::field_is_success(status) {
            Ok(())
        } else {
            Err(Status::from_field(status))
        }
    }

    /// The Command Identifier in dword 3.
    #[inline]
    pub const fn cid_of(dw3: u32) -> u16 {
        field::CQE_CID.get32(dw3) as u16
    }

    /// The SQ Head Pointer and SQ Identifier in dword 2.
    #[inline]
    pub const fn sq_of(dw2: u32) -> (u16, u16) {
        (field::SQHD.get32(dw2) as u16, field::SQID.get32(dw2) as u16)
    }

    /// Encodes the four dwords (for simulated devices).
    pub const fn to_dwords(&self) -> [u32; 4] {
        [
            self.dw0,
            self.dw1,
            field::SQID.set32(field::SQHD.set32(0, self.sq_head as u32), self.sq_id as u32),
            field::STATUS.set32(
                field::PHASE.set32(field::CQE_CID.set32(0, self.cid as u32), self.phase as u32),
                self.status.to_field() as u32,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip() {
        let s = Status {
            sct: 2,
            sc: 0x81,
            dnr: true,
            more: true,
            crd: 2,
        };
        assert_eq!(Status::from_field(s.to_field()), s);
        assert_eq!(s.name(), "Unrecovered Read Error");
        assert_eq!(Status::new(0, 0x80).name(), "LBA Out of Range");
        assert!(!s.is_success());
    }

    #[test]
    fn completion_round_trip() {
        let c = CompletionEntry {
            dw0: 7,
            dw1: 0,
            sq_head: 9,
            sq_id: 3,
            cid: 0xBEEF,
            phase: true,
            status: Status::new(1, 2),
        };
        assert_eq!(CompletionEntry::from_dwords(c.to_dwords()), c);
        let d = c.to_dwords();
        assert_eq!(CompletionEntry::outcome_of(d[3]), Err(Status::new(1, 2)));
        assert_eq!(CompletionEntry::cid_of(d[3]), 0xBEEF);
        assert_eq!(CompletionEntry::sq_of(d[2]), (9, 3));
        // Do Not Retry and More alone do not make a failure.
        let quiet = CompletionEntry {
            status: Status {
                dnr: true,
                more: true,
                crd: 3,
                ..Status::SUCCESS
            },
            ..c
        };
        assert_eq!(CompletionEntry::outcome_of(quiet.to_dwords()[3]), Ok(()));
        for (sct, sc) in [(0, 1), (1, 0), (7, 0xFF)] {
            let failed = CompletionEntry {
                status: Status::new(sct, sc),
                ..c
            };
            assert!(CompletionEntry::outcome_of(failed.to_dwords()[3]).is_err());
        }
    }

    #[test]
    fn read_command_layout() {
        let e = SubmissionEntry::write(5, 0x1_0000_0002, 8, true).with_prps(0x1000, 0x2000);
        let d = e.to_dwords(0x42);
        assert_eq!(d[0], 0x0042_0001);
        assert_eq!(d[1], 5);
        assert_eq!((d[10], d[11]), (2, 1));
        assert_eq!(d[12], 7 | (1 << 30));
        assert_eq!(SubmissionEntry::from_dwords(&d), (e, 0x42));
        let q = e.to_qwords(0x42);
        assert!((0..8).all(|i| q[i] == u64::from(d[2 * i]) | u64::from(d[2 * i + 1]) << 32));
    }
}
