//! The default application: a storage inspector and self-test.
//!
//! For every NVMe controller and namespace: identity (`nvme list` style),
//! the SMART / health log (`nvme smart-log` style), then on namespaces the
//! image owns a write-read-verify pass and a short fio-like benchmark; a
//! summary on screen and one machine-readable JSON line on serial. What it
//! runs comes from the settings file (see `inspector_core::settings`).
//!
//! Write-protected and zoned namespaces. A namespace that is write-protected
//! (Identify NSATTR, or the drive refuses a write with "Namespace is Write
//! Protected" or "Write Fault": `nvme::Error::refuses_writes`; the
//! application remembers it for the rest of the run) is reported once; its
//! write steps (verify's write pass, the write benchmark jobs, the soak) are
//! skipped with one line, or stop at the first refused write, and that
//! refusal is not counted as an error. Its read steps still run: verify
//! then reads the span twice and compares the passes (the content is
//! whatever is on the disk). The run passes if nothing else failed. A zoned
//! namespace is shown with its zone size and is never owned (see
//! `kernel::storage::claim`): verify is skipped with one line, write jobs
//! are skipped, read jobs run where reads of foreign namespaces are allowed
//! (`bench_unowned_reads`).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use bootloader_api::{BootInfo, entry_point};
use inspector_core::soak::{SoakArea, SoakEvent};
use inspector_core::verify::{Event, Pass};
use inspector_core::{ClockTicks, Settings};
use kernel::arch::{exit::running_in_qemu, tsc};
use kernel::storage::{Attached, Ownership, TscClock, attach_all, claim};
use kernel::{ExitStatus, println};
use report::{NamespaceResult, Report, human_bytes, namespace_attributes};

mod async_bench;
mod bench;
mod bench_all;
mod figures;
mod report;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

/// First byte the verify pass and write benchmarks may touch: past the
/// ownership signature (4 KiB..4.5 KiB) and a margin.
const DATA_START: u64 = 1 << 20;

fn main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = kernel::init(boot_info, "info");
    let settings = Settings::parse(kernel.ramdisk.unwrap_or(&[]));
    if let Ok(filter) = kernel::console::logger::Filter::parse(&settings.log) {
        kernel::console::logger::init(filter);
    }
    for warning in &settings.warnings {
        log::warn!("settings: {warning}");
    }
    let pci = kernel::pci::scan(&kernel.memory, kernel.rsdp);
    let (bench_jobs, unknown_jobs) = bench::select(&settings.bench_jobs);
    for name in unknown_jobs {
        log::warn!("settings: bench_jobs: no job named `{name}`; ignored");
    }
    // Depth 128 needs 129 ring entries; CAP.MQES may cap it lower. Shadow
    // doorbells save most MMIO writes where the controller offers them.
    let config = nvme::Config {
        io_queue_depth: 128,
        shadow_doorbells: true,
        ..nvme::Config::default()
    };
    let (mut controllers, failed) = attach_all(&kernel.memory, &pci, config);
    let in_qemu = running_in_qemu();
    // Ownership first, before anything is printed (the framebuffer console
    // is slow): the signature reads are the first block I/O to complete.
    let ownerships: Vec<Vec<(u32, Ownership)>> = controllers
        .iter_mut()
        .map(|attached| {
            attached
                .nsids()
                .into_iter()
                .map(|nsid| {
                    let ownership = claim(&mut attached.controller, nsid, in_qemu, &|s| {
                        settings.claims(s)
                    });
                    (nsid, ownership)
                })
                .collect()
        })
        .collect();
    let first_io_ns = ownerships
        .iter()
        .any(|o| !o.is_empty())
        .then(|| kernel.uptime_ns());
    pci.print_listing();
    let mut report = Report {
        failed_controllers: failed.len(),
        ..Report::default()
    };
    // With `bench_all_namespaces`, the namespaces the benchmark may use,
    // run together once every namespace has been through its other steps.
    let mut bench_targets = Vec::new();

    for (index, (attached, ownerships)) in controllers.iter_mut().zip(ownerships).enumerate() {
        if settings.steps.identify {
            print_identity(attached);
        }
        if settings.steps.smart {
            print_smart(attached, &mut report);
        }
        for (nsid, ownership) in ownerships {
            let serial = attached.controller.info().serial;
            let info = attached.controller.namespace(nsid).map(|d| d.info()).ok();
            let mut result = NamespaceResult {
                serial: String::from(serial.as_str()),
                nsid,
                owned: ownership == Ownership::Owned,
                write_protected: info.is_some_and(|i| i.write_protected),
                zone_bytes: info
                    .and_then(|i| i.zoned.map(|z| z.zone_bytes(i.block_size).unwrap_or(0))),
                ..NamespaceResult::default()
            };
            println!(
                "namespace {nsid} of {}: {ownership}{}",
                serial.as_str(),
                namespace_attributes(&result)
            );
            if result.zone_bytes.is_some() && settings.steps.verify {
                println!("  verify: skipped: zoned namespace (no random writes)");
            }
            if result.owned && settings.steps.verify {
                verify(attached, nsid, settings.verify_span, &mut result);
            }
            let bench = settings.steps.bench && (result.owned || settings.bench_unowned_reads);
            if bench && settings.bench_all_namespaces {
                bench_targets.push(bench_all::Target {
                    controller: index,
                    nsid,
                    label: alloc::format!("{}/{nsid}", result.serial),
                    owned: result.owned,
                    write_protected: result.write_protected,
                });
            } else if bench {
                if let Some(ns) = first_io_ns {
                    kernel::console::serial::print(format_args!(
                        "BENCH-FIRST-IO-MS {:.3}\n",
                        ns as f64 / 1e6
                    ));
                }
                result.bench = bench::run_all(
                    attached,
                    nsid,
                    DATA_START,
                    settings.bench_ms,
                    &bench_jobs,
                    result.owned,
                    &mut result.write_protected,
                );
            }
            if result.owned && settings.steps.soak {
                soak(attached, nsid, &settings, &mut result);
            }
            if !result.write_protected
                && let Ok(device) = attached.controller.namespace(nsid)
                && device.info().write_protected
            {
                result.write_protected = true;
            }
            report.namespaces.push(result);
        }
    }

    if !bench_targets.is_empty() {
        if let Some(ns) = first_io_ns {
            kernel::console::serial::print(format_args!(
                "BENCH-FIRST-IO-MS {:.3}\n",
                ns as f64 / 1e6
            ));
        }
        report.bench_all = bench_all::run(
            &mut controllers,
            &mut bench_targets,
            DATA_START,
            settings.bench_ms,
            &bench_jobs,
        );
        for target in bench_targets.iter().filter(|t| t.write_protected) {
            let label = |n: &NamespaceResult| alloc::format!("{}/{}", n.serial, n.nsid);
            for ns in report
                .namespaces
                .iter_mut()
                .filter(|n| label(n) == target.label)
            {
                ns.write_protected = true;
            }
        }
    }

    // Flush and tell every drive it is being shut down, so a real drive
    // records a clean shutdown.
    for attached in &mut controllers {
        for nsid in attached.nsids() {
            if let Ok(mut device) = attached.controller.namespace(nsid)
                && device.is_writable()
                && let Err(error) = device.flush()
            {
                log::error!("flush of namespace {nsid} failed: {error}");
                report.errors += 1;
            }
        }
        if let Err(error) = attached.controller.shutdown() {
            log::error!("NVMe {} shutdown: {error}", attached.address);
            report.errors += 1;
        }
    }
    report.first_io_ms = first_io_ns.unwrap_or_else(|| kernel.uptime_ns()) as f64 / 1e6;
    report.print(controllers.len());
    let status = if report.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    if !in_qemu {
        // The report stays on screen until a key is pressed.
        kernel::reset::wait_for_key_then_restart(&kernel.memory, kernel.rsdp);
    } else if settings.linger_ms > 0 {
        kernel::console::serial::read_byte(settings.linger_ms.saturating_mul(1_000_000));
    }
    kernel::exit(status)
}

fn print_identity(attached: &Attached) {
    let info = attached.controller.info();
    println!(
        "\nNVMe controller {} [{:04x}:{:04x}]  NVMe {}.{}.{}",
        attached.address,
        attached.ids.0,
        attached.ids.1,
        info.version.major(),
        info.version.minor(),
        info.version.tertiary()
    );
    println!("  Model      {}", info.model.as_str());
    println!("  Serial     {}", info.serial.as_str());
    println!("  Firmware   {}", info.firmware.as_str());
    println!(
        "  MDTS       {}",
        info.mdts_bytes
            .map_or(String::from("no limit"), |b| alloc::format!(
                "{} KiB",
                b / 1024
            ))
    );
    println!(
        "  I/O queues {} x depth {}, {} doorbells",
        info.io_queues,
        info.io_queue_depth,
        if info.shadow_doorbells {
            "shadow"
        } else {
            "MMIO"
        }
    );
    println!(
        "  Write cache {}, Write Zeroes {}, Deallocate {}",
        if !info.volatile_write_cache_present {
            "absent"
        } else if info.volatile_write_cache_enabled {
            "enabled"
        } else {
            "disabled"
        },
        if info.write_zeroes { "yes" } else { "no" },
        if info.deallocate { "yes" } else { "no" },
    );
    println!(
        "  Host memory buffer {}, shutdown wait {} ms",
        if info.host_memory_buffer_bytes == 0 {
            String::from("none")
        } else {
            alloc::format!("{} KiB", info.host_memory_buffer_bytes / 1024)
        },
        info.shutdown_wait_ms,
    );
    println!(
        "  {:<6} {:<22} {:<12} {:<10} Attributes",
        "NSID", "Capacity", "Format", "Blocks"
    );
    for ns in attached.controller.namespaces() {
        let mut attributes = String::new();
        if ns.write_protected {
            attributes.push_str("write-protected ");
        }
        if let Some(zone) = ns.zoned {
            match zone.zone_bytes(ns.block_size) {
                Some(bytes) => {
                    let _ = write!(attributes, "zoned, zone {}", human_bytes(bytes));
                }
                None => attributes.push_str("zoned, zone size unknown"),
            }
        }
        println!(
            "  {:<6} {:<22} {:<12} {:<10} {}",
            ns.nsid,
            human_bytes(ns.block_count * ns.block_size as u64),
            alloc::format!("{} B + {}", ns.block_size, ns.metadata_size),
            ns.block_count,
            attributes.trim_end()
        );
    }
}

fn print_smart(attached: &mut Attached, report: &mut Report) {
    match attached.controller.smart_log() {
        Ok(log) => {
            let w = log.critical_warning;
            let mut warnings = String::new();
            for (set, name) in [
                (w.available_spare_low(), "spare below threshold"),
                (w.temperature(), "temperature"),
                (w.reliability_degraded(), "reliability degraded"),
                (w.read_only(), "media read-only"),
                (w.volatile_backup_failed(), "volatile backup failed"),
                (
                    w.persistent_memory_read_only(),
                    "persistent memory read-only",
                ),
            ] {
                if set {
                    let _ = write!(
                        warnings,
                        "{}{name}",
                        if warnings.is_empty() { "" } else { ", " }
                    );
                }
            }
            println!("  SMART / health");
            println!(
                "    critical_warning      {:#04x} {}",
                w.0,
                if warnings.is_empty() {
                    "(none)"
                } else {
                    &warnings
                }
            );
            println!(
                "    temperature           {} C",
                log.composite_temperature_celsius()
            );
            println!(
                "    available_spare       {}% (threshold {}%)",
                log.available_spare, log.available_spare_threshold
            );
            println!("    percentage_used       {}%", log.percentage_used);
            println!("    power_on_hours        {}", log.power_on_hours);
            println!("    power_cycles          {}", log.power_cycles);
            println!("    unsafe_shutdowns      {}", log.unsafe_shutdowns);
            println!("    media_errors          {}", log.media_errors);
            println!("    num_err_log_entries   {}", log.error_log_entries);
            report.smart.push((
                log.composite_temperature_celsius(),
                log.percentage_used,
                log.media_errors as u64,
                w.0,
            ));
        }
        Err(error) => {
            println!("  SMART / health log unavailable: {error}");
            report.errors += 1;
        }
    }
}

/// The write-read-verify pass (`inspector_core::verify`) over `span` bytes
/// from `DATA_START`, printed as it goes: progress at most once a second,
/// errors to the log, the outcome on one line.
fn verify(attached: &mut Attached, nsid: u32, span: u64, result: &mut NamespaceResult) {
    let Ok(mut device) = attached.controller.namespace(nsid) else {
        return;
    };
    let started = tsc::now_ns();
    let mut last_progress = started;
    let mut observe = |event: Event| match event {
        Event::TooSmall => println!("  verify: namespace too small"),
        Event::WriteProtected => println!(
            "  verify: namespace is write-protected: write pass skipped, the span is read twice"
        ),
        Event::WriteRefused { lba, error } => println!(
            "  verify: write at LBA {lba} refused ({error}): namespace taken as write-protected; write pass stopped, the span is read twice"
        ),
        Event::Failed { pass, lba, error } => {
            let what = if pass == Pass::Write { "write" } else { "read" };
            log::error!("verify: {what} at LBA {lba}: {error}");
        }
        Event::Mismatch { .. } => {}
        Event::ReadsDiffer { lba } => log::error!("verify: LBA {lba}: the two reads differ"),
        Event::Progress { pass, done, total } => {
            let now = tsc::now_ns();
            if now - last_progress > 1_000_000_000 {
                last_progress = now;
                let what = if pass == Pass::Write {
                    "writing"
                } else {
                    "reading"
                };
                println!("  verify: {what} {}%", done * 100 / total);
            }
        }
    };
    let report = inspector_core::verify(&mut device, DATA_START, span, tsc::now(), &mut observe);
    result.write_protected |= report.write_protected;
    result.verified_bytes = report.verified_bytes;
    result.read_verified_bytes = report.read_verified_bytes;
    result.mismatches += report.mismatches;
    result.errors += report.errors;
    let ms = (tsc::now_ns() - started) / 1_000_000;
    if report.verified_bytes > 0 {
        println!(
            "  verify: {} written and read back in {ms} ms: {} mismatched blocks, {} errors",
            human_bytes(report.verified_bytes),
            report.mismatches,
            report.errors
        );
    } else if report.read_verified_bytes > 0 {
        println!(
            "  verify: {} read twice in {ms} ms (write-protected): {} chunks differed, {} errors",
            human_bytes(report.read_verified_bytes),
            report.mismatches,
            report.errors
        );
    }
}

fn soak(attached: &mut Attached, nsid: u32, settings: &Settings, result: &mut NamespaceResult) {
    let write_protected = result.write_protected
        || attached
            .controller
            .namespace(nsid)
            .is_ok_and(|device| device.info().write_protected);
    if write_protected {
        result.write_protected = true;
        println!("  soak: skipped: namespace is write-protected (the soak writes before it reads)");
        return;
    }
    println!(
        "  soak: {} s of random mixed 4 KiB I/O at depth 32, every read verified",
        settings.soak_ms / 1000
    );
    let area = SoakArea {
        nsid,
        first_byte: DATA_START,
        span_bytes: settings.soak_span,
        duration_ms: settings.soak_ms,
    };
    let mut observe = |event: SoakEvent| match event {
        SoakEvent::Progress {
            report: r,
            seconds_left,
        } => println!(
            "  soak: {} reads verified, {} writes, {} failures, {} errors, {seconds_left} s left",
            r.verified, r.writes, r.verify_failures, r.errors
        ),
        SoakEvent::Mismatch { lba, generation } => {
            log::error!("soak: LBA {lba} does not hold generation {generation}");
        }
        SoakEvent::Failed { lba, error } => log::warn!("soak: LBA {lba}: {error}"),
    };
    let home = attached.dma.home();
    let ticks = ClockTicks(TscClock);
    match inspector_core::soak::run(&mut attached.controller, &home, &area, &ticks, &mut observe) {
        Ok(report) => {
            println!(
                "  soak: done: {} I/Os ({} reads verified, {} writes), {} verification failures, {} errors",
                report.reads + report.writes,
                report.verified,
                report.writes,
                report.verify_failures,
                report.errors
            );
            if report.write_protected {
                result.write_protected = true;
                println!(
                    "  soak: stopped at the first refused write: namespace is write-protected"
                );
            }
            result.mismatches += report.verify_failures;
            result.errors += report.errors;
            result.soak = Some(report);
        }
        Err(error) => {
            println!("  soak: not run: {error:?}");
            result.errors += 1;
        }
    }
}
