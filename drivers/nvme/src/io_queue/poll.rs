//! The completion walk of an [`IoQueue`]: completions taken from the
//! ring, each request reported once (when its last command is back, when
//! one of its commands passes its deadline, or when a controller reset or
//! shutdown ends it), and the head doorbell rung once per walk.

#![forbid(unsafe_code)]

use super::{Completion, IoQueue};
use crate::command::CompletionEntry;
use crate::error::{Error, Stage};
use crate::hal::{Clock, RegisterAccess};
use crate::queue::Polled;
use crate::request::{Epoch, controller_fatal};
use dma::ordering;

impl<R: RegisterAccess, C: Clock> IoQueue<R, C> {
    /// Reports finished requests to `on_complete` and returns how many.
    /// A read or write request gives its buffer back in
    /// [`Completion::buffer`] (holding the data read, for a successful
    /// read). Requests past their deadline are reported once as
    /// `Timeout { stage: IoCommand }` (or `ControllerFatal`) without their
    /// buffer; their slots stay busy until they complete late or the
    /// controller is recovered, and then the queue frees the buffer. After
    /// a controller reset, every request in flight is reported as `Reset`
    /// with its buffer; after shutdown, as `ShutDown` without it (leaked).
    #[inline]
    pub fn poll(&mut self, mut on_complete: impl FnMut(Completion)) -> usize {
        let epoch = self.shared.epoch();
        if epoch != self.generation {
            return self.after_reset_or_shutdown(epoch, &mut on_complete);
        }
        if self.pair.has_unrung_submissions() {
            self.pair.ring_submissions(&self.regs);
        }
        let mut n = 0;
        loop {
            match self.pair.take_status() {
                Polled::Empty => break,
                Polled::Unknown(entry) => {
                    self.unknown += 1;
                    log::warn!(
                        "nvme: queue {}: unknown cid {:#x} ignored",
                        self.pair.qid(),
                        entry.cid
                    );
                }
                Polled::Done {
                    slot,
                    was_timed_out,
                    dwords,
                    returned,
                } => {
                    if was_timed_out {
                        self.timed_out = self.timed_out.saturating_sub(1);
                    }
                    let status = dwords[CompletionEntry::STATUS_DWORD];
                    if self.requests.part_done(
                        &mut self.slots,
                        slot,
                        move || CompletionEntry::outcome_of(status),
                        &self.shared,
                        &returned,
                        &mut on_complete,
                    ) {
                        n += 1;
                    }
                }
            }
        }
        // One head doorbell for every entry this call consumed.
        self.pair.ring_completions(&self.regs);
        if n == 0 && self.pair.in_flight() > self.timed_out {
            n = self.report_expired(&mut on_complete);
        }
        n
    }

    /// Reports requests past their deadline, once each, without their
    /// buffer (see [`Self::poll`]).
    fn report_expired(&mut self, on_complete: &mut impl FnMut(Completion)) -> usize {
        let now = self.clock.now_ns();
        if now <= self.next_deadline_ns {
            // Nothing can have expired yet: skip the scan of every slot.
            return 0;
        }
        let mut n = 0;
        while let Some(slot) = self.pair.take_expired(now) {
            self.timed_out += 1;
            let error = if controller_fatal(&self.regs) {
                Error::ControllerFatal
            } else {
                Error::Timeout {
                    stage: Stage::IoCommand,
                }
            };
            if let Some(completion) = self.requests.timed_out(&mut self.slots, slot, error) {
                log::warn!(
                    "nvme: queue {}: request {:#x} failed: {error}",
                    self.pair.qid(),
                    completion.tag
                );
                on_complete(completion);
                n += 1;
            }
        }
        self.next_deadline_ns = self.pair.earliest_deadline().unwrap_or(0);
        n
    }

    /// After a controller reset or shutdown: every request not yet reported
    /// completes as `Reset` (with its buffer) or `ShutDown` (without: the
    /// controller never gave it back), and the queue starts over.
    fn after_reset_or_shutdown(
        &mut self,
        epoch: Epoch,
        on_complete: &mut impl FnMut(Completion),
    ) -> usize {
        let n = if epoch.shut_down() {
            self.requests
                .drain(&mut self.slots, None, Error::ShutDown, on_complete)
        } else {
            let returned = ordering::after_device_signal();
            let n =
                self.requests
                    .drain(&mut self.slots, Some(&returned), Error::Reset, on_complete);
            self.reclaim_prp_lists(&returned);
            n
        };
        self.pair.reset();
        self.generation = epoch.generation();
        self.timed_out = 0;
        self.next_deadline_ns = 0;
        n
    }
}
