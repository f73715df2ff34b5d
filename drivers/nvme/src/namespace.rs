//! Namespaces as real drives present them: the probe at bring-up and who
//! may write to each.
//!
//! The probe (NVMe 1.4 §5.15.2, ZNS 1.1 §4.1.5):
//! - Which NSIDs: from NVMe 1.1 the Active Namespace ID list (CNS 02h),
//!   page by page. An NVMe 1.0 controller (VS below 1.1) does not know CNS
//!   02h, so it is never sent; instead NSIDs 1..=NN are walked with
//!   Identify Namespace, as is done when a 1.1+ controller refuses the
//!   list. Both are bounded to [`MAX_NAMESPACES`] NSIDs (a device reporting
//!   a huge NN, up to 2^32 - 1, would otherwise keep bring-up busy for
//!   hours); the rest are logged as not probed.
//! - Each NSID: Identify Namespace (CNS 00h). An inactive NSID reads as a
//!   zero-filled structure (NSZE 0) and is skipped; one whose Identify
//!   completes with an error status is skipped too. Either way one log line
//!   says so and bring-up goes on with the others. Only a controller-level
//!   failure (timeout, fatal status) ends bring-up.
//! - The I/O command set, from NVMe 1.3: the Namespace Identification
//!   Descriptor list (CNS 03h) may carry a Command Set Identifier; without
//!   one (or with the list refused) the namespace is NVM. A zoned namespace
//!   (CSI 02h) gets its zone size from the ZNS Identify Namespace data (see
//!   `zoned`); a namespace of any other command set (key value, ...) is
//!   skipped with a log line.
//! - Write protection: NSATTR bit 0.
//!
//! Writes: each namespace has a `WriteGate` shared by the controller and
//! every `IoQueue`. A write passes only if the namespace is not zoned, not
//! write-protected and marked owned by the application. Two refusals mark
//! the namespace write-protected for good (one log line), so later writes
//! never reach the device:
//! - Generic "Namespace is Write Protected" (SCT 0, SC 20h, §4.6.1.2.1),
//!   the status of a namespace under Namespace Write Protection: at once;
//! - Media "Write Fault" (SCT 2, SC 80h, §4.6.1.2.4) again and again:
//!   [`WRITE_FAULTS_BEFORE_PROTECTION`] in a row with no successful write
//!   between. Drives that turned read-only at end of life (and QEMU for a
//!   `readonly=on` drive) answer every write so, while one bad block of a
//!   healthy drive fails only its own writes. Until the count is reached a
//!   write fault is returned as the device's status.

#![forbid(unsafe_code)]

use crate::command::{IdentifyCns, Status};
use crate::error::Error;
use crate::identify::{self, IdentifyNamespace};
use crate::registers::Version;
use crate::zoned::{IdentifyZonedNamespace, ZONED_COMMAND_SET, ZoneInfo};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// One active namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Namespace identifier.
    pub nsid: u32,
    /// Size in blocks (NSZE).
    pub block_count: u64,
    /// Data bytes per block; 0 if the format is unusable.
    pub block_size: usize,
    /// Metadata bytes per block of the formatted LBA format.
    pub metadata_size: u16,
    /// Write protected: NSATTR bit 0; through `BlockDevice::info`, also a
    /// write refused with a write-protect status since bring-up. Never
    /// written.
    pub write_protected: bool,
    /// Zoned (Zoned Namespace Command Set), with its zone details: never
    /// given random writes.
    pub zoned: Option<ZoneInfo>,
}

impl NamespaceInfo {
    /// Whether the driver can do I/O on it (no metadata, sane block size).
    pub fn usable(&self) -> Result<(), Error> {
        if self.metadata_size != 0 {
            Err(Error::NamespaceHasMetadata)
        } else if self.block_size == 0 {
            Err(Error::Unsupported)
        } else {
            Ok(())
        }
    }
}

/// Which controller made a [`Namespace`] handle: a number given to each
/// controller's shared state when it is made, never given twice while the
/// program runs (so a handle outliving its controller never matches a later
/// one either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ControllerId(u64);

/// The next [`ControllerId`]; only ever counts up.
static NEXT_CONTROLLER_ID: AtomicU64 = AtomicU64::new(1);

impl ControllerId {
    /// A number no other controller has.
    pub(crate) fn fresh() -> ControllerId {
        ControllerId(NEXT_CONTROLLER_ID.fetch_add(1, Ordering::Relaxed))
    }
}

/// A handle of one usable namespace of one controller, obtained once
/// ([`Controller::namespace_handle`](crate::Controller::namespace_handle))
/// and given to every submission on an [`IoQueue`](crate::IoQueue): the
/// namespace is found and checked usable (no metadata, a block size the
/// driver can use) when the handle is made, never looked up again per
/// request.
///
/// It is `Copy` and holds only values: the NSID, the block size and count,
/// whether the namespace is zoned, whether it took writes when the handle
/// was made, and which controller it belongs to. A queue refuses a handle
/// of another controller ([`Error::ForeignNamespace`]) before anything
/// reaches the device. Whether a write may be sent is decided at each
/// submission by the namespace's write gate (owned, not write-protected,
/// not zoned), not by [`Self::writable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The controller that made the handle.
    controller: ControllerId,
    /// Index in the controller's namespace list (and its write gates).
    pub(crate) index: usize,
    /// What Identify said.
    pub(crate) info: NamespaceInfo,
    /// log2 of the block size (a power of two, 2^LBADS), found once so a
    /// request's length becomes blocks with a shift.
    pub(crate) block_shift: u32,
    /// The bits of a length below one block; all ones for a block size
    /// that is not a power of two, so that no length is whole blocks.
    pub(crate) block_mask: usize,
    /// Whether writes passed the write gate when the handle was made.
    writable: bool,
}

impl Namespace {
    /// The namespace `nsid` of `namespaces` (the list of controller
    /// `controller`), if it exists and is usable; `writable` says whether
    /// the namespace at an index takes writes now.
    pub(crate) fn find(
        namespaces: &[NamespaceInfo],
        controller: ControllerId,
        nsid: u32,
        writable: impl FnOnce(usize) -> bool,
    ) -> Result<Namespace, Error> {
        let index = namespaces
            .iter()
            .position(|n| n.nsid == nsid)
            .ok_or(Error::NoSuchNamespace)?;
        let info = namespaces[index];
        info.usable()?;
        let (block_shift, block_mask) = if info.block_size.is_power_of_two() {
            (info.block_size.trailing_zeros(), info.block_size - 1)
        } else {
            (0, usize::MAX)
        };
        Ok(Namespace {
            controller,
            index,
            info,
            block_shift,
            block_mask,
            writable: writable(index),
        })
    }

    /// Whether the handle was made by controller `controller`.
    #[inline]
    pub(crate) fn belongs_to(&self, controller: ControllerId) -> bool {
        self.controller == controller
    }

    /// Namespace identifier.
    pub const fn nsid(&self) -> u32 {
        self.info.nsid
    }

    /// Data bytes per block.
    pub const fn block_size(&self) -> usize {
        self.info.block_size
    }

    /// Size in blocks (NSZE).
    pub const fn block_count(&self) -> u64 {
        self.info.block_count
    }

    /// Whether writes were allowed (owned, not write-protected, not zoned)
    /// when the handle was made. The write gate decides at each
    /// submission; a namespace marked owned or found write-protected later
    /// does not change this value.
    pub const fn writable(&self) -> bool {
        self.writable
    }

    /// The zone details of a zoned namespace, `None` for a conventional
    /// one.
    pub const fn zoned(&self) -> Option<ZoneInfo> {
        self.info.zoned
    }

    /// What Identify Namespace said at bring-up.
    pub const fn info(&self) -> NamespaceInfo {
        self.info
    }
}

/// Write faults in a row, with no successful write between, after which a
/// namespace is taken as write-protected.
pub const WRITE_FAULTS_BEFORE_PROTECTION: u32 = 3;
/// Most NSIDs probed per controller (one Active Namespace ID list page).
pub const MAX_NAMESPACES: usize = 1024;
/// Command Set Identifier of the NVM command set.
pub const NVM_COMMAND_SET: u8 = 0x00;
/// Namespace Identifier Type of the Command Set Identifier descriptor
/// (NVMe 2.0 §5.17.2.3, Figure 281).
const DESCRIPTOR_COMMAND_SET: u8 = 0x04;
/// Bytes before a descriptor's identifier (type, length, two reserved).
const DESCRIPTOR_HEADER: usize = 4;
/// Bytes of an Identify data structure.
const LIST_BYTES: usize = identify::IDENTIFY_BYTES;

/// The Command Set Identifier in a Namespace Identification Descriptor
/// list, if it carries one. The walk stops at a zero type or length and at
/// a descriptor running past the 4096 bytes; it never panics.
pub fn command_set_identifier(list: &[u8]) -> Option<u8> {
    let end = list.len().min(LIST_BYTES);
    let mut at = 0usize;
    while at + DESCRIPTOR_HEADER <= end {
        let kind = list[at];
        let len = usize::from(list[at + 1]);
        if kind == 0 || len == 0 || at + DESCRIPTOR_HEADER + len > end {
            return None;
        }
        if kind == DESCRIPTOR_COMMAND_SET {
            return Some(list[at + DESCRIPTOR_HEADER]);
        }
        at += DESCRIPTOR_HEADER + len;
    }
    None
}

/// Whether a write completing with `status` says the namespace does not
/// take writes (see the module documentation).
pub const fn refuses_writes(status: Status) -> bool {
    status.refuses_writes()
}

/// Identify as the probe needs it; the controller implements it over its
/// admin queue, so the probe itself is plain logic.
pub(crate) trait IdentifyCommands {
    /// Runs Identify `cns` for `nsid` with Command Set Identifier `csi`
    /// and returns the 4096-byte data.
    fn identify(&mut self, cns: IdentifyCns, nsid: u32, csi: u8) -> Result<&[u8], Error>;
}

/// Finds and identifies every usable namespace (see the module
/// documentation). `version` is the VS register, `nn` Identify
/// Controller's Number of Namespaces; `use_active_list` false (a quirk)
/// walks NSIDs 1..=NN whatever the version.
pub(crate) fn probe<I: IdentifyCommands>(
    device: &mut I,
    version: Version,
    nn: u32,
    use_active_list: bool,
) -> Result<Vec<NamespaceInfo>, Error> {
    let ids = namespace_ids(device, version, nn, use_active_list)?;
    let mut namespaces = Vec::new();
    for nsid in ids {
        match identify_namespace(device, version, nsid) {
            Ok(Some(info)) => namespaces.push(info),
            Ok(None) => {}
            Err(Error::Device(status)) => log::warn!(
                "nvme: namespace {nsid}: Identify Namespace failed ({}); skipped",
                status.name()
            ),
            Err(error) => return Err(error),
        }
    }
    Ok(namespaces)
}

/// The NSIDs to identify, ascending, at most [`MAX_NAMESPACES`].
fn namespace_ids<I: IdentifyCommands>(
    device: &mut I,
    version: Version,
    nn: u32,
    use_active_list: bool,
) -> Result<Vec<u32>, Error> {
    if !use_active_list {
        log::info!("nvme: quirk: no active namespace list; probing NSIDs 1..=NN");
    } else if version >= Version::new(1, 1, 0) {
        match active_list(device, nn)? {
            Some(ids) => return Ok(ids),
            None => log::info!("nvme: active namespace list refused; probing NSIDs 1..=NN"),
        }
    } else {
        log::info!(
            "nvme: NVMe {}.{} controller: no active namespace list; probing NSIDs 1..=NN",
            version.major(),
            version.minor()
        );
    }
    let walked = nn.min(MAX_NAMESPACES as u32);
    if walked < nn {
        log::warn!("nvme: NN is {nn}; only NSIDs 1..={walked} are probed");
    }
    Ok((1..=walked).collect())
}

/// The Active Namespace ID list, or `None` if the controller refuses it.
fn active_list<I: IdentifyCommands>(device: &mut I, nn: u32) -> Result<Option<Vec<u32>>, Error> {
    let mut ids: Vec<u32> = Vec::new();
    let mut start = 0u32;
    // Each page holds 1024 NSIDs above `start`; at most NN of them exist.
    let pages = nn / identify::ACTIVE_LIST_ENTRIES as u32 + 1;
    for _ in 0..pages {
        let page = match device.identify(IdentifyCns::ActiveNamespaceList, start, 0) {
            Ok(page) => page,
            Err(Error::Device(status)) => {
                log::info!("nvme: active namespace list: {}", status.name());
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let before = ids.len();
        ids.extend(identify::active_namespaces(page).filter(|&n| n > start));
        if ids.len() >= MAX_NAMESPACES {
            break;
        }
        match ids.last() {
            Some(&last) if ids.len() - before == identify::ACTIVE_LIST_ENTRIES => start = last,
            _ => break,
        }
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_NAMESPACES {
        log::warn!(
            "nvme: {} active namespaces; only the first {MAX_NAMESPACES} are probed",
            ids.len()
        );
        ids.truncate(MAX_NAMESPACES);
    }
    Ok(Some(ids))
}

/// Identifies one NSID: `None` if inactive or of an unsupported command
/// set (logged).
fn identify_namespace<I: IdentifyCommands>(
    device: &mut I,
    version: Version,
    nsid: u32,
) -> Result<Option<NamespaceInfo>, Error> {
    let ns = IdentifyNamespace::parse(device.identify(IdentifyCns::Namespace, nsid, 0)?);
    if !ns.is_active() {
        log::info!("nvme: namespace {nsid}: inactive (NSZE 0); skipped");
        return Ok(None);
    }
    let format = ns.current_format().unwrap_or_default();
    let mut info = NamespaceInfo {
        nsid,
        block_count: ns.nsze,
        block_size: format.data_size().unwrap_or(0),
        metadata_size: format.metadata_size,
        write_protected: ns.write_protected(),
        zoned: None,
    };
    match command_set(device, version, nsid)? {
        NVM_COMMAND_SET => {}
        ZONED_COMMAND_SET => {
            let zone = match device.identify(
                IdentifyCns::CommandSetNamespace,
                nsid,
                ZONED_COMMAND_SET,
            ) {
                Ok(data) => IdentifyZonedNamespace::parse(data).zone_info(ns.format_index()),
                Err(Error::Device(status)) => {
                    log::warn!(
                        "nvme: namespace {nsid}: zoned Identify Namespace failed ({}); zone size unknown",
                        status.name()
                    );
                    ZoneInfo::UNKNOWN
                }
                Err(error) => return Err(error),
            };
            info.zoned = Some(zone);
        }
        other => {
            log::warn!(
                "nvme: namespace {nsid}: I/O command set {other:#04x} not supported; skipped"
            );
            return Ok(None);
        }
    }
    if let Err(error) = info.usable() {
        log::warn!("nvme: namespace {nsid} not usable: {error}");
    }
    if info.write_protected {
        log::info!("nvme: namespace {nsid}: write-protected (NSATTR); read-only");
    }
    if let Some(zone) = info.zoned {
        log::info!(
            "nvme: namespace {nsid}: zoned, {} blocks per zone; read-only (no zoned write path)",
            zone.zone_blocks
        );
    }
    Ok(Some(info))
}

/// The namespace's Command Set Identifier (NVM before NVMe 1.3, or when
/// the descriptor list is refused or carries none).
fn command_set<I: IdentifyCommands>(
    device: &mut I,
    version: Version,
    nsid: u32,
) -> Result<u8, Error> {
    if version < Version::new(1, 3, 0) {
        return Ok(NVM_COMMAND_SET);
    }
    match device.identify(IdentifyCns::NamespaceDescriptors, nsid, 0) {
        Ok(list) => Ok(command_set_identifier(list).unwrap_or(NVM_COMMAND_SET)),
        Err(Error::Device(status)) => {
            log::debug!(
                "nvme: namespace {nsid}: descriptor list refused ({}); NVM",
                status.name()
            );
            Ok(NVM_COMMAND_SET)
        }
        Err(error) => Err(error),
    }
}

/// Who may write to one namespace (see the module documentation).
#[derive(Debug)]
pub(crate) struct WriteGate {
    nsid: u32,
    zoned: bool,
    owned: AtomicBool,
    protected: AtomicBool,
    /// Write faults since the last successful write.
    write_faults: AtomicU32,
}

impl WriteGate {
    /// Not owned; protected and zoned as Identify said.
    pub(crate) fn new(info: &NamespaceInfo) -> WriteGate {
        WriteGate {
            nsid: info.nsid,
            zoned: info.zoned.is_some(),
            owned: AtomicBool::new(false),
            protected: AtomicBool::new(info.write_protected),
            write_faults: AtomicU32::new(0),
        }
    }

    /// Marks the namespace owned (writable) or not.
    pub(crate) fn set_owned(&self, owned: bool) {
        self.owned.store(owned, Ordering::Release);
    }

    /// Whether the namespace is (now known to be) write-protected.
    pub(crate) fn is_protected(&self) -> bool {
        self.protected.load(Ordering::Acquire)
    }

    /// Whether a write may be sent, and why not.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.zoned {
            Err(Error::ZonedNamespace)
        } else if self.is_protected() {
            Err(Error::WriteProtected)
        } else if !self.owned.load(Ordering::Acquire) {
            Err(Error::NotOwned)
        } else {
            Ok(())
        }
    }

    /// A write to the namespace completed successfully: write faults are
    /// no longer in a row.
    pub(crate) fn after_write_ok(&self) {
        if self.write_faults.load(Ordering::Relaxed) != 0 {
            self.write_faults.store(0, Ordering::Relaxed);
        }
    }

    /// A write to the namespace failed with `error`. "Namespace is Write
    /// Protected", or the [`WRITE_FAULTS_BEFORE_PROTECTION`]th write fault
    /// in a row, marks it write-protected (logged the first time) and is
    /// reported as [`Error::WriteProtected`], as is any refusal once it is
    /// marked; an earlier write fault and anything else are returned as
    /// they are.
    pub(crate) fn after_write_error(&self, error: Error) -> Error {
        let Error::Device(status) = error else {
            return error;
        };
        let protect = if status.is_namespace_write_protected() {
            true
        } else if status.is_write_fault() {
            let faults = self.write_faults.fetch_add(1, Ordering::AcqRel) + 1;
            faults >= WRITE_FAULTS_BEFORE_PROTECTION || self.is_protected()
        } else {
            false
        };
        if !protect {
            return error;
        }
        if !self.protected.swap(true, Ordering::AcqRel) {
            log::warn!(
                "nvme: namespace {}: write refused ({}); write-protected from now on, no further writes are sent",
                self.nsid,
                status.name()
            );
        }
        Error::WriteProtected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn descriptor_list_walk() {
        let mut b = [0u8; 4096];
        // EUI-64 (8 bytes), then the CSI descriptor.
        b[0] = 1;
        b[1] = 8;
        b[12] = 4;
        b[13] = 1;
        b[16] = 2;
        assert_eq!(command_set_identifier(&b), Some(2));
        assert_eq!(command_set_identifier(&[0u8; 4096]), None);
        // A length running past the end, or a truncated buffer.
        // Fifteen EUI-sized fillers of 255 bytes, then a CSI descriptor
        // whose length runs past the 4096 bytes.
        let mut bad = [0u8; 4096];
        for k in 0..15 {
            bad[k * 259] = 1;
            bad[k * 259 + 1] = 0xFF;
        }
        bad[15 * 259] = 4;
        bad[15 * 259 + 1] = 0xFF;
        assert_eq!(command_set_identifier(&bad), None);
        assert_eq!(command_set_identifier(&b[..14]), None);
        assert_eq!(command_set_identifier(&[]), None);
    }

    #[test]
    fn write_protect_statuses() {
        assert!(refuses_writes(Status::new(0, 0x20)));
        assert!(refuses_writes(Status::new(2, 0x80)));
        assert!(!refuses_writes(Status::new(2, 0x81)));
        assert!(!refuses_writes(Status::new(0, 0x80)));
    }

    /// Identify answers by (CNS, NSID); other Identify Namespace queries
    /// read as inactive (zeros), anything else fails with Invalid Field.
    struct Fake {
        pages: HashMap<(u8, u32), Vec<u8>>,
        zeros: Vec<u8>,
        sent: Vec<(u8, u32, u8)>,
    }

    impl IdentifyCommands for Fake {
        fn identify(&mut self, cns: IdentifyCns, nsid: u32, csi: u8) -> Result<&[u8], Error> {
            self.sent.push((cns as u8, nsid, csi));
            match self.pages.get(&(cns as u8, nsid)) {
                Some(p) => Ok(p),
                None if cns == IdentifyCns::Namespace => Ok(&self.zeros),
                None => Err(Error::Device(Status::new(0, 2))),
            }
        }
    }

    fn ns_page(blocks: u64) -> Vec<u8> {
        let mut b = alloc::vec![0u8; 4096];
        b[0..8].copy_from_slice(&blocks.to_le_bytes());
        b[128 + 2] = 9;
        b
    }

    #[test]
    fn huge_nn_walk_is_bounded() {
        let mut fake = Fake {
            pages: HashMap::new(),
            zeros: alloc::vec![0u8; 4096],
            sent: Vec::new(),
        };
        fake.pages.insert((0, 5), ns_page(64));
        let found = probe(&mut fake, Version::new(1, 0, 0), u32::MAX, true).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].nsid, 5);
        assert_eq!(fake.sent.len(), MAX_NAMESPACES);
        assert!(fake.sent.iter().all(|&(cns, _, _)| cns == 0));
    }
}
