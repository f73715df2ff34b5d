//! Admin commands (NVMe 1.4 §5) on a running controller: Identify, the
//! SMART / Health and Error Information logs, the Volatile Write Cache
//! feature, Abort.
//!
//! [`Controller::admin_command`] runs one command to completion on the
//! admin queue with a deadline and no recovery (bring-up, recovery and
//! shutdown use it); the public commands go through `admin_checked`, which
//! resets the controller after a timeout or fatal status.

#![forbid(unsafe_code)]

use super::Controller;
use crate::command::{
    CompletionEntry, DWORD_BYTES, FeatureId, IdentifyCns, LogPageId, SubmissionEntry, field,
};
use crate::error::{Error, Stage};
use crate::hal::{Clock, DmaAllocator, RegisterAccess};
use crate::log_page::{ERROR_LOG_ENTRY_BYTES, ErrorLogEntry, SMART_LOG_BYTES, SmartLog};
use crate::request::wait_for_slot;

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// Runs one admin command to completion, without recovery.
    pub(super) fn admin_command(&mut self, cmd: SubmissionEntry) -> Result<CompletionEntry, Error> {
        let slot = self.admin.alloc_slot().ok_or(Error::QueueFull)?;
        let deadline = self.deadline_ms(self.config.command_timeout_ms);
        self.admin.submit(&self.regs, slot, &cmd, deadline);
        wait_for_slot(
            &mut self.admin,
            &self.regs,
            &self.clock,
            slot,
            deadline,
            Stage::AdminCommand,
            &mut self.unknown_completions,
        )
    }

    /// Runs an admin command on a running controller, recovering after a
    /// timeout or fatal status.
    fn admin_checked(&mut self, cmd: SubmissionEntry) -> Result<CompletionEntry, Error> {
        self.ensure_running()?;
        let result = self.admin_command(cmd);
        self.after_failure(result)
    }

    pub(super) fn identify_into_scratch(
        &mut self,
        cns: IdentifyCns,
        nsid: u32,
    ) -> Result<(), Error> {
        self.scratch.zero();
        let cmd = SubmissionEntry::identify(cns, nsid).with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_command(cmd).map(|_| ())
    }

    /// SMART / Health Information log (global).
    pub fn smart_log(&mut self) -> Result<SmartLog, Error> {
        self.scratch.zero();
        let cmd = SubmissionEntry::get_log_page(
            LogPageId::SmartHealth,
            (SMART_LOG_BYTES / DWORD_BYTES) as u32,
            0,
        )
        .with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_checked(cmd)?;
        Ok(SmartLog::parse(self.scratch.as_slice()))
    }

    /// Reads up to `out.len()` Error Information entries (newest first);
    /// returns how many were filled.
    pub fn error_log(&mut self, out: &mut [ErrorLogEntry]) -> Result<usize, Error> {
        let n = out
            .len()
            .min(self.info.error_log_entries)
            .min(self.scratch.len().min(self.page_size) / ERROR_LOG_ENTRY_BYTES);
        if n == 0 {
            return Ok(0);
        }
        self.scratch.zero();
        let cmd = SubmissionEntry::get_log_page(
            LogPageId::ErrorInformation,
            (n * ERROR_LOG_ENTRY_BYTES / DWORD_BYTES) as u32,
            0,
        )
        .with_prps(self.scratch.phys().as_u64(), 0);
        self.admin_checked(cmd)?;
        let bytes = self.scratch.as_slice();
        for (i, e) in out.iter_mut().take(n).enumerate() {
            *e = ErrorLogEntry::parse(
                &bytes[i * ERROR_LOG_ENTRY_BYTES..(i + 1) * ERROR_LOG_ENTRY_BYTES],
            );
        }
        Ok(n)
    }

    /// Reads the Volatile Write Cache feature (true = enabled).
    pub fn volatile_write_cache(&mut self) -> Result<bool, Error> {
        if !self.info.volatile_write_cache_present {
            return Err(Error::Unsupported);
        }
        let done =
            self.admin_checked(SubmissionEntry::get_features(FeatureId::VolatileWriteCache))?;
        Ok(field::WCE.is_set32(done.dw0))
    }

    /// Sets the Volatile Write Cache feature.
    pub fn set_volatile_write_cache(&mut self, enabled: bool) -> Result<(), Error> {
        if !self.info.volatile_write_cache_present {
            return Err(Error::Unsupported);
        }
        self.admin_checked(SubmissionEntry::set_features(
            FeatureId::VolatileWriteCache,
            u32::from(enabled),
        ))?;
        self.info.volatile_write_cache_enabled = enabled;
        Ok(())
    }

    /// Sends Abort for command `cid` on submission queue `sqid`; true if the
    /// controller reports the command aborted (completion dword 0 bit 0
    /// clear, §5.1).
    pub fn abort(&mut self, sqid: u16, cid: u16) -> Result<bool, Error> {
        let done = self.admin_checked(SubmissionEntry::abort(sqid, cid))?;
        Ok(!field::ABORT_NOT_ABORTED.is_set32(done.dw0))
    }
}
