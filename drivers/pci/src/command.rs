//! Command-register set-up: enabling a function, and the bridges above it, for MMIO and DMA.
//!
//! The command register shares a dword with the status register, whose error bits are
//! write-1-to-clear; the write is made with the status half zero so pending status is kept
//! (`pci_types`' `update_command` writes the status half back and would clear it).
//!
//! INTx disable (bit 10) was added in PCI 2.3; on older functions it is hard-wired to zero, so
//! a read-back without it is only logged. Memory decode and bus mastering must stick, or the
//! driver could not work: their absence is an [`Error`].

use pci_types::{CommandRegister, PciAddress};

use crate::config::{COMMAND_STATUS, Config, ConfigurationAccess, ID};
use crate::error::Error;

/// Enables memory-space decoding and bus mastering and disables INTx for the function at
/// `address`, leaving I/O decoding and every other command bit as they are.
///
/// Fails with [`Error::FunctionAbsent`] if nothing answers at `address`, and with
/// [`Error::CommandNotAccepted`] if memory decoding or bus mastering did not stick.
pub fn enable_for_dma(access: &impl ConfigurationAccess, address: PciAddress) -> Result<(), Error> {
    let config = Config::new(access, address);
    let read_back = set_command_bits(&config, DMA_BITS | CommandRegister::INTERRUPT_DISABLE)?;
    if !read_back.contains(CommandRegister::INTERRUPT_DISABLE) {
        log::info!("pci {address}: INTx disable not implemented (pre-PCI 2.3 function)");
    }
    Ok(())
}

/// Enables memory-space decoding (forwarding of the memory windows downstream) and bus
/// mastering (forwarding of the functions' DMA upstream) on the PCI-to-PCI bridge at `config`,
/// leaving every other command bit as it is. Nothing is written if both are already on.
pub(crate) fn enable_bridge_forwarding<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
) -> Result<(), Error> {
    set_command_bits(config, DMA_BITS).map(|_| ())
}

/// Memory decoding and bus mastering: what a memory-mapped, DMA-capable path needs.
const DMA_BITS: CommandRegister =
    CommandRegister::MEMORY_ENABLE.union(CommandRegister::BUS_MASTER_ENABLE);

/// Sets `bits` in the command register (writing only if one is missing) and checks that
/// memory decoding and bus mastering stuck; returns the register as read back.
fn set_command_bits<A: ConfigurationAccess + ?Sized>(
    config: &Config<'_, A>,
    bits: CommandRegister,
) -> Result<CommandRegister, Error> {
    let address = config.address();
    let vendor = config.read(ID) as u16;
    if vendor == 0xffff || vendor == 0x0000 {
        return Err(Error::FunctionAbsent { address });
    }
    let current = config.read(COMMAND_STATUS);
    if current == u32::MAX {
        return Err(Error::FunctionAbsent { address });
    }
    let command = CommandRegister::from_bits_retain(current as u16);
    if command.contains(bits) {
        return Ok(command);
    }
    let wanted = command | bits;
    config.write(COMMAND_STATUS, u32::from(wanted.bits()));

    let read_back = CommandRegister::from_bits_retain(config.read(COMMAND_STATUS) as u16);
    if !read_back.contains(DMA_BITS & bits) {
        log::warn!(
            "pci {address}: command {:#06x} written, {:#06x} read back",
            wanted.bits(),
            read_back.bits()
        );
        return Err(Error::CommandNotAccepted {
            address,
            written: wanted.bits(),
            read_back: read_back.bits(),
        });
    }
    Ok(read_back)
}
