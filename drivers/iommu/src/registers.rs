//! A remapping unit's registers: offsets and typed values (VT-d 11.4).
//!
//! Only the registers this crate reads or writes are named. Values are
//! newtypes with accessors named after the specification's fields; nothing
//! outside this module shifts or masks.

/// Byte offsets in a unit's register page (VT-d 11.4, table "Address
/// Mapping for Remapping Hardware Registers").
pub mod offset {
    /// VER_REG, 32 bits (VT-d 11.4.1).
    pub const VERSION: usize = 0x00;
    /// CAP_REG, 64 bits (VT-d 11.4.2).
    pub const CAPABILITY: usize = 0x08;
    /// ECAP_REG, 64 bits (VT-d 11.4.3).
    pub const EXTENDED_CAPABILITY: usize = 0x10;
    /// GCMD_REG, 32 bits, write-only (VT-d 11.4.4).
    pub const GLOBAL_COMMAND: usize = 0x18;
    /// GSTS_REG, 32 bits, read-only (VT-d 11.4.5).
    pub const GLOBAL_STATUS: usize = 0x1c;
    /// RTADDR_REG, 64 bits (VT-d 11.4.6).
    pub const ROOT_TABLE_ADDRESS: usize = 0x20;
    /// PMEN_REG, 32 bits (VT-d 11.4, "Protected Memory Enable Register").
    pub const PROTECTED_MEMORY_ENABLE: usize = 0x64;
}

/// Bytes a unit's register set spans at the least: one 4 KiB page.
pub const REGISTER_PAGE: u64 = 4096;

const fn bit32(value: u32, bit: u32) -> bool {
    value & (1 << bit) != 0
}

const fn bit64(value: u64, bit: u32) -> bool {
    value & (1 << bit) != 0
}

/// VER_REG: the architecture version the unit implements (VT-d 11.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version(pub u32);

impl Version {
    /// Major version, bits 7:4.
    pub const fn major(self) -> u8 {
        ((self.0 >> 4) & 0xf) as u8
    }

    /// Minor version, bits 3:0.
    pub const fn minor(self) -> u8 {
        (self.0 & 0xf) as u8
    }
}

/// CAP_REG: what the unit can do (VT-d 11.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability(pub u64);

impl Capability {
    /// PLMR, bit 5: a protected low-memory region is supported.
    pub const fn protected_low_memory(self) -> bool {
        bit64(self.0, 5)
    }

    /// PHMR, bit 6: a protected high-memory region is supported.
    pub const fn protected_high_memory(self) -> bool {
        bit64(self.0, 6)
    }

    /// RWBF, bit 4: software must flush the write buffer after changing
    /// translation structures.
    pub const fn requires_write_buffer_flush(self) -> bool {
        bit64(self.0, 4)
    }

    /// MGAW, bits 21:16: maximum guest address width, in bits.
    pub const fn maximum_guest_address_width(self) -> u8 {
        ((self.0 >> 16) & 0x3f) as u8 + 1
    }
}

/// ECAP_REG: extended capabilities (VT-d 11.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedCapability(pub u64);

impl ExtendedCapability {
    /// QI, bit 1: queued invalidation is supported.
    pub const fn queued_invalidation(self) -> bool {
        bit64(self.0, 1)
    }

    /// IR, bit 3: interrupt remapping is supported.
    pub const fn interrupt_remapping(self) -> bool {
        bit64(self.0, 3)
    }

    /// PT, bit 6: pass-through translation is supported.
    pub const fn pass_through(self) -> bool {
        bit64(self.0, 6)
    }
}

/// GSTS_REG: the unit's status (VT-d 11.4.5). Bit for bit the status of
/// the commands in [`GlobalCommand`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalStatus(pub u32);

/// GCMD_REG bits and their GSTS_REG status bits (VT-d 11.4.4, 11.4.5).
pub mod gcmd {
    /// TE / TES: translation enable.
    pub const TRANSLATION: u32 = 31;
    /// SRTP / RTPS: set root table pointer (one-shot).
    pub const ROOT_TABLE_POINTER: u32 = 30;
    /// SFL / FLS: set fault log (one-shot).
    pub const FAULT_LOG: u32 = 29;
    /// EAFL / AFLS: advanced fault logging enable (persistent).
    pub const ADVANCED_FAULT_LOG: u32 = 28;
    /// WBF / WBFS: write buffer flush (one-shot).
    pub const WRITE_BUFFER_FLUSH: u32 = 27;
    /// QIE / QIES: queued invalidation enable (persistent).
    pub const QUEUED_INVALIDATION: u32 = 26;
    /// IRE / IRES: interrupt remapping enable (persistent).
    pub const INTERRUPT_REMAPPING: u32 = 25;
    /// SIRTP / IRTPS: set interrupt remap table pointer (one-shot).
    pub const INTERRUPT_REMAP_TABLE_POINTER: u32 = 24;
    /// CFI / CFIS: compatibility format interrupts (persistent).
    pub const COMPATIBILITY_FORMAT_INTERRUPTS: u32 = 23;

    /// The bits that hold a state rather than trigger an action: a write to
    /// GCMD must carry them as GSTS shows them, or it changes them too.
    pub const PERSISTENT: u32 = 1 << TRANSLATION
        | 1 << ADVANCED_FAULT_LOG
        | 1 << QUEUED_INVALIDATION
        | 1 << INTERRUPT_REMAPPING
        | 1 << COMPATIBILITY_FORMAT_INTERRUPTS;
}

impl GlobalStatus {
    /// TES: DMA translation is enabled.
    pub const fn translation_enabled(self) -> bool {
        bit32(self.0, gcmd::TRANSLATION)
    }

    /// RTPS: the root table pointer has been latched.
    pub const fn root_table_pointer_set(self) -> bool {
        bit32(self.0, gcmd::ROOT_TABLE_POINTER)
    }

    /// QIES: queued invalidation is enabled.
    pub const fn queued_invalidation_enabled(self) -> bool {
        bit32(self.0, gcmd::QUEUED_INVALIDATION)
    }

    /// IRES: interrupt remapping is enabled.
    pub const fn interrupt_remapping_enabled(self) -> bool {
        bit32(self.0, gcmd::INTERRUPT_REMAPPING)
    }

    /// CFIS: compatibility-format interrupts pass unremapped.
    pub const fn compatibility_format_interrupts(self) -> bool {
        bit32(self.0, gcmd::COMPATIBILITY_FORMAT_INTERRUPTS)
    }
}

/// GCMD_REG: a command to the unit (VT-d 11.4.4).
///
/// The register is write-only and each write acts: persistent bits (TE,
/// EAFL, QIE, IRE, CFI) set a state, one-shot bits (SRTP, SFL, WBF, SIRTP)
/// trigger an action whenever written as 1. So a command is built from the
/// current status with only the persistent bits kept
/// ([`GlobalCommand::keeping`]), then one bit changed, written once, and
/// the status polled until it shows the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalCommand(pub u32);

impl GlobalCommand {
    /// A command that leaves every state as `status` shows it and triggers
    /// nothing.
    pub const fn keeping(status: GlobalStatus) -> GlobalCommand {
        GlobalCommand(status.0 & gcmd::PERSISTENT)
    }

    /// The same command with TE set or cleared.
    pub const fn with_translation(self, enable: bool) -> GlobalCommand {
        if enable {
            GlobalCommand(self.0 | 1 << gcmd::TRANSLATION)
        } else {
            GlobalCommand(self.0 & !(1 << gcmd::TRANSLATION))
        }
    }

    /// The same command with SRTP set: latch RTADDR_REG.
    pub const fn with_set_root_table_pointer(self) -> GlobalCommand {
        GlobalCommand(self.0 | 1 << gcmd::ROOT_TABLE_POINTER)
    }

    /// True if the command triggers any one-shot action.
    pub const fn has_one_shot(self) -> bool {
        self.0 & !gcmd::PERSISTENT != 0
    }
}

/// RTADDR_REG: where the root table is and its format (VT-d 11.4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootTableAddress(pub u64);

impl RootTableAddress {
    /// A legacy-mode root table (TTM = 00b) at the 4 KiB-aligned physical
    /// address `table`; None if it is not aligned.
    pub const fn legacy(table: u64) -> Option<RootTableAddress> {
        if table.is_multiple_of(REGISTER_PAGE) {
            Some(RootTableAddress(table))
        } else {
            None
        }
    }
}

/// PMEN_REG: protected memory regions (VT-d 11.4, "Protected Memory Enable
/// Register"). Firmware can fence DMA off low and high memory ranges with
/// these even while translation is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtectedMemoryEnable(pub u32);

impl ProtectedMemoryEnable {
    /// EPM, bit 31: protection is enabled (as written).
    pub const fn enabled(self) -> bool {
        bit32(self.0, 31)
    }

    /// PRS, bit 0: protected regions are in force (status).
    pub const fn in_force(self) -> bool {
        bit32(self.0, 0)
    }

    /// The value that turns protection off.
    pub const DISABLE: ProtectedMemoryEnable = ProtectedMemoryEnable(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_keeps_persistent_states_and_drops_one_shot_bits() {
        // TES, RTPS, FLS, WBFS, QIES, IRES, IRTPS all reported.
        let status = GlobalStatus(0xfe00_0000);
        let keep = GlobalCommand::keeping(status);
        assert!(!keep.has_one_shot());
        assert_eq!(keep.0, 0x9600_0000);
        assert_eq!(keep.with_translation(false).0, 0x1600_0000);
        assert_eq!(
            GlobalCommand(0)
                .with_translation(true)
                .with_set_root_table_pointer()
                .0,
            0xc000_0000
        );
    }

    #[test]
    fn fields_decode() {
        assert_eq!(Version(0x10).major(), 1);
        assert_eq!(Version(0x10).minor(), 0);
        let cap = Capability(47 << 16 | 1 << 5);
        assert!(cap.protected_low_memory());
        assert_eq!(cap.maximum_guest_address_width(), 48);
        let ecap = ExtendedCapability(0xf0_0f5e);
        assert!(ecap.queued_invalidation());
        assert!(ecap.interrupt_remapping());
        assert!(RootTableAddress::legacy(0x1001).is_none());
        assert!(ProtectedMemoryEnable(0x8000_0001).in_force());
    }
}
