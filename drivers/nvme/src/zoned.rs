//! Zoned namespaces: the Zoned Namespace Command Set's Identify data.
//!
//! A namespace whose Command Set Identifier (Namespace Identification
//! Descriptor list, CNS 03h) is 02h belongs to the Zoned Namespace Command
//! Set (NVMe ZNS 1.1). Its blocks sit in zones that only take sequential
//! writes at the zone's write pointer (or Zone Append); the driver has no
//! zoned write path, so such a namespace is read-only to it and every
//! write is refused with `Error::ZonedNamespace` before it reaches the
//! device. What is parsed here is what a user wants to see about it: the
//! zone size of the formatted LBA format and the open/active resource
//! limits (I/O Command Set specific Identify Namespace, CNS 05h with CSI
//! 02h, ZNS 1.1 §4.1.5.1, Figure 48), and whether a read may cross a zone
//! boundary (OZCS bit 0, Read Across Zone Boundaries): where it may not,
//! the synchronous API splits reads at zone boundaries and the queue API
//! refuses a read that crosses one (`Error::ZoneBoundary`), as the device
//! would fail it with Zone Boundary Error. The Zone Append Size Limit (CNS 06h)
//! matters only to a zone append path and is not read.
//!
//! Parsers never panic: short buffers read as zeros.

#![forbid(unsafe_code)]

/// Command Set Identifier of the Zoned Namespace Command Set.
pub const ZONED_COMMAND_SET: u8 = 0x02;

/// Byte offset of the LBA Format Extension list (16 entries of 16 bytes:
/// ZSZE bytes 7:0, ZDES byte 8).
const LBA_FORMAT_EXTENSIONS: usize = 2816;
/// Bytes per LBA Format Extension entry.
const LBA_FORMAT_EXTENSION_BYTES: usize = 16;
/// A 0-based resource count of all ones means "no limit".
const NO_LIMIT: u32 = u32::MAX;

fn le(buf: &[u8], at: usize, n: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..n).rev() {
        v = (v << 8) | u64::from(buf.get(at + i).copied().unwrap_or(0));
    }
    v
}

/// What the driver knows about a zoned namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneInfo {
    /// Zone size in logical blocks (ZSZE of the formatted LBA format);
    /// 0 if the device did not report it.
    pub zone_blocks: u64,
    /// Maximum Open Resources (zones open at once), `None` = no limit or
    /// not reported.
    pub max_open: Option<u32>,
    /// Maximum Active Resources (zones open or closed at once), `None` =
    /// no limit or not reported.
    pub max_active: Option<u32>,
    /// Reads may cross zone boundaries (OZCS bit 0, RAZB).
    pub read_across_boundaries: bool,
}

impl ZoneInfo {
    /// A zoned namespace whose zoned Identify data could not be read.
    pub const UNKNOWN: ZoneInfo = ZoneInfo {
        zone_blocks: 0,
        max_open: None,
        max_active: None,
        read_across_boundaries: false,
    };

    /// Zone size in bytes for `block_size`-byte blocks (`None` if unknown
    /// or overflowing).
    pub fn zone_bytes(&self, block_size: usize) -> Option<u64> {
        if self.zone_blocks == 0 {
            return None;
        }
        self.zone_blocks.checked_mul(block_size as u64)
    }

    /// Blocks from `lba` to the end of its zone, if reads must stop there
    /// (zone size known and RAZB clear); `None` if they need not.
    pub fn blocks_to_boundary(&self, lba: u64) -> Option<u64> {
        if self.zone_blocks == 0 || self.read_across_boundaries {
            return None;
        }
        Some(self.zone_blocks - lba % self.zone_blocks)
    }
}

/// The fields of the ZNS I/O Command Set specific Identify Namespace data
/// structure the driver uses (ZNS 1.1 Figure 48).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentifyZonedNamespace {
    /// Zone Operation Characteristics (bytes 1:0).
    pub zoc: u16,
    /// Optional Zoned Command Support (bytes 3:2).
    pub ozcs: u16,
    /// Maximum Active Resources (bytes 7:4), 0-based.
    pub mar: u32,
    /// Maximum Open Resources (bytes 11:8), 0-based.
    pub mor: u32,
    /// Zone Size (ZSZE) of LBA formats 0..16, in logical blocks.
    pub zone_sizes: [u64; 16],
}

impl IdentifyZonedNamespace {
    /// Parses the 4096-byte structure.
    pub fn parse(buf: &[u8]) -> IdentifyZonedNamespace {
        let mut zone_sizes = [0u64; 16];
        for (i, z) in zone_sizes.iter_mut().enumerate() {
            *z = le(
                buf,
                LBA_FORMAT_EXTENSIONS + i * LBA_FORMAT_EXTENSION_BYTES,
                8,
            );
        }
        IdentifyZonedNamespace {
            zoc: le(buf, 0, 2) as u16,
            ozcs: le(buf, 2, 2) as u16,
            mar: le(buf, 4, 4) as u32,
            mor: le(buf, 8, 4) as u32,
            zone_sizes,
        }
    }

    /// The zone information for LBA format `format_index` (the namespace's
    /// formatted one).
    pub fn zone_info(&self, format_index: usize) -> ZoneInfo {
        let limit = |v: u32| (v != NO_LIMIT).then(|| v.saturating_add(1));
        ZoneInfo {
            zone_blocks: self.zone_sizes.get(format_index).copied().unwrap_or(0),
            max_open: limit(self.mor),
            max_active: limit(self.mar),
            read_across_boundaries: self.ozcs & 1 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_fields() {
        let mut b = [0u8; 4096];
        b[4..8].copy_from_slice(&13u32.to_le_bytes());
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        b[2816 + 16..2816 + 24].copy_from_slice(&256u64.to_le_bytes());
        let z = IdentifyZonedNamespace::parse(&b);
        let info = z.zone_info(1);
        assert_eq!(info.zone_blocks, 256);
        assert_eq!(info.max_active, Some(14));
        assert_eq!(info.max_open, None);
        assert_eq!(info.zone_bytes(4096), Some(1 << 20));
        assert_eq!(z.zone_info(0).zone_bytes(512), None);
        assert_eq!(z.zone_info(99).zone_blocks, 0);
        assert_eq!(info.blocks_to_boundary(300), Some(212));
        assert_eq!(info.blocks_to_boundary(512), Some(256));
        assert_eq!(ZoneInfo::UNKNOWN.blocks_to_boundary(7), None);
        b[2] = 1;
        let razb = IdentifyZonedNamespace::parse(&b).zone_info(1);
        assert!(razb.read_across_boundaries);
        assert_eq!(razb.blocks_to_boundary(300), None);
        // Short buffers never panic.
        assert_eq!(IdentifyZonedNamespace::parse(&[0xFF; 5]).zone_sizes[0], 0);
    }
}
