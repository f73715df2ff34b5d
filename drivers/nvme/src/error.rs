//! The driver's one error type.
//!
//! Every failure is a `Copy` value: bad input (caught before anything
//! reaches the device), device status (typed status code type and code),
//! timeouts with the stage that timed out, fatal controller states. `kind()`
//! gives a coarse classification for callers that only need to decide
//! between "fix your request", "retry" and "give up".

#![forbid(unsafe_code)]

use crate::command::Status;
use crate::hal::DmaError;
use core::fmt;

/// Which wait ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Waiting for CSTS.RDY = 0 after clearing CC.EN.
    Disable,
    /// An admin command.
    AdminCommand,
    /// An I/O command.
    IoCommand,
    /// Waiting for CSTS.SHST = shutdown complete.
    Shutdown,
}

/// Coarse classification of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was invalid; nothing was sent to the device.
    InvalidInput,
    /// The namespace is read-only to this program.
    PermissionDenied,
    /// The device (or a quirk) does not support the operation.
    Unsupported,
    /// The device completed the command with an error status.
    Device,
    /// A wait ran out of time; the controller was reset.
    Timeout,
    /// The controller is unusable (fatal status, gone, never ready).
    Fatal,
    /// Try again later (queue full).
    Busy,
    /// Out of DMA memory or unusable DMA memory.
    Resource,
}

/// Everything that can go wrong in the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// LBA range outside the namespace (or overflowing).
    OutOfRange,
    /// Zero length, or a length that is not a multiple of the block size,
    /// or larger than the buffer that must hold it.
    InvalidLength,
    /// A buffer or address is not aligned as the device requires.
    Misaligned,
    /// Write to a namespace not marked writable (see `set_writable`).
    NotOwned,
    /// Write to a write-protected namespace: Identify Namespace NSATTR bit
    /// 0 says so, or the device refused a write with a write-protect status
    /// (then that refusal is reported this way as well, and every later
    /// write is refused before it reaches the device).
    WriteProtected,
    /// Write to a zoned namespace (Zoned Namespace Command Set): it only
    /// takes sequential writes at a zone's write pointer, which the driver
    /// does not issue; the namespace is read-only to it.
    ZonedNamespace,
    /// A read crossing a zone boundary of a zoned namespace that does not
    /// allow it (queue API; the synchronous API splits such reads).
    ZoneBoundary,
    /// Not supported by this controller or disabled by a quirk.
    Unsupported,
    /// No namespace with that identifier.
    NoSuchNamespace,
    /// A namespace handle made by another controller than the one whose
    /// queue it was given to; nothing was sent.
    ForeignNamespace,
    /// The namespace's LBA format carries metadata, which the driver does
    /// not use; the namespace is refused.
    NamespaceHasMetadata,
    /// The device completed the command with an error status.
    Device(Status),
    /// A wait ran out of time; the controller was reset where possible.
    Timeout {
        /// What was being waited for.
        stage: Stage,
    },
    /// CSTS.CFS set, or registers read as all-ones (device gone).
    ControllerFatal,
    /// CSTS.RDY never became 1 within CAP.TO after enabling.
    NeverReady,
    /// The queue has no free slot (or not as many as the request needs
    /// commands); try again after a completion.
    QueueFull,
    /// A queued request needs more commands (one per
    /// `IoQueue::max_transfer_bytes`) than the queue has slots: it can
    /// never be sent on this queue; nothing was sent.
    RequestTooLarge,
    /// DMA memory could not be allocated or is unsuitably aligned.
    Dma,
    /// A completion carried a command identifier that is not in flight.
    UnknownCommandId,
    /// The controller was shut down; no more I/O.
    ShutDown,
    /// The command was lost in a controller reset (queue API).
    Reset,
    /// Every I/O queue pair has been handed out already.
    NoFreeQueue,
    /// The controller reported something the driver cannot use (e.g. no I/O
    /// queues granted, no NVM command set).
    BadDevice,
}

impl Error {
    /// A write failed because the namespace does not take writes: it is
    /// write-protected, or the device answered "Namespace is Write
    /// Protected" or "Write Fault". An application stops writing to the
    /// namespace on the first such error; the driver takes it as
    /// write-protected after a few write faults in a row (see `namespace`).
    pub const fn refuses_writes(self) -> bool {
        match self {
            Error::WriteProtected => true,
            Error::Device(status) => status.refuses_writes(),
            _ => false,
        }
    }

    /// Coarse classification.
    pub const fn kind(self) -> ErrorKind {
        match self {
            Error::OutOfRange
            | Error::InvalidLength
            | Error::Misaligned
            | Error::NoSuchNamespace
            | Error::ForeignNamespace
            | Error::RequestTooLarge
            | Error::NamespaceHasMetadata => ErrorKind::InvalidInput,
            Error::NotOwned | Error::WriteProtected => ErrorKind::PermissionDenied,
            Error::ZonedNamespace => ErrorKind::Unsupported,
            Error::ZoneBoundary => ErrorKind::InvalidInput,
            Error::Unsupported => ErrorKind::Unsupported,
            Error::Device(_) | Error::UnknownCommandId => ErrorKind::Device,
            Error::Timeout { .. } | Error::Reset => ErrorKind::Timeout,
            Error::ControllerFatal | Error::NeverReady | Error::ShutDown | Error::BadDevice => {
                ErrorKind::Fatal
            }
            Error::QueueFull | Error::NoFreeQueue => ErrorKind::Busy,
            Error::Dma => ErrorKind::Resource,
        }
    }
}

impl From<DmaError> for Error {
    fn from(_: DmaError) -> Error {
        Error::Dma
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfRange => f.write_str("LBA range outside the namespace"),
            Error::InvalidLength => f.write_str("invalid transfer length"),
            Error::Misaligned => f.write_str("misaligned buffer or address"),
            Error::NotOwned => f.write_str("namespace is read-only (not owned)"),
            Error::WriteProtected => f.write_str("namespace is write-protected"),
            Error::ZonedNamespace => {
                f.write_str("namespace is zoned (no random writes; read-only to the driver)")
            }
            Error::ZoneBoundary => f.write_str("read crosses a zone boundary"),
            Error::Unsupported => f.write_str("operation not supported by the controller"),
            Error::NoSuchNamespace => f.write_str("no such namespace"),
            Error::ForeignNamespace => {
                f.write_str("namespace handle belongs to another controller")
            }
            Error::NamespaceHasMetadata => {
                f.write_str("namespace format has metadata (unsupported)")
            }
            Error::Device(s) => write!(
                f,
                "device status: {} (SCT {:#x}, SC {:#04x}{})",
                s.name(),
                s.sct,
                s.sc,
                if s.dnr { ", do not retry" } else { "" }
            ),
            Error::Timeout { stage } => write!(f, "timeout: {stage:?}"),
            Error::ControllerFatal => f.write_str("controller fatal status or device gone"),
            Error::NeverReady => f.write_str("controller never became ready"),
            Error::QueueFull => f.write_str("queue full"),
            Error::RequestTooLarge => {
                f.write_str("request needs more commands than the queue has slots")
            }
            Error::Dma => f.write_str("DMA memory unavailable or unusable"),
            Error::UnknownCommandId => f.write_str("completion with unknown command identifier"),
            Error::ShutDown => f.write_str("controller shut down"),
            Error::Reset => f.write_str("command lost in controller reset"),
            Error::NoFreeQueue => f.write_str("no I/O queue left to hand out"),
            Error::BadDevice => f.write_str("controller reported unusable parameters"),
        }
    }
}

impl core::error::Error for Error {}
