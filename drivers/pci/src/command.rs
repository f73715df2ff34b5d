//! Command-register set-up: enabling a function to be driven with memory-mapped I/O and DMA.
//!
//! The command register shares a dword with the status register, whose error bits are
//! write-1-to-clear; the write is made with the status half zero so pending status is kept
//! (`pci_types`' `update_command` writes the status half back and would clear it).
//!
//! INTx disable (bit 10) was added in PCI 2.3; on older functions it is hard-wired to zero, so
//! a read-back without it is only logged. Memory decode and bus mastering must stick, or the
//! driver could not work: their absence is an [`Error`].

use pci_types::{CommandRegister, ConfigRegionAccess, PciAddress};

use crate::config::{COMMAND_STATUS, Config, ID};
use crate::error::Error;

/// Enables memory-space decoding and bus mastering and disables INTx for the function at
/// `address`, leaving I/O decoding and every other command bit as they are.
///
/// Fails with [`Error::FunctionAbsent`] if nothing answers at `address`, and with
/// [`Error::CommandNotAccepted`] if memory decoding or bus mastering did not stick.
pub fn enable_for_dma(access: &impl ConfigRegionAccess, address: PciAddress) -> Result<(), Error> {
    let config = Config::new(access, address);
    let vendor = config.read(ID) as u16;
    if vendor == 0xffff || vendor == 0x0000 {
        return Err(Error::FunctionAbsent { address });
    }
    let current = config.read(COMMAND_STATUS);
    if current == u32::MAX {
        return Err(Error::FunctionAbsent { address });
    }
    let command = CommandRegister::from_bits_retain(current as u16);
    let required = CommandRegister::MEMORY_ENABLE | CommandRegister::BUS_MASTER_ENABLE;
    let wanted = command | required | CommandRegister::INTERRUPT_DISABLE;
    config.write(COMMAND_STATUS, u32::from(wanted.bits()));

    let read_back = CommandRegister::from_bits_retain(config.read(COMMAND_STATUS) as u16);
    if !read_back.contains(required) {
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
    if !read_back.contains(CommandRegister::INTERRUPT_DISABLE) {
        log::info!("pci {address}: INTx disable not implemented (pre-PCI 2.3 function)");
    }
    Ok(())
}
