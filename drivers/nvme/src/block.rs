//! The block API: a synchronous device per namespace and a queue for depth.
//!
//! [`BlockDevice`] is the handle of one namespace (found and checked once
//! by [`Controller::namespace`]); it borrows the controller mutably and
//! does one command at a time on I/O queue 1 (see `sync_queue`). It sits on
//! top of the controller; [`IoQueue`] (see `io_queue`) is handed out by
//! it. Caller buffers are used in place (zero-copy) when
//! `DmaAllocator::translate` maps every page and the start is dword
//! aligned; otherwise data goes through the queue's bounce buffer. Transfers
//! above the transfer limit (MDTS, PRP list capacity, bounce size, 65536
//! blocks) are split into several commands.
//!
//! [`IoQueue`] is one I/O queue pair owned by one user: no lock, no
//! allocation per I/O; the data travels in the caller's `DmaBuffer`s,
//! moved into the queue while the device owns them. Its submissions take a [`Namespace`] handle, found and
//! checked once by [`Controller::namespace_handle`].
//!
//! Validation happens before anything reaches the device: unknown
//! namespace, zero or non-multiple lengths, LBA ranges beyond the namespace
//! (including overflow), writes to a namespace not marked writable, to a
//! write-protected one ([`Error::WriteProtected`]) or to a zoned one
//! ([`Error::ZonedNamespace`]). A queued write the device refuses with a
//! write-protect status completes as [`Error::WriteProtected`] and marks
//! the namespace write-protected for every handle (see `namespace`). On a
//! zoned namespace whose reads may not cross zone boundaries, synchronous
//! reads are split at them and a queued read crossing one is refused
//! ([`Error::ZoneBoundary`]).

#![forbid(unsafe_code)]

pub use crate::io_queue::{Completion, IoQueue, Rejected};
pub use crate::request::IoOp;

use crate::controller::Controller;
use crate::error::Error;
use crate::hal::{Clock, DmaAllocator, RegisterAccess};
use crate::identify::AsciiField;
use crate::namespace::{Namespace, NamespaceInfo};
use crate::request::{Operation, Request};
use crate::sync_queue::Data;

/// Who a namespace is: the controller's identity plus the namespace ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Controller model number.
    pub model: AsciiField<40>,
    /// Controller serial number.
    pub serial: AsciiField<20>,
    /// Controller firmware revision.
    pub firmware: AsciiField<8>,
    /// Namespace identifier.
    pub nsid: u32,
}

/// Synchronous block device over one namespace.
pub struct BlockDevice<'c, R: RegisterAccess, D: DmaAllocator, C: Clock> {
    ctrl: &'c mut Controller<R, D, C>,
    ns: Namespace,
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// Block device handle for namespace `nsid`, doing synchronous I/O on
    /// I/O queue 1. Read-only until [`BlockDevice::set_writable`].
    pub fn namespace(&mut self, nsid: u32) -> Result<BlockDevice<'_, R, D, C>, Error> {
        let ns = self.namespace_handle(nsid)?;
        Ok(BlockDevice { ctrl: self, ns })
    }
}

impl<'c, R: RegisterAccess, D: DmaAllocator, C: Clock> BlockDevice<'c, R, D, C> {
    /// Namespace details.
    pub fn info(&self) -> NamespaceInfo {
        self.ctrl.namespace_info(self.ns.index)
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.ns.info.block_size
    }

    /// Number of blocks.
    pub fn block_count(&self) -> u64 {
        self.ns.info.block_count
    }

    /// Model, serial, firmware and namespace ID.
    pub fn identity(&self) -> Identity {
        let i = self.ctrl.info();
        Identity {
            model: i.model,
            serial: i.serial,
            firmware: i.firmware,
            nsid: self.ns.info.nsid,
        }
    }

    /// Allows or forbids writes (including Write Zeroes and discard) to
    /// this namespace, through this handle and every `IoQueue`. The kernel
    /// decides ownership (a signature on disk); the default is read-only.
    /// A write-protected or zoned namespace stays read-only whatever this
    /// says.
    pub fn set_writable(&mut self, writable: bool) {
        self.ctrl.set_writable(self.ns.index, writable);
    }

    /// Whether writes are allowed (owned, not write-protected, not zoned).
    pub fn is_writable(&self) -> bool {
        self.ctrl.is_writable(self.ns.index)
    }

    /// Reads whole blocks starting at `lba` into `buf`.
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        let request = Request::bytes(Operation::Read, &self.ns, lba, buf.len());
        self.ctrl.run(&self.ns, &request, Data::Read(buf))
    }

    /// Writes whole blocks starting at `lba`.
    pub fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        let request = Request::bytes(Operation::Write { fua: false }, &self.ns, lba, buf.len());
        self.ctrl.run(&self.ns, &request, Data::Write(buf))
    }

    /// Writes with Force Unit Access (data on media when this returns).
    pub fn write_fua(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        let request = Request::bytes(Operation::Write { fua: true }, &self.ns, lba, buf.len());
        self.ctrl.run(&self.ns, &request, Data::Write(buf))
    }

    /// Flushes the volatile write cache.
    pub fn flush(&mut self) -> Result<(), Error> {
        let request = Request::blocks(Operation::Flush, 0, 0);
        self.ctrl.run(&self.ns, &request, Data::None)
    }

    /// Zeroes `count` blocks from `lba` (Write Zeroes; `Unsupported` if the
    /// controller lacks it).
    pub fn write_zeroes(&mut self, lba: u64, count: u64) -> Result<(), Error> {
        let request = Request::blocks(Operation::WriteZeroes, lba, count);
        self.ctrl.run(&self.ns, &request, Data::None)
    }

    /// Deallocates `count` blocks from `lba` (Dataset Management;
    /// `Unsupported` if the controller lacks it).
    pub fn discard(&mut self, lba: u64, count: u64) -> Result<(), Error> {
        let request = Request::blocks(Operation::Deallocate, lba, count);
        self.ctrl.run(&self.ns, &request, Data::None)
    }
}
