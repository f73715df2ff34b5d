//! What several simulator test files share. A file declares `mod common`
//! and uses the parts it needs.

#![allow(dead_code, reason = "each test file uses a different part")]

pub mod async_reads;
pub mod executor;
pub mod io_faults;
pub mod requests;
