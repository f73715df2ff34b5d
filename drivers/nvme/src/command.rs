//! Submission and completion queue entries, opcodes and status codes.
//!
//! A submission entry is 64 bytes (NVMe 1.4 §4.2, Figure 104), a completion
//! entry 16 bytes (§4.6, Figure 123). Commands are built with named
//! constructors (`SubmissionEntry::read(..)`), never by poking dwords at call
//! sites. The command identifier is filled in by the queue at submission
//! time. Status codes carry their type (generic, command specific, media) and
//! the specification's name (§4.6.1.2).

#![forbid(unsafe_code)]

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
    pub cdw: [u32; 6],
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
            cdw: [0; 6],
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
        e.cdw[0] = cns as u32;
        e
    }

    /// Sets the Command Set Identifier of an Identify command (CDW11 bits
    /// 31:24, NVMe 2.0 §5.17.1).
    pub const fn with_command_set_identifier(mut self, csi: u8) -> SubmissionEntry {
        self.cdw[1] = (self.cdw[1] & 0x00FF_FFFF) | ((csi as u32) << 24);
        self
    }

    /// Set Features (§5.21) with CDW11 `value`.
    pub const fn set_features(fid: FeatureId, value: u32) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::SetFeatures as u8);
        e.cdw[0] = fid as u32;
        e.cdw[1] = value;
        e
    }

    /// Get Features (§5.9), current value (SEL = 0).
    pub const fn get_features(fid: FeatureId) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::GetFeatures as u8);
        e.cdw[0] = fid as u32;
        e
    }

    /// Number of Queues value (§5.21.1.7): counts are 1-based here and
    /// encoded 0-based.
    pub const fn number_of_queues(submission: u16, completion: u16) -> u32 {
        (submission.saturating_sub(1) as u32) | ((completion.saturating_sub(1) as u32) << 16)
    }

    /// Create I/O Completion Queue (§5.3), physically contiguous, interrupts
    /// disabled (PC = 1, IEN = 0). `entries` is 1-based.
    pub const fn create_io_completion_queue(qid: u16, entries: u32, base: u64) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::CreateIoCompletionQueue as u8);
        e.prp1 = base;
        e.cdw[0] = (qid as u32) | ((entries.saturating_sub(1) & 0xFFFF) << 16);
        e.cdw[1] = 1; // PC = 1, IEN = 0, IV = 0.
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
        e.cdw[0] = (qid as u32) | ((entries.saturating_sub(1) & 0xFFFF) << 16);
        e.cdw[1] = 1 | ((cqid as u32) << 16); // PC = 1.
        e
    }

    /// Delete I/O Submission Queue (§5.7).
    pub const fn delete_io_submission_queue(qid: u16) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::DeleteIoSubmissionQueue as u8);
        e.cdw[0] = qid as u32;
        e
    }

    /// Delete I/O Completion Queue (§5.6).
    pub const fn delete_io_completion_queue(qid: u16) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::DeleteIoCompletionQueue as u8);
        e.cdw[0] = qid as u32;
        e
    }

    /// Get Log Page (§5.14): `dwords` (1-based) of log `lid` from byte
    /// `offset`, global scope (NSID all-ones).
    pub const fn get_log_page(lid: LogPageId, dwords: u32, offset: u64) -> SubmissionEntry {
        let mut e = Self::with_opcode(AdminOpcode::GetLogPage as u8);
        e.nsid = 0xFFFF_FFFF;
        let numd = dwords.saturating_sub(1);
        e.cdw[0] = (lid as u32) | ((numd & 0xFFFF) << 16);
        e.cdw[1] = numd >> 16;
        e.cdw[2] = offset as u32;
        e.cdw[3] = (offset >> 32) as u32;
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
        e.cdw[0] = (sqid as u32) | ((cid as u32) << 16);
        e
    }

    const fn rw(op: NvmOpcode, nsid: u32, lba: u64, blocks: u32, fua: bool) -> SubmissionEntry {
        let mut e = Self::with_opcode(op as u8);
        e.nsid = nsid;
        e.cdw[0] = lba as u32;
        e.cdw[1] = (lba >> 32) as u32;
        e.cdw[2] = (blocks.saturating_sub(1) & 0xFFFF) | if fua { 1 << 30 } else { 0 };
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
        e.cdw[0] = ranges.saturating_sub(1) & 0xFF;
        e.cdw[1] = 1 << 2; // AD
        e
    }

    /// The 16 dwords as placed in the queue, with command identifier `cid`
    /// (CDW0: opcode 7:0, FUSE 9:8 = 0, PSDT 15:14 = 0 (PRPs), CID 31:16).
    pub const fn to_dwords(&self, cid: u16) -> [u32; 16] {
        [
            self.opcode as u32 | ((cid as u32) << 16),
            self.nsid,
            0,
            0,
            0,
            0,
            self.prp1 as u32,
            (self.prp1 >> 32) as u32,
            self.prp2 as u32,
            (self.prp2 >> 32) as u32,
            self.cdw[0],
            self.cdw[1],
            self.cdw[2],
            self.cdw[3],
            self.cdw[4],
            self.cdw[5],
        ]
    }

    /// Parses the 16 dwords of an entry (inverse of [`Self::to_dwords`]);
    /// returns the entry and its command identifier.
    pub const fn from_dwords(d: &[u32; 16]) -> (SubmissionEntry, u16) {
        (
            SubmissionEntry {
                opcode: d[0] as u8,
                nsid: d[1],
                prp1: d[6] as u64 | ((d[7] as u64) << 32),
                prp2: d[8] as u64 | ((d[9] as u64) << 32),
                cdw: [d[10], d[11], d[12], d[13], d[14], d[15]],
            },
            (d[0] >> 16) as u16,
        )
    }
}

/// Status Code Type (§4.6.1.1, Figure 125).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCodeType {
    /// Generic Command Status.
    Generic,
    /// Command Specific Status.
    CommandSpecific,
    /// Media and Data Integrity Errors.
    MediaError,
    /// Path Related Status.
    PathRelated,
    /// Vendor Specific.
    VendorSpecific,
    /// A reserved value.
    Reserved(u8),
}

impl StatusCodeType {
    /// Decodes the 3-bit field.
    pub const fn from_bits(v: u8) -> StatusCodeType {
        match v & 7 {
            0 => Self::Generic,
            1 => Self::CommandSpecific,
            2 => Self::MediaError,
            3 => Self::PathRelated,
            7 => Self::VendorSpecific,
            other => Self::Reserved(other),
        }
    }
}

/// The Status Field of a completion (§4.6.1, Figure 124), phase tag
/// excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// Status Code Type (3 bits).
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Do Not Retry.
    pub dnr: bool,
    /// More (information in the Error Information log).
    pub more: bool,
    /// Command Retry Delay (index into CRDT1..3).
    pub crd: u8,
}

impl Status {
    /// Generic "Namespace is Write Protected" (SCT 0h, SC 20h, §4.6.1.2.1):
    /// the namespace is under Namespace Write Protection.
    pub const fn is_namespace_write_protected(self) -> bool {
        self.sct == 0 && self.sc == 0x20
    }

    /// Media "Write Fault" (SCT 2h, SC 80h, §4.6.1.2.4): the write could
    /// not be completed on the media.
    pub const fn is_write_fault(self) -> bool {
        self.sct == 2 && self.sc == 0x80
    }

    /// A write that completed with this status was refused as protected or
    /// faulted: the two statuses behind write protection (see `namespace`).
    pub const fn refuses_writes(self) -> bool {
        self.is_namespace_write_protected() || self.is_write_fault()
    }

    /// Successful Completion.
    pub const SUCCESS: Status = Status {
        sct: 0,
        sc: 0,
        dnr: false,
        more: false,
        crd: 0,
    };

    /// Decodes bits 31:17 of completion dword 3 given as a 15-bit value.
    pub const fn from_field(f: u16) -> Status {
        Status {
            sc: f as u8,
            sct: ((f >> 8) & 7) as u8,
            crd: ((f >> 11) & 3) as u8,
            more: f & (1 << 13) != 0,
            dnr: f & (1 << 14) != 0,
        }
    }

    /// Encodes the 15-bit field (inverse of [`Self::from_field`]).
    pub const fn to_field(self) -> u16 {
        self.sc as u16
            | ((self.sct as u16 & 7) << 8)
            | ((self.crd as u16 & 3) << 11)
            | ((self.more as u16) << 13)
            | ((self.dnr as u16) << 14)
    }

    /// A status with the given type and code, other bits clear.
    pub const fn new(sct: u8, sc: u8) -> Status {
        Status {
            sct,
            sc,
            dnr: false,
            more: false,
            crd: 0,
        }
    }

    /// Whether the command succeeded.
    pub const fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// The status code type.
    pub const fn code_type(self) -> StatusCodeType {
        StatusCodeType::from_bits(self.sct)
    }

    /// The specification's name for this status (§4.6.1.2), or a generic
    /// description for codes the driver does not name.
    pub const fn name(self) -> &'static str {
        match (self.sct, self.sc) {
            (0, 0x00) => "Successful Completion",
            (0, 0x01) => "Invalid Command Opcode",
            (0, 0x02) => "Invalid Field in Command",
            (0, 0x03) => "Command ID Conflict",
            (0, 0x04) => "Data Transfer Error",
            (0, 0x05) => "Commands Aborted due to Power Loss Notification",
            (0, 0x06) => "Internal Error",
            (0, 0x07) => "Command Abort Requested",
            (0, 0x08) => "Command Aborted due to SQ Deletion",
            (0, 0x09) => "Command Aborted due to Failed Fused Command",
            (0, 0x0A) => "Command Aborted due to Missing Fused Command",
            (0, 0x0B) => "Invalid Namespace or Format",
            (0, 0x0C) => "Command Sequence Error",
            (0, 0x0D) => "Invalid SGL Segment Descriptor",
            (0, 0x0E) => "Invalid Number of SGL Descriptors",
            (0, 0x0F) => "Data SGL Length Invalid",
            (0, 0x10) => "Metadata SGL Length Invalid",
            (0, 0x11) => "SGL Descriptor Type Invalid",
            (0, 0x12) => "Invalid Use of Controller Memory Buffer",
            (0, 0x13) => "PRP Offset Invalid",
            (0, 0x14) => "Atomic Write Unit Exceeded",
            (0, 0x15) => "Operation Denied",
            (0, 0x16) => "SGL Offset Invalid",
            (0, 0x1C) => "Sanitize Failed",
            (0, 0x1D) => "Sanitize In Progress",
            (0, 0x20) => "Namespace is Write Protected",
            (0, 0x21) => "Command Interrupted",
            (0, 0x22) => "Transient Transport Error",
            (0, 0x80) => "LBA Out of Range",
            (0, 0x81) => "Capacity Exceeded",
            (0, 0x82) => "Namespace Not Ready",
            (0, 0x83) => "Reservation Conflict",
            (0, 0x84) => "Format In Progress",
            (1, 0x00) => "Completion Queue Invalid",
            (1, 0x01) => "Invalid Queue Identifier",
            (1, 0x02) => "Invalid Queue Size",
            (1, 0x03) => "Abort Command Limit Exceeded",
            (1, 0x05) => "Asynchronous Event Request Limit Exceeded",
            (1, 0x06) => "Invalid Firmware Slot",
            (1, 0x07) => "Invalid Firmware Image",
            (1, 0x08) => "Invalid Interrupt Vector",
            (1, 0x09) => "Invalid Log Page",
            (1, 0x0A) => "Invalid Format",
            (1, 0x0C) => "Invalid Queue Deletion",
            (1, 0x0D) => "Feature Identifier Not Saveable",
            (1, 0x0E) => "Feature Not Changeable",
            (1, 0x0F) => "Feature Not Namespace Specific",
            (1, 0x80) => "Conflicting Attributes",
            (1, 0x81) => "Invalid Protection Information",
            (1, 0x82) => "Attempted Write to Read Only Range",
            (2, 0x80) => "Write Fault",
            (2, 0x81) => "Unrecovered Read Error",
            (2, 0x82) => "End-to-end Guard Check Error",
            (2, 0x83) => "End-to-end Application Tag Check Error",
            (2, 0x84) => "End-to-end Reference Tag Check Error",
            (2, 0x85) => "Compare Failure",
            (2, 0x86) => "Access Denied",
            (2, 0x87) => "Deallocated or Unwritten Logical Block",
            (0, _) => "Generic Command Status (unnamed)",
            (1, _) => "Command Specific Status (unnamed)",
            (2, _) => "Media and Data Integrity Error (unnamed)",
            (3, _) => "Path Related Status",
            (7, _) => "Vendor Specific",
            _ => "Reserved Status Code Type",
        }
    }
}

/// Generic status codes used by the driver and the tests (SCT 0).
pub mod generic {
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: u8 = 0x01;
    /// Invalid Field in Command.
    pub const INVALID_FIELD: u8 = 0x02;
    /// Data Transfer Error.
    pub const DATA_TRANSFER_ERROR: u8 = 0x04;
    /// Internal Error.
    pub const INTERNAL_ERROR: u8 = 0x06;
    /// Invalid Namespace or Format.
    pub const INVALID_NAMESPACE: u8 = 0x0B;
    /// PRP Offset Invalid.
    pub const PRP_OFFSET_INVALID: u8 = 0x13;
    /// LBA Out of Range.
    pub const LBA_OUT_OF_RANGE: u8 = 0x80;
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

    /// Decodes the four dwords.
    pub const fn from_dwords(d: [u32; 4]) -> CompletionEntry {
        CompletionEntry {
            dw0: d[0],
            dw1: d[1],
            sq_head: d[2] as u16,
            sq_id: (d[2] >> 16) as u16,
            cid: d[3] as u16,
            phase: d[3] & (1 << 16) != 0,
            status: Status::from_field((d[3] >> 17) as u16),
        }
    }

    /// Encodes the four dwords (for simulated devices).
    pub const fn to_dwords(&self) -> [u32; 4] {
        [
            self.dw0,
            self.dw1,
            self.sq_head as u32 | ((self.sq_id as u32) << 16),
            self.cid as u32 | ((self.phase as u32) << 16) | ((self.status.to_field() as u32) << 17),
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
    }
}
