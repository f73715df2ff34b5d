//! Shutdown: the I/O queues are deleted and the Host Memory Buffer
//! released (best effort), then the normal shutdown notification (CC.SHN,
//! NVMe 1.4 §7.6.2) and a wait for CSTS.SHST as long as the drive says it
//! may take: RTD3E (Identify Controller, RTD3 Entry Latency) bounded to
//! 1 s..60 s, and never longer than `Config::shutdown_timeout_ms`.

#![forbid(unsafe_code)]

use super::{Controller, State};
use crate::command::SubmissionEntry;
use crate::error::{Error, Stage};
use crate::hal::{Clock, DmaAllocator, RegisterAccess};
use crate::registers::{Cc, ShutdownNotification, ShutdownStatus, offset};
use alloc::vec::Vec;

/// Shortest shutdown wait: for drives that report no RTD3E, or less.
pub const SHUTDOWN_WAIT_MIN_MS: u64 = 1_000;
/// Longest shutdown wait, whatever RTD3E says.
pub const SHUTDOWN_WAIT_MAX_MS: u64 = 60_000;
/// Microseconds per millisecond.
const US_PER_MS: u64 = 1_000;

/// The shutdown wait for a drive reporting `rtd3e_us`: RTD3E rounded up to
/// milliseconds, bounded to [`SHUTDOWN_WAIT_MIN_MS`]..[`SHUTDOWN_WAIT_MAX_MS`]
/// (0 = not reported gets the minimum), never above `cap_ms`.
pub fn shutdown_wait_ms(rtd3e_us: u32, cap_ms: u64) -> u64 {
    u64::from(rtd3e_us)
        .div_ceil(US_PER_MS)
        .clamp(SHUTDOWN_WAIT_MIN_MS, SHUTDOWN_WAIT_MAX_MS)
        .min(cap_ms)
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// Normal shutdown (CC.SHN = 01b, wait for CSTS.SHST = complete, for
    /// as long as [`ControllerInfo::shutdown_wait_ms`](super::ControllerInfo::shutdown_wait_ms)). Deletes the I/O
    /// queues and releases the Host Memory Buffer first (best effort).
    /// Idempotent; all I/O afterwards fails with [`Error::ShutDown`].
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.state == State::ShutDown {
            return Ok(());
        }
        self.shared.start_shutdown();
        if self.state == State::Running {
            let mut qids: Vec<u16> = self.taken.iter().map(|t| t.qid).collect();
            qids.extend(self.spare.iter().map(|p| p.qid()));
            qids.extend(self.sync.as_ref().map(|s| s.pair.qid()));
            for qid in qids {
                let _ = self
                    .admin_command(SubmissionEntry::delete_io_submission_queue(qid))
                    .and_then(|_| {
                        self.admin_command(SubmissionEntry::delete_io_completion_queue(qid))
                    });
            }
            self.release_host_memory_buffer();
        }
        self.state = State::ShutDown;
        let cc = Cc(self.regs.read32(offset::CC));
        if cc.0 == u32::MAX {
            return Err(Error::ControllerFatal);
        }
        self.regs
            .write32(offset::CC, cc.with_shutdown(ShutdownNotification::Normal).0);
        let deadline = self.deadline_ms(self.info.shutdown_wait_ms);
        match self.wait_csts(deadline, false, |c| c.shst() == ShutdownStatus::Complete) {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Error::Timeout {
                stage: Stage::Shutdown,
            }),
        }
    }
}
