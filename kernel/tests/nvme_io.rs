//! The NVMe driver on QEMU's NVMe device: bring-up, synchronous I/O over the
//! whole disk, queue wrap-around, depth-32 queued I/O, flush, write-zeroes,
//! discard, and bad input refused before it reaches the device.

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
kernel::qemu_machine!("nvme=16M", "timeout=300");

// Tests run in name order and share one controller: the numbers keep the
// default-state checks first and shutdown last.

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn t1_controller_comes_up_with_one_namespace() {
    with_nvme(|all| {
        assert_eq!(all.len(), 1);
        let c = &all[0].controller;
        let info = c.info();
        assert_eq!(info.serial.as_str(), "TESTDISK0");
        assert!(info.io_queues >= 1);
        assert_eq!(c.namespaces().len(), 1);
        let ns = c.namespaces()[0];
        assert_eq!(ns.block_size, 512);
        assert_eq!(ns.block_count * 512, 16 << 20);
    });
}

#[test_case]
fn t2_unowned_namespace_refuses_writes_without_touching_the_device() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        assert!(!dev.is_writable());
        assert_eq!(dev.write(0, &[0u8; 512]), Err(Error::NotOwned));
        assert_eq!(dev.write_zeroes(0, 1), Err(Error::NotOwned));
        assert_eq!(dev.discard(0, 1), Err(Error::NotOwned));
    });
}

#[test_case]
fn t4_whole_disk_pattern_written_and_read_back() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        dev.set_writable(true);
        let bs = dev.block_size();
        let total = dev.block_count();
        let chunk_blocks = 256u64; // 128 KiB per call, split as MDTS requires
        let mut buf = vec![0u8; chunk_blocks as usize * bs];
        let mut lba = 0;
        while lba < total {
            let n = chunk_blocks.min(total - lba) as usize;
            fill_pattern(&mut buf[..n * bs], lba, bs, 1);
            dev.write(lba, &buf[..n * bs]).unwrap();
            lba += n as u64;
        }
        dev.flush().unwrap();
        let mut expected = vec![0u8; chunk_blocks as usize * bs];
        let mut lba = 0;
        while lba < total {
            let n = chunk_blocks.min(total - lba) as usize;
            buf[..n * bs].fill(0);
            dev.read(lba, &mut buf[..n * bs]).unwrap();
            fill_pattern(&mut expected[..n * bs], lba, bs, 1);
            assert!(
                buf[..n * bs] == expected[..n * bs],
                "mismatch in blocks {lba}..{}",
                lba + n as u64
            );
            lba += n as u64;
        }
    });
}

#[test_case]
fn t5_single_blocks_many_times_wrap_the_queues() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        dev.set_writable(true);
        let mut block = vec![0u8; 512];
        let mut back = vec![0u8; 512];
        // Far more commands than any queue has entries.
        for i in 0..3000u64 {
            let lba = (i * 7919) % dev.block_count();
            fill_pattern(&mut block, lba, 512, 2 + i);
            dev.write(lba, &block).unwrap();
            dev.read(lba, &mut back).unwrap();
            assert!(block == back, "block {lba} round {i}");
        }
    });
}

#[test_case]
fn t6_odd_buffers_bounce_and_still_verify() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        dev.set_writable(true);
        // A buffer starting at an odd address, spanning page boundaries.
        let mut storage = vec![0u8; 64 * 1024 + 3];
        let data = &mut storage[3..3 + 40 * 512];
        fill_pattern(data, 1000, 512, 77);
        let copy = data.to_vec();
        dev.write(1000, data).unwrap();
        let mut back_storage = vec![0u8; 64 * 1024 + 5];
        let back = &mut back_storage[5..5 + 40 * 512];
        dev.read(1000, back).unwrap();
        assert!(*back == copy[..]);
    });
}

#[test_case]
fn t7_write_zeroes_and_discard_clear_blocks() {
    with_nvme(|all| {
        let attached = &mut all[0];
        let (wz, dealloc) = (
            attached.controller.info().write_zeroes,
            attached.controller.info().deallocate,
        );
        let mut dev = attached.controller.namespace(1).unwrap();
        dev.set_writable(true);
        let mut buf = vec![0u8; 16 * 512];
        fill_pattern(&mut buf, 2048, 512, 5);
        dev.write(2048, &buf).unwrap();
        if wz {
            dev.write_zeroes(2048, 8).unwrap();
            dev.read(2048, &mut buf).unwrap();
            assert!(
                buf[..8 * 512].iter().all(|&b| b == 0),
                "write zeroes left data"
            );
            assert!(
                buf[8 * 512..].iter().any(|&b| b != 0),
                "write zeroes went too far"
            );
        } else {
            assert_eq!(dev.write_zeroes(2048, 8), Err(Error::Unsupported));
        }
        if dealloc {
            dev.discard(2048, 16).unwrap();
        } else {
            assert_eq!(dev.discard(2048, 16), Err(Error::Unsupported));
        }
    });
}

#[test_case]
fn t3_bad_requests_are_refused() {
    with_nvme(|all| {
        let mut dev = all[0].controller.namespace(1).unwrap();
        dev.set_writable(true);
        let end = dev.block_count();
        let mut buf = vec![0u8; 1024];
        assert!(matches!(
            dev.read(end, &mut buf[..512]),
            Err(Error::OutOfRange)
        ));
        assert!(matches!(
            dev.read(end - 1, &mut buf),
            Err(Error::OutOfRange)
        ));
        assert!(matches!(
            dev.read(u64::MAX, &mut buf[..512]),
            Err(Error::OutOfRange)
        ));
        assert!(dev.read(0, &mut buf[..100]).is_err());
        assert!(dev.read(0, &mut buf[..0]).is_err());
        assert!(dev.write(0, &buf[..513]).is_err());
        assert!(dev.write_zeroes(end, 1).is_err());
        // The device still works.
        dev.read(0, &mut buf[..512]).unwrap();
    });
}

#[test_case]
fn t8_queued_io_at_depth_32_verifies() {
    with_nvme(|all| {
        let dma = all[0].dma;
        let controller = &mut all[0].controller;
        let ns = controller.namespace_handle(1).unwrap();
        let mut queue = controller.take_io_queue().unwrap();
        let depth = queue.depth().min(32);
        assert!(depth >= 16, "queue depth {depth}");
        // One 4 KiB buffer per request in flight, reused as each comes back.
        let mut buffers: Vec<_> = (0..depth).map(|_| dma.buffer(4096).unwrap()).collect();
        let mut done = 0usize;
        let mut errors = 0usize;
        // Write 1024 4-KiB blocks keeping `depth` in flight.
        let total = 1024u64;
        let mut next = 0u64;
        while done < total as usize {
            while next < total
                && let Some(mut block) = buffers.pop()
            {
                fill_pattern(block.as_mut_slice(), 4096 + next * 8, 512, 9);
                queue
                    .submit_write(&ns, 4096 + next * 8, block, next)
                    .unwrap();
                next += 1;
            }
            done += queue.poll(|c| {
                if c.result.is_err() {
                    errors += 1;
                }
                buffers.extend(c.buffer);
            });
        }
        assert_eq!(errors, 0);
        // Read them back, verifying in the completion callback.
        let mut verified = 0usize;
        let mut bad = 0usize;
        let mut expected = vec![0u8; 4096];
        next = 0;
        done = 0;
        while done < total as usize {
            while next < total
                && let Some(buffer) = buffers.pop()
            {
                queue
                    .submit_read(&ns, 4096 + next * 8, buffer, next)
                    .unwrap();
                next += 1;
            }
            done += queue.poll(|c| {
                fill_pattern(&mut expected, 4096 + c.tag * 8, 512, 9);
                match c.buffer {
                    Some(data) if c.result.is_ok() && data.as_slice() == &expected[..] => {
                        verified += 1;
                        buffers.push(data);
                    }
                    _ => bad += 1,
                }
            });
        }
        assert_eq!((verified, bad), (total as usize, 0));
        // A request over the transfer limit is split and completes once.
        let long = queue.max_transfer_bytes() + 4096;
        let mut data = dma.buffer(long).unwrap();
        fill_pattern(data.as_mut_slice(), 16384, 512, 10);
        let written = data.as_slice().to_vec();
        queue.submit_write(&ns, 16384, data, 1).unwrap();
        queue
            .submit_read(&ns, 16384, dma.buffer(long).unwrap(), 2)
            .unwrap();
        let mut back = Vec::new();
        while queue.in_flight() > 0 {
            queue.poll(|c| {
                assert_eq!(c.result, Ok(()), "request {}", c.tag);
                back.push((c.tag, c.buffer.unwrap().as_slice() == &written[..]));
            });
        }
        assert_eq!(back, [(1, true), (2, true)]);
    });
}

#[test_case]
fn t8b_short_soak_verifies_everything() {
    with_nvme(|all| {
        let report = common::soak(&mut all[0], 1 << 20, 8 << 20, 1500);
        assert_eq!(
            (report.verify_failures, report.errors),
            (0, 0),
            "{report:?}"
        );
        assert!(report.verified > 500 && report.writes > 500, "{report:?}");
    });
}

#[test_case]
fn t9_smart_log_and_shutdown() {
    with_nvme(|all| {
        let controller = &mut all[0].controller;
        let smart = controller.smart_log().unwrap();
        let celsius = smart.composite_temperature_celsius();
        assert!((-40..120).contains(&celsius), "temperature {celsius}");
        controller.shutdown().unwrap();
        assert!(controller.is_shut_down());
        let mut dev = controller.namespace(1);
        if let Ok(dev) = dev.as_mut() {
            let mut buf = [0u8; 512];
            assert_eq!(dev.read(0, &mut buf), Err(Error::ShutDown));
        }
    });
}
