//! Intel VT-d DMA remapping, as far as a kernel that does its own DMA
//! without an IOMMU needs it: find the remapping units in the ACPI DMAR
//! table ([`dmar`]), read their registers and turn off translation that
//! firmware left on ([`unit`]).
//!
//! Firmware on some PCs leaves VT-d translating when it hands over (to
//! protect itself from devices during boot, or because a pre-boot
//! environment used it). A device's DMA then goes through page tables the
//! kernel never built: it faults, or lands in the wrong memory. The kernel
//! reads DMAR, maps each unit's register page and turns translation off
//! before any NVMe controller is brought up.
//!
//! Like the other driver crates this one knows nothing of the kernel: it
//! reads tables from byte slices and reaches registers and time through the
//! small traits in [`hardware`], so the whole of it runs on the host against
//! tables built byte by byte and a fake register file. References are to
//! the Intel Virtualization Technology for Directed I/O Architecture
//! Specification (revision 4.x; the sections cited have been stable since
//! revision 2).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dmar;
pub mod hardware;
pub mod registers;
pub mod unit;

pub use dmar::{DeviceScope, Dmar, DmarError, Drhd, RemappingStructure, Rmrr, ScopeType};
pub use hardware::{Clock, RegisterAccess};
pub use unit::{RemappingUnit, Stage, UnitError, UnitState};
