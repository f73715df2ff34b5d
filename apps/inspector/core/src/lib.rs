//! The default application's plain logic, apart from the image so it runs
//! on the host too: the settings file ([`settings`]), the write-read-verify
//! pass ([`verify`]) over a [`BlockTarget`] ([`target`]), the benchmark's
//! jobs ([`bench`], measured into [`figures`]) and the soak ([`soak`]) over
//! a raw `nvme::IoQueue`, timed by [`Ticks`] ([`ticks`]). The hardware is
//! the NVMe driver's: the kernel's mapped registers and DMA memory in the
//! image, the simulated controller in the host tests (`tests/`).
//!
//! Modules, bottom to top: `settings`, `ticks` and `figures` (none imports
//! another module), `target`, then `verify`, `bench` and `soak`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod bench;
pub mod figures;
pub mod settings;
pub mod soak;
pub mod target;
pub mod ticks;
pub mod verify;

pub use figures::JobResult;
pub use settings::{Settings, Steps};
pub use target::BlockTarget;
pub use ticks::{ClockTicks, Ticks};
pub use verify::{Event, Pass, VerifyReport, verify};
