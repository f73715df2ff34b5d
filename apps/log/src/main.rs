//! An application: an append-only log on the block API that
//! survives reboots. Each boot appends one record (the text of the
//! `message =` setting, or "boot") to the first owned namespace and prints
//! every record stored so far. With `appends = N` it appends N numbered
//! records, printing `APPENDED n` as each becomes durable.
//!
//! On-disk layout, from byte 1 MiB of the namespace (clear of the ownership
//! signature): block 0 is the head (magic, number of records, CRC), record
//! `i` is block `1 + i` (magic, sequence number, length, text, CRC). A record
//! is written and flushed before the head that counts it, so a crash
//! between the two loses at most the record being appended, never an older
//! one; at start-up a valid record just past the head's count is adopted.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use bootloader_api::{BootInfo, entry_point};
use kernel::arch::exit::running_in_qemu;
use kernel::storage::{NvmeController, Ownership, attach_all, claim};
use kernel::{ExitStatus, println};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

const START: u64 = 1 << 20;
const HEAD_MAGIC: [u8; 8] = *b"LOGHEAD1";
const RECORD_MAGIC: [u8; 8] = *b"LOGREC01";
const MAX_TEXT: usize = 200;

/// Why the log could not be used.
enum LogError {
    Device(nvme::Error),
    Corrupt(&'static str),
    Full,
}

impl core::fmt::Display for LogError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LogError::Device(error) => write!(f, "device error: {error}"),
            LogError::Corrupt(what) => write!(f, "corrupt: {what}"),
            LogError::Full => f.write_str("log is full"),
        }
    }
}

impl From<nvme::Error> for LogError {
    fn from(error: nvme::Error) -> Self {
        LogError::Device(error)
    }
}

struct Log<'c> {
    controller: &'c mut NvmeController,
    nsid: u32,
    block_size: usize,
    first: u64,
    capacity: u64,
}

impl Log<'_> {
    fn read_block(&mut self, index: u64) -> Result<Vec<u8>, LogError> {
        let mut block = alloc::vec![0u8; self.block_size];
        self.controller
            .namespace(self.nsid)?
            .read(self.first + index, &mut block)?;
        Ok(block)
    }

    fn write_block(&mut self, index: u64, block: &[u8]) -> Result<(), LogError> {
        let mut device = self.controller.namespace(self.nsid)?;
        device.write(self.first + index, block)?;
        device.flush()?;
        Ok(())
    }

    fn count(&mut self) -> Result<u64, LogError> {
        let head = self.read_block(0)?;
        if head[..8] != HEAD_MAGIC {
            return Ok(0); // a fresh disk: an empty log
        }
        let count = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default());
        if crc != ownership::crc32(&head[..16]) {
            return Err(LogError::Corrupt("head checksum"));
        }
        // A record appended just before a crash, whose head update was lost.
        if count < self.capacity && self.record(count).is_ok_and(|r| r.is_some()) {
            return Ok(count + 1);
        }
        Ok(count)
    }

    fn record(&mut self, sequence: u64) -> Result<Option<String>, LogError> {
        let block = self.read_block(1 + sequence)?;
        if block[..8] != RECORD_MAGIC {
            return Ok(None);
        }
        let stored_sequence = u64::from_le_bytes(block[8..16].try_into().unwrap_or_default());
        let len = usize::from(u16::from_le_bytes([block[16], block[17]])).min(MAX_TEXT);
        let end = 18 + len;
        let crc = u32::from_le_bytes(block[end..end + 4].try_into().unwrap_or_default());
        if stored_sequence != sequence || crc != ownership::crc32(&block[..end]) {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&block[18..end]).into_owned()))
    }

    fn append(&mut self, count: u64, text: &str) -> Result<(), LogError> {
        if count + 1 >= self.capacity {
            return Err(LogError::Full);
        }
        let text = &text.as_bytes()[..text.len().min(MAX_TEXT)];
        let mut block = alloc::vec![0u8; self.block_size];
        block[..8].copy_from_slice(&RECORD_MAGIC);
        block[8..16].copy_from_slice(&count.to_le_bytes());
        block[16..18].copy_from_slice(&(text.len() as u16).to_le_bytes());
        block[18..18 + text.len()].copy_from_slice(text);
        let end = 18 + text.len();
        let crc = ownership::crc32(&block[..end]);
        block[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        self.write_block(1 + count, &block)?;
        let mut head = alloc::vec![0u8; self.block_size];
        head[..8].copy_from_slice(&HEAD_MAGIC);
        head[8..16].copy_from_slice(&(count + 1).to_le_bytes());
        let crc = ownership::crc32(&head[..16]);
        head[16..20].copy_from_slice(&crc.to_le_bytes());
        self.write_block(0, &head)
    }
}

/// The values of the `key = value` lines of the settings that name `key`,
/// in order (a serial named with `claim =` may be written on real hardware).
fn setting<'a>(settings: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    settings.lines().filter_map(move |line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.trim())
    })
}

fn main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = kernel::init(boot_info, "warn");
    let settings = kernel
        .ramdisk
        .and_then(|r| core::str::from_utf8(r).ok())
        .unwrap_or("");
    let message = setting(settings, "message").next().unwrap_or("boot");
    let appends: u64 = setting(settings, "appends")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let pci = kernel::pci::scan(&kernel.memory, kernel.rsdp);
    let (mut controllers, _) = attach_all(&kernel.memory, &pci, nvme::Config::default());
    let in_qemu = running_in_qemu();
    let mut status = ExitStatus::Failure;
    'search: for attached in &mut controllers {
        let namespaces: Vec<(u32, usize, u64)> = attached
            .controller
            .namespaces()
            .iter()
            .map(|n| (n.nsid, n.block_size, n.block_count))
            .collect();
        for (nsid, block_size, block_count) in namespaces {
            let claimed = |serial: &str| setting(settings, "claim").any(|c| c == serial.trim());
            if claim(&mut attached.controller, nsid, in_qemu, &claimed) != Ownership::Owned {
                continue;
            }
            let first = START / block_size as u64;
            let mut log = Log {
                controller: &mut attached.controller,
                nsid,
                block_size,
                first,
                capacity: block_count.saturating_sub(first).min(4096),
            };
            let outcome = log.count().and_then(|mut count| {
                // `appends = N` appends N numbered records, announcing each
                // once it is durable (the crash test kills QEMU meanwhile).
                for i in 0..appends {
                    let text = if appends == 1 {
                        String::from(message)
                    } else {
                        alloc::format!("{message} {i}")
                    };
                    log.append(count, &text)?;
                    count += 1;
                    if appends > 1 {
                        println!("APPENDED {count}");
                    }
                }
                for sequence in 0..count {
                    match log.record(sequence)? {
                        Some(text) => println!("log record {sequence}: {text}"),
                        None => return Err(LogError::Corrupt("record missing")),
                    }
                }
                Ok(count)
            });
            match outcome {
                Ok(records) => {
                    println!("log holds {records} records");
                    status = ExitStatus::Success;
                }
                Err(error) => println!("log unusable: {error}"),
            }
            break 'search;
        }
    }
    for attached in &mut controllers {
        let _ = attached.controller.shutdown();
    }
    if status == ExitStatus::Failure {
        println!("no owned namespace with a usable log");
    }
    kernel::exit(status)
}
