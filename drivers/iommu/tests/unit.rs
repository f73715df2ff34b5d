//! The VT-d command sequences against a fake register file that models
//! GCMD_REG (write-only, one-shot bits act on every write) and GSTS_REG.

use std::cell::{Cell, RefCell};

use iommu::registers::{GlobalStatus, gcmd, offset};
use iommu::{Clock, RegisterAccess, RemappingUnit, Stage, UnitError};

const TES: u32 = 1 << gcmd::TRANSLATION;
const RTPS: u32 = 1 << gcmd::ROOT_TABLE_POINTER;
const WBFS: u32 = 1 << gcmd::WRITE_BUFFER_FLUSH;
const QIES: u32 = 1 << gcmd::QUEUED_INVALIDATION;
const IRES: u32 = 1 << gcmd::INTERRUPT_REMAPPING;
const CFIS: u32 = 1 << gcmd::COMPATIBILITY_FORMAT_INTERRUPTS;
const ONE_SHOT: u32 = 1 << gcmd::ROOT_TABLE_POINTER
    | 1 << gcmd::FAULT_LOG
    | 1 << gcmd::WRITE_BUFFER_FLUSH
    | 1 << gcmd::INTERRUPT_REMAP_TABLE_POINTER;
const TIMEOUT_NS: u64 = 1_000_000;

/// A remapping unit's registers. A GCMD write takes effect in GSTS after
/// `latency` status reads; a unit that is `stuck` never changes TES.
#[derive(Default)]
struct FakeUnit {
    version: u32,
    capability: u64,
    status: Cell<u32>,
    pending: Cell<Option<(u32, u32)>>,
    latency: u32,
    stuck: bool,
    absent: bool,
    commands: RefCell<Vec<u32>>,
    root_table: Cell<u64>,
    latched_root: Cell<u64>,
    protected: Cell<u32>,
}

impl FakeUnit {
    fn new(status: u32) -> FakeUnit {
        FakeUnit {
            version: 0x10,
            capability: 0x0000_d200_80c4_0660,
            status: Cell::new(status),
            ..FakeUnit::default()
        }
    }

    fn effect(&self, command: u32) -> u32 {
        let persistent = command & !ONE_SHOT;
        let mut status = self.status.get();
        if self.stuck {
            status = (status & TES) | (persistent & !TES);
        } else {
            status = persistent;
        }
        if command & RTPS != 0 {
            self.latched_root.set(self.root_table.get());
            status |= RTPS;
        }
        status
    }
}

impl RegisterAccess for FakeUnit {
    fn read32(&self, at: usize) -> u32 {
        if self.absent {
            return u32::MAX;
        }
        match at {
            offset::VERSION => self.version,
            offset::CAPABILITY => self.capability as u32,
            0x0c => (self.capability >> 32) as u32,
            offset::EXTENDED_CAPABILITY => 0xf0_0f5e,
            0x14 => 0,
            offset::GLOBAL_STATUS => {
                if let Some((value, reads)) = self.pending.get() {
                    if reads == 0 {
                        self.status.set(value);
                        self.pending.set(None);
                    } else {
                        self.pending.set(Some((value, reads - 1)));
                    }
                }
                self.status.get()
            }
            offset::PROTECTED_MEMORY_ENABLE => self.protected.get(),
            offset::GLOBAL_COMMAND => 0, // write-only: reads as zero
            other => panic!("read of unmodelled register {other:#x}"),
        }
    }

    fn write32(&self, at: usize, value: u32) {
        match at {
            offset::GLOBAL_COMMAND => {
                self.commands.borrow_mut().push(value);
                self.pending.set(Some((self.effect(value), self.latency)));
            }
            offset::ROOT_TABLE_ADDRESS => {
                let high = self.root_table.get() & !0xffff_ffff;
                self.root_table.set(high | u64::from(value));
            }
            0x24 => {
                let low = self.root_table.get() & 0xffff_ffff;
                self.root_table.set(low | u64::from(value) << 32);
            }
            offset::PROTECTED_MEMORY_ENABLE => {
                // EPM as written; PRS follows it.
                self.protected
                    .set(if value >> 31 != 0 { 0x8000_0001 } else { 0 });
            }
            other => panic!("write of unmodelled register {other:#x}"),
        }
    }
}

/// A clock that advances a microsecond each time it is read.
#[derive(Default)]
struct SteppingClock(Cell<u64>);

impl Clock for SteppingClock {
    fn now_ns(&self) -> u64 {
        self.0.set(self.0.get() + 1000);
        self.0.get()
    }
}

#[test]
fn translation_left_on_is_turned_off_with_one_write_that_keeps_the_rest() {
    let fake = FakeUnit::new(TES | RTPS | QIES | IRES | CFIS);
    let unit = RemappingUnit::new(fake);
    let before = unit.state().unwrap();
    assert!(before.translating());
    assert!(before.status.queued_invalidation_enabled());
    assert!(before.status.interrupt_remapping_enabled());
    assert_eq!(before.version.major(), 1);
    let clock = SteppingClock::default();
    assert_eq!(unit.disable_translation(&clock, TIMEOUT_NS), Ok(true));
    let commands = unit.registers().commands.borrow().clone();
    // One write: TE clear, queued invalidation, interrupt remapping and
    // compatibility format as they were, no one-shot action (SRTP would
    // re-latch the root table).
    assert_eq!(commands, vec![QIES | IRES | CFIS]);
    let after = GlobalStatus(unit.registers().status.get());
    assert!(!after.translation_enabled());
    assert!(after.queued_invalidation_enabled());
    assert!(after.interrupt_remapping_enabled());
    assert_eq!(unit.registers().latched_root.get(), 0);
}

#[test]
fn a_unit_that_clears_tes_late_is_waited_for() {
    let fake = FakeUnit {
        latency: 50,
        ..FakeUnit::new(TES | WBFS)
    };
    let unit = RemappingUnit::new(fake);
    let clock = SteppingClock::default();
    assert_eq!(unit.disable_translation(&clock, TIMEOUT_NS), Ok(true));
    assert!(!unit.status().translation_enabled());
    // A transient status bit is not written back as a command.
    assert_eq!(unit.registers().commands.borrow().clone(), vec![0]);
}

#[test]
fn translation_already_off_is_left_alone() {
    let unit = RemappingUnit::new(FakeUnit::new(QIES));
    let clock = SteppingClock::default();
    assert_eq!(unit.disable_translation(&clock, TIMEOUT_NS), Ok(false));
    assert!(unit.registers().commands.borrow().is_empty());
}

#[test]
fn a_unit_that_never_clears_tes_times_out_at_the_deadline() {
    let fake = FakeUnit {
        stuck: true,
        ..FakeUnit::new(TES | QIES)
    };
    let unit = RemappingUnit::new(fake);
    let clock = SteppingClock::default();
    let error = unit.disable_translation(&clock, TIMEOUT_NS).unwrap_err();
    assert_eq!(
        error,
        UnitError::Timeout {
            stage: Stage::TranslationOff,
            status: TES | QIES
        }
    );
    assert!(clock.0.get() >= TIMEOUT_NS, "gave up before the deadline");
    assert!(
        clock.0.get() <= TIMEOUT_NS + 10_000,
        "waited past the deadline"
    );
    assert_eq!(
        unit.registers().commands.borrow().len(),
        1,
        "the command is written once"
    );
    assert!(error.to_string().contains("TranslationOff"));
}

#[test]
fn nothing_at_the_address_is_reported_not_waited_on() {
    let fake = FakeUnit {
        absent: true,
        ..FakeUnit::new(0)
    };
    let unit = RemappingUnit::new(fake);
    let clock = SteppingClock::default();
    assert_eq!(unit.state(), Err(UnitError::Absent));
    assert_eq!(
        unit.disable_translation(&clock, TIMEOUT_NS),
        Err(UnitError::Absent)
    );
    assert!(unit.registers().commands.borrow().is_empty());
}

#[test]
fn a_root_table_is_latched_and_translation_turned_on_and_off_again() {
    let unit = RemappingUnit::new(FakeUnit {
        latency: 3,
        ..FakeUnit::new(0)
    });
    let clock = SteppingClock::default();
    assert_eq!(
        unit.set_root_table(0x1234_5000_1000, &clock, TIMEOUT_NS),
        Ok(())
    );
    assert_eq!(unit.registers().latched_root.get(), 0x1234_5000_1000);
    assert_eq!(
        unit.set_root_table(0x1800, &clock, TIMEOUT_NS),
        Err(UnitError::MisalignedRootTable)
    );
    unit.enable_translation(&clock, TIMEOUT_NS).unwrap();
    assert!(unit.state().unwrap().translating());
    assert_eq!(unit.disable_translation(&clock, TIMEOUT_NS), Ok(true));
    let commands = unit.registers().commands.borrow().clone();
    assert_eq!(commands, vec![RTPS, TES, 0]);
}

#[test]
fn a_unit_that_never_turns_translation_on_times_out() {
    let unit = RemappingUnit::new(FakeUnit {
        stuck: true,
        ..FakeUnit::new(0)
    });
    let clock = SteppingClock::default();
    assert!(matches!(
        unit.enable_translation(&clock, TIMEOUT_NS),
        Err(UnitError::Timeout {
            stage: Stage::TranslationOn,
            ..
        })
    ));
}

#[test]
fn protected_memory_regions_are_turned_off_where_the_unit_has_them() {
    let clock = SteppingClock::default();
    // CAP.PLMR set.
    let fake = FakeUnit {
        capability: 1 << 5,
        ..FakeUnit::new(0)
    };
    fake.protected.set(0x8000_0001);
    let unit = RemappingUnit::new(fake);
    assert_eq!(unit.disable_protected_memory(&clock, TIMEOUT_NS), Ok(true));
    assert_eq!(unit.registers().protected.get(), 0);
    assert_eq!(unit.disable_protected_memory(&clock, TIMEOUT_NS), Ok(false));
    // No PLMR or PHMR: the register is not touched.
    let fake = FakeUnit {
        capability: 0,
        ..FakeUnit::new(0)
    };
    fake.protected.set(0x8000_0001);
    let unit = RemappingUnit::new(fake);
    assert_eq!(unit.disable_protected_memory(&clock, TIMEOUT_NS), Ok(false));
    assert_eq!(unit.registers().protected.get(), 0x8000_0001);
}
