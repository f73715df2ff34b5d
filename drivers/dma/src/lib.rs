//! DMA memory shared with devices: regions, their hand-over, and ordering.
//!
//! Drivers get memory a device reads and writes from a [`DmaAllocator`]
//! (the kernel's frames on a real machine, host memory in tests) as
//! [`DmaRegion`]s: a virtual pointer, the [`PhysAddr`] the device uses,
//! and a length. This crate is where the `unsafe` of DMA lives, so the
//! drivers above it can forbid `unsafe` code:
//!
//! - [`DmaRegion::new`] is the one unsafe constructor: its caller (the
//!   allocator) promises valid, exclusive, DMA-able memory; every access
//!   after that is safe and bounds-checked. Entries the device reads or
//!   writes concurrently (queue rings, PRP lists) go through the `volatile`
//!   crate's [`volatile::VolatilePtr`].
//! - [`SharedDwords`] is a page several queues (on several cores) and the
//!   device share one aligned dword at a time, through atomics.
//! - [`DmaBuffer`] is memory an application owns and passes into a
//!   request by value: page aligned, its physical address known, freed
//!   through its allocator (a [`DmaHome`]) when dropped.
//! - [`Lent`] and [`Custody`] say in types which memory the device may be
//!   using: memory lent to it shows only its bus address until a
//!   [`Returned`] proves the device gave it back.
//! - [`ordering`] holds every fence the hand-over needs: release before a
//!   doorbell, acquire after a completion's phase flip, full between a
//!   shadow doorbell store and the EventIdx load.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

mod addr;
mod buffer;
#[cfg(any(test, feature = "host"))]
pub mod host;
mod lent;
pub mod ordering;
mod region;
mod shared;

pub use addr::PhysAddr;
pub use buffer::{DmaBuffer, DmaHome};
pub use lent::{Custody, Lent};
pub use ordering::Returned;
pub use region::{DmaAllocator, DmaError, DmaRegion, DmaRing, VolatileDwords};
pub use shared::SharedDwords;
