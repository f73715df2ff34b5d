//! Controllers whose memory page is above 4 KiB (CAP.MPSMIN > 0): every
//! DMA allocation is aligned to it, even from an allocator that gives no
//! more alignment than asked for.

use nvme::DmaAllocator;
use nvme_sim::real_drive::RealDrive;
use nvme_sim::*;

const PAGE: usize = 8192;

fn mps_8k_drive() -> Bench {
    let bench = Bench::new(SimConfig {
        mpsmin: 1,
        mpsmax: 4,
        real: RealDrive {
            hmpre: 512,
            hmmin: 128,
            ..RealDrive::default()
        },
        ..SimConfig::default()
    });
    bench.dma.set_misalign(true);
    bench
}

#[test]
fn misaligning_allocator_gives_only_what_is_asked() {
    // The premise of the tests below: without asking, memory is 4 KiB but
    // not 8 KiB aligned.
    let dma = TestDma::new(4096);
    dma.set_misalign(true);
    let small = dma.allocate(PAGE, 4096).unwrap();
    assert_eq!(small.phys().as_u64() % PAGE as u64, 4096);
    let big = dma.allocate(PAGE, PAGE).unwrap();
    assert_eq!(big.phys().as_u64() % PAGE as u64, 0);
    assert_eq!(big.phys().as_u64() % (2 * PAGE as u64), PAGE as u64);
    dma.deallocate(small);
    dma.deallocate(big);
}

#[test]
fn bring_up_uses_the_8k_page_everywhere() {
    let bench = mps_8k_drive();
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().page_size, PAGE);
    assert_eq!(bench.sim.cc().mps(), 1);
    // The simulator refuses admin and I/O queues off the page; the Host
    // Memory Buffer's chunks are checked the same way, and sized in pages.
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 2 << 20);
    let c = &bench.sim.hmb_commands()[0];
    assert_eq!(c.size_pages as usize, (2 << 20) / PAGE);
    assert!(c.descriptors.iter().all(|&(a, _)| a % PAGE as u64 == 0));
}

#[test]
fn io_on_8k_pages_with_prp_lists() {
    let bench = mps_8k_drive();
    let mut ctrl = bench.controller(test_config()).unwrap();
    // Synchronous path through the bounce buffer and its PRP list: 96 KiB
    // spans 12 pages, so PRP2 points to a list.
    {
        let mut dev = ctrl.namespace(1).unwrap();
        dev.set_writable(true);
        let data = pattern(96 * 1024, 3);
        dev.write(16, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        dev.read(16, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(bench.sim.disk(1, 16, 192), data);
    }
    // Queued path: the caller's buffers, 4 KiB aligned, so they start in
    // the middle of an 8 KiB page (PRP1 with an offset, then a list); the
    // second request is over the transfer limit and split in two.
    let ns = ctrl.namespace_handle(1).unwrap();
    let mut q = ctrl.take_io_queue().unwrap();
    let max = q.max_transfer_bytes();
    for (len, commands) in [(64 * 1024, 1), (max + 64 * 1024, 2)] {
        let data = pattern(len, 9);
        let buffer = bench.dma.buffer_from(&data);
        assert_eq!(buffer.phys().as_u64() % PAGE as u64, 4096);
        let sent = bench.sim.commands().len();
        q.submit_write(&ns, 512, buffer, 1).unwrap();
        assert_eq!(bench.sim.commands().len() - sent, commands);
        let mut done = 0;
        while done == 0 {
            done += q.poll(|c| assert_eq!(c.result, Ok(())));
        }
        q.submit_read(&ns, 512, bench.dma.buffer(len), 2).unwrap();
        let mut read = Vec::new();
        while read.is_empty() {
            q.poll(|c| {
                assert_eq!(c.result, Ok(()));
                read = c.buffer.unwrap().as_slice().to_vec();
            });
        }
        assert_eq!(read, data);
    }
    ctrl.return_io_queue(q).map_err(|_| ()).unwrap();
    ctrl.shutdown().unwrap();
}

#[test]
fn recovery_on_8k_pages() {
    let bench = mps_8k_drive();
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.recover().unwrap();
    let mut buf = vec![0u8; 4096];
    ctrl.namespace(1).unwrap().read(0, &mut buf).unwrap();
    assert_eq!(bench.sim.hmb_bytes_in_use(), 2 << 20);
}
