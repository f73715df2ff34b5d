//! PCI configuration space: enumeration, BAR decoding, capabilities, and command-register set-up.
//!
//! The crate reaches hardware only through its own [`ConfigurationAccess`] trait, which the
//! kernel implements over ECAM (MCFG) or the legacy 0xCF8/0xCFC ports and the tests implement
//! over a simulated configuration space. The trait is safe to call; its implementer guarantees
//! that every access is sound, so the crate forbids `unsafe` code. Identification fields, BAR
//! sizing, the capability walk and command-register writes are all done here rather than with
//! `pci_types` (whose accesses are `unsafe`; its 0.10 also sizes BARs with decoding left on,
//! panics on a reserved BAR type, overflows on a zero size mask, follows capability pointers
//! without bounding the walk, and writes the status half of the command dword back, clearing its
//! write-1-to-clear bits). `pci_types` still gives the address and command-register types.
//!
//! Modules, bottom to top; each imports only modules listed before it:
//! - `config`: the [`ConfigurationAccess`] trait, the offset check in front of it, register
//!   offsets.
//! - `class`: lspci's class and subclass names.
//! - `power_state`: device power states and PMCSR, the register that holds them.
//! - `storage_mode`: Intel VMD and RAID-mode controllers that hide NVMe drives, by their IDs.
//! - `error`: the error enum and the enumeration problems.
//! - `bar`: BAR probing (decoding off) and decoding.
//! - `bridge`: a bridge's memory windows, read from its type 1 header.
//! - `capability`: the bounded capability-list walk and typed capabilities.
//! - `command`: enabling a function (and the bridges above it) for MMIO and DMA.
//! - `power`: bringing a function to D0 through its power-management capability.
//! - `function`: one function's identification, header kind, and lspci-like display.
//! - `enumerate`: the bus walk from the host bridges through PCI-to-PCI bridges.
//! - `ecam`: MCFG entries and the ECAM address arithmetic the kernel maps with.
//! - `vmd`: the PCI domain behind an Intel VMD (its CFGBAR as ECAM, its memory windows).
//! - `prepare`: everything a driver needs done to its function, checks first.
//!
//! Requirement on the [`ConfigurationAccess`] implementation, beyond soundness: every
//! well-formed `PciAddress` in the bus ranges passed to [`enumerate`] (and every address passed
//! to [`enable_for_dma`] or [`prepare_for_driver`], with the bridges above it) must be readable
//! and writable at dword-aligned offsets below 0x100; an absent function must read all-ones, as
//! both configuration mechanisms do.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod bar;
mod bridge;
mod capability;
mod class;
mod command;
mod config;
mod ecam;
mod enumerate;
mod error;
mod function;
mod power;
mod power_state;
mod prepare;
mod storage_mode;
mod vmd;

pub use bar::{BarKind, DecodedBar};
pub use bridge::{BridgeWindows, MemoryWindow};
pub use capability::{Capability, CapabilityKind, PciExpressPortType};
pub use class::class_name;
pub use command::enable_for_dma;
pub use config::ConfigurationAccess;
pub use ecam::{BUS_WINDOW_SIZE, EcamEntry, FUNCTION_WINDOW_SIZE};
pub use enumerate::{BusRange, Enumeration, EnumerationOptions, enumerate, enumerate_with};
pub use error::{BarDefect, BridgeDefect, CapabilityDefect, EcamDefect, Error, Problem};
pub use function::{Function, HeaderKind, is_nvme};
pub use pci_types::{CommandRegister, PciAddress};
pub use power::Delay;
pub use power_state::{D2_TO_D0_DELAY_US, D3HOT_TO_D0_DELAY_US, PowerState};
pub use prepare::{prepare_behind_vmd, prepare_for_driver};
pub use storage_mode::{HIDDEN_STORAGE_ADVICE, StorageHider};
pub use vmd::VmdDomain;
