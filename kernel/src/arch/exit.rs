//! Stopping the machine with a status: QEMU's isa-debug-exit device when
//! running under QEMU, a halt loop on real hardware.
//!
//! QEMU is recognised by its firmware configuration device (fw_cfg), whose
//! selector port 0x510 and data port 0x511 return the signature "QEMU";
//! on real machines those ports are unclaimed and read as all-ones, so the
//! check is harmless there. isa-debug-exit (iobase 0xf4) makes QEMU exit
//! with `(value << 1) | 1`; the host side decodes the status from that.

use x86_64::instructions::port::Port;

/// Port of QEMU's isa-debug-exit device (see `boot/`'s QEMU command line).
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Added to every status written to isa-debug-exit, so that no status maps to
/// QEMU exit code 1 (which QEMU itself uses for its own errors).
const DEBUG_EXIT_BASE: u32 = 0x10;
const FW_CFG_SELECTOR_PORT: u16 = 0x510;
const FW_CFG_DATA_PORT: u16 = 0x511;
const FW_CFG_SIGNATURE: u16 = 0x0000;

/// How the kernel ends. The host side maps these back to process exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The application or test run succeeded.
    Success = 0,
    /// The application or a test reported failure.
    Failure = 1,
    /// A panic stopped the kernel.
    Panic = 2,
    /// An unexpected CPU exception stopped the kernel.
    CpuException = 3,
}

/// True when running under QEMU (fw_cfg answers with its signature).
pub fn running_in_qemu() -> bool {
    let mut selector: Port<u16> = Port::new(FW_CFG_SELECTOR_PORT);
    let mut data: Port<u8> = Port::new(FW_CFG_DATA_PORT);
    let mut signature = [0u8; 4];
    // SAFETY: selecting fw_cfg item 0 and reading its data port has no side
    // effect beyond fw_cfg's own read cursor; where no fw_cfg exists the
    // ports are unclaimed and reads return all-ones.
    unsafe {
        selector.write(FW_CFG_SIGNATURE);
        for byte in &mut signature {
            *byte = data.read();
        }
    }
    &signature == b"QEMU"
}

/// Stop the machine with `status`: QEMU exits, real hardware halts.
pub fn exit(status: ExitStatus) -> ! {
    if running_in_qemu() {
        let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
        // SAFETY: under QEMU, port 0xf4 is the isa-debug-exit device the
        // launcher configures; writing it terminates the virtual machine.
        unsafe { port.write(DEBUG_EXIT_BASE + u32::from(status as u8)) };
    }
    super::halt_forever()
}
