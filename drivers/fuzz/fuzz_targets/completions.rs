//! Completion entries as the queue code processes them: the real `IoQueue`
//! over the simulated controller, with the simulator's own completions held
//! back and fuzzer-chosen entries written into the completion ring instead
//! (any phase, status, command identifier, SQ ID and SQ head, at any ring
//! slot), mixed with submissions (reads, writes split over two commands,
//! flushes, discards), polls, timeouts, recovery and shutdown.
//!
//! Checked: no panic, nothing over the queue depth in flight, every
//! request is reported at most once and only if it was submitted, a
//! refused request gets its own buffer back, and a buffer comes back only
//! with a read or write (always, when it succeeded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme::command::{CompletionEntry, Status};
use nvme_sim::{Bench, SimConfig, test_config};
use std::collections::BTreeSet;

/// Enough operations to wrap small rings many times, few enough that a
/// command identifier's sequence number cannot come round again (the
/// simulator rejects a reused identifier of a command it still holds).
const MAX_OPS: usize = 400;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(depth) = input.byte() else {
        return;
    };
    // 8 KiB per command: writes of up to 12 KiB take two.
    let bench = Bench::new(SimConfig {
        mdts: 1,
        ..SimConfig::default()
    });
    let config = nvme::Config {
        io_queue_depth: u16::from(depth % 16) + 1,
        ..test_config()
    };
    let Ok(mut ctrl) = bench.controller(config) else {
        return;
    };
    ctrl.namespace(1).unwrap().set_writable(true);
    let Ok(ns) = ctrl.namespace_handle(1) else {
        return;
    };
    let Ok(mut queue) = ctrl.take_io_queue() else {
        return;
    };
    let qid = queue.queue_id();
    bench.sim.set_defer(true);
    let mut next_tag = 0u64;
    let mut outstanding = BTreeSet::new();

    for _ in 0..MAX_OPS {
        let Some(op) = input.byte() else {
            break;
        };
        match op % 10 {
            0 | 1 => {
                let lba = u64::from(input.byte().unwrap_or(0));
                let blocks = 1 + usize::from(input.byte().unwrap_or(0) % 24);
                next_tag += 1;
                let mut transfer = |buffer: nvme::DmaBuffer, write: bool| {
                    let address = buffer.phys();
                    let result = if write {
                        queue.submit_write(&ns, lba, buffer, next_tag)
                    } else {
                        queue.submit_read(&ns, lba, buffer, next_tag)
                    };
                    result.map_err(|refused| {
                        assert_eq!(refused.buffer.phys(), address, "another buffer came back");
                        refused.error
                    })
                };
                let result = match op % 4 {
                    0 => transfer(bench.dma.buffer(512), false),
                    1 => transfer(bench.dma.buffer_from(&vec![0x5a; blocks * 512]), true),
                    2 => queue.submit_discard(&ns, lba, blocks as u32, next_tag),
                    _ => queue.submit_flush(&ns, next_tag),
                };
                if result.is_ok() {
                    outstanding.insert(next_tag);
                }
            }
            2 => {
                // Anything at all, anywhere in the ring.
                let (Some(index), Some(d0), Some(d1), Some(d2), Some(d3)) = (
                    input.byte(),
                    input.u32(),
                    input.u32(),
                    input.u32(),
                    input.u32(),
                ) else {
                    break;
                };
                bench
                    .sim
                    .write_completion_raw(qid, u32::from(index), [d0, d1, d2, d3]);
            }
            3 | 4 => {
                // A plausible entry: the identifier of a command the device
                // really saw on this queue, other fields chosen freely.
                let (Some(pick), Some(index), Some(sq_head), Some(status), Some(flags)) = (
                    input.byte(),
                    input.byte(),
                    input.u16(),
                    input.u16(),
                    input.byte(),
                ) else {
                    break;
                };
                let seen: Vec<u16> = bench
                    .sim
                    .commands()
                    .iter()
                    .filter(|c| c.qid == qid)
                    .map(|c| c.cid)
                    .collect();
                let cid = match seen.len() {
                    0 => u16::from(pick),
                    n => seen[n - 1 - usize::from(pick) % n],
                };
                let entry = CompletionEntry {
                    dw0: 0,
                    dw1: 0,
                    sq_head: if flags & 2 != 0 {
                        sq_head
                    } else {
                        sq_head % 32
                    },
                    sq_id: if flags & 4 != 0 { sq_head } else { qid },
                    cid,
                    phase: flags & 1 != 0,
                    status: if flags & 8 != 0 {
                        Status::from_field(status)
                    } else {
                        Status::SUCCESS
                    },
                };
                bench
                    .sim
                    .write_completion_raw(qid, u32::from(index), entry.to_dwords());
            }
            5 | 6 => {
                queue.poll(|completion| {
                    assert!(
                        outstanding.remove(&completion.tag),
                        "request {} reported but not outstanding",
                        completion.tag
                    );
                    let transfer = matches!(completion.op, nvme::IoOp::Read | nvme::IoOp::Write);
                    if completion.buffer.is_some() {
                        assert!(transfer, "a buffer with a {:?}", completion.op);
                    }
                    if transfer && completion.result.is_ok() {
                        assert!(completion.buffer.is_some(), "a successful transfer kept its buffer");
                    }
                });
            }
            7 => bench.clock.advance_ms(150),
            8 => {
                if queue.needs_recovery() {
                    let _ = ctrl.recover();
                }
            }
            _ => {
                if op == 9 {
                    let _ = ctrl.shutdown();
                }
            }
        }
        assert!(queue.in_flight() <= queue.depth());
    }
});
