//! Device power states through the power-management capability: bringing a function to D0.
//!
//! PCI Bus Power Management Interface Specification 1.2: the capability (ID 01h, section 3.2)
//! holds PMC in the upper half of its first dword and PMCSR (section 3.2.4) in the low half of
//! the next. PMCSR bits 1..0 are the power state (D0 to D3hot); bit 3 is No_Soft_Reset; bit 15
//! is PME_Status, write-1-to-clear, so every write here has it zero (a pending wake event is
//! left for whoever owns it). The upper half (bridge extensions, data) is read-only.
//!
//! After a write that moves the function to D0 the software must wait before touching it
//! (section 5.6.1, table 5-6): 10 ms from D3hot, 200 us from D2, none from D1. Firmware often
//! leaves a drive it did not boot from in D3hot. The crate does not own time: the caller hands
//! in a [`Delay`]. The state is read back afterwards, and a function that is not in D0 then is
//! an error rather than something to drive.
//!
//! A function without the capability is always in D0 (the capability is optional for
//! conventional PCI); nothing is written to it.

use core::fmt;

use pci_types::ConfigRegionAccess;

use crate::capability::{Capability, CapabilityKind};
use crate::config::{Config, LAST_DWORD};
use crate::error::Error;

/// Offset of PMCSR from the start of the capability (section 3.2).
const PMCSR_OFFSET: u16 = 4;
/// Wait after D3hot to D0, in microseconds (table 5-6: 10 ms).
pub const D3HOT_TO_D0_DELAY_US: u32 = 10_000;
/// Wait after D2 to D0, in microseconds (table 5-6: 200 us).
pub const D2_TO_D0_DELAY_US: u32 = 200;

/// Waits on the caller's clock; the crate never reads time itself.
///
/// Any `FnMut(u32)` taking microseconds is a `Delay`.
pub trait Delay {
    /// Returns after at least `microseconds` have passed.
    fn delay_us(&mut self, microseconds: u32);
}

impl<F: FnMut(u32)> Delay for F {
    fn delay_us(&mut self, microseconds: u32) {
        self(microseconds)
    }
}

/// A device power state (PMCSR bits 1..0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// Fully on.
    D0,
    /// Light sleep.
    D1,
    /// Deeper sleep.
    D2,
    /// Off, configuration space still reachable.
    D3Hot,
}

impl PowerState {
    /// Microseconds to wait after moving from this state to D0 (table 5-6).
    pub fn delay_to_d0_us(self) -> u32 {
        match self {
            PowerState::D0 | PowerState::D1 => 0,
            PowerState::D2 => D2_TO_D0_DELAY_US,
            PowerState::D3Hot => D3HOT_TO_D0_DELAY_US,
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::D0 => "D0",
            PowerState::D1 => "D1",
            PowerState::D2 => "D2",
            PowerState::D3Hot => "D3hot",
        })
    }
}

/// The PMCSR dword (PMCSR, PMCSR_BSE, Data), section 3.2.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pmcsr(u32);

impl Pmcsr {
    /// Bits 1..0: PowerState.
    const POWER_STATE_MASK: u32 = 0b11;
    /// Bit 3: No_Soft_Reset (the function keeps its configuration across D3hot to D0).
    const NO_SOFT_RESET: u32 = 1 << 3;
    /// Bit 15: PME_Status, write-1-to-clear.
    const PME_STATUS: u32 = 1 << 15;

    /// The current power state.
    pub(crate) fn power_state(self) -> PowerState {
        match self.0 & Self::POWER_STATE_MASK {
            0b00 => PowerState::D0,
            0b01 => PowerState::D1,
            0b10 => PowerState::D2,
            _ => PowerState::D3Hot,
        }
    }

    /// Whether the function keeps its configuration (BARs, command) when leaving D3hot.
    pub(crate) fn no_soft_reset(self) -> bool {
        self.0 & Self::NO_SOFT_RESET != 0
    }

    /// The value to write to enter D0: the other writable bits as read, PME_Status zero.
    fn with_d0(self) -> Pmcsr {
        Pmcsr(self.0 & !(Self::POWER_STATE_MASK | Self::PME_STATUS))
    }
}

/// What [`set_d0`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PowerUp {
    /// The state the function was in.
    pub(crate) from: PowerState,
    /// Whether leaving that state may have reset the function's configuration.
    pub(crate) configuration_reset: bool,
}

/// Brings the function behind `config` to D0 if it has a power-management capability and is
/// not there yet; waits as the specification requires and confirms the state.
pub(crate) fn set_d0<A: ConfigRegionAccess + ?Sized>(
    config: &Config<'_, A>,
    capabilities: &[Capability],
    delay: &mut impl Delay,
) -> Result<PowerUp, Error> {
    let address = config.address();
    let unchanged = PowerUp {
        from: PowerState::D0,
        configuration_reset: false,
    };
    let Some(capability) = capabilities
        .iter()
        .find(|capability| matches!(capability.kind, CapabilityKind::PowerManagement { .. }))
    else {
        return Ok(unchanged);
    };
    let register = u16::from(capability.offset) + PMCSR_OFFSET;
    if register > LAST_DWORD {
        log::warn!("pci {address}: power-management capability truncated; state not changed");
        return Ok(unchanged);
    }
    let raw = config.read(register);
    if raw == u32::MAX {
        return Err(Error::FunctionAbsent { address });
    }
    let pmcsr = Pmcsr(raw);
    let from = pmcsr.power_state();
    if from == PowerState::D0 {
        return Ok(unchanged);
    }
    log::info!("pci {address}: in {from}; bringing it to D0");
    config.write(register, pmcsr.with_d0().0);
    delay.delay_us(from.delay_to_d0_us());
    let now = config.read(register);
    if now == u32::MAX {
        return Err(Error::FunctionAbsent { address });
    }
    let state = Pmcsr(now).power_state();
    if state != PowerState::D0 {
        return Err(Error::PowerStateNotD0 {
            address,
            from,
            state,
        });
    }
    Ok(PowerUp {
        from,
        configuration_reset: from == PowerState::D3Hot && !pmcsr.no_soft_reset(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmcsr_fields() {
        let pmcsr = Pmcsr(0x0000_8103);
        assert_eq!(pmcsr.power_state(), PowerState::D3Hot);
        assert!(!pmcsr.no_soft_reset());
        // PME_En (bit 8) kept, PME_Status (bit 15) not written back, state D0.
        assert_eq!(pmcsr.with_d0(), Pmcsr(0x0000_0100));
        assert!(Pmcsr(0x0000_0008).no_soft_reset());
        assert_eq!(Pmcsr(0x2).power_state(), PowerState::D2);
        assert_eq!(PowerState::D3Hot.delay_to_d0_us(), 10_000);
        assert_eq!(PowerState::D1.delay_to_d0_us(), 0);
    }
}
