//! Bus enumeration: from the host bridges through PCI-to-PCI bridges, then a sweep of the rest.
//!
//! For each [`BusRange`] (one MCFG entry, or segment 0 buses 0..=255 for the 0xCF8/0xCFC
//! mechanism):
//! 1. Root buses: `start_bus`; and, as in the classic algorithm, if function 00.0 of that bus is
//!    multi-function, every other function of device 0 that is a host bridge (class 06h/00h)
//!    is the host bridge of bus `start_bus + function`. The class check keeps multi-function
//!    chipsets whose device 0 holds an IOMMU or similar from inventing root buses.
//! 2. Each root bus is walked: every device 0..32, functions 1..8 only when function 0 is
//!    present and multi-function. A PCI-to-PCI bridge's secondary bus is scanned next, unless
//!    it lies outside the range, is not greater than the bridge's own bus, or was already
//!    scanned: then it is logged, recorded as a [`Problem`], and not followed. Each bus is
//!    scanned at most once, so the walk ends after at most 256 buses per range.
//! 3. Sweep (on by default, [`EnumerationOptions::sweep_unreached_buses`]): every bus of the
//!    range that the walk did not reach is scanned too, and a bus where functions answer becomes
//!    a root of its own (and is listed in [`Enumeration::swept_root_buses`]). Machines with several host
//!    bridges per segment (multi-socket servers, QEMU's pxb) declare the extra root buses only
//!    in the ACPI namespace, which this crate does not read; Linux does the same sweep on x86
//!    (`pcibios_fixup_peer_bridges`). It costs one vendor-ID read per device slot: 8192 reads
//!    for a full segment, milliseconds even with port I/O. On buses nothing decodes, both
//!    mechanisms read all-ones, so on QEMU pc and q35 the sweep adds nothing.
//!
//! The result is sorted by address (segment, bus, device, function), like lspci.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use pci_types::PciAddress;

use crate::config::ConfigurationAccess;
use crate::error::{BridgeDefect, Problem};
use crate::function::{
    Function, HOST_BRIDGE, HeaderKind, class_of, is_multifunction, is_present, read_function,
};
use crate::storage_mode::StorageHider;

/// Devices per bus and functions per device.
const DEVICES: u8 = 32;
const FUNCTIONS: u8 = 8;

/// The buses one configuration-space window covers: one MCFG entry, or the legacy mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusRange {
    /// The PCI segment group.
    pub segment: u16,
    /// The first bus (the root bus of the range's host bridge).
    pub start_bus: u8,
    /// The last bus, inclusive.
    pub end_bus: u8,
}

impl BusRange {
    /// What the 0xCF8/0xCFC port mechanism reaches: segment 0, buses 0..=255.
    pub const LEGACY: BusRange = BusRange {
        segment: 0,
        start_bus: 0,
        end_bus: 255,
    };

    /// Whether `bus` is in the range.
    pub fn contains(&self, bus: u8) -> bool {
        (self.start_bus..=self.end_bus).contains(&bus)
    }
}

/// How to enumerate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumerationOptions {
    /// Scan the buses the walk from the host bridges did not reach (see the module notes).
    pub sweep_unreached_buses: bool,
}

impl Default for EnumerationOptions {
    fn default() -> Self {
        EnumerationOptions {
            sweep_unreached_buses: true,
        }
    }
}

/// Everything enumeration found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enumeration {
    /// Every present function with a known header type, sorted by address.
    pub functions: Vec<Function>,
    /// What was wrong and skipped, in the order found.
    pub problems: Vec<Problem>,
    /// (segment, bus) of buses not reachable from the host bridges where the sweep found
    /// functions; they were treated as extra root buses.
    pub swept_root_buses: Vec<(u16, u8)>,
}

impl Enumeration {
    /// The function at `address`, if found.
    pub fn function(&self, address: PciAddress) -> Option<&Function> {
        self.functions
            .iter()
            .find(|function| function.address == address)
    }

    /// The PCI-to-PCI bridges between the root complex and `function`, nearest the root
    /// first. Stops (with a warning) at an upstream address that is not in the enumeration,
    /// which only a hand-built `Function` can have.
    pub fn upstream_bridges(&self, function: &Function) -> Vec<&Function> {
        let mut path = Vec::new();
        let mut next = function.upstream;
        // Each bus has one upstream bridge and buses are scanned once, so the chain has at most
        // one bridge per bus; the bound keeps a hand-built loop from running forever.
        while let Some(address) = next {
            if path.len() > self.functions.len() {
                break;
            }
            let Some(bridge) = self.function(address) else {
                log::warn!(
                    "pci {}: upstream bridge {address} not enumerated",
                    function.address
                );
                break;
            };
            path.push(bridge);
            next = bridge.upstream;
        }
        path.reverse();
        path
    }

    /// The controllers that hide drives from an NVMe driver (Intel VMD, RAID mode).
    pub fn storage_hiders(&self) -> impl Iterator<Item = (&Function, StorageHider)> {
        self.functions
            .iter()
            .filter_map(|function| Some((function, function.storage_hider()?)))
    }

    /// The NVM Express controllers, in address order.
    pub fn nvme_controllers(&self) -> impl Iterator<Item = &Function> {
        self.functions.iter().filter(|function| function.is_nvme())
    }
}

/// Enumerates every function in `ranges` with the default [`EnumerationOptions`] (sweep on).
pub fn enumerate(access: &impl ConfigurationAccess, ranges: &[BusRange]) -> Enumeration {
    enumerate_with(access, ranges, EnumerationOptions::default())
}

/// Enumerates every function in `ranges` (see the module notes for the order of the walk).
pub fn enumerate_with(
    access: &impl ConfigurationAccess,
    ranges: &[BusRange],
    options: EnumerationOptions,
) -> Enumeration {
    let mut walk = Walk {
        access,
        result: Enumeration::default(),
        visited: BTreeSet::new(),
    };
    for range in ranges {
        walk.range(*range, options);
    }
    walk.result
        .functions
        .sort_by_key(|function| function.address);
    walk.result
}

/// State of one enumeration.
struct Walk<'a, A: ConfigurationAccess + ?Sized> {
    access: &'a A,
    result: Enumeration,
    /// (segment, bus) already scanned or queued.
    visited: BTreeSet<(u16, u8)>,
}

impl<A: ConfigurationAccess + ?Sized> Walk<'_, A> {
    fn range(&mut self, range: BusRange, options: EnumerationOptions) {
        let BusRange {
            segment,
            start_bus,
            end_bus,
        } = range;
        if start_bus > end_bus {
            log::warn!("pci: bus range {segment:04x}:{start_bus:02x}-{end_bus:02x} is empty");
            self.result.problems.push(Problem::InvalidRange {
                segment,
                start_bus,
                end_bus,
            });
            return;
        }

        for root in self.root_buses(range) {
            self.walk_from(range, root);
        }

        if options.sweep_unreached_buses {
            for bus in start_bus..=end_bus {
                if self.visited.contains(&(segment, bus)) {
                    continue;
                }
                let before = self.result.functions.len();
                self.walk_from(range, bus);
                if self.result.functions.len() > before {
                    log::info!(
                        "pci: bus {segment:04x}:{bus:02x} is not reachable from the host bridge; \
                         found by the sweep"
                    );
                    self.result.swept_root_buses.push((segment, bus));
                }
            }
        }
    }

    /// The range's root buses: `start_bus`, plus the buses of the extra host-bridge functions
    /// of a multi-function device 0 (module notes, step 1).
    fn root_buses(&self, range: BusRange) -> Vec<u8> {
        let mut roots = alloc::vec![range.start_bus];
        let host = PciAddress::new(range.segment, range.start_bus, 0, 0);
        if !is_present(self.access, host) || !is_multifunction(self.access, host) {
            return roots;
        }
        for function in 1..FUNCTIONS {
            let address = PciAddress::new(range.segment, range.start_bus, 0, function);
            if !is_present(self.access, address) || class_of(self.access, address) != HOST_BRIDGE {
                continue;
            }
            match range.start_bus.checked_add(function) {
                Some(bus) if range.contains(bus) => roots.push(bus),
                _ => {}
            }
        }
        roots
    }

    /// Scans `root` and, depth first, every bus behind bridges found on it.
    fn walk_from(&mut self, range: BusRange, root: u8) {
        if !self.visited.insert((range.segment, root)) {
            return;
        }
        // (bus, the bridge it is behind); a root bus is behind none.
        let mut pending = alloc::vec![(root, None)];
        // Each bus is pushed at most once (guarded by `visited`), so this loop runs at most 256
        // times.
        while let Some((bus, upstream)) = pending.pop() {
            let secondaries = self.scan_bus(range, bus, upstream);
            pending.extend(secondaries.into_iter().rev());
        }
    }

    /// Scans every device and function of `bus` (behind the bridge `upstream`, if any);
    /// returns the secondary buses to follow with their bridges, in device order, already
    /// marked visited.
    fn scan_bus(
        &mut self,
        range: BusRange,
        bus: u8,
        upstream: Option<PciAddress>,
    ) -> Vec<(u8, Option<PciAddress>)> {
        let mut follow = Vec::new();
        for device in 0..DEVICES {
            let first = PciAddress::new(range.segment, bus, device, 0);
            if !is_present(self.access, first) {
                continue;
            }
            let functions = if is_multifunction(self.access, first) {
                FUNCTIONS
            } else {
                1
            };
            for function in 0..functions {
                let address = PciAddress::new(range.segment, bus, device, function);
                let Some(mut found) =
                    read_function(self.access, address, &mut self.result.problems)
                else {
                    continue;
                };
                found.upstream = upstream;
                if let HeaderKind::PciBridge { secondary, .. } = found.kind
                    && let Some(bus) = self.check_bridge(range, address, secondary)
                {
                    follow.push((bus, Some(address)));
                }
                self.result.functions.push(found);
            }
        }
        follow
    }

    /// Whether the bridge at `bridge` may be followed to `secondary`; marks it visited if so,
    /// records a problem if not.
    fn check_bridge(&mut self, range: BusRange, bridge: PciAddress, secondary: u8) -> Option<u8> {
        let defect = if !range.contains(secondary) {
            BridgeDefect::SecondaryOutsideRange
        } else if secondary <= bridge.bus() {
            BridgeDefect::SecondaryNotAboveOwnBus
        } else if !self.visited.insert((range.segment, secondary)) {
            BridgeDefect::SecondaryAlreadyVisited
        } else {
            return Some(secondary);
        };
        log::warn!("pci {bridge}: bridge to bus {secondary:02x} not followed: {defect:?}");
        self.result.problems.push(Problem::BridgeNotFollowed {
            bridge,
            secondary,
            defect,
        });
        None
    }
}
