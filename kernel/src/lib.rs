//! The unikernel library.
#![no_std]
