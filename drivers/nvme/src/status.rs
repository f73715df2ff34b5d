//! The Status Field of a completion entry: status code type, status code
//! and their names (NVMe 1.4 §4.6.1).

#![forbid(unsafe_code)]

use crate::registers::Field;

/// Fields of the 15-bit Status Field (§4.6.1, Figure 124), phase tag
/// excluded.
pub mod field {
    use super::Field;
    /// Status Field: Status Code.
    pub const SC: Field = Field::new(0, 8);
    /// Status Field: Status Code Type.
    pub const SCT: Field = Field::new(8, 3);
    /// Status Field: Command Retry Delay.
    pub const CRD: Field = Field::new(11, 2);
    /// Status Field: More.
    pub const MORE: Field = Field::new(13, 1);
    /// Status Field: Do Not Retry.
    pub const DNR: Field = Field::new(14, 1);
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
        match v & field::SCT.max() as u8 {
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
        let f = f as u32;
        Status {
            sc: field::SC.get32(f) as u8,
            sct: field::SCT.get32(f) as u8,
            crd: field::CRD.get32(f) as u8,
            more: field::MORE.is_set32(f),
            dnr: field::DNR.is_set32(f),
        }
    }

    /// Whether the 15-bit field `f` says success (code type and code both
    /// zero, as [`Self::is_success`]), without decoding the rest.
    #[inline]
    pub const fn field_is_success(f: u16) -> bool {
        let f = f as u32;
        field::SC.get32(f) == 0 && field::SCT.get32(f) == 0
    }

    /// Encodes the 15-bit field (inverse of [`Self::from_field`]).
    pub const fn to_field(self) -> u16 {
        let f = field::SC.set32(0, self.sc as u32);
        let f = field::SCT.set32(f, self.sct as u32);
        let f = field::CRD.set32(f, self.crd as u32);
        let f = field::MORE.set32(f, self.more as u32);
        field::DNR.set32(f, self.dnr as u32) as u16
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

    /// Generic "Namespace is Write Protected" (§4.6.1.2.1): the namespace
    /// is under Namespace Write Protection.
    pub const fn is_namespace_write_protected(self) -> bool {
        matches!(self.code_type(), StatusCodeType::Generic)
            && self.sc == generic::NAMESPACE_WRITE_PROTECTED
    }

    /// Media "Write Fault" (§4.6.1.2.4): the write could not be completed
    /// on the media.
    pub const fn is_write_fault(self) -> bool {
        matches!(self.code_type(), StatusCodeType::MediaError) && self.sc == media::WRITE_FAULT
    }

    /// A write that completed with this status was refused as protected or
    /// faulted: the two statuses behind write protection (see `namespace`).
    pub const fn refuses_writes(self) -> bool {
        self.is_namespace_write_protected() || self.is_write_fault()
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
    /// Namespace is Write Protected.
    pub const NAMESPACE_WRITE_PROTECTED: u8 = 0x20;
}

/// Media and Data Integrity Errors status codes used by the driver (SCT 2).
pub mod media {
    /// Write Fault.
    pub const WRITE_FAULT: u8 = 0x80;
}
