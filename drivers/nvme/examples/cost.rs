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
use nvme_sim::cost::{CostRig, CountedQueue as Queue};

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
    let reads: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let (rig, mut queue) = match CostRig::new() {
        Ok(parts) => parts,
        Err(error) => {
            eprintln!("cost: bring-up failed: {error}");
            std::process::exit(1);
        }
    };
    let ns = rig.ns;
    let mut tag = 0u64;
    let (done, failed) = rig.reads_at_depth_one(reads, |buffer, lba| {
        tag += 1;
        driver_submit(&mut queue, &ns, lba, buffer, tag).ok()?;
        let (mut done, mut failed) = (0u64, 0u64);
        let mut spare = None;
        while queue.in_flight() > 0 {
            driver_poll(&mut queue, &mut spare, &mut done, &mut failed);
        }
        spare.filter(|_| done == 1 && failed == 0)
    });
    println!("cost: {reads} reads of 4 KiB at depth 1: {done} completed, {failed} failed");
    if done != reads || failed != 0 {
        std::process::exit(1);
    }
}
