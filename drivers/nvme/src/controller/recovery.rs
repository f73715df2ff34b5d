//! Recovery: on a command timeout, CSTS.CFS or an all-ones register read,
//! [`Controller::recover`] resets the controller (which aborts every
//! outstanding command and DMA), reprograms the admin queue and recreates
//! every I/O queue on the same memory, including queues handed out; those
//! notice a generation counter change, reset their rings and report their
//! in-flight commands as [`Error::Reset`]. `recover` must not run while an
//! `IoQueue` is being used on another CPU (the unikernel is single-threaded).
//!
//! Shadow doorbells are configured again after the reset; a refusal then
//! fails the recovery, because queues already handed out rely on them. The
//! Host Memory Buffer is handed back to the controller (a refusal frees
//! it).

#![forbid(unsafe_code)]

use super::{Controller, State};
use crate::command::{FeatureId, SubmissionEntry};
use crate::error::Error;
use crate::hal::{Clock, DmaAllocator, RegisterAccess};

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// Resets the controller and rebuilds its admin and I/O queues (also
    /// the ones handed out, which then report their in-flight commands as
    /// [`Error::Reset`]). Called automatically after a timeout or fatal
    /// status; callable by the kernel, e.g. after an [`IoQueue`](crate::IoQueue) reported a
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
        self.shared.next_generation();
        self.state = State::Running;
        Ok(())
    }
}
