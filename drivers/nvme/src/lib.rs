//! Polled NVMe driver with a block API, host-testable against a simulated controller.
//!
//! The driver reaches hardware only through the traits in [`hal`]
//! (register access, DMA memory, time), implemented by the kernel on real
//! machines and by a simulated controller in the host tests. Modules are
//! named after the parts of the NVMe base specification (1.4 numbering in
//! the doc comments). This file only declares and re-exports.
//!
//! No `unsafe` here: memory shared with the device is the `dma` crate's
//! (see [`hal`]), register access the kernel's.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod block;
pub mod command;
pub mod controller;
pub mod error;
pub mod hal;
pub(crate) mod hmb;
pub mod identify;
pub mod log_page;
pub mod namespace;
pub(crate) mod prp;
pub(crate) mod queue;
pub mod quirks;
pub mod registers;
pub mod zoned;

pub use block::{BlockDevice, Completion, Identity, IoOp, IoQueue};
pub use command::{Status, StatusCodeType};
pub use controller::{Config, Controller, ControllerInfo, NamespaceInfo};
pub use error::{Error, ErrorKind, Stage};
pub use hal::{Clock, DmaAllocator, DmaError, DmaRegion, PhysAddr, RegisterAccess};
pub use identify::{IdentifyController, IdentifyNamespace, LbaFormat, Oncs};
pub use log_page::{CriticalWarning, ErrorLogEntry, SmartLog};
pub use quirks::Quirks;
pub use zoned::ZoneInfo;
