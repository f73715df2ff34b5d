//! Durability probe, driven by the host test `boot/tests/durability.rs`.
//!
//! `mode = write`: forever, round r = 1, 2, ... writes 64 blocks
//! (block range `(r % 16) * 64 ..`, from byte 1 MiB of the first owned
//! namespace) stamped with their LBA and r, then flushes and prints
//! `FLUSHED r`. The host kills QEMU at some point.
//!
//! `mode = check` with `flushed = F`: every block must be self-consistent
//! (its own LBA, a valid checksum, or never written), and every block a
//! flushed round covered must hold that round or a later one.

#![no_std]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};
use kernel::arch::exit::running_in_qemu;
use kernel::storage::{Ownership, attach_all, claim};
use kernel::{ExitStatus, println};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

const BLOCKS_PER_ROUND: u64 = 64;
const SLOTS: u64 = 16;
const START_BYTES: u64 = 1 << 20;

fn setting<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn encode(block: &mut [u8], lba: u64, round: u64) {
    block.fill(0);
    block[0..8].copy_from_slice(&lba.to_le_bytes());
    block[8..16].copy_from_slice(&round.to_le_bytes());
    let mut x = lba ^ round.rotate_left(32) ^ 0x2545_f491_4f6c_dd1d;
    for chunk in block[16..504].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let crc = ownership::crc32(&block[..508]);
    block[508..512].copy_from_slice(&crc.to_le_bytes());
}

/// The round a block holds: Some(0) never written, Some(r), or None if the
/// block is garbage (wrong LBA, bad checksum, or content of another block).
fn decode(block: &[u8], lba: u64) -> Option<u64> {
    if block.iter().all(|&b| b == 0) {
        return Some(0);
    }
    let round = u64::from_le_bytes(block[8..16].try_into().ok()?);
    let mut expected = [0u8; 512];
    encode(&mut expected, lba, round);
    (block[..512] == expected[..]).then_some(round)
}

fn main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = kernel::init(boot_info, "warn");
    let text = kernel
        .ramdisk
        .and_then(|r| core::str::from_utf8(r).ok())
        .unwrap_or("");
    let mode = setting(text, "mode").unwrap_or("check");
    let flushed: u64 = setting(text, "flushed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let pci = kernel::pci::scan(&kernel.memory, kernel.rsdp);
    let (mut controllers, _) = attach_all(&kernel.memory, &pci, nvme::Config::default());
    let Some(attached) = controllers.first_mut() else {
        println!("no NVMe controller");
        kernel::exit(ExitStatus::Failure)
    };
    if claim(&mut attached.controller, 1, running_in_qemu(), &|_| false) != Ownership::Owned {
        println!("namespace 1 is not owned");
        kernel::exit(ExitStatus::Failure)
    }
    let mut device = match attached.controller.namespace(1) {
        Ok(device) => device,
        Err(error) => {
            println!("namespace 1: {error}");
            kernel::exit(ExitStatus::Failure)
        }
    };
    if device.block_size() != 512 {
        println!("this probe expects 512-byte blocks");
        kernel::exit(ExitStatus::Failure)
    }
    let first = START_BYTES / 512;
    let mut buffer = alloc::vec![0u8; (BLOCKS_PER_ROUND * 512) as usize];
    if mode == "write" {
        for round in 1.. {
            let base = first + (round % SLOTS) * BLOCKS_PER_ROUND;
            for (i, block) in buffer.chunks_mut(512).enumerate() {
                encode(block, base + i as u64, round);
            }
            let written = device.write(base, &buffer).and_then(|()| device.flush());
            match written {
                Ok(()) => println!("FLUSHED {round}"),
                Err(error) => {
                    println!("round {round} failed: {error}");
                    kernel::exit(ExitStatus::Failure)
                }
            }
        }
    }
    // Check.
    let mut garbage = 0u64;
    let mut stale = 0u64;
    for slot in 0..SLOTS {
        let base = first + slot * BLOCKS_PER_ROUND;
        if let Err(error) = device.read(base, &mut buffer) {
            println!("read of slot {slot} failed: {error}");
            kernel::exit(ExitStatus::Failure)
        }
        // The last flushed round that wrote this slot.
        let minimum = (1..=flushed).rev().find(|r| r % SLOTS == slot).unwrap_or(0);
        for (i, block) in buffer.chunks(512).enumerate() {
            match decode(block, base + i as u64) {
                None => garbage += 1,
                Some(round) if round < minimum => stale += 1,
                Some(_) => {}
            }
        }
    }
    println!("CHECKED flushed={flushed} garbage={garbage} lost={stale}");
    kernel::exit(if garbage == 0 && stale == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
