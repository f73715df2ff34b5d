//! Recovery on a real device: QEMU throttles the disk to 50 I/Os per second
//! while the driver keeps 32 reads in flight with a 200 ms deadline, so
//! requests time out and the controller is reset in the middle of the
//! workload. Every request must end exactly once, with verified data or a
//! clear error, and I/O must work again afterwards. The queues use shadow
//! doorbells and batched submissions, so the reset also proves that the
//! shadow pages are handed to the controller again.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::vec;
use alloc::vec::Vec;
use bootloader_api::{BootInfo, entry_point};
use common::fill_pattern;
use kernel::arch::tsc;
use nvme::Error;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!("nvme=16M", "drive=throttling.iops-total=50", "timeout=240");

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn reset_in_the_middle_of_a_depth_32_workload() {
    let kernel = common::kernel();
    let config = nvme::Config {
        command_timeout_ms: 200,
        shadow_doorbells: true,
        ..nvme::Config::default()
    };
    let (mut attached, failed) = kernel::storage::attach_all(&kernel.memory, common::pci(), config);
    assert!(failed.is_empty());
    let dma = attached[0].dma;
    let controller = &mut attached[0].controller;
    assert!(
        controller.info().shadow_doorbells,
        "QEMU offers shadow doorbells"
    );
    {
        let mut dev = controller.namespace(1).unwrap();
        dev.set_writable(true);
        let mut data = vec![0u8; 64 * 512];
        fill_pattern(&mut data, 0, 512, 8);
        dev.write(0, &data).unwrap();
    }
    let ns = controller.namespace_handle(1).unwrap();
    let mut queue = controller.take_io_queue().unwrap();
    queue.set_doorbell_batching(true);
    let depth = queue.depth().min(32) as u64;
    let mut seen = [0u8; 64];
    let (mut ok, mut timed_out, mut reset) = (0, 0, 0);
    let mut expected = vec![0u8; 512];
    let mut next = 0u64;
    let mut recoveries = 0;
    let deadline = tsc::now_ns() + 60_000_000_000;
    // Buffers come back with every completion but a timeout's (the queue
    // frees that one once the device or the reset gives it back).
    let mut buffers = Vec::new();
    while seen.contains(&0) {
        assert!(tsc::now_ns() < deadline, "requests never ended: {seen:?}");
        while next < 64 && (queue.in_flight() as u64) < depth {
            let buffer = match buffers.pop() {
                Some(buffer) => buffer,
                None => dma.buffer(512).unwrap(),
            };
            match queue.submit_read(&ns, next, buffer, next) {
                Ok(()) => next += 1,
                Err(refused) if refused.error == Error::Reset => {
                    buffers.push(refused.buffer);
                    break;
                }
                Err(other) => panic!("submit {next}: {other}"),
            }
        }
        queue.poll(|c| {
            seen[c.tag as usize] += 1;
            match c.result {
                Ok(()) => {
                    let data = c.buffer.as_ref().unwrap().as_slice();
                    fill_pattern(&mut expected, c.tag, 512, 8);
                    assert!(data == &expected[..], "block {} corrupt", c.tag);
                    ok += 1;
                }
                Err(Error::Timeout { .. }) => {
                    assert!(c.buffer.is_none(), "a timed-out request's buffer came back");
                    timed_out += 1;
                }
                Err(Error::Reset) => {
                    assert!(c.buffer.is_some(), "the reset gives the buffer back");
                    reset += 1;
                }
                Err(other) => panic!("block {}: unexpected {other}", c.tag),
            }
            buffers.extend(c.buffer);
        });
        if queue.needs_recovery() {
            controller.recover().unwrap();
            recoveries += 1;
            assert!(recoveries < 10, "recovery loop");
        }
    }
    kernel::println!(
        "\n  {ok} verified, {timed_out} timed out, {reset} lost in the reset, {recoveries} reset(s)"
    );
    assert!(
        seen.iter().all(|&s| s == 1),
        "a request ended twice: {seen:?}"
    );
    assert!(
        timed_out > 0 && recoveries > 0,
        "the workload never timed out; the test proves nothing"
    );
    assert!(ok > 0);
    controller.return_io_queue(queue).ok();
    // Later I/O works. QEMU's throttle still holds the requests the reset
    // abandoned (64 at 50 per second); let that backlog drain first.
    tsc::delay_us(2_000_000);
    let mut dev = controller.namespace(1).unwrap();
    let mut back = vec![0u8; 512];
    dev.read(5, &mut back).unwrap();
    fill_pattern(&mut expected, 5, 512, 8);
    assert!(back == expected);
}
