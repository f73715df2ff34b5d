//! PCI configuration space: enumeration, BAR decoding, capabilities, and command-register set-up.
//!
//! The crate reaches hardware only through [`pci_types::ConfigRegionAccess`], which the
//! kernel implements over ECAM (MCFG) or the legacy 0xCF8/0xCFC ports and the tests implement
//! over a simulated configuration space. Identification fields are read with `pci_types`'
//! header types; BAR sizing, the capability walk and command-register writes are done here,
//! because `pci_types` 0.10 sizes BARs with decoding left on, panics on a reserved BAR type,
//! overflows on a zero size mask, follows capability pointers without bounding the walk, and
//! writes the status half of the command dword back (clearing its write-1-to-clear bits).
//!
//! Modules:
//! - `config`: the only module with `unsafe`: raw dword reads and writes, register offsets.
//! - `enumerate`: the bus walk from the host bridges through PCI-to-PCI bridges.
//! - `function`: one function's identification, header kind, and lspci-like display.
//! - `bar`: BAR probing (decoding off) and decoding.
//! - `capability`: the bounded capability-list walk and typed capabilities.
//! - `class`: lspci's class and subclass names.
//! - `command`: enabling a function (and the bridges above it) for MMIO and DMA.
//! - `bridge`: a bridge's memory windows, read from its type 1 header.
//! - `power`: the power-management capability; bringing a function to D0.
//! - `prepare`: everything a driver needs done to its function, checks first.
//! - `ecam`: MCFG entries and the ECAM address arithmetic the kernel maps with.
//! - `storage_mode`: Intel VMD and RAID-mode controllers that hide NVMe drives.
//! - `vmd`: the PCI domain behind an Intel VMD (its CFGBAR as ECAM, its memory windows).
//! - `error`: the error enum and the enumeration problems.
//!
//! Requirement on the `ConfigRegionAccess` implementation: every well-formed `PciAddress` in
//! the bus ranges passed to [`enumerate`] (and every address passed to [`enable_for_dma`] or
//! [`prepare_for_driver`], with the bridges above it) must
//! be safe to read and write at dword-aligned offsets below 0x100; an absent function must read
//! all-ones, as both configuration mechanisms do.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
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
mod prepare;
mod storage_mode;
mod vmd;

pub use bar::{BarKind, DecodedBar};
pub use bridge::{BridgeWindows, MemoryWindow};
pub use capability::{Capability, CapabilityKind, PciExpressPortType};
pub use class::class_name;
pub use command::enable_for_dma;
pub use ecam::{BUS_WINDOW_SIZE, EcamEntry, FUNCTION_WINDOW_SIZE};
pub use enumerate::{BusRange, Enumeration, EnumerationOptions, enumerate, enumerate_with};
pub use error::{BarDefect, BridgeDefect, CapabilityDefect, EcamDefect, Error, Problem};
pub use function::{Function, HeaderKind, is_nvme};
pub use pci_types::{CommandRegister, ConfigRegionAccess, PciAddress};
pub use power::{D2_TO_D0_DELAY_US, D3HOT_TO_D0_DELAY_US, Delay, PowerState};
pub use prepare::{prepare_behind_vmd, prepare_for_driver};
pub use storage_mode::{HIDDEN_STORAGE_ADVICE, StorageHider};
pub use vmd::VmdDomain;
