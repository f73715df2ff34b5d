//! A soak run: random mixed 4 KiB reads and writes at depth 32 over a span
//! of an owned namespace, for a set time, with every block's content
//! verified. Each request in flight has a DMA buffer of its own, made
//! once: a write's pattern is generated straight into it, a read is
//! verified in it, and the completion hands it back for the next request.
//! Content is derived from the block's LBA and a generation number, so a
//! block read back from the wrong place, a stale write, or a torn transfer
//! shows up as a verification failure.
//!
//! The soak remembers each 4 KiB unit's last acknowledged generation; a
//! unit with a request in flight is not touched again until it completes,
//! so the expected content is always known. A failed write makes the unit's
//! content unknown (it is then rewritten before it is verified again).
//!
//! A namespace that turns out write-protected (the driver reports
//! `WriteProtected` for a write, at submission or completion, or the very
//! first write is refused as protected or faulted; a write fault after a
//! write succeeded is a bad block, counted as an error) ends the soak
//! at once: nothing more is submitted, the requests in flight are drained,
//! and the report says so instead of counting one error per write. Until
//! the first write has completed, only one request is in flight, so such a
//! namespace sees a single refused write.
//!
//! The soak prints nothing: what happens is handed to the caller's observer
//! as [`SoakEvent`]s, so the image logs them and a host test records them.

use alloc::vec::Vec;

use nvme::{Clock, Controller, DmaAllocator, DmaBuffer, DmaHome, RegisterAccess};

use crate::ticks::Ticks;

const UNIT_BYTES: u64 = 4096;
const UNKNOWN: u32 = u32::MAX;
/// Failed requests reported one by one; the rest are only counted.
const REPORTED_ERRORS: u64 = 10;
/// Alignment of the soak's buffers: one page.
const BUFFER_ALIGN: usize = 4096;

/// Fill `block` (one logical block) with the pattern of `lba` at
/// `generation`: the LBA and generation first, then a generator seeded by
/// both.
pub fn pattern(block: &mut [u8], lba: u64, generation: u64) {
    let mut x = lba.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ generation.wrapping_mul(0xd1b5_4a32_d192_ed03)
        ^ 1;
    for word in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
    }
    let head = block.len().min(16);
    let mut stamp = [0u8; 16];
    stamp[..8].copy_from_slice(&lba.to_le_bytes());
    stamp[8..].copy_from_slice(&generation.to_le_bytes());
    block[..head].copy_from_slice(&stamp[..head]);
}

/// Fill consecutive blocks of `block_size` bytes, the first being
/// `first_lba`, with their patterns at `generation`.
pub fn fill(buf: &mut [u8], first_lba: u64, block_size: usize, generation: u64) {
    for (i, block) in buf.chunks_mut(block_size.max(1)).enumerate() {
        pattern(block, first_lba + i as u64, generation);
    }
}

/// What a soak run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoakReport {
    /// Reads completed.
    pub reads: u64,
    /// Reads whose content was checked against the expected pattern.
    pub verified: u64,
    /// Writes completed.
    pub writes: u64,
    /// Reads whose content was wrong.
    pub verify_failures: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// The namespace refused writes as write-protected; the soak stopped
    /// there (those refusals are not counted as errors).
    pub write_protected: bool,
}

/// Why a soak could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoakError {
    /// No I/O queue pair to spare.
    Queue(nvme::Error),
    /// The namespace cannot take I/O (no such NSID, or a format the driver
    /// does not use).
    Namespace(nvme::Error),
    /// The namespace is smaller than one unit after `first_byte`.
    TooSmall,
    /// No DMA memory for the buffers.
    Buffers(nvme::Error),
}

/// What happened during a soak, as it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoakEvent {
    /// About once a second: the counts so far.
    Progress {
        /// The counts.
        report: SoakReport,
        /// Whole seconds left.
        seconds_left: u64,
    },
    /// A unit read back does not hold the generation last written.
    Mismatch {
        /// First block of the unit.
        lba: u64,
        /// The generation expected.
        generation: u32,
    },
    /// A request failed (only the first few are reported; all are counted).
    Failed {
        /// First block of the request.
        lba: u64,
        /// What the device said.
        error: nvme::Error,
    },
}

/// Where and how long a soak runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoakArea {
    /// The namespace.
    pub nsid: u32,
    /// First byte it may touch (rounded up to a block).
    pub first_byte: u64,
    /// Bytes it covers at most.
    pub span_bytes: u64,
    /// How long it runs.
    pub duration_ms: u64,
}

/// Soak `area` on `controller` with buffers from `home`, timed by `ticks`.
/// `observe` is told what happens ([`SoakEvent`]).
pub fn run<R, D, C>(
    controller: &mut Controller<R, D, C>,
    home: &DmaHome,
    area: &SoakArea,
    ticks: &dyn Ticks,
    observe: &mut dyn FnMut(SoakEvent),
) -> Result<SoakReport, SoakError>
where
    R: RegisterAccess + Clone,
    D: DmaAllocator,
    C: Clock + Clone,
{
    let ns = controller
        .namespace_handle(area.nsid)
        .map_err(SoakError::Namespace)?;
    let block_size = ns.block_size();
    let blocks_per_unit = (UNIT_BYTES / block_size as u64).max(1);
    let unit_bytes = blocks_per_unit * block_size as u64;
    let first = area.first_byte.div_ceil(block_size as u64);
    let units = (ns.block_count().saturating_sub(first) / blocks_per_unit)
        .min(area.span_bytes / unit_bytes);
    if units == 0 {
        return Err(SoakError::TooSmall);
    }
    let buffer = || DmaBuffer::allocate(home, unit_bytes as usize, BUFFER_ALIGN);
    let mut queue = controller.take_io_queue().map_err(SoakError::Queue)?;
    let depth = queue.depth().min(32);
    // One buffer per request in flight; a timed-out request's stays with
    // the queue (which frees it), and a fresh one takes its place.
    let mut buffers = Vec::with_capacity(depth);
    for _ in 0..depth {
        match buffer() {
            Ok(buffer) => buffers.push(buffer),
            Err(error) => {
                controller.return_io_queue(queue).ok();
                return Err(SoakError::Buffers(error.into()));
            }
        }
    }
    let mut generation_of: Vec<u32> = alloc::vec![0; units as usize];
    let mut busy: Vec<bool> = alloc::vec![false; units as usize];
    // What each in-flight request was: (is_write, generation), by unit.
    let mut pending: Vec<(bool, u32)> = alloc::vec![(false, 0); units as usize];
    let mut expected = alloc::vec![0u8; unit_bytes as usize];
    let mut report = SoakReport::default();
    let mut rng = ticks.now() | 1;
    let mut next_generation = 1u32;
    let now_ns = || ticks.to_ns(ticks.now());
    let end = now_ns() + area.duration_ms * 1_000_000;
    let mut next_progress = now_ns() + 1_000_000_000;
    loop {
        let now = now_ns();
        let running = now < end && !report.write_protected;
        if now >= next_progress {
            next_progress = now + 1_000_000_000;
            observe(SoakEvent::Progress {
                report,
                seconds_left: end.saturating_sub(now) / 1_000_000_000,
            });
        }
        let allowed = if report.writes > 0 { depth } else { 1 };
        while running && queue.in_flight() < allowed {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let unit = (rng % units) as usize;
            if busy[unit] {
                break; // try again after the next poll
            }
            let lba = first + unit as u64 * blocks_per_unit;
            let mut buffer = match buffers.pop() {
                Some(buffer) => buffer,
                None => match buffer() {
                    Ok(buffer) => buffer,
                    Err(_) => {
                        report.errors += 1;
                        break;
                    }
                },
            };
            // Write unwritten or unknown units; otherwise 50/50.
            let write =
                generation_of[unit] == 0 || generation_of[unit] == UNKNOWN || (rng >> 32) & 1 == 0;
            let submitted = if write {
                let generation = next_generation;
                next_generation = if next_generation >= UNKNOWN - 1 {
                    1
                } else {
                    next_generation + 1
                };
                fill(
                    buffer.as_mut_slice(),
                    lba,
                    block_size,
                    u64::from(generation),
                );
                pending[unit] = (true, generation);
                queue.submit_write(&ns, lba, buffer, unit as u64)
            } else {
                pending[unit] = (false, generation_of[unit]);
                queue.submit_read(&ns, lba, buffer, unit as u64)
            };
            match submitted {
                Ok(()) => busy[unit] = true,
                Err(refused) => {
                    buffers.push(refused.buffer);
                    if refused.error == nvme::Error::WriteProtected {
                        report.write_protected = true;
                    } else {
                        report.errors += 1;
                    }
                    break;
                }
            }
        }
        if !running && queue.in_flight() == 0 {
            break;
        }
        queue.poll(|completion| {
            let read_data = completion.buffer.as_ref().map_or(&[][..], |b| b.as_slice());
            let unit = completion.tag as usize;
            let Some(&(was_write, generation)) = pending.get(unit) else {
                report.errors += 1;
                return;
            };
            busy[unit] = false;
            let lba = first + unit as u64 * blocks_per_unit;
            match (completion.result, was_write) {
                (Ok(()), true) => {
                    report.writes += 1;
                    generation_of[unit] = generation;
                }
                (Ok(()), false) => {
                    report.reads += 1;
                    fill(&mut expected, lba, block_size, u64::from(generation));
                    report.verified += 1;
                    if read_data != &expected[..] {
                        report.verify_failures += 1;
                        observe(SoakEvent::Mismatch { lba, generation });
                    }
                }
                // The driver's verdict, or the very first write refused
                // (no write has succeeded yet): the namespace does not
                // take writes. A write fault after that is a bad block.
                (Err(error), true)
                    if error == nvme::Error::WriteProtected
                        || (report.writes == 0 && error.refuses_writes()) =>
                {
                    report.write_protected = true;
                    generation_of[unit] = UNKNOWN;
                }
                (Err(error), write) => {
                    report.errors += 1;
                    if write {
                        generation_of[unit] = UNKNOWN;
                    }
                    if report.errors <= REPORTED_ERRORS {
                        observe(SoakEvent::Failed { lba, error });
                    }
                }
            }
            buffers.extend(completion.buffer);
        });
        if queue.needs_recovery() && controller.recover().is_err() {
            report.errors += 1;
            break;
        }
    }
    controller.return_io_queue(queue).ok();
    Ok(report)
}
