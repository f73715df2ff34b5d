//! The in-QEMU test framework: runs `#[test_case]` functions, prints each
//! name with `ok` or `FAILED` in `cargo test`'s shape, and ends the run
//! through isa-debug-exit so the host runner sees the result.
//!
//! A failing assertion panics; the panic handler then reports the running
//! test as FAILED, prints the closing `test result:` line and exits with
//! failure (a kernel cannot unwind, so the first failure ends the run).
//! Tests that are meant to fault or panic run in their own kernels
//! (`harness = false`) and say so first with [`expect_panic`] or, for a CPU
//! exception, `interrupts::expect_fault` (the exception handlers sit one
//! layer up and end such a run through [`finish_expected_fault`]).

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::exit::{ExitStatus, exit};
use crate::console::emergency_print;
use crate::{print, println};

static PASSED: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);
static EXPECT_PANIC: AtomicBool = AtomicBool::new(false);

/// Something the test runner can run and name.
pub trait Testable {
    /// Run the test, printing its name and `ok`.
    fn run(&self);
}

impl<T: Fn()> Testable for T {
    fn run(&self) {
        let name = core::any::type_name::<T>();
        let name = name.split_once("::").map_or(name, |(_, rest)| rest);
        print!("test {name} ... ");
        self();
        PASSED.fetch_add(1, Ordering::SeqCst);
        println!("ok");
    }
}

/// The custom test framework's runner.
pub fn run_tests(tests: &[&dyn Testable]) {
    TOTAL.store(tests.len(), Ordering::SeqCst);
    RUNNING.store(true, Ordering::SeqCst);
    println!("\nrunning {} tests", tests.len());
    for test in tests {
        test.run();
    }
    RUNNING.store(false, Ordering::SeqCst);
    println!(
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        PASSED.load(Ordering::SeqCst)
    );
}

/// Announce (in a `harness = false` test kernel) that the next panic is
/// the expected outcome.
pub fn expect_panic() {
    EXPECT_PANIC.store(true, Ordering::SeqCst);
}

/// End a single-test kernel whose expected fault just happened.
pub fn finish_expected_fault() -> ! {
    emergency_print(format_args!(
        "ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n\n"
    ));
    exit(ExitStatus::Success)
}

/// The panic path, for tests and applications alike.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if EXPECT_PANIC.load(Ordering::SeqCst) {
        emergency_print(format_args!("panicked as expected: {}\n", info.message()));
        finish_expected_fault();
    }
    let location = info.location();
    emergency_print(format_args!(
        "\nKERNEL PANIC at {}:{}: {}\n",
        location.map_or("<unknown>", |l| l.file()),
        location.map_or(0, |l| l.line()),
        info.message()
    ));
    if RUNNING.load(Ordering::SeqCst) {
        let passed = PASSED.load(Ordering::SeqCst);
        emergency_print(format_args!(
            "FAILED\n\ntest result: FAILED. {passed} passed; 1 failed; 0 ignored; 0 measured; {} filtered out\n\n",
            TOTAL.load(Ordering::SeqCst).saturating_sub(passed + 1)
        ));
        exit(ExitStatus::Failure)
    }
    exit(ExitStatus::Panic)
}
