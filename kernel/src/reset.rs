//! Restarting a real PC, and the end of a run on one: the report stays on
//! screen until a key is pressed, then the machine restarts.
//!
//! Methods, tried in order, each printed (serial and screen, whatever the
//! log filter) before it is tried and followed by a short wait (a reset takes effect within microseconds where it works):
//! 1. The ACPI reset register (ACPI 6.5 §4.8.3.6): the FADT's RESET_REG, a
//!    Generic Address in I/O, memory or PCI configuration space, written
//!    with RESET_VALUE, when the FADT's RESET_REG_SUP flag says it works.
//! 2. The reset control register at I/O port 0xCF9 found on Intel and AMD
//!    chipsets (Intel PCH datasheets, "Reset Control Register"): SYS_RST
//!    first, then SYS_RST with RST_CPU, a hard reset.
//! 3. The keyboard controller's pulse-reset command (0xFE to port 0x64).
//! 4. A triple fault: no IDT, then an exception. Every x86 CPU resets on
//!    it (the chipset turns the shutdown cycle into a reset).

use core::fmt;

use acpi::AcpiTable;
use x86_64::instructions::port::{Port, PortWriteOnly};
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PhysAddr, VirtAddr};

use crate::acpi::Acpi;
use crate::arch::keyboard::{Command, Keyboard};
use crate::arch::tsc;
use crate::console::serial;
use crate::memory::Memory;

/// How long each method gets to take effect before the next is tried.
const RESET_WAIT_US: u64 = 500_000;
/// Pause between two polls of the keyboard and serial port.
const KEY_POLL_INTERVAL_US: u64 = 1_000;
/// The prompt shown when a key press restarts the machine.
pub const PROMPT: &str = "Press any key to restart.";

/// Reset control register (I/O port 0xCF9) and its bits.
const RESET_CONTROL_PORT: u16 = 0xcf9;
/// System reset: with RST_CPU, a hard reset (the platform, not only the CPU).
const SYS_RST: u8 = 1 << 1;
/// Reset CPU: its 0-to-1 transition starts the reset SYS_RST selects.
const RST_CPU: u8 = 1 << 2;
/// Time between the two writes of the 0xCF9 sequence.
const RESET_CONTROL_SETUP_US: u64 = 50;

/// PCI configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2), for an
/// ACPI reset register in configuration space.
const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
const PCI_CONFIG_DATA: u16 = 0xcfc;
const PCI_CONFIG_ENABLE: u32 = 1 << 31;

/// FADT byte offset just past RESET_VALUE: a shorter (ACPI 1.0) FADT has
/// no reset register.
const FADT_RESET_VALUE_END: u32 = 129;

/// The ways of restarting, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResetMethod {
    /// The FADT's reset register.
    AcpiRegister,
    /// The chipset's reset control register at port 0xCF9.
    ResetControl,
    /// The i8042 keyboard controller's pulse-reset command.
    KeyboardController,
    /// A triple fault.
    TripleFault,
}

impl ResetMethod {
    /// Every method, in the order tried.
    pub const ALL: [ResetMethod; 4] = [
        ResetMethod::AcpiRegister,
        ResetMethod::ResetControl,
        ResetMethod::KeyboardController,
        ResetMethod::TripleFault,
    ];

    /// The method's short name (also accepted by [`ResetMethod::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            ResetMethod::AcpiRegister => "acpi",
            ResetMethod::ResetControl => "cf9",
            ResetMethod::KeyboardController => "keyboard",
            ResetMethod::TripleFault => "triple-fault",
        }
    }

    /// The method named `name` (see [`ResetMethod::name`]).
    pub fn parse(name: &str) -> Option<ResetMethod> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for ResetMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a method was not tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetError {
    /// No usable ACPI tables or no FADT.
    NoFadt,
    /// The FADT says the reset register is not supported (or predates it).
    NotSupported,
    /// The reset register is in an address space this kernel cannot write.
    AddressSpace,
    /// The reset register's memory could not be mapped.
    Unmappable,
    /// No keyboard controller answers.
    NoKeyboardController,
    /// The keyboard controller did not take the command in time.
    KeyboardBusy,
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResetError::NoFadt => "no FADT",
            ResetError::NotSupported => "the FADT has no supported reset register",
            ResetError::AddressSpace => "the reset register is in an unsupported address space",
            ResetError::Unmappable => "the reset register could not be mapped",
            ResetError::NoKeyboardController => "no keyboard controller",
            ResetError::KeyboardBusy => "the keyboard controller stayed busy",
        })
    }
}

/// Show the prompt as the last line, wait for a key (PS/2 keyboard through
/// the i8042, or a byte on serial), then restart. Used at the end of a run
/// on real hardware, where the report must stay on screen until read.
///
/// With neither a keyboard controller nor a serial port there is nothing
/// to wait on: the machine says so and halts.
pub fn wait_for_key_then_restart(memory: &Memory, rsdp: Option<PhysAddr>) -> ! {
    wait_for_key_then_restart_from(memory, rsdp, ResetMethod::AcpiRegister)
}

/// [`wait_for_key_then_restart`], trying reset methods from `first` on
/// (tests use it to reach the later methods on machines where the earlier
/// ones work).
pub fn wait_for_key_then_restart_from(
    memory: &Memory,
    rsdp: Option<PhysAddr>,
    first: ResetMethod,
) -> ! {
    x86_64::instructions::interrupts::disable();
    let mut keyboard = Keyboard::find();
    let serial_present = serial::present();
    if keyboard.is_none() && !serial_present {
        crate::println!("\nNo keyboard controller found: power the machine off when done.");
        crate::arch::halt_forever();
    }
    if let Some(keyboard) = keyboard.as_mut() {
        keyboard.flush();
    }
    serial::drain();
    crate::println!("\n{PROMPT}");
    loop {
        let key = keyboard.as_mut().and_then(Keyboard::poll_key_press);
        let byte = serial_present.then(|| serial::read_byte(0)).flatten();
        if let Some(source) = key
            .map(|code| ("keyboard", code))
            .or(byte.map(|byte| ("serial", byte)))
        {
            crate::println!("restart: key {:#04x} on {}", source.1, source.0);
            break;
        }
        tsc::delay_us(KEY_POLL_INTERVAL_US);
    }
    restart_from(memory, rsdp, first)
}

/// Restart the machine, trying every method in turn from `first`.
pub fn restart_from(memory: &Memory, rsdp: Option<PhysAddr>, first: ResetMethod) -> ! {
    x86_64::instructions::interrupts::disable();
    for method in ResetMethod::ALL.into_iter().filter(|&m| m >= first) {
        crate::println!("restart: trying {method}");
        let attempt = match method {
            ResetMethod::AcpiRegister => acpi_reset(memory, rsdp),
            ResetMethod::ResetControl => {
                reset_control();
                Ok(())
            }
            ResetMethod::KeyboardController => keyboard_reset(),
            ResetMethod::TripleFault => triple_fault(),
        };
        match attempt {
            Ok(()) => {
                tsc::delay_us(RESET_WAIT_US);
                crate::println!("restart: {method} did not reset the machine");
            }
            Err(error) => crate::println!("restart: {method} skipped: {error}"),
        }
    }
    // The triple fault does not return; halting is for the impossible case.
    crate::arch::halt_forever()
}

/// Restart the machine, trying every method in turn.
pub fn restart(memory: &Memory, rsdp: Option<PhysAddr>) -> ! {
    restart_from(memory, rsdp, ResetMethod::AcpiRegister)
}

fn acpi_reset(memory: &Memory, rsdp: Option<PhysAddr>) -> Result<(), ResetError> {
    let acpi = Acpi::new(memory.physical_map(), rsdp);
    let tables = acpi.tables().ok_or(ResetError::NoFadt)?;
    let fadt = tables
        .find_table::<acpi::fadt::Fadt>()
        .map_err(|_| ResetError::NoFadt)?;
    let length = fadt.header().length;
    let flags = fadt.flags;
    if length < FADT_RESET_VALUE_END || !flags.supports_system_reset_via_fadt() {
        return Err(ResetError::NotSupported);
    }
    let register = fadt
        .reset_register()
        .map_err(|_| ResetError::AddressSpace)?;
    let value = fadt.reset_value;
    crate::println!(
        "restart: ACPI reset register {:?} {:#x} <- {value:#04x}",
        register.address_space,
        register.address
    );
    match register.address_space {
        acpi::address::AddressSpace::SystemIo => {
            let port = u16::try_from(register.address).map_err(|_| ResetError::AddressSpace)?;
            let mut port: PortWriteOnly<u8> = PortWriteOnly::new(port);
            // SAFETY: the firmware names this I/O port as the reset
            // register; writing RESET_VALUE is its documented use.
            unsafe { port.write(value) };
        }
        acpi::address::AddressSpace::SystemMemory => {
            let region = memory
                .map_mmio(
                    PhysAddr::try_new(register.address).map_err(|_| ResetError::Unmappable)?,
                    1,
                )
                .map_err(|_| ResetError::Unmappable)?;
            // SAFETY: `region` maps the firmware's reset register uncached,
            // one byte, for the kernel's life.
            unsafe { core::ptr::write_volatile(region.virt.as_mut_ptr::<u8>(), value) };
        }
        acpi::address::AddressSpace::PciConfigSpace => {
            // Segment 0, bus 0; device in bits 32..48, function 16..32,
            // offset 0..16 (ACPI 6.5 Table 5.1, Generic Address Structure).
            let device = ((register.address >> 32) & 0x1f) as u32;
            let function = ((register.address >> 16) & 0x07) as u32;
            let offset = (register.address & 0xff) as u32;
            let address = PCI_CONFIG_ENABLE | device << 11 | function << 8 | (offset & !3);
            let mut address_port: Port<u32> = Port::new(PCI_CONFIG_ADDRESS);
            let mut data: PortWriteOnly<u8> =
                PortWriteOnly::new(PCI_CONFIG_DATA + (offset & 3) as u16);
            // SAFETY: configuration mechanism #1, which every PC chipset
            // decodes; the firmware names this register as the reset
            // register, and nothing else uses the ports while the machine
            // restarts (interrupts are off, one processor runs).
            unsafe {
                address_port.write(address);
                data.write(value);
            }
        }
        _ => return Err(ResetError::AddressSpace),
    }
    Ok(())
}

fn reset_control() {
    let mut port: Port<u8> = Port::new(RESET_CONTROL_PORT);
    // SAFETY: port 0xCF9 is the chipset's reset control register on PCs
    // that have one (elsewhere the write goes nowhere); these writes
    // request a hard reset and nothing else.
    unsafe {
        port.write(SYS_RST);
        tsc::delay_us(RESET_CONTROL_SETUP_US);
        port.write(SYS_RST | RST_CPU);
    }
}

fn keyboard_reset() -> Result<(), ResetError> {
    let mut keyboard = Keyboard::find().ok_or(ResetError::NoKeyboardController)?;
    keyboard
        .command(Command::PulseReset)
        .map_err(|_| ResetError::KeyboardBusy)
}

fn triple_fault() -> Result<(), ResetError> {
    let empty = DescriptorTablePointer {
        limit: 0,
        base: VirtAddr::zero(),
    };
    // SAFETY: this ends the kernel on purpose: with an empty IDT the
    // breakpoint cannot be delivered, which escalates to a triple fault and
    // a processor reset. Nothing runs after it.
    unsafe { x86_64::instructions::tables::lidt(&empty) };
    x86_64::instructions::interrupts::int3();
    Ok(())
}
