//! What the examples that count the driver's instructions per read share
//! (`./run.sh cost` runs them under callgrind): the simulated controller
//! behind register calls that are never inlined, so a profiler can tell
//! the device's work from the driver's (on hardware each call is a single
//! MMIO instruction), and the bring-up of one controller with namespace 1
//! and one I/O queue of depth 128.

use crate::{Bench, FakeClock, Sim, SimConfig, TestDma, test_config};
use nvme::RegisterAccess;
use std::task::Poll;

/// The simulated controller behind calls that are never inlined (nor
/// turned into tail jumps, which callgrind would not see return).
#[derive(Clone)]
pub struct CountedRegisters(pub Sim);

impl RegisterAccess for CountedRegisters {
    #[inline(never)]
    fn read32(&self, offset: usize) -> u32 {
        std::hint::black_box(self.0.read32(offset))
    }

    #[inline(never)]
    fn write32(&self, offset: usize, value: u32) {
        self.0.write32(offset, value);
        std::hint::black_box(());
    }
}

/// The driver's I/O queue over [`CountedRegisters`].
pub type CountedQueue = nvme::IoQueue<CountedRegisters, FakeClock>;

/// What a depth-1 example starts with: the reads asked for (its first
/// argument, 20,000 by default), a controller brought up for counting and
/// one of its queues. A failed bring-up ends the program with the reason.
pub fn start(example: &str) -> (u64, CostRig, CountedQueue) {
    let reads = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    match CostRig::new() {
        Ok((rig, queue)) => (reads, rig, queue),
        Err(error) => {
            eprintln!("{example}: bring-up failed: {error}");
            std::process::exit(1);
        }
    }
}

/// Prints how the reads went; the program fails unless every one
/// completed.
pub fn finish(example: &str, reads: u64, (done, failed): (u64, u64)) {
    println!("{example}: {reads} reads of 4 KiB at depth 1: {done} completed, {failed} failed");
    if done != reads || failed != 0 {
        std::process::exit(1);
    }
}

/// One read as a future, to its end: `submit` makes the future in the
/// slot it is given and polls it once, `poll` walks the completions and
/// polls it again, until it is ready. The buffer back, or `None`.
pub fn read_to_end<F>(
    submit: impl FnOnce(&mut Option<F>) -> Poll<Result<nvme::DmaBuffer, nvme::Error>>,
    mut poll: impl FnMut(&mut F) -> Poll<Result<nvme::DmaBuffer, nvme::Error>>,
) -> Option<nvme::DmaBuffer> {
    let mut slot = None;
    let mut state = submit(&mut slot);
    while state.is_pending()
        && let Some(future) = slot.as_mut()
    {
        state = poll(future);
    }
    match state {
        Poll::Ready(Ok(buffer)) => Some(buffer),
        _ => None,
    }
}

/// A controller brought up for counting: keep it while its queue is used.
pub struct CostRig {
    /// The simulated controller, its DMA memory and clock.
    pub bench: Bench,
    /// The driver's controller.
    pub controller: nvme::Controller<CountedRegisters, TestDma, FakeClock>,
    /// Namespace 1.
    pub ns: nvme::Namespace,
}

impl CostRig {
    /// A default simulated controller brought up with I/O queues of depth
    /// 128, and one of its queues.
    pub fn new() -> Result<(CostRig, CountedQueue), nvme::Error> {
        let bench = Bench::new(SimConfig::default());
        let config = nvme::Config {
            io_queue_depth: 128,
            ..test_config()
        };
        let mut controller = nvme::Controller::new(
            CountedRegisters(bench.sim.clone()),
            bench.dma.clone(),
            bench.clock.clone(),
            config,
        )?;
        let ns = controller.namespace_handle(1)?;
        let queue = controller.take_io_queue()?;
        let rig = CostRig {
            bench,
            controller,
            ns,
        };
        Ok((rig, queue))
    }

    /// Runs `reads` 4 KiB reads of namespace 1 one after another, at
    /// LBAs a fixed stride apart, with one DMA buffer handed from each
    /// read to the next: `read(buffer, lba)` makes one read, to its end,
    /// and gives the buffer back (`None` if it failed: a new buffer is
    /// made). Returns the reads completed and failed.
    pub fn reads_at_depth_one(
        &self,
        reads: u64,
        mut read: impl FnMut(nvme::DmaBuffer, u64) -> Option<nvme::DmaBuffer>,
    ) -> (u64, u64) {
        let blocks = self.ns.block_count();
        let (mut done, mut failed) = (0u64, 0u64);
        let mut lba = 0u64;
        let mut buffer = self.bench.dma.buffer(4096);
        for _ in 0..reads {
            lba = (lba + 4104) % (blocks - 8);
            buffer = match read(buffer, lba & !7) {
                Some(back) => {
                    done += 1;
                    back
                }
                None => {
                    failed += 1;
                    self.bench.dma.buffer(4096)
                }
            };
        }
        (done, failed)
    }
}
