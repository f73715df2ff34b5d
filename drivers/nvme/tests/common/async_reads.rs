//! Single-block reads through an `async` queue, one task each, on a
//! namespace whose blocks hold their own numbers: the load the fault and
//! health tests of the `async` path keep in flight while they break the
//! device, with each read's outcome recorded so that a test can check it
//! ended exactly once.

use super::executor::{Task, block_on, run};
use nvme::{AsyncQueue, Clock, Error, Namespace, RegisterAccess};
use nvme_sim::{Sim, TestDma};
use std::cell::RefCell;
use std::rc::Rc;

/// Fills namespace 1 so that every byte of block `n` holds `n as u8`,
/// which is what [`read_each_block`] checks the data against.
pub fn number_the_blocks(sim: &Sim) {
    sim.fill_disk(1, |i| (i / 512) as u8);
}

/// Reads blocks `0..count` of `ns` (512-byte blocks, numbered by
/// [`number_the_blocks`]) through `queue`, one task per block, with `idle`
/// as the executor's idle step; each read that succeeds must hold its
/// block's number. Returns every outcome each read ended with, by LBA.
pub fn read_each_block<R: RegisterAccess + 'static, C: Clock + 'static>(
    queue: &AsyncQueue<R, C>,
    ns: Namespace,
    dma: &TestDma,
    count: u64,
    idle: impl FnMut() -> usize,
) -> Vec<Vec<Result<(), Error>>> {
    let results = Rc::new(RefCell::new(vec![Vec::new(); count as usize]));
    let tasks: Vec<Task> = (0..count)
        .map(|lba| {
            let (q, dma, results) = (queue.clone(), dma.clone(), results.clone());
            Box::pin(async move {
                let r = q.read(&ns, lba, dma.buffer(512)).await;
                if let Ok(buf) = &r {
                    assert!(buf.as_slice().iter().all(|&b| b == lba as u8), "lba {lba}");
                }
                results.borrow_mut()[lba as usize].push(r.map(|_| ()));
            }) as Task
        })
        .collect();
    run(tasks, idle);
    Rc::try_unwrap(results).unwrap().into_inner()
}

/// Reads block `lba` of `ns` (numbered by [`number_the_blocks`]) through
/// `queue` on its own, with `idle` as the executor's idle step; the number
/// the block holds (its first byte).
pub fn read_block_number<R: RegisterAccess + 'static, C: Clock + 'static>(
    queue: &AsyncQueue<R, C>,
    ns: Namespace,
    dma: &TestDma,
    lba: u64,
    idle: impl FnMut() -> usize,
) -> Result<u8, Error> {
    let (q, dma) = (queue.clone(), dma.clone());
    block_on(
        async move {
            q.read(&ns, lba, dma.buffer(512))
                .await
                .map(|b| b.as_slice()[0])
        },
        idle,
    )
}
