//! A fault armed on one I/O command of the simulated controller, as the
//! fault tests of the queue API, of split requests and of the `async` path
//! arm it.

use nvme_sim::{Fault, FaultRule, Sim};

/// The first I/O command with `opcode` after `skip` such commands gets
/// `fault` (admin commands are not matched).
pub fn arm_io_fault(sim: &Sim, opcode: u8, skip: u32, fault: Fault) {
    sim.add_fault(FaultRule {
        admin: false,
        opcode,
        skip,
        fault,
    });
}
