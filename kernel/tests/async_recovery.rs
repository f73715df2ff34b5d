//! Recovery on the `async` path on a real device: QEMU throttles the disk
//! to 50 I/Os per second while 64 tasks of the executor each await one
//! read, 32 in flight at a time, with a 200 ms deadline. Requests time
//! out, and the `AsyncController` (the executor's poller) resets the
//! controller and rebuilds its queues by itself. Every request must end
//! exactly once, with verified data or `Timeout` / `Reset`, and later
//! requests on the same queue must work.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use bootloader_api::{BootInfo, entry_point};
use common::fill_pattern;
use kernel::arch::tsc;
use kernel::executor::{Executor, join_all};
use nvme::{AsyncController, Error};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!("nvme=16M", "drive=throttling.iops-total=50", "timeout=240");

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Verified,
    TimedOut,
    Reset,
}

#[test_case]
fn the_controller_recovers_by_itself_under_async_load() {
    let kernel = common::kernel();
    let config = nvme::Config {
        command_timeout_ms: 200,
        io_queue_depth: 32,
        ..nvme::Config::default()
    };
    let (mut attached, failed) = kernel::storage::attach_all(&kernel.memory, common::pci(), config);
    assert!(failed.is_empty());
    let attached = attached.remove(0);
    let dma = attached.dma;
    let mut controller = attached.controller;
    {
        let mut dev = controller.namespace(1).unwrap();
        dev.set_writable(true);
        let mut data = vec![0u8; 64 * 512];
        fill_pattern(&mut data, 0, 512, 8);
        dev.write(0, &data).unwrap();
    }
    let controller = AsyncController::new(controller);
    let queue = controller.take_queue(true).unwrap();
    let ns = controller.namespace_handle(1).unwrap();
    let executor = Executor::new();
    executor.add_poller(Rc::new(controller.clone()));

    let tasks: Vec<_> = (0..64u64)
        .map(|lba| {
            let queue = queue.clone();
            executor.spawn(async move {
                let buffer = dma.buffer(512).unwrap();
                match queue.read(&ns, lba, buffer).await {
                    Ok(data) => {
                        let mut expected = vec![0u8; 512];
                        fill_pattern(&mut expected, lba, 512, 8);
                        assert!(data.as_slice() == &expected[..], "block {lba} corrupt");
                        Ended::Verified
                    }
                    Err(Error::Timeout { .. }) => Ended::TimedOut,
                    Err(Error::Reset) => Ended::Reset,
                    Err(other) => panic!("block {lba}: unexpected {other}"),
                }
            })
        })
        .collect();
    let start = tsc::now_ns();
    // One output per task: each request ended exactly once.
    let ended = executor.block_on(join_all(tasks)).unwrap();
    assert!(tsc::now_ns() - start < 120_000_000_000, "took too long");
    let count = |e: Ended| ended.iter().filter(|&&x| x == e).count();
    let (ok, timed_out, reset) = (
        count(Ended::Verified),
        count(Ended::TimedOut),
        count(Ended::Reset),
    );
    kernel::println!(
        "\n  {ok} verified, {timed_out} timed out, {reset} lost in a reset, {} reset(s)",
        controller.recoveries()
    );
    assert_eq!(ended.len(), 64);
    assert!(
        timed_out > 0 && controller.recoveries() > 0,
        "the workload never timed out; the test proves nothing"
    );
    assert!(ok > 0);
    assert_eq!(controller.last_recovery_error(), None);

    // Later requests on the same queue work. QEMU's throttle still holds
    // the requests the resets abandoned; let that backlog drain first.
    tsc::delay_us(2_000_000);
    let q = queue.clone();
    let later = executor
        .block_on(async move {
            let data = q.read(&ns, 5, dma.buffer(512).unwrap()).await?;
            let mut expected = vec![0u8; 512];
            fill_pattern(&mut expected, 5, 512, 8);
            Ok::<bool, Error>(data.as_slice() == &expected[..])
        })
        .unwrap();
    assert_eq!(later, Ok(true));
    assert_eq!(queue.in_flight(), 0);
    controller.shutdown().unwrap();
}
