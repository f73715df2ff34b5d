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

use crate::capability::{Capability, CapabilityKind};
use crate::config::{Config, ConfigurationAccess, LAST_DWORD};
use crate::error::Error;
use crate::power_state::{Pmcsr, PowerState};

/// Offset of PMCSR from the start of the capability (section 3.2).
const PMCSR_OFFSET: u16 = 4;

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
pub(crate) fn set_d0<A: ConfigurationAccess + ?Sized>(
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
