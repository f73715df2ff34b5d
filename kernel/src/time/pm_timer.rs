//! The ACPI power-management timer as a TSC reference.
//!
//! ACPI 6.5 section 4.8.3.3: a free-running counter at 3.579545 MHz, 24
//! bits wide unless the FADT's TMR_VAL_EXT flag says 32. The FADT gives
//! its address as PM_TMR_BLK (an I/O port) or, from revision 2, as
//! X_PM_TMR_BLK (a generic address, in I/O or memory space); the `acpi`
//! crate picks between them. The timer cannot be stopped, so it needs no
//! set-up.

use acpi::address::{AddressSpace, GenericAddress};
use acpi::fadt::Fadt;
use x86_64::instructions::port::Port;
use x86_64::{PhysAddr, VirtAddr};

use super::counter::Counter;
use super::select::Rejection;
use crate::acpi::Acpi;
use crate::memory::Memory;

/// The timer's frequency.
pub const FREQUENCY_HZ: u64 = 3_579_545;
/// Mask of a 24-bit timer.
const MASK_24: u64 = 0xff_ffff;
/// Mask of a 32-bit timer.
const MASK_32: u64 = 0xffff_ffff;
/// Bytes of the timer register.
const REGISTER_LEN: u64 = 4;

/// Where the timer register is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// An I/O port.
    Port(u16),
    /// Physical memory.
    Memory(PhysAddr),
}

/// Where the FADT's timer block is and how wide the counter is.
pub fn locate(base: GenericAddress, is_32_bit: bool) -> Result<(Location, u64), Rejection> {
    let mask = if is_32_bit { MASK_32 } else { MASK_24 };
    let location = match base.address_space {
        AddressSpace::SystemIo => u16::try_from(base.address)
            .ok()
            .filter(|port| *port != 0)
            .map(Location::Port),
        AddressSpace::SystemMemory => PhysAddr::try_new(base.address)
            .ok()
            .filter(|a| a.as_u64() != 0 && a.as_u64().is_multiple_of(REGISTER_LEN))
            .map(Location::Memory),
        _ => None,
    };
    Ok((location.ok_or(Rejection::BadDescription)?, mask))
}

/// How the register is reached once mapped.
#[derive(Clone, Copy, Debug)]
enum Access {
    Port(u16),
    Memory(VirtAddr),
}

/// A PM timer ready to read.
#[derive(Clone, Copy, Debug)]
pub struct PmTimer {
    access: Access,
    mask: u64,
}

impl PmTimer {
    /// The timer the FADT describes.
    pub fn from_acpi(acpi: &Acpi, memory: &Memory) -> Result<PmTimer, Rejection> {
        let tables = acpi.tables().ok_or(Rejection::Absent)?;
        let fadt = tables.find_table::<Fadt>().map_err(|_| Rejection::Absent)?;
        let base = match fadt.pm_timer_block() {
            Ok(Some(base)) => base,
            Ok(None) => return Err(Rejection::Absent),
            Err(_) => return Err(Rejection::BadDescription),
        };
        let (location, mask) = locate(base, { fadt.flags }.pm_timer_is_32_bit())?;
        let access = match location {
            Location::Port(port) => Access::Port(port),
            Location::Memory(phys) => {
                let region = memory
                    .map_mmio(phys, REGISTER_LEN)
                    .map_err(|_| Rejection::Unmappable)?;
                Access::Memory(region.virt)
            }
        };
        Ok(PmTimer { access, mask })
    }
}

impl Counter for PmTimer {
    fn read(&self) -> u64 {
        let value: u32 = match self.access {
            // SAFETY: the FADT names this port as the PM timer, which is
            // read-only and has no side effect on read.
            Access::Port(port) => unsafe { Port::<u32>::new(port).read() },
            // SAFETY: `virt` is an uncached mapping of the 4-byte register
            // (`from_acpi`, aligned per `locate`), never unmapped.
            Access::Memory(virt) => unsafe { virt.as_ptr::<u32>().read_volatile() },
        };
        u64::from(value)
    }

    fn mask(&self) -> u64 {
        self.mask
    }

    fn hz(&self) -> u64 {
        FREQUENCY_HZ
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acpi::address::AccessSize;

    fn address(address_space: AddressSpace, address: u64) -> GenericAddress {
        GenericAddress {
            address_space,
            bit_width: 32,
            bit_offset: 0,
            access_size: AccessSize::DWordAccess,
            address,
        }
    }

    #[test_case]
    fn io_and_memory_blocks_and_widths() {
        assert_eq!(
            locate(address(AddressSpace::SystemIo, 0x608), true),
            Ok((Location::Port(0x608), MASK_32))
        );
        assert_eq!(
            locate(address(AddressSpace::SystemIo, 0xb008), false),
            Ok((Location::Port(0xb008), MASK_24))
        );
        assert_eq!(
            locate(address(AddressSpace::SystemMemory, 0xfe00_0008), false),
            Ok((Location::Memory(PhysAddr::new(0xfe00_0008)), MASK_24))
        );
    }

    #[test_case]
    fn unusable_blocks_are_rejected() {
        for bad in [
            address(AddressSpace::SystemIo, 0x1_0000),
            address(AddressSpace::SystemIo, 0),
            address(AddressSpace::SystemMemory, 0xfe00_0002),
            address(AddressSpace::PciConfigSpace, 0x608),
        ] {
            assert_eq!(locate(bad, true), Err(Rejection::BadDescription));
        }
    }
}
