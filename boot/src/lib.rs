//! Host side of the unikernel: bootable disk images and the USB-stick
//! writer; the QEMU launcher and the kernel test runner.
//!
//! Applications: [`app`] (building an application crate, in the workspace
//! or outside it, for the bare-metal target). Images: [`image`] (dual-firmware disk images), [`disk`] (scratch disks
//! and the ownership stamp), [`flash`] (the USB writer). Booting: [`qemu`]
//! (the typed machine description and the launcher), [`runner`] (cargo's
//! runner for kernel tests). The command line is `boot/cli`, the Linux
//! comparison `boot/compare`.
//!
//! Nothing here imports kernel code: a kernel is an ELF file on disk, turned
//! into a disk image with the `bootloader` crate and booted in QEMU. The
//! kernel reports its status through QEMU's isa-debug-exit device, decoded by
//! [`qemu::Outcome`].

pub mod app;
pub mod disk;
pub mod flash;
pub mod image;
pub mod progress;
pub mod qemu;
pub mod runner;
