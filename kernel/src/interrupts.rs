//! The interrupt descriptor table: a handler for every CPU exception.
//!
//! Each handler prints the exception's name, its error code, the faulting
//! instruction and (for page faults) the address, straight to the consoles
//! without taking locks (the fault may have hit while a console was held),
//! then stops the machine with `ExitStatus::CpuException`. The breakpoint
//! exception is the one that resumes.
//!
//! Tests that provoke a fault on purpose announce it first with
//! [`expect_fault`]; the handler then reports the fault as expected and exits
//! with success, or with failure when the details (such as the page-fault
//! address) differ from what was announced.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use spin::Once;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use crate::arch::exit::{ExitStatus, exit};
use crate::console::emergency_print;

static IDT: Once<InterruptDescriptorTable> = Once::new();
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);
static EXPECTED: AtomicU8 = AtomicU8::new(Expected::Nothing as u8);
static EXPECTED_ADDRESS: AtomicU64 = AtomicU64::new(0);

/// A fault a test provokes on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Expected {
    /// No fault is expected: every fault stops the machine with failure.
    Nothing = 0,
    /// A double fault (for example from a stack overflow).
    DoubleFault = 1,
    /// A page fault at the address given to [`expect_fault`].
    PageFault = 2,
}

/// Announce that the next fault of `kind` is intended; for a page fault,
/// `address` is the address that must be reported.
pub fn expect_fault(kind: Expected, address: u64) {
    EXPECTED_ADDRESS.store(address, Ordering::SeqCst);
    EXPECTED.store(kind as u8, Ordering::SeqCst);
}

/// How many breakpoint exceptions were handled so far.
pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::SeqCst)
}

fn expected() -> Expected {
    match EXPECTED.load(Ordering::SeqCst) {
        1 => Expected::DoubleFault,
        2 => Expected::PageFault,
        _ => Expected::Nothing,
    }
}

/// Build and load the IDT. Requires the GDT (for the double-fault stack).
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        idt.divide_error.set_handler_fn(divide_error);
        idt.debug.set_handler_fn(debug);
        idt.non_maskable_interrupt
            .set_handler_fn(non_maskable_interrupt);
        idt.breakpoint.set_handler_fn(breakpoint);
        idt.overflow.set_handler_fn(overflow);
        idt.bound_range_exceeded
            .set_handler_fn(bound_range_exceeded);
        idt.invalid_opcode.set_handler_fn(invalid_opcode);
        idt.device_not_available
            .set_handler_fn(device_not_available);
        // SAFETY: DOUBLE_FAULT_IST_INDEX names the IST entry that gdt::init
        // filled with a dedicated, otherwise unused stack.
        unsafe {
            idt.double_fault
                .set_handler_fn(double_fault)
                .set_stack_index(crate::arch::gdt::DOUBLE_FAULT_IST_INDEX);
        }
        idt.invalid_tss.set_handler_fn(invalid_tss);
        idt.segment_not_present.set_handler_fn(segment_not_present);
        idt.stack_segment_fault.set_handler_fn(stack_segment_fault);
        idt.general_protection_fault
            .set_handler_fn(general_protection_fault);
        idt.page_fault.set_handler_fn(page_fault);
        idt.x87_floating_point.set_handler_fn(x87_floating_point);
        idt.alignment_check.set_handler_fn(alignment_check);
        idt.machine_check.set_handler_fn(machine_check);
        idt.simd_floating_point.set_handler_fn(simd_floating_point);
        idt.virtualization.set_handler_fn(virtualization);
        idt.cp_protection_exception
            .set_handler_fn(control_protection);
        idt.hv_injection_exception
            .set_handler_fn(hypervisor_injection);
        idt.vmm_communication_exception
            .set_handler_fn(vmm_communication);
        idt.security_exception.set_handler_fn(security_exception);
        idt
    });
    idt.load();
}

/// Report an exception and stop the machine.
fn fatal(name: &str, vector: u8, error_code: Option<u64>, frame: &InterruptStackFrame) -> ! {
    emergency_print(format_args!(
        "\nCPU EXCEPTION: {name} (vector {vector})\n  error code: {}\n  instruction: {:#x}\n  stack pointer: {:#x}\n  code segment: {:?}\n  flags: {:?}\n",
        ErrorCode(error_code),
        frame.instruction_pointer.as_u64(),
        frame.stack_pointer.as_u64(),
        frame.code_segment,
        frame.cpu_flags,
    ));
    exit(ExitStatus::CpuException)
}

struct ErrorCode(Option<u64>);

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(code) => write!(f, "{code:#x}"),
            None => f.write_str("none"),
        }
    }
}

macro_rules! exception_without_code {
    ($($handler:ident => $name:literal, $vector:literal;)*) => {$(
        extern "x86-interrupt" fn $handler(frame: InterruptStackFrame) {
            fatal($name, $vector, None, &frame)
        }
    )*};
}

macro_rules! exception_with_code {
    ($($handler:ident => $name:literal, $vector:literal;)*) => {$(
        extern "x86-interrupt" fn $handler(frame: InterruptStackFrame, code: u64) {
            fatal($name, $vector, Some(code), &frame)
        }
    )*};
}

exception_without_code! {
    divide_error => "divide error (#DE)", 0;
    debug => "debug (#DB)", 1;
    non_maskable_interrupt => "non-maskable interrupt (NMI)", 2;
    overflow => "overflow (#OF)", 4;
    bound_range_exceeded => "bound range exceeded (#BR)", 5;
    invalid_opcode => "invalid opcode (#UD)", 6;
    device_not_available => "device not available (#NM)", 7;
    x87_floating_point => "x87 floating-point error (#MF)", 16;
    simd_floating_point => "SIMD floating-point exception (#XM)", 19;
    virtualization => "virtualization exception (#VE)", 20;
    hypervisor_injection => "hypervisor injection exception (#HV)", 28;
}

exception_with_code! {
    invalid_tss => "invalid TSS (#TS)", 10;
    segment_not_present => "segment not present (#NP)", 11;
    stack_segment_fault => "stack-segment fault (#SS)", 12;
    general_protection_fault => "general protection fault (#GP)", 13;
    alignment_check => "alignment check (#AC)", 17;
    control_protection => "control protection exception (#CP)", 21;
    vmm_communication => "VMM communication exception (#VC)", 29;
    security_exception => "security exception (#SX)", 30;
}

extern "x86-interrupt" fn breakpoint(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
    log::info!(
        "breakpoint (#BP) at {:#x}; resuming",
        frame.instruction_pointer.as_u64().wrapping_sub(1)
    );
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    fatal("machine check (#MC)", 18, None, &frame)
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    if expected() == Expected::DoubleFault {
        emergency_print(format_args!(
            "double fault (#DF) caught on its own stack, as expected (instruction {:#x})\n",
            frame.instruction_pointer.as_u64()
        ));
        crate::testing::finish_expected_fault();
    }
    fatal("double fault (#DF)", 8, Some(code), &frame)
}

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    let address = Cr2::read_raw();
    emergency_print(format_args!(
        "\nCPU EXCEPTION: page fault (#PF, vector 14)\n  accessed address: {address:#x}\n  error code: {:#x} {:?}\n  instruction: {:#x}\n",
        code.bits(),
        code,
        frame.instruction_pointer.as_u64(),
    ));
    if expected() == Expected::PageFault {
        if address == EXPECTED_ADDRESS.load(Ordering::SeqCst) {
            emergency_print(format_args!("page fault at the expected address\n"));
            crate::testing::finish_expected_fault();
        }
        emergency_print(format_args!(
            "page fault at {address:#x}, but {:#x} was expected\n",
            EXPECTED_ADDRESS.load(Ordering::SeqCst)
        ));
        exit(ExitStatus::Failure);
    }
    exit(ExitStatus::CpuException)
}
