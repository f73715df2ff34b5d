//! Device power states and the register that holds them (PMCSR), with the waits the
//! specification asks for when leaving them.
//!
//! PCI Bus Power Management Interface Specification 1.2: PMCSR (section 3.2.4) sits in the low
//! half of the power-management capability's second dword. Bits 1..0 are the power state (D0 to
//! D3hot); bit 3 is No_Soft_Reset; bit 15 is PME_Status, write-1-to-clear, so a value made for
//! writing has it zero. Section 5.6.1, table 5-6, gives the wait before a function that was
//! moved to D0 may be touched: 10 ms from D3hot, 200 us from D2, none from D1.
//!
//! Plain values, below the error type (which names power states) and the procedure in
//! `power` that moves a function to D0.

use core::fmt;

/// Wait after D3hot to D0, in microseconds (table 5-6: 10 ms).
pub const D3HOT_TO_D0_DELAY_US: u32 = 10_000;
/// Wait after D2 to D0, in microseconds (table 5-6: 200 us).
pub const D2_TO_D0_DELAY_US: u32 = 200;

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
pub(crate) struct Pmcsr(pub(crate) u32);

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
    pub(crate) fn with_d0(self) -> Pmcsr {
        Pmcsr(self.0 & !(Self::POWER_STATE_MASK | Self::PME_STATUS))
    }
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
