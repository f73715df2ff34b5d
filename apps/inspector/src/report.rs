//! The inspector's report: what each namespace's steps found, the summary
//! on screen and the one `JSON` line on serial.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use kernel::println;

use crate::figures;

/// `1.07 GB`: bytes in decimal units.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    alloc::format!("{value:.2} {}", units[unit])
}

/// `, write-protected` / `, zoned (zone N)` for the namespace line.
pub fn namespace_attributes(result: &NamespaceResult) -> String {
    let mut attributes = String::new();
    if result.write_protected {
        attributes.push_str(", write-protected");
    }
    match result.zone_bytes {
        Some(0) => attributes.push_str(", zoned (zone size unknown)"),
        Some(bytes) => {
            let _ = write!(attributes, ", zoned (zone {})", human_bytes(bytes));
        }
        None => {}
    }
    attributes
}

/// What the steps found on one namespace.
#[derive(Default)]
pub struct NamespaceResult {
    pub serial: String,
    pub nsid: u32,
    pub owned: bool,
    /// Write-protected (Identify, or a write refused so).
    pub write_protected: bool,
    /// Zoned, with the zone size in bytes (0 = unknown).
    pub zone_bytes: Option<u64>,
    pub verified_bytes: u64,
    /// Bytes read twice and compared (write-protected namespaces).
    pub read_verified_bytes: u64,
    pub mismatches: u64,
    pub errors: u64,
    pub bench: Vec<figures::JobResult>,
    pub soak: Option<inspector_core::soak::SoakReport>,
}

/// The whole run.
#[derive(Default)]
pub struct Report {
    pub namespaces: Vec<NamespaceResult>,
    /// The benchmark on every namespace at once: rows per job.
    pub bench_all: Vec<figures::JobResult>,
    pub smart: Vec<(i32, u8, u64, u8)>,
    pub failed_controllers: usize,
    pub errors: u64,
    pub first_io_ms: f64,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.errors == 0
            && self.failed_controllers == 0
            && self.namespaces.iter().all(|n| {
                n.mismatches == 0 && n.errors == 0 && n.bench.iter().all(|b| b.errors == 0)
            })
            && self.bench_all.iter().all(|b| b.errors == 0)
    }

    /// The summary on screen and the `JSON` line on serial.
    pub fn print(&self, controllers: usize) {
        println!("\n==================== summary ====================");
        println!(
            "controllers {controllers} (failed {}), namespaces {} (owned {}), first I/O at {:.1} ms",
            self.failed_controllers,
            self.namespaces.len(),
            self.namespaces.iter().filter(|n| n.owned).count(),
            self.first_io_ms
        );
        for ns in &self.namespaces {
            println!(
                "{} ns {}: {}{}, verified {}{}, {} mismatches, {} errors",
                ns.serial,
                ns.nsid,
                if ns.owned { "owned" } else { "read-only" },
                namespace_attributes(ns),
                human_bytes(ns.verified_bytes),
                if ns.read_verified_bytes > 0 {
                    alloc::format!(", read twice {}", human_bytes(ns.read_verified_bytes))
                } else {
                    String::new()
                },
                ns.mismatches,
                ns.errors
            );
            if !ns.bench.is_empty() {
                figures::print_table(&ns.bench);
            }
        }
        if !self.bench_all.is_empty() {
            println!("benchmark on every namespace at once:");
            figures::print_table(&self.bench_all);
        }
        println!("result: {}", if self.ok() { "PASS" } else { "FAIL" });
        // One machine-readable line, on serial only (the screen shows the table).
        let mut json = String::from("{\"report\":\"nvme-unikernel\",");
        let _ = write!(
            json,
            "\"controllers\":{controllers},\"failed_controllers\":{},\"first_io_ms\":{:.3},\"pass\":{},\"namespaces\":[",
            self.failed_controllers,
            self.first_io_ms,
            self.ok()
        );
        for (i, ns) in self.namespaces.iter().enumerate() {
            let _ = write!(
                json,
                "{}{{\"serial\":\"{}\",\"nsid\":{},\"owned\":{},\"verified_bytes\":{},\"mismatches\":{},\"errors\":{},\"write_protected\":{},\"read_verified_bytes\":{},\"zone_bytes\":{},\"bench\":[",
                if i == 0 { "" } else { "," },
                ns.serial.escape_default(),
                ns.nsid,
                ns.owned,
                ns.verified_bytes,
                ns.mismatches,
                ns.errors,
                ns.write_protected,
                ns.read_verified_bytes,
                ns.zone_bytes
                    .map_or(String::from("null"), |b| alloc::format!("{b}"))
            );
            for (j, job) in ns.bench.iter().filter(|b| b.skipped.is_none()).enumerate() {
                let _ = write!(json, "{}{}", if j == 0 { "" } else { "," }, job.json());
            }
            json.push(']');
            if let Some(soak) = ns.soak {
                let _ = write!(
                    json,
                    ",\"soak\":{{\"reads\":{},\"verified\":{},\"writes\":{},\"verify_failures\":{},\"errors\":{}}}",
                    soak.reads, soak.verified, soak.writes, soak.verify_failures, soak.errors
                );
            }
            json.push('}');
        }
        json.push_str("],\"bench_all_namespaces\":[");
        for (j, row) in self
            .bench_all
            .iter()
            .filter(|b| b.skipped.is_none())
            .enumerate()
        {
            let _ = write!(json, "{}{}", if j == 0 { "" } else { "," }, row.json());
        }
        json.push_str("],\"smart\":[");
        for (i, (temp, used, media, warn)) in self.smart.iter().enumerate() {
            let _ = write!(
                json,
                "{}{{\"temperature_c\":{temp},\"percentage_used\":{used},\"media_errors\":{media},\"critical_warning\":{warn}}}",
                if i == 0 { "" } else { "," }
            );
        }
        json.push_str("]}");
        kernel::console::serial::print(format_args!("JSON {json}\n"));
    }
}
