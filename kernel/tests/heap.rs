//! The heap under real use: boxes, vectors, many mixed allocations.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::boxed::Box;
use alloc::vec::Vec;

use bootloader_api::{BootInfo, entry_point};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_and_test(boot_info, test_main)
}

#[test_case]
fn box_holds_its_value() {
    let a = Box::new(41u64);
    let b = Box::new([7u8; 3000]);
    assert_eq!(*a + 1, 42);
    assert!(b.iter().all(|&x| x == 7));
}

#[test_case]
fn vec_grows_to_a_megabyte() {
    let mut v = Vec::new();
    for i in 0..(1u32 << 18) {
        v.push(i);
    }
    assert_eq!(v.len(), 1 << 18);
    assert_eq!(
        v.iter().map(|&x| u64::from(x)).sum::<u64>(),
        (1u64 << 18) * ((1 << 18) - 1) / 2
    );
}

#[test_case]
fn many_mixed_allocations_and_frees_leave_the_heap_as_it_was() {
    let (used_before, _) = kernel::memory::heap::usage();
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..20_000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let size = [1, 8, 24, 100, 512, 4096, 9000, 65536][(seed % 8) as usize];
        if live.len() > 64 || (seed >> 8).is_multiple_of(3) {
            if !live.is_empty() {
                let victim = (seed >> 16) as usize % live.len();
                let gone = live.swap_remove(victim);
                let tag = gone[0];
                assert!(gone.iter().all(|&b| b == tag), "allocation corrupted");
            }
        } else {
            live.push(alloc::vec![round as u8; size]);
        }
    }
    drop(live);
    let (used_after, _) = kernel::memory::heap::usage();
    assert_eq!(
        used_after, used_before,
        "memory leaked or heap accounting is off"
    );
}

#[test_case]
fn long_lived_allocation_survives_churn() {
    let keep = Box::new(0xfeed_f00d_u64);
    for i in 0..10_000u64 {
        let temp = Box::new(i);
        assert_eq!(*temp, i);
    }
    assert_eq!(*keep, 0xfeed_f00d);
}
