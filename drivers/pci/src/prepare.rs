//! Preparing one function for its driver: BAR checks, the bridge path, D0, command register.
//!
//! What a real PC's firmware may leave behind, and what is done about it, in order:
//! 1. The BAR the driver needs is checked against what enumeration decoded: it must be an
//!    implemented memory BAR with a non-zero address (firmware that did not boot from a drive
//!    may leave its BAR unassigned). Nothing is mapped or enabled otherwise.
//! 2. Every PCI-to-PCI bridge between the root complex and the function (root port, switch
//!    ports) must forward the BAR: it has to lie inside one of the bridge's memory windows
//!    (see [`crate::bridge`]). A BAR outside them would be unreachable, and enabling decoding
//!    on it could claim addresses that belong to something else; the function is skipped.
//! 3. Only then is anything written: memory decoding and bus mastering on each bridge, root
//!    first (firmware often leaves them off on ports it did not use), the function is brought
//!    to D0 through its power-management capability (see [`crate::power`]), its BAR written
//!    back if leaving D3hot reset it, and finally memory decoding and bus mastering on, INTx
//!    off on the function itself.
//!
//! The bridge path is the one enumeration recorded ([`crate::Function::upstream`]). A function
//! on a bus that only the sweep of unreached buses found has no recorded bridge (the bridge
//! above it was not followed, and is listed as a problem), so nothing above it is checked or
//! enabled.

use crate::bar::{self, DecodedBar};
use crate::bridge;
use crate::command::{enable_bridge_forwarding, enable_for_dma};
use crate::config::{Config, ConfigurationAccess};
use crate::enumerate::Enumeration;
use crate::error::Error;
use crate::function::Function;
use crate::power::{self, Delay};
use crate::power_state::PowerState;
use crate::vmd::VmdDomain;

/// Prepares `function` (found by `enumeration`) for a driver that uses its memory BAR in slot
/// `bar_index`, and returns that BAR. `delay` waits on the caller's clock (the power-state
/// transition needs up to 10 ms).
///
/// Errors, before anything is written: [`Error::BarMissing`], [`Error::BarUnassigned`],
/// [`Error::BarOutsideBridgeWindow`]. Afterwards: [`Error::CommandNotAccepted`] (a bridge or
/// the function did not keep memory decoding or bus mastering), [`Error::PowerStateNotD0`],
/// [`Error::BarNotRestored`], [`Error::FunctionAbsent`].
pub fn prepare_for_driver(
    access: &impl ConfigurationAccess,
    enumeration: &Enumeration,
    function: &Function,
    bar_index: u8,
    delay: &mut impl Delay,
) -> Result<DecodedBar, Error> {
    let address = function.address;
    let bar = assigned_memory_bar(function, bar_index)?;

    let path = enumeration.upstream_bridges(function);
    for bridge in &path {
        let windows = bridge::read_windows(&Config::new(access, bridge.address));
        if !windows.forwards(bar.address, bar.size) {
            log::debug!(
                "pci {address}: BAR{bar_index} {:#x}+{:#x}; bridge {} windows {:?}",
                bar.address,
                bar.size,
                bridge.address,
                windows
            );
            return Err(Error::BarOutsideBridgeWindow {
                address,
                index: bar_index,
                bar_address: bar.address,
                bar_size: bar.size,
                bridge: bridge.address,
            });
        }
    }

    for bridge in &path {
        enable_bridge_forwarding(&Config::new(access, bridge.address))?;
    }

    let config = Config::new(access, address);
    let power_up = power::set_d0(&config, &function.capabilities, delay)?;
    if power_up.from != PowerState::D0 {
        restore_bar(&config, &bar)?;
    }
    enable_for_dma(access, address)?;
    Ok(bar)
}

/// Prepares `function`, in the domain of the Intel VMD `domain`, for a driver: as
/// [`prepare_for_driver`], after checking that the BAR lies in one of the VMD's memory windows
/// ([`Error::BarOutsideVmdWindow`] if not, before anything is written) and turning on the VMD's
/// memory decoding and bus mastering.
pub fn prepare_behind_vmd(
    access: &impl ConfigurationAccess,
    enumeration: &Enumeration,
    domain: &VmdDomain,
    function: &Function,
    bar_index: u8,
    delay: &mut impl Delay,
) -> Result<DecodedBar, Error> {
    let bar = assigned_memory_bar(function, bar_index)?;
    if !domain.contains(function) || !domain.forwards(bar.address, bar.size) {
        return Err(Error::BarOutsideVmdWindow {
            address: function.address,
            index: bar_index,
            bar_address: bar.address,
            controller: domain.controller(),
        });
    }
    domain.enable(access)?;
    prepare_for_driver(access, enumeration, function, bar_index, delay)
}

/// The function's memory BAR in slot `index`, if implemented and assigned.
fn assigned_memory_bar(function: &Function, index: u8) -> Result<DecodedBar, Error> {
    let address = function.address;
    let bar = *function
        .bar(index)
        .filter(|bar| bar.is_memory() && bar.size > 0)
        .ok_or(Error::BarMissing { address, index })?;
    if bar.address == 0 {
        return Err(Error::BarUnassigned { address, index });
    }
    Ok(bar)
}

/// Writes `bar`'s firmware address back if it no longer reads so (a function without
/// No_Soft_Reset loses its configuration when it leaves D3hot), and checks that it stuck.
fn restore_bar<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    bar: &DecodedBar,
) -> Result<(), Error> {
    if bar::current_address(config, bar) == bar.address {
        return Ok(());
    }
    log::info!(
        "pci {}: BAR{} reset on leaving D3hot; writing {:#x} back",
        config.address(),
        bar.index,
        bar.address
    );
    bar::write_address(config, bar);
    let read_back = bar::current_address(config, bar);
    if read_back != bar.address {
        return Err(Error::BarNotRestored {
            address: config.address(),
            index: bar.index,
            expected: bar.address,
            read_back,
        });
    }
    Ok(())
}
