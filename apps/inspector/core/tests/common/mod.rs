//! Shared by the simulator tests: a controller whose namespace 1 the image
//! owns, and what the I/O commands the simulator fetched touched.

#![allow(dead_code, reason = "each test uses a different part")]

use nvme_sim::{Bench, TestController, test_config};

/// A controller brought up on `bench` with namespace 1 owned: writes to it
/// are allowed, as on a namespace the image owns.
pub fn controller_owning_namespace_1(bench: &Bench) -> TestController {
    let mut controller = bench.controller(test_config()).unwrap();
    controller.namespace(1).unwrap().set_writable(true);
    controller
}

/// Starting blocks of the I/O commands with `opcode`, in the order fetched.
pub fn lbas(bench: &Bench, opcode: u8) -> Vec<u64> {
    bench
        .sim
        .commands()
        .iter()
        .filter(|c| c.qid != 0 && c.entry.opcode == opcode)
        .map(|c| u64::from(c.entry.cdw[0]) | (u64::from(c.entry.cdw[1]) << 32))
        .collect()
}
