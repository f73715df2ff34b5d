//! The kernel's PCI listing agrees with QEMU's own view of the same running
//! machine (its monitor's `info pci`): the same functions, the same IDs, the
//! same BAR addresses and sizes — on `pc` under BIOS and `q35` under UEFI,
//! with NVMe controllers behind a PCI bridge and a PCIe root port.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use boot::qemu::{Firmware, Machine, NvmeDisk};
use boot::{disk, image};

mod support;

type Bdf = (u8, u8, u8);

#[derive(Debug, Default, PartialEq, Eq)]
struct Device {
    id: String,
    /// BAR index -> (address, size), assigned BARs only.
    bars: BTreeMap<u8, (u64, u64)>,
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not hex: {text}"))
}

/// Parse the kernel's lspci-like listing.
fn parse_kernel(listing: &str) -> BTreeMap<Bdf, Device> {
    let mut devices = BTreeMap::new();
    let mut current: Option<Bdf> = None;
    for line in listing.lines() {
        if let Some(rest) = line.strip_prefix("0000:") {
            // 00:04.0 Non-Volatile memory controller [0108]: 1b36:0010 (rev 02)
            let bus = hex(&rest[0..2]) as u8;
            let dev = hex(&rest[3..5]) as u8;
            let func = hex(&rest[6..7]) as u8;
            let id = rest
                .split("]: ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            devices.insert(
                (bus, dev, func),
                Device {
                    id,
                    bars: BTreeMap::new(),
                },
            );
            current = Some((bus, dev, func));
        } else if let (Some(bdf), Some(rest)) = (current, line.trim().strip_prefix("BAR")) {
            // BAR0: Memory at febf0000 (64-bit, non-prefetchable) [size=16K]
            let index: u8 = rest[..1].parse().unwrap();
            let address = hex(rest
                .split(" at ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap());
            let size_text = rest.split("[size=").nth(1).unwrap().trim_end_matches(']');
            let (digits, unit) = size_text.split_at(
                size_text
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(size_text.len()),
            );
            let shift = match unit {
                "" => 0,
                "K" => 10,
                "M" => 20,
                "G" => 30,
                "T" => 40,
                u => panic!("unit {u}"),
            };
            let size = digits.parse::<u64>().unwrap() << shift;
            if address != 0 {
                devices
                    .get_mut(&bdf)
                    .unwrap()
                    .bars
                    .insert(index, (address, size));
            }
        }
    }
    devices
}

/// Parse QEMU's `info pci`.
fn parse_qemu(info: &str) -> BTreeMap<Bdf, Device> {
    let mut devices = BTreeMap::new();
    let mut current: Option<Bdf> = None;
    for line in info.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Bus ") {
            // Bus  0, device   4, function 0:
            let numbers: Vec<u8> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            current = Some((numbers[0], numbers[1], numbers[2]));
        } else if let (Some(bdf), Some(at)) = (current, line.find("PCI device ")) {
            let id = line[at + 11..].trim().to_owned();
            devices.insert(
                bdf,
                Device {
                    id,
                    bars: BTreeMap::new(),
                },
            );
        } else if let (Some(bdf), Some(rest)) = (current, line.strip_prefix("BAR")) {
            // BAR0: 64 bit memory at 0xfebf0000 [0xfebf3fff].   BAR4: I/O at 0xc040 [0xc04f].
            let index: u8 = rest[..1].parse().unwrap();
            let address = hex(rest
                .split(" at ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap());
            let end = hex(rest
                .split('[')
                .nth(1)
                .unwrap()
                .trim_end_matches("].")
                .trim_end_matches(']'));
            if address != u64::MAX && address != 0 {
                devices
                    .get_mut(&bdf)
                    .unwrap()
                    .bars
                    .insert(index, (address, end - address + 1));
            }
        }
    }
    devices
}

fn compare(machine_type: &str, firmware: Firmware, extra: &[&str], disks: &[&str]) {
    let kernel = support::kernel("example", "pci_listing");
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("listing.img");
    image::build(&kernel, &image_path, &image::ImageSpec::default()).unwrap();
    let mut machine = Machine::new(image_path, dir.path().to_path_buf());
    machine.machine = machine_type.into();
    machine.firmware = firmware;
    let socket = dir.path().join("monitor.sock");
    machine.extra = extra.iter().map(|s| s.to_string()).collect();
    machine.add_monitor(&socket);
    for (index, properties) in disks.iter().enumerate() {
        let path = dir.path().join(format!("d{index}.img"));
        disk::create_if_missing(&path, 16 << 20).unwrap();
        let mut disk = NvmeDisk::new(path, format!("PCI{index}"));
        disk.properties = properties
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        machine.disks.push(disk);
    }
    let mut child = machine
        .command()
        .unwrap()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut listing = String::new();
    let mut inside = false;
    for line in stdout.lines() {
        let line = line.unwrap().replace('\r', "");
        if line.contains("END PCI LISTING") {
            break;
        }
        if inside {
            listing.push_str(&line);
            listing.push('\n');
        }
        inside |= line.contains("BEGIN PCI LISTING");
    }
    assert!(!listing.is_empty(), "no listing from the kernel");
    let info = boot::qemu::monitor_command(&socket, "info pci", Duration::from_secs(20)).unwrap();
    stdin.write_all(b"x").unwrap();
    stdin.flush().unwrap();
    let status = child.wait().unwrap();
    let ours = parse_kernel(&listing);
    let theirs = parse_qemu(&info);
    assert!(!theirs.is_empty(), "could not read `info pci`:\n{info}");
    assert_eq!(
        ours, theirs,
        "\nkernel listing:\n{listing}\nQEMU info pci:\n{info}"
    );
    assert_eq!(status.code(), Some(33), "the kernel did not exit cleanly");
    let bars: usize = ours.values().map(|d| d.bars.len()).sum();
    assert!(bars >= disks.len() + 2, "too few BARs compared: {ours:?}");
    let nvme = ours.values().filter(|d| d.id == "1b36:0010").count();
    assert_eq!(nvme, disks.len());
}

#[test]
fn pc_under_bios_with_nvme_behind_a_pci_bridge() {
    compare(
        "pc",
        Firmware::Bios,
        &["-device", "pci-bridge,id=br1,chassis_nr=1,bus=pci.0,addr=5"],
        &["bus=br1,addr=3", "addr=6"],
    );
}

#[test]
fn q35_under_uefi_with_nvme_behind_a_root_port() {
    compare(
        "q35",
        Firmware::Uefi,
        &[
            "-device",
            "pcie-root-port,id=rp1,chassis=1,bus=pcie.0,addr=4",
        ],
        &["bus=rp1", "addr=6"],
    );
}
