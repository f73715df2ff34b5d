//! Host side of the unikernel: bootable disk images, the QEMU launcher, the
//! kernel test runner, and the USB-stick writer.
//!
//! Nothing here imports kernel code: a kernel is an ELF file on disk, turned
//! into a disk image with the `bootloader` crate and booted in QEMU. The
//! kernel reports its status through QEMU's isa-debug-exit device, decoded by
//! [`qemu::Outcome`].

pub mod compare;
pub mod disk;
pub mod flash;
pub mod image;
pub mod linux;
pub mod qemu;
pub mod runner;
