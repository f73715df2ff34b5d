//! Host Memory Buffer against a simulated DRAM-less drive: preferred size,
//! minimum only, not enough memory, refusal, reset, and release before
//! shutdown.

use nvme::command::Status;
use nvme::registers::ShutdownNotification;
use nvme_sim::real_drive::{HmbCommand, RealDrive};
use nvme_sim::*;

const MIB: usize = 1 << 20;
/// 4 MiB preferred, 1 MiB minimum (4 KiB units).
const HMPRE: u32 = 1024;
const HMMIN: u32 = 256;

fn dramless(real: RealDrive) -> SimConfig {
    SimConfig {
        real: RealDrive {
            hmpre: HMPRE,
            hmmin: HMMIN,
            ..real
        },
        ..SimConfig::default()
    }
}

/// DMA bytes the driver holds after bring-up without any buffer.
fn baseline() -> usize {
    let bench = Bench::new(SimConfig::default());
    let _ctrl = bench.controller(test_config()).unwrap();
    bench.dma.outstanding_bytes()
}

fn enables(commands: &[HmbCommand]) -> Vec<&HmbCommand> {
    commands.iter().filter(|c| c.enable).collect()
}

fn descriptor_bytes(c: &HmbCommand, page: u64) -> u64 {
    c.descriptors
        .iter()
        .map(|&(_, p)| u64::from(p) * page)
        .sum()
}

fn io_works(ctrl: &mut TestController) {
    let mut dev = ctrl.namespace(1).unwrap();
    dev.set_writable(true);
    let data = pattern(8192, 5);
    dev.write(8, &data).unwrap();
    let mut back = vec![0u8; 8192];
    dev.read(8, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn preferred_size_is_granted() {
    let bench = Bench::new(dramless(RealDrive::default()));
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 4 * MIB);
    assert_eq!(bench.sim.hmb_bytes_in_use(), 4 * MIB);
    let commands = bench.sim.hmb_commands();
    assert_eq!(commands.len(), 1);
    let c = &commands[0];
    assert!(c.enable && !c.memory_return);
    assert_eq!(c.status, Status::SUCCESS);
    assert_eq!(c.size_pages, 1024);
    assert_eq!(c.entries as usize, c.descriptors.len());
    assert_eq!(descriptor_bytes(c, 4096), 4 * MIB as u64);
    io_works(&mut ctrl);
}

#[test]
fn chunks_follow_what_the_allocator_can_give() {
    let bench = Bench::new(dramless(RealDrive::default()));
    bench.dma.set_max_chunk(Some(MIB));
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 4 * MIB);
    let c = &bench.sim.hmb_commands()[0];
    assert_eq!(c.descriptors.len(), 4);
    for &(addr, pages) in &c.descriptors {
        assert_eq!(addr % 4096, 0);
        assert_eq!(pages, 256);
    }
}

#[test]
fn descriptor_limits_are_honoured() {
    // HMMINDS 1 MiB, HMMAXD 2: with 1 MiB chunks only 2 MiB fit the list.
    let bench = Bench::new(dramless(RealDrive {
        hmminds: 256,
        hmmaxd: 2,
        ..RealDrive::default()
    }));
    bench.dma.set_max_chunk(Some(MIB));
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 2 * MIB);
    let c = &bench.sim.hmb_commands()[0];
    assert_eq!(c.entries, 2);
    assert!(c.descriptors.iter().all(|&(_, pages)| pages == 256));

    // Chunks below HMMINDS cannot be had: no buffer at all.
    let bench = Bench::new(dramless(RealDrive {
        hmminds: 256,
        ..RealDrive::default()
    }));
    bench.dma.set_max_chunk(Some(MIB / 2));
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 0);
    assert!(bench.sim.hmb_commands().is_empty());
}

#[test]
fn only_the_minimum_when_memory_is_short() {
    let base = baseline();
    let bench = Bench::new(dramless(RealDrive::default()));
    // Room for the descriptor list page and exactly the minimum.
    bench.dma.set_limit_bytes(Some(base + 4096 + MIB));
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, MIB);
    let c = &bench.sim.hmb_commands()[0];
    assert_eq!(c.size_pages, 256);
    assert_eq!(descriptor_bytes(c, 4096), MIB as u64);
    io_works(&mut ctrl);

    // Between minimum and preferred: whatever could be had.
    let bench = Bench::new(dramless(RealDrive::default()));
    bench
        .dma
        .set_limit_bytes(Some(base + 4096 + MIB + MIB / 2 + 8192));
    let _ctrl = bench.controller(test_config()).unwrap();
    let got = bench.sim.hmb_bytes_in_use();
    assert!((MIB + MIB / 2..2 * MIB).contains(&got), "{got}");
}

#[test]
fn not_enough_memory_skips_the_buffer() {
    let base = baseline();
    let bench = Bench::new(dramless(RealDrive::default()));
    bench.dma.set_limit_bytes(Some(base + 4096 + MIB / 2));
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 0);
    assert!(bench.sim.hmb_commands().is_empty());
    // Every chunk tried went back to the allocator.
    assert_eq!(bench.dma.outstanding_bytes(), base);
    io_works(&mut ctrl);
}

#[test]
fn default_cap_allows_large_buffers() {
    assert_eq!(
        nvme::Config::default().host_memory_buffer_max_bytes,
        128 * MIB
    );
    let bench = Bench::new(SimConfig {
        real: RealDrive {
            hmpre: 4096, // 16 MiB
            hmmin: HMMIN,
            ..RealDrive::default()
        },
        ..SimConfig::default()
    });
    let ctrl = bench.controller(nvme::Config::default()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 16 * MIB);
}

#[test]
fn configured_cap_limits_the_buffer() {
    let bench = Bench::new(dramless(RealDrive::default()));
    let ctrl = bench
        .controller(nvme::Config {
            host_memory_buffer_max_bytes: 2 * MIB,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 2 * MIB);

    let bench = Bench::new(dramless(RealDrive::default()));
    let ctrl = bench
        .controller(nvme::Config {
            host_memory_buffer_max_bytes: MIB / 2,
            ..test_config()
        })
        .unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 0);
    assert!(bench.sim.hmb_commands().is_empty());
}

#[test]
fn refused_command_frees_the_memory() {
    let base = baseline();
    let bench = Bench::new(dramless(RealDrive {
        refuse_hmb: true,
        ..RealDrive::default()
    }));
    let mut ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 0);
    let commands = bench.sim.hmb_commands();
    assert_eq!(commands.len(), 1);
    assert!(!commands[0].status.is_success());
    assert_eq!(bench.dma.outstanding_bytes(), base);
    io_works(&mut ctrl);
    // Nothing to release at shutdown.
    ctrl.shutdown().unwrap();
    assert_eq!(bench.sim.hmb_commands().len(), 1);
}

#[test]
fn no_buffer_for_drives_that_want_none() {
    let bench = Bench::new(SimConfig::default());
    let ctrl = bench.controller(test_config()).unwrap();
    assert_eq!(ctrl.info().host_memory_buffer_bytes, 0);
    assert!(bench.sim.hmb_commands().is_empty());
}

#[test]
fn released_before_shutdown_and_freed_after_confirmation() {
    let bench = Bench::new(dramless(RealDrive::default()));
    let mut ctrl = bench.controller(test_config()).unwrap();
    let before = bench.dma.outstanding_bytes();
    let chunks: Vec<u64> = bench.sim.hmb_commands()[0]
        .descriptors
        .iter()
        .map(|&(a, _)| a)
        .collect();
    bench.sim.clear_commands();
    ctrl.shutdown().unwrap();
    // Order: queue deletions, then Set Features 0Dh with EHM clear, then
    // CC.SHN with no buffer in use.
    let commands = bench.sim.commands();
    let hmb = bench.sim.hmb_commands();
    assert_eq!(hmb.len(), 2);
    let release = &hmb[1];
    assert!(!release.enable && release.status.is_success());
    let last = commands.last().unwrap();
    assert_eq!(last.entry.opcode, 0x09);
    assert_eq!(last.entry.cdw[0] & 0xFF, 0x0D);
    assert!(
        commands[..commands.len() - 1]
            .iter()
            .all(|c| c.entry.opcode == 0x00 || c.entry.opcode == 0x04)
    );
    assert_eq!(bench.sim.shutdowns_with_hmb(), 0);
    assert_ne!(bench.sim.cc().shn(), ShutdownNotification::None);
    // The memory went back (the simulator checks on every register access
    // that it was not freed while in use).
    assert!(chunks.iter().all(|&a| !bench.dma.is_allocated(a)));
    assert_eq!(bench.dma.outstanding_bytes(), before - 4 * MIB - 4096);
    let freed = bench.dma.freed();
    assert!(chunks.iter().all(|a| freed.contains(a)));
}

#[test]
fn buffer_is_kept_when_release_is_refused() {
    let bench = Bench::new(dramless(RealDrive::default()));
    let mut ctrl = bench.controller(test_config()).unwrap();
    let chunks: Vec<u64> = bench.sim.hmb_commands()[0]
        .descriptors
        .iter()
        .map(|&(a, _)| a)
        .collect();
    bench.sim.add_fault(FaultRule {
        admin: true,
        opcode: 0x09,
        skip: 0,
        fault: Fault::Status(Status::new(0, 0x06)),
    });
    ctrl.shutdown().unwrap();
    // Not confirmed: the controller may still use it, so it stays.
    assert!(chunks.iter().all(|&a| bench.dma.is_allocated(a)));
}

#[test]
fn buffer_is_handed_over_again_after_a_reset() {
    let bench = Bench::new(dramless(RealDrive::default()));
    let mut ctrl = bench.controller(test_config()).unwrap();
    ctrl.recover().unwrap();
    let commands = bench.sim.hmb_commands();
    let enabled = enables(&commands);
    assert_eq!(enabled.len(), 2);
    assert_eq!(enabled[0].descriptors, enabled[1].descriptors);
    assert_eq!(bench.sim.hmb_bytes_in_use(), 4 * MIB);
    io_works(&mut ctrl);
}
