//! The NVMe driver on less common device set-ups, all in one machine: a
//! controller with a small MDTS (transfers must be split) and two
//! namespaces, one with 4 KiB blocks and one with 512-byte blocks; and a
//! second controller that grants a single I/O queue pair.

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
use kernel::storage::Attached;
use nvme::Error;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!(
    "nvme=16M,max_ioqpairs=1",
    "controller=mdts=2",
    "namespace=8M,logical_block_size=4096,physical_block_size=4096",
    "namespace=4M",
    "timeout=300",
);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

fn by_serial<'a>(all: &'a mut [Attached], serial: &str) -> &'a mut Attached {
    all.iter_mut()
        .find(|a| a.controller.info().serial.as_str() == serial)
        .expect("controller")
}

#[test_case]
fn both_controllers_and_all_namespaces_come_up() {
    with_nvme(|all| {
        assert_eq!(all.len(), 2);
        let multi = by_serial(all, "TESTCTRL0");
        let namespaces = multi.controller.namespaces();
        assert_eq!(namespaces.len(), 2);
        assert_eq!(
            (
                namespaces[0].nsid,
                namespaces[0].block_size,
                namespaces[0].block_count
            ),
            (1, 4096, 2048)
        );
        assert_eq!(
            (
                namespaces[1].nsid,
                namespaces[1].block_size,
                namespaces[1].block_count
            ),
            (2, 512, 8192)
        );
        assert_eq!(multi.controller.info().mdts_bytes, Some(16 * 1024));
        let single = by_serial(all, "TESTDISK0");
        assert_eq!(single.controller.info().io_queues, 1);
    });
}

#[test_case]
fn large_transfers_are_split_under_a_small_mdts() {
    with_nvme(|all| {
        let c = &mut by_serial(all, "TESTCTRL0").controller;
        for nsid in [1, 2] {
            let mut dev = c.namespace(nsid).unwrap();
            dev.set_writable(true);
            let bs = dev.block_size();
            let blocks = 256 * 1024 / bs; // 256 KiB: 16 commands at a 16 KiB MDTS
            let mut data = vec![0u8; blocks * bs];
            fill_pattern(&mut data, 3, bs, u64::from(nsid));
            dev.write(3, &data).unwrap();
            let mut back = vec![0u8; blocks * bs];
            dev.read(3, &mut back).unwrap();
            assert!(data == back, "namespace {nsid}");
        }
    });
}

#[test_case]
fn namespaces_are_independent() {
    with_nvme(|all| {
        let c = &mut by_serial(all, "TESTCTRL0").controller;
        let mut one = vec![0u8; 4096];
        fill_pattern(&mut one, 0, 4096, 11);
        let mut dev = c.namespace(1).unwrap();
        dev.set_writable(true);
        dev.write(0, &one).unwrap();
        let mut two = vec![0u8; 4096];
        fill_pattern(&mut two, 0, 512, 12);
        let mut dev = c.namespace(2).unwrap();
        dev.set_writable(true);
        dev.write(0, &two).unwrap();
        let mut back = vec![0u8; 4096];
        c.namespace(1).unwrap().read(0, &mut back).unwrap();
        assert!(back == one);
        c.namespace(2).unwrap().read(0, &mut back).unwrap();
        assert!(back == two);
    });
}

#[test_case]
fn four_kib_namespace_refuses_partial_blocks() {
    with_nvme(|all| {
        let c = &mut by_serial(all, "TESTCTRL0").controller;
        let mut dev = c.namespace(1).unwrap();
        let mut buf = vec![0u8; 4096 + 512];
        assert_eq!(dev.read(0, &mut buf[..512]), Err(Error::InvalidLength));
        assert_eq!(dev.read(0, &mut buf), Err(Error::InvalidLength));
        assert!(dev.read(2048, &mut buf[..4096]).is_err());
        dev.read(2047, &mut buf[..4096]).unwrap();
    });
}

#[test_case]
fn single_queue_controller_serves_sync_io_and_refuses_a_second_queue() {
    with_nvme(|all| {
        let c = &mut by_serial(all, "TESTDISK0").controller;
        assert!(matches!(c.take_io_queue(), Err(Error::NoFreeQueue)));
        let mut dev = c.namespace(1).unwrap();
        dev.set_writable(true);
        let mut data = vec![0u8; 64 * 1024];
        fill_pattern(&mut data, 100, 512, 21);
        dev.write(100, &data).unwrap();
        let mut back = vec![0u8; 64 * 1024];
        dev.read(100, &mut back).unwrap();
        assert!(data == back);
    });
}
