//! Device errors from a real device model: QEMU's blkdebug driver sits
//! under the NVMe disk and fails every read of sector 8192 and every write
//! of sector 9000 with EIO. The driver must report a typed device error for
//! exactly the requests that touch those sectors, every other request must
//! succeed and verify, and the device must keep working.

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
use common::{fill_pattern, with_nvme};
use nvme::Error;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!(
    "nvme=16M",
    "inject=read_aio,5,8192",
    "inject=write_aio,5,9000"
);

const BAD_READ: u64 = 8192;
const BAD_WRITE: u64 = 9000;

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

fn media_error(result: Result<(), Error>) -> Option<&'static str> {
    match result {
        Err(Error::Device(status)) if status.sct == 2 => Some(status.name()),
        _ => None,
    }
}

#[test_case]
fn t1_failing_read_is_a_typed_media_error_and_neighbours_work() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        dev.set_writable(true);
        let mut block = vec![0u8; 512];
        assert_eq!(
            media_error(dev.read(BAD_READ, &mut block)),
            Some("Unrecovered Read Error")
        );
        // A multi-block read that covers the bad sector fails too...
        let mut span = vec![0u8; 8 * 512];
        assert!(media_error(dev.read(BAD_READ - 4, &mut span)).is_some());
        // ...and the blocks around it are fine, written and read back.
        for lba in [BAD_READ - 1, BAD_READ + 1] {
            fill_pattern(&mut block, lba, 512, 3);
            dev.write(lba, &block).unwrap();
            let mut back = vec![0u8; 512];
            dev.read(lba, &mut back).unwrap();
            assert!(back == block, "block {lba}");
        }
        // The error is persistent (once=off): a retry fails the same way.
        assert!(media_error(dev.read(BAD_READ, &mut block)).is_some());
    });
}

#[test_case]
fn t2_failing_write_is_a_write_fault() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        dev.set_writable(true);
        let block = vec![0x77u8; 512];
        assert_eq!(
            media_error(dev.write(BAD_WRITE, &block)),
            Some("Write Fault")
        );
        dev.write(BAD_WRITE + 1, &block).unwrap();
        let mut back = vec![0u8; 512];
        dev.read(BAD_WRITE + 1, &mut back).unwrap();
        assert!(back == block);
    });
}

#[test_case]
fn t3_queued_reads_fail_exactly_where_the_device_fails() {
    with_nvme(|all| {
        let dma = all[0].dma;
        let controller = &mut all[0].controller;
        {
            let mut dev = controller.namespace(1).unwrap();
            dev.set_writable(true);
            let mut data = vec![0u8; 256 * 512];
            fill_pattern(&mut data, 8000, 512, 4);
            // Write around the bad read sector (writes there succeed).
            dev.write(8000, &data).unwrap();
        }
        let ns = controller.namespace_handle(1).unwrap();
        let mut queue = controller.take_io_queue().unwrap();
        let mut failed: Vec<u64> = Vec::new();
        let mut verified = 0;
        let mut expected = vec![0u8; 512];
        let mut next = 8000u64;
        let mut done = 0;
        // One buffer per request in flight, each reused as it comes back.
        let depth = queue.depth().min(32);
        let mut buffers: Vec<_> = (0..depth).map(|_| dma.buffer(512).unwrap()).collect();
        while done < 256 {
            while next < 8256
                && let Some(buffer) = buffers.pop()
            {
                queue.submit_read(&ns, next, buffer, next).unwrap();
                next += 1;
            }
            done += queue.poll(|c| {
                let buffer = c.buffer.expect("a failed read gives its buffer back too");
                match c.result {
                    Ok(()) => {
                        fill_pattern(&mut expected, c.tag, 512, 4);
                        assert!(
                            buffer.as_slice() == &expected[..],
                            "block {} corrupt",
                            c.tag
                        );
                        verified += 1;
                    }
                    Err(Error::Device(status)) if status.sct == 2 => failed.push(c.tag),
                    Err(other) => panic!("block {}: unexpected {other}", c.tag),
                }
                buffers.push(buffer);
            });
        }
        assert_eq!(failed, [BAD_READ]);
        assert_eq!(verified, 255);
        controller.return_io_queue(queue).ok();
    });
}

#[test_case]
fn t4_device_keeps_working_after_errors() {
    with_nvme(|all| {
        let c = &mut all[0].controller;
        assert_eq!(c.unknown_completions(), 0);
        let mut dev = c.namespace(1).unwrap();
        let mut data = vec![0u8; 64 * 1024];
        fill_pattern(&mut data, 100, 512, 6);
        dev.write(100, &data).unwrap();
        let mut back = vec![0u8; 64 * 1024];
        dev.read(100, &mut back).unwrap();
        assert!(back == data);
        let mut entries = [nvme::ErrorLogEntry::default(); 4];
        let count = c.error_log(&mut entries).unwrap_or(0);
        kernel::println!("error log entries: {count}");
    });
}

#[test_case]
fn t5_soak_over_the_bad_sectors_counts_errors_and_never_bad_data() {
    with_nvme(|all| {
        // Units covering sectors 8192 (bad reads) and 9000 (bad writes).
        let report = common::soak(&mut all[0], 8000 * 512, 1200 * 512, 1500);
        kernel::println!("\n  {report:?}");
        assert!(report.errors > 0, "the soak never hit the failing sectors");
        assert_eq!(report.verify_failures, 0);
        assert!(report.verified > 100);
    });
}
