//! The driver's own cost per 4 KiB read, counted on the host.
//!
//! Runs queued 4 KiB reads at depth 1 against the simulated controller,
//! into one DMA buffer that each completion hands back for the next read
//! (the `nvme-sim` crate) and is meant to run under `valgrind --tool=callgrind`
//! with collection switched on only inside [`driver_submit`] and
//! [`driver_poll`], and off again inside the register accesses (which stand
//! for single MMIO instructions on hardware but run the whole simulated
//! device here). `./run.sh cost` does that and divides by the reads:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='*driver_submit*' --toggle-collect='*driver_poll*' \
//!     --toggle-collect='*Registers*read32*' --toggle-collect='*Registers*write32*' \
//!     target/release/examples/cost 20000
//! ```
//!
//! Without valgrind it simply runs the reads and checks they all succeed.

use nvme::DmaBuffer;
use nvme_sim::cost::{self, CountedQueue as Queue};

/// One submission: everything the driver does to queue a 4 KiB read
/// into `buffer`; a refused buffer comes back.
#[inline(never)]
fn driver_submit(
    queue: &mut Queue,
    ns: &nvme::Namespace,
    lba: u64,
    buffer: DmaBuffer,
    tag: u64,
) -> Result<(), DmaBuffer> {
    queue
        .submit_read(ns, lba, buffer, tag)
        .map_err(|rejected| rejected.buffer)
}

/// One poll: everything the driver does to find and report completions;
/// the buffer handed back goes to `spare`.
#[inline(never)]
fn driver_poll(
    queue: &mut Queue,
    spare: &mut Option<DmaBuffer>,
    done: &mut u64,
    failed: &mut u64,
) -> usize {
    queue.poll(|completion| {
        if completion.result.is_ok() {
            *done += 1;
        } else {
            *failed += 1;
        }
        if completion.buffer.is_some() {
            *spare = completion.buffer;
        }
    })
}

fn main() {
    let (reads, rig, mut queue) = cost::start("cost");
    let mut tag = 0u64;
    let tally = rig.reads_at_depth_one(reads, |buffer, lba| {
        tag += 1;
        driver_submit(&mut queue, &rig.ns, lba, buffer, tag).ok()?;
        let (mut done, mut failed) = (0u64, 0u64);
        let mut spare = None;
        while queue.in_flight() > 0 {
            driver_poll(&mut queue, &mut spare, &mut done, &mut failed);
        }
        spare.filter(|_| done == 1 && failed == 0)
    });
    cost::finish("cost", reads, tally);
}
