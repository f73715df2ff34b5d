//! One remapping unit: reading its state and turning translation off.
//!
//! GCMD_REG is write-only and every write acts (VT-d 11.4.4): the value
//! written is the new state of every persistent bit (TE, EAFL, QIE, IRE,
//! CFI) and triggers every one-shot bit set in it (SRTP, SFL, WBF, SIRTP).
//! So each command is built from GSTS_REG with only the persistent bits
//! kept, one bit changed, written once, and GSTS_REG polled until it shows
//! the change, against a deadline.
//!
//! Turning translation off leaves queued invalidation and interrupt
//! remapping as firmware left them: this kernel's I/O path is polled, takes
//! no interrupts, and issues no invalidations, so neither matters to it,
//! and turning interrupt remapping off under a firmware that routes its own
//! interrupts through it would be a change nobody asked for. Their states
//! are reported ([`UnitState`]) so the log says what was found.

use crate::hardware::{Clock, RegisterAccess};
use crate::registers::{
    Capability, ExtendedCapability, GlobalCommand, GlobalStatus, ProtectedMemoryEnable,
    RootTableAddress, Version, offset,
};

/// How long a unit gets to act on a command. The specification gives no
/// bound; units answer in microseconds, so a second means it never will.
pub const DEFAULT_TIMEOUT_NS: u64 = 1_000_000_000;

/// Which command a unit did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// TE cleared, GSTS.TES still set.
    TranslationOff,
    /// TE set, GSTS.TES still clear.
    TranslationOn,
    /// SRTP written, GSTS.RTPS still clear.
    RootTablePointer,
    /// PMEN.EPM cleared, PMEN.PRS still set.
    ProtectedMemoryOff,
}

/// Why a unit could not be read or commanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnitError {
    /// The registers read as all ones: nothing answers at that address.
    Absent,
    /// The unit did not show the change before the deadline.
    Timeout {
        /// The command.
        stage: Stage,
        /// GSTS_REG (or PMEN_REG) as last read.
        status: u32,
    },
    /// A root table address that is not 4 KiB-aligned.
    MisalignedRootTable,
}

impl core::fmt::Display for UnitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UnitError::Absent => f.write_str("no VT-d unit answers (registers read all ones)"),
            UnitError::Timeout { stage, status } => {
                write!(
                    f,
                    "{stage:?} not done before the deadline (status {status:#010x})"
                )
            }
            UnitError::MisalignedRootTable => f.write_str("root table is not 4 KiB-aligned"),
        }
    }
}

/// What a unit's registers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitState {
    /// VER_REG.
    pub version: Version,
    /// CAP_REG.
    pub capability: Capability,
    /// ECAP_REG.
    pub extended: ExtendedCapability,
    /// GSTS_REG.
    pub status: GlobalStatus,
}

impl UnitState {
    /// True if DMA through this unit is being translated.
    pub fn translating(&self) -> bool {
        self.status.translation_enabled()
    }
}

/// A remapping unit reached through its registers.
pub struct RemappingUnit<R> {
    registers: R,
}

impl<R: RegisterAccess> RemappingUnit<R> {
    /// A unit whose register page `registers` reaches.
    pub fn new(registers: R) -> RemappingUnit<R> {
        RemappingUnit { registers }
    }

    /// The register access, for diagnostics.
    pub fn registers(&self) -> &R {
        &self.registers
    }

    /// GSTS_REG now.
    pub fn status(&self) -> GlobalStatus {
        GlobalStatus(self.registers.read32(offset::GLOBAL_STATUS))
    }

    /// Read VER, CAP, ECAP and GSTS.
    pub fn state(&self) -> Result<UnitState, UnitError> {
        let version = self.registers.read32(offset::VERSION);
        let status = self.registers.read32(offset::GLOBAL_STATUS);
        if version == u32::MAX || status == u32::MAX {
            return Err(UnitError::Absent);
        }
        Ok(UnitState {
            version: Version(version),
            capability: Capability(self.registers.read64(offset::CAPABILITY)),
            extended: ExtendedCapability(self.registers.read64(offset::EXTENDED_CAPABILITY)),
            status: GlobalStatus(status),
        })
    }

    /// Turn DMA translation off if it is on; Ok(true) if it was on. Queued
    /// invalidation, interrupt remapping and fault logging stay as they are.
    pub fn disable_translation(
        &self,
        clock: &impl Clock,
        timeout_ns: u64,
    ) -> Result<bool, UnitError> {
        let state = self.state()?;
        if !state.translating() {
            return Ok(false);
        }
        let command = GlobalCommand::keeping(state.status).with_translation(false);
        self.command(command, Stage::TranslationOff, clock, timeout_ns, |s| {
            !s.translation_enabled()
        })?;
        Ok(true)
    }

    /// Turn off the protected low- and high-memory regions if the unit has
    /// them and they are in force (they block DMA even with translation
    /// off); Ok(true) if they were.
    pub fn disable_protected_memory(
        &self,
        clock: &impl Clock,
        timeout_ns: u64,
    ) -> Result<bool, UnitError> {
        let state = self.state()?;
        let capability = state.capability;
        if !capability.protected_low_memory() && !capability.protected_high_memory() {
            return Ok(false);
        }
        let read = || ProtectedMemoryEnable(self.registers.read32(offset::PROTECTED_MEMORY_ENABLE));
        let before = read();
        if !before.enabled() && !before.in_force() {
            return Ok(false);
        }
        self.registers.write32(
            offset::PROTECTED_MEMORY_ENABLE,
            ProtectedMemoryEnable::DISABLE.0,
        );
        wait(clock, timeout_ns, || {
            let now = read();
            (!now.in_force()).then_some(()).ok_or(now.0)
        })
        .map_err(|status| UnitError::Timeout {
            stage: Stage::ProtectedMemoryOff,
            status,
        })?;
        Ok(true)
    }

    /// Point the unit at a root table (legacy format) at physical address
    /// `table` and latch it (SRTP). The kernel never does this except to
    /// test the disable path on a unit it turned on itself.
    pub fn set_root_table(
        &self,
        table: u64,
        clock: &impl Clock,
        timeout_ns: u64,
    ) -> Result<(), UnitError> {
        let address = RootTableAddress::legacy(table).ok_or(UnitError::MisalignedRootTable)?;
        let state = self.state()?;
        self.registers
            .write64(offset::ROOT_TABLE_ADDRESS, address.0);
        let command = GlobalCommand::keeping(state.status).with_set_root_table_pointer();
        self.command(command, Stage::RootTablePointer, clock, timeout_ns, |s| {
            s.root_table_pointer_set()
        })
    }

    /// Turn DMA translation on, through the root table set before (see
    /// [`RemappingUnit::set_root_table`], and the same caveat).
    pub fn enable_translation(&self, clock: &impl Clock, timeout_ns: u64) -> Result<(), UnitError> {
        let state = self.state()?;
        let command = GlobalCommand::keeping(state.status).with_translation(true);
        self.command(command, Stage::TranslationOn, clock, timeout_ns, |s| {
            s.translation_enabled()
        })
    }

    /// Write `command` once and poll GSTS until `done` or the deadline.
    fn command(
        &self,
        command: GlobalCommand,
        stage: Stage,
        clock: &impl Clock,
        timeout_ns: u64,
        done: impl Fn(GlobalStatus) -> bool,
    ) -> Result<(), UnitError> {
        self.registers.write32(offset::GLOBAL_COMMAND, command.0);
        wait(clock, timeout_ns, || {
            let status = self.status();
            done(status).then_some(()).ok_or(status.0)
        })
        .map_err(|status| UnitError::Timeout { stage, status })
    }
}

/// Poll `check` until it succeeds or `timeout_ns` has passed on `clock`;
/// the error is what the last check returned. The check runs once more
/// after the deadline, so a slow clock read never turns success into a
/// timeout.
fn wait(
    clock: &impl Clock,
    timeout_ns: u64,
    check: impl Fn() -> Result<(), u32>,
) -> Result<(), u32> {
    let deadline = clock.now_ns().saturating_add(timeout_ns);
    loop {
        let last = check();
        if last.is_ok() || clock.now_ns() >= deadline {
            return last.or_else(|_| check());
        }
        core::hint::spin_loop();
    }
}
