//! An application: an append-only log that survives reboots, written with
//! the `async` API. Each boot appends one record (the text of the
//! `message =` setting, or "boot") to the first owned namespace and prints
//! every record stored so far. With `appends = N` it appends N numbered
//! records from several tasks at once, printing `APPENDED n` whenever the
//! first n records are all durable.
//!
//! The tasks share one `AsyncQueue` and are driven by the kernel's
//! executor, whose idle step polls the controller's completions. Every
//! block travels in a DMA buffer of its own and is written with Force Unit
//! Access: when the write completes, the block is on non-volatile media.
//!
//! On-disk layout, from byte 1 MiB of the namespace (clear of the ownership
//! signature): block 0 is the head (magic, number of records, epoch, CRC),
//! record `i` is block `1 + i` (magic, sequence number, epoch, length,
//! text, CRC). Each boot first writes the head with the next epoch, then
//! appends records carrying that epoch, then writes the head again with
//! the new count. Records written after the last head (a crash) are adopted
//! at start-up as long as they follow on, one after another, and carry the
//! head's epoch: a record left behind a gap by an older crash carries an
//! older epoch and is never taken for a new one.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::ops::Range;

use bootloader_api::{BootInfo, entry_point};
use kernel::arch::exit::running_in_qemu;
use kernel::executor::{Executor, ExecutorError, join_all};
use kernel::storage::{Attached, Bar0, KernelDma, Ownership, TscClock, attach_all, claim};
use kernel::{ExitStatus, println};
use nvme::{AsyncController, AsyncQueue, DmaBuffer, Namespace};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

const START: u64 = 1 << 20;
const HEAD_MAGIC: [u8; 8] = *b"LOGHEAD2";
const RECORD_MAGIC: [u8; 8] = *b"LOGREC02";
/// Bytes of a record before its text.
const TEXT: usize = 26;
const MAX_TEXT: usize = 200;
/// Tasks appending (and reading back) at once.
const TASKS: u64 = 8;

/// Why the log could not be used.
enum LogError {
    Device(nvme::Error),
    Corrupt(&'static str),
    Full,
    Executor(ExecutorError),
}

impl core::fmt::Display for LogError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LogError::Device(error) => write!(f, "device error: {error}"),
            LogError::Corrupt(what) => write!(f, "corrupt: {what}"),
            LogError::Full => f.write_str("log is full"),
            LogError::Executor(error) => write!(f, "executor: {error}"),
        }
    }
}

impl From<nvme::Error> for LogError {
    fn from(error: nvme::Error) -> Self {
        LogError::Device(error)
    }
}

fn u64_at(block: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(block[at..at + 8].try_into().unwrap_or_default())
}

fn u32_at(block: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(block[at..at + 4].try_into().unwrap_or_default())
}

/// A stored record.
struct Record {
    epoch: u64,
    text: String,
}

/// The log on one namespace, shared by the tasks using it.
struct Log {
    queue: AsyncQueue<Bar0, TscClock>,
    ns: Namespace,
    dma: KernelDma,
    /// LBA of the head.
    first: u64,
    /// Blocks the log may use (head included).
    capacity: u64,
}

impl Log {
    async fn read_block(&self, index: u64) -> Result<DmaBuffer, LogError> {
        let buffer = self.dma.buffer(self.ns.block_size())?;
        Ok(self
            .queue
            .read(&self.ns, self.first + index, buffer)
            .await?)
    }

    /// Writes block `index` with `fill` applied to a zeroed buffer; durable
    /// once this returns (Force Unit Access).
    async fn write_block(&self, index: u64, fill: impl FnOnce(&mut [u8])) -> Result<(), LogError> {
        let mut buffer = self.dma.buffer(self.ns.block_size())?;
        fill(buffer.as_mut_slice());
        self.queue
            .write_fua(&self.ns, self.first + index, buffer)
            .await?;
        Ok(())
    }

    /// The head's record count and epoch; `(0, 0)` on a fresh disk.
    async fn head(&self) -> Result<(u64, u64), LogError> {
        let block = self.read_block(0).await?;
        let head = block.as_slice();
        if head[..8] != HEAD_MAGIC {
            if head[..7] == HEAD_MAGIC[..7] {
                return Err(LogError::Corrupt("a log of another format version"));
            }
            return Ok((0, 0)); // a fresh disk: an empty log
        }
        if u32_at(head, 24) != ownership::crc32(&head[..24]) {
            return Err(LogError::Corrupt("head checksum"));
        }
        Ok((u64_at(head, 8), u64_at(head, 16)))
    }

    async fn write_head(&self, count: u64, epoch: u64) -> Result<(), LogError> {
        self.write_block(0, |head| {
            head[..8].copy_from_slice(&HEAD_MAGIC);
            head[8..16].copy_from_slice(&count.to_le_bytes());
            head[16..24].copy_from_slice(&epoch.to_le_bytes());
            let crc = ownership::crc32(&head[..24]);
            head[24..28].copy_from_slice(&crc.to_le_bytes());
        })
        .await
    }

    /// Record `sequence`, if the block holds it intact.
    async fn record(&self, sequence: u64) -> Result<Option<Record>, LogError> {
        if 1 + sequence >= self.capacity {
            return Ok(None);
        }
        let buffer = self.read_block(1 + sequence).await?;
        let block = buffer.as_slice();
        let len = usize::from(u16::from_le_bytes([block[24], block[25]])).min(MAX_TEXT);
        let end = TEXT + len;
        let intact = block[..8] == RECORD_MAGIC
            && u64_at(block, 8) == sequence
            && u32_at(block, end) == ownership::crc32(&block[..end]);
        Ok(intact.then(|| Record {
            epoch: u64_at(block, 16),
            text: String::from_utf8_lossy(&block[TEXT..end]).into_owned(),
        }))
    }

    async fn append(&self, sequence: u64, epoch: u64, text: &str) -> Result<(), LogError> {
        if 1 + sequence >= self.capacity {
            return Err(LogError::Full);
        }
        let text = &text.as_bytes()[..text.len().min(MAX_TEXT)];
        self.write_block(1 + sequence, |block| {
            block[..8].copy_from_slice(&RECORD_MAGIC);
            block[8..16].copy_from_slice(&sequence.to_le_bytes());
            block[16..24].copy_from_slice(&epoch.to_le_bytes());
            block[24..26].copy_from_slice(&(text.len() as u16).to_le_bytes());
            let end = TEXT + text.len();
            block[TEXT..end].copy_from_slice(text);
            let crc = ownership::crc32(&block[..end]);
            block[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        })
        .await
    }

    /// The records stored, with those appended after the last head
    /// adopted; the head is then rewritten with the next epoch, which
    /// this boot's records carry. Returns `(count, epoch)`.
    async fn open(&self) -> Result<(u64, u64), LogError> {
        let (mut count, epoch) = self.head().await?;
        while let Some(record) = self.record(count).await? {
            if record.epoch != epoch {
                break;
            }
            count += 1;
        }
        let epoch = epoch.wrapping_add(1);
        self.write_head(count, epoch).await?;
        Ok((count, epoch))
    }
}

/// Runs `work(i)` for every `i` in `range` on [`TASKS`] tasks, each taking
/// the next `i` as soon as it is free; the first error, if any.
async fn on_tasks<F, W>(executor: &Executor, range: Range<u64>, work: W) -> Result<(), LogError>
where
    W: Fn(u64) -> F + 'static,
    F: Future<Output = Result<(), LogError>> + 'static,
{
    let next = Rc::new(Cell::new(range.start));
    let work = Rc::new(work);
    let tasks: Vec<_> = (0..TASKS.min(range.end.saturating_sub(range.start)))
        .map(|_| {
            let (next, work, end) = (next.clone(), work.clone(), range.end);
            executor.spawn(async move {
                while next.get() < end {
                    let i = next.get();
                    next.set(i + 1);
                    work(i).await?;
                }
                Ok(())
            })
        })
        .collect();
    join_all(tasks).await.into_iter().collect()
}

/// Which of this boot's records are durable, to announce the first ones.
struct Durable {
    done: RefCell<Vec<bool>>,
    /// Records from the first of this boot that are all durable.
    prefix: Cell<usize>,
}

impl Durable {
    /// Marks record `i` (of this boot) durable; the new prefix if it grew.
    fn mark(&self, i: usize) -> Option<usize> {
        let mut done = self.done.borrow_mut();
        done[i] = true;
        let before = self.prefix.get();
        let prefix = before + done[before..].iter().take_while(|d| **d).count();
        self.prefix.set(prefix);
        (prefix > before).then_some(prefix)
    }
}

/// One boot of the log: open it, append, write the head, read every record
/// back. Returns how many records it holds.
async fn session(
    executor: Executor,
    log: Rc<Log>,
    message: &'static str,
    appends: u64,
) -> Result<u64, LogError> {
    let (start, epoch) = log.open().await?;
    if start.saturating_add(appends) >= log.capacity {
        return Err(LogError::Full);
    }
    let durable = Rc::new(Durable {
        done: RefCell::new(alloc::vec![false; appends as usize]),
        prefix: Cell::new(0),
    });
    let (l, d) = (log.clone(), durable.clone());
    let appended = on_tasks(&executor, 0..appends, move |i| {
        let (log, durable) = (l.clone(), d.clone());
        async move {
            let text = if appends == 1 {
                String::from(message)
            } else {
                alloc::format!("{message} {i}")
            };
            log.append(start + i, epoch, &text).await?;
            // `appends = N` announces the records once durable (the crash
            // test kills QEMU meanwhile).
            if let Some(prefix) = durable.mark(i as usize)
                && appends > 1
            {
                println!("APPENDED {}", start + prefix as u64);
            }
            Ok(())
        }
    })
    .await;
    // The head counts what is durable, even if an append failed.
    let count = start + durable.prefix.get() as u64;
    log.write_head(count, epoch).await?;
    appended?;

    let texts: Rc<RefCell<Vec<Option<String>>>> =
        Rc::new(RefCell::new(alloc::vec![None; count as usize]));
    let (l, t) = (log.clone(), texts.clone());
    on_tasks(&executor, 0..count, move |sequence| {
        let (log, texts) = (l.clone(), t.clone());
        async move {
            let record = log.record(sequence).await?;
            texts.borrow_mut()[sequence as usize] = record.map(|r| r.text);
            Ok(())
        }
    })
    .await?;
    for (sequence, text) in texts.borrow().iter().enumerate() {
        match text {
            Some(text) => println!("log record {sequence}: {text}"),
            None => return Err(LogError::Corrupt("record missing")),
        }
    }
    Ok(count)
}

/// Runs the log on namespace `nsid` of `attached`, driven by the executor,
/// and shuts the controller down.
fn run(
    attached: Attached,
    nsid: u32,
    message: &'static str,
    appends: u64,
) -> Result<u64, LogError> {
    let dma = attached.dma;
    let controller = AsyncController::new(attached.controller);
    let outcome = (|| {
        let queue = controller.take_queue(true)?;
        let ns = controller.namespace_handle(nsid)?;
        let first = START / ns.block_size() as u64;
        let log = Rc::new(Log {
            queue,
            ns,
            dma,
            first,
            capacity: ns.block_count().saturating_sub(first).min(4096),
        });
        let executor = Executor::new();
        executor.add_poller(Rc::new(controller.clone()));
        executor
            .block_on(session(executor.clone(), log, message, appends))
            .map_err(LogError::Executor)?
    })();
    let _ = controller.shutdown();
    outcome
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
    let claimed = |serial: &str| setting(settings, "claim").any(|c| c == serial.trim());
    // The first owned namespace: its controller's index and its NSID.
    let owned = controllers
        .iter_mut()
        .enumerate()
        .find_map(|(index, attached)| {
            attached
                .nsids()
                .into_iter()
                .find(|&nsid| {
                    claim(&mut attached.controller, nsid, in_qemu, &claimed) == Ownership::Owned
                })
                .map(|nsid| (index, nsid))
        });
    let status = match owned {
        None => {
            println!("no owned namespace with a usable log");
            ExitStatus::Failure
        }
        Some((index, nsid)) => match run(controllers.swap_remove(index), nsid, message, appends) {
            Ok(records) => {
                println!("log holds {records} records");
                ExitStatus::Success
            }
            Err(error) => {
                println!("log unusable: {error}");
                ExitStatus::Failure
            }
        },
    };
    for attached in &mut controllers {
        let _ = attached.controller.shutdown();
    }
    kernel::exit(status)
}
