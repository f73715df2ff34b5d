//! The NVMe driver on a controller with a zoned namespace beside an NVM
//! one (QEMU's `nvme-ns,zoned=true`): bring-up selects every I/O command
//! set, the zoned namespace is identified with its zone size and takes no
//! write through any path while it reads, and the NVM namespace on the same
//! controller works as usual.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::vec;
use bootloader_api::{BootInfo, entry_point};
use common::{fill_pattern, with_nvme};
use nvme::{Error, ZoneInfo};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!(
    "nvme=none",
    "controller=",
    "namespace=4M",
    "namespace=8M,zoned=true,zoned.zone_size=1M,zoned.max_open=3,zoned.max_active=5",
    "timeout=120",
);

const NVM: u32 = 1;
const ZONED: u32 = 2;

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

#[test_case]
fn zoned_namespace_is_identified_with_its_zone_size() {
    with_nvme(|all| {
        assert_eq!(all.len(), 1);
        let c = &all[0].controller;
        // CAP.CSS bit 6 is set, so CC.CSS selects all I/O command sets.
        assert!(c.capabilities().supports_io_command_sets());
        let namespaces = c.namespaces();
        assert_eq!(namespaces.len(), 2);
        assert_eq!(namespaces[0].zoned, None);
        let zoned = namespaces[1];
        assert_eq!(zoned.nsid, ZONED);
        assert_eq!(
            zoned.zoned,
            Some(ZoneInfo {
                zone_blocks: (1 << 20) / 512,
                max_open: Some(3),
                max_active: Some(5),
                read_across_boundaries: false,
            })
        );
        assert!(!zoned.write_protected);
    });
}

#[test_case]
fn zoned_namespace_takes_no_write_and_reads() {
    with_nvme(|all| {
        let dma = all[0].dma;
        let c = &mut all[0].controller;
        {
            let mut dev = c.namespace(ZONED).unwrap();
            dev.set_writable(true);
            assert!(!dev.is_writable());
            let block = vec![0xA5u8; 512];
            assert_eq!(dev.write(0, &block), Err(Error::ZonedNamespace));
            assert_eq!(dev.write_fua(0, &block), Err(Error::ZonedNamespace));
            assert_eq!(dev.write_zeroes(0, 1), Err(Error::ZonedNamespace));
            assert_eq!(dev.discard(0, 1), Err(Error::ZonedNamespace));
            // Reads inside a zone (and of a whole zone) work; nothing was
            // written, so the fresh disk reads as zeroes.
            let mut zone = vec![1u8; 1 << 20];
            dev.read(2048, &mut zone).unwrap();
            assert!(zone.iter().all(|&b| b == 0));
            // Across a zone boundary: split into one read per zone (QEMU
            // fails a read crossing it, cross_read being off).
            let mut across = vec![1u8; 64 * 1024];
            dev.read(2048 - 64, &mut across).unwrap();
            assert!(across.iter().all(|&b| b == 0));
        }
        let zoned = c.namespace_handle(ZONED).unwrap();
        assert!(zoned.zoned().is_some() && !zoned.writable());
        let mut queue = c.take_io_queue().unwrap();
        let refused = |r: Result<(), nvme::Rejected>| r.map_err(|r| r.error);
        assert_eq!(
            refused(queue.submit_write(&zoned, 0, dma.buffer(512).unwrap(), 1)),
            Err(Error::ZonedNamespace)
        );
        assert_eq!(
            queue.submit_write_zeroes(&zoned, 0, 1, 2),
            Err(Error::ZonedNamespace)
        );
        assert_eq!(
            queue.submit_discard(&zoned, 0, 1, 2),
            Err(Error::ZonedNamespace)
        );
        assert_eq!(
            refused(queue.submit_read(&zoned, 2044, dma.buffer(4096).unwrap(), 3)),
            Err(Error::ZoneBoundary)
        );
        queue
            .submit_read(&zoned, 8, dma.buffer(4096).unwrap(), 3)
            .unwrap();
        let mut done = 0;
        while queue.in_flight() > 0 {
            queue.poll(|completion| {
                assert_eq!(completion.result, Ok(()));
                assert!(
                    completion
                        .buffer
                        .unwrap()
                        .as_slice()
                        .iter()
                        .all(|&b| b == 0)
                );
                done += 1;
            });
        }
        assert_eq!(done, 1);
        assert!(c.return_io_queue(queue).is_ok());
    });
}

#[test_case]
fn nvm_namespace_beside_it_works_under_all_command_sets() {
    with_nvme(|all| {
        let c = &mut all[0].controller;
        let mut dev = c.namespace(NVM).unwrap();
        dev.set_writable(true);
        let mut data = vec![0u8; 64 * 1024];
        fill_pattern(&mut data, 100, 512, 7);
        dev.write(100, &data).unwrap();
        let mut back = vec![0u8; 64 * 1024];
        dev.read(100, &mut back).unwrap();
        assert!(back == data);
        dev.set_writable(false);
    });
}
