//! The default application's plain logic, apart from the image so it runs
//! on the host too: the settings file ([`settings`]) and the
//! write-read-verify pass ([`verify`]) over a [`BlockTarget`] ([`target`]):
//! an NVMe namespace, whether the kernel's (in the image) or the simulated
//! controller's (host tests, `tests/verify_sim.rs`).
//!
//! Modules, bottom to top: `settings` (imports nothing), `target`, then
//! `verify`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod settings;
pub mod target;
pub mod verify;

pub use settings::{Settings, Steps};
pub use target::BlockTarget;
pub use verify::{Event, Pass, VerifyReport, verify};
