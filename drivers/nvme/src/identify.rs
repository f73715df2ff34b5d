//! Parsing the Identify data structures into typed values.
//!
//! NVMe 1.4 §5.15.2: Identify Controller (CNS 01h, Figure 247), Identify
//! Namespace (CNS 00h, Figure 245) and the Active Namespace ID list (CNS
//! 02h). Parsers take the 4096-byte buffer as plain bytes and never panic:
//! short buffers yield zeros. Strings are ASCII, space padded; they are kept
//! as fixed arrays (no allocation) with `&str` accessors that trim padding.

#![forbid(unsafe_code)]

/// Bytes in every Identify data structure.
pub const IDENTIFY_BYTES: usize = 4096;

/// A little-endian field of an Identify structure: `len` bytes at byte
/// `at`, as Figure 245/247 place it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteField {
    /// First byte.
    pub at: usize,
    /// Length in bytes.
    pub len: usize,
}

impl ByteField {
    const fn new(at: usize, len: usize) -> ByteField {
        ByteField { at, len }
    }

    /// The byte after the field.
    pub const fn end(self) -> usize {
        self.at + self.len
    }

    /// The field's value in `buf` (zeros past its end).
    fn read(self, buf: &[u8]) -> u64 {
        le(buf, self.at, self.len)
    }
}

/// Identify Controller fields the driver reads (§5.15.2.2, Figure 247).
pub mod controller_field {
    use super::ByteField;
    /// PCI Vendor ID.
    pub const VID: ByteField = ByteField::new(0, 2);
    /// Serial Number.
    pub const SN: ByteField = ByteField::new(4, 20);
    /// Model Number.
    pub const MN: ByteField = ByteField::new(24, 40);
    /// Firmware Revision.
    pub const FR: ByteField = ByteField::new(64, 8);
    /// Maximum Data Transfer Size.
    pub const MDTS: ByteField = ByteField::new(77, 1);
    /// Controller ID.
    pub const CNTLID: ByteField = ByteField::new(78, 2);
    /// Version.
    pub const VER: ByteField = ByteField::new(80, 4);
    /// RTD3 Entry Latency.
    pub const RTD3E: ByteField = ByteField::new(88, 4);
    /// Optional Admin Command Support.
    pub const OACS: ByteField = ByteField::new(256, 2);
    /// Error Log Page Entries.
    pub const ELPE: ByteField = ByteField::new(262, 1);
    /// Number of Power States Support.
    pub const NPSS: ByteField = ByteField::new(263, 1);
    /// Autonomous Power State Transition Attributes.
    pub const APSTA: ByteField = ByteField::new(265, 1);
    /// Host Memory Buffer Preferred Size.
    pub const HMPRE: ByteField = ByteField::new(272, 4);
    /// Host Memory Buffer Minimum Size.
    pub const HMMIN: ByteField = ByteField::new(276, 4);
    /// Host Memory Buffer Minimum Descriptor Entry Size.
    pub const HMMINDS: ByteField = ByteField::new(332, 4);
    /// Host Memory Maximum Descriptors Entries.
    pub const HMMAXD: ByteField = ByteField::new(336, 2);
    /// Submission Queue Entry Size.
    pub const SQES: ByteField = ByteField::new(512, 1);
    /// Completion Queue Entry Size.
    pub const CQES: ByteField = ByteField::new(513, 1);
    /// Number of Namespaces.
    pub const NN: ByteField = ByteField::new(516, 4);
    /// Optional NVM Command Support.
    pub const ONCS: ByteField = ByteField::new(520, 2);
    /// Volatile Write Cache.
    pub const VWC: ByteField = ByteField::new(525, 1);
}

/// Identify Namespace fields the driver reads (§5.15.2.1, Figure 245).
pub mod namespace_field {
    use super::ByteField;
    /// Namespace Size.
    pub const NSZE: ByteField = ByteField::new(0, 8);
    /// Namespace Capacity.
    pub const NCAP: ByteField = ByteField::new(8, 8);
    /// Namespace Utilization.
    pub const NUSE: ByteField = ByteField::new(16, 8);
    /// Namespace Features.
    pub const NSFEAT: ByteField = ByteField::new(24, 1);
    /// Number of LBA Formats (0-based).
    pub const NLBAF: ByteField = ByteField::new(25, 1);
    /// Formatted LBA Size.
    pub const FLBAS: ByteField = ByteField::new(26, 1);
    /// Namespace Attributes.
    pub const NSATTR: ByteField = ByteField::new(99, 1);
    /// LBA Format 0 Support; formats 1..15 follow.
    pub const LBAF0: ByteField = ByteField::new(128, 4);
    /// LBA formats in the structure.
    pub const LBA_FORMATS: usize = 16;
}

/// Bytes per NSID in the Active Namespace ID list.
const NSID_BYTES: usize = 4;
/// NSIDs in one Active Namespace ID list page.
pub const ACTIVE_LIST_ENTRIES: usize = IDENTIFY_BYTES / NSID_BYTES;

// Figures 245 and 247: the fields sit where the specification puts them,
// in order, without overlap, inside the 4096-byte structure.
const _: () = {
    use controller_field as c;
    use namespace_field as n;
    assert!(c::SN.at == c::VID.end() + 2 && c::MN.at == c::SN.end() && c::FR.at == c::MN.end());
    assert!(c::MDTS.at == 77 && c::CNTLID.at == c::MDTS.end() && c::VER.at == c::CNTLID.end());
    assert!(c::RTD3E.at == c::VER.end() + 4 && c::OACS.at == 256);
    assert!(c::ELPE.at == 262 && c::NPSS.at == c::ELPE.end() && c::APSTA.at == c::NPSS.end() + 1);
    assert!(c::HMMIN.at == c::HMPRE.end() && c::HMMAXD.at == c::HMMINDS.end());
    assert!(c::SQES.at == 512 && c::CQES.at == c::SQES.end() && c::NN.at == 516);
    assert!(c::ONCS.at == c::NN.end() && c::VWC.end() <= IDENTIFY_BYTES);
    assert!(n::NCAP.at == n::NSZE.end() && n::NUSE.at == n::NCAP.end());
    assert!(n::NSFEAT.at == n::NUSE.end() && n::NLBAF.at == n::NSFEAT.end());
    assert!(n::FLBAS.at == n::NLBAF.end() && n::NSATTR.at == 99);
    assert!(n::LBAF0.at + n::LBA_FORMATS * n::LBAF0.len == 192);
    assert!(ACTIVE_LIST_ENTRIES == 1024);
};

fn le(buf: &[u8], at: usize, n: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..n).rev() {
        v = (v << 8) | u64::from(buf.get(at + i).copied().unwrap_or(0));
    }
    v
}

/// A fixed-size ASCII field from an Identify structure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AsciiField<const N: usize>([u8; N]);

impl<const N: usize> AsciiField<N> {
    fn parse(buf: &[u8], at: usize) -> AsciiField<N> {
        let mut a = [b' '; N];
        for (i, b) in a.iter_mut().enumerate() {
            let c = buf.get(at + i).copied().unwrap_or(b' ');
            *b = match c {
                0 | b' ' => b' ',
                c if c.is_ascii_graphic() => c,
                _ => b'?',
            };
        }
        AsciiField(a)
    }

    /// Builds a field from text (for simulated devices); truncated or
    /// space padded to `N` bytes.
    pub fn from_text(s: &str) -> AsciiField<N> {
        let mut a = [b' '; N];
        for (d, s) in a.iter_mut().zip(s.bytes()) {
            *d = s;
        }
        AsciiField(a)
    }

    /// The text without trailing (and leading) spaces.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are stored (see `parse`), so this cannot fail.
        core::str::from_utf8(&self.0).unwrap_or("").trim()
    }

    /// The raw bytes as stored in the structure.
    pub fn raw(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> core::fmt::Debug for AsciiField<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> core::fmt::Display for AsciiField<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Optional NVM Command Support, ONCS (Identify Controller bytes 521:520).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Oncs(pub u16);

impl Oncs {
    /// Compare command.
    pub const fn compare(self) -> bool {
        self.0 & 1 != 0
    }
    /// Write Uncorrectable command.
    pub const fn write_uncorrectable(self) -> bool {
        self.0 & (1 << 1) != 0
    }
    /// Dataset Management command.
    pub const fn dataset_management(self) -> bool {
        self.0 & (1 << 2) != 0
    }
    /// Write Zeroes command.
    pub const fn write_zeroes(self) -> bool {
        self.0 & (1 << 3) != 0
    }
    /// Save field in Set Features / Select field in Get Features.
    pub const fn save_select(self) -> bool {
        self.0 & (1 << 4) != 0
    }
    /// Reservations.
    pub const fn reservations(self) -> bool {
        self.0 & (1 << 5) != 0
    }
    /// Timestamp feature.
    pub const fn timestamp(self) -> bool {
        self.0 & (1 << 6) != 0
    }
}

/// The fields of Identify Controller the driver uses (§5.15.2.2, Figure 247).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentifyController {
    /// PCI Vendor ID (bytes 1:0).
    pub vid: u16,
    /// Serial Number (bytes 23:04).
    pub serial: AsciiField<20>,
    /// Model Number (bytes 63:24).
    pub model: AsciiField<40>,
    /// Firmware Revision (bytes 71:64).
    pub firmware: AsciiField<8>,
    /// Maximum Data Transfer Size (byte 77): 2^MDTS units of CAP.MPSMIN;
    /// 0 = no limit.
    pub mdts: u8,
    /// Controller ID (bytes 79:78).
    pub cntlid: u16,
    /// Version (bytes 83:80), 0 before NVMe 1.2.
    pub ver: u32,
    /// RTD3 Entry Latency in microseconds (bytes 91:88), 0 = not reported.
    pub rtd3e_us: u32,
    /// Optional Admin Command Support (bytes 257:256).
    pub oacs: u16,
    /// Error Log Page Entries (byte 262, 0-based).
    pub elpe: u8,
    /// Number of Power States Support (byte 263, 0-based): the deepest
    /// power state's number.
    pub npss: u8,
    /// Autonomous Power State Transition Attributes (byte 265): bit 0 =
    /// supported.
    pub apsta: u8,
    /// Host Memory Buffer Preferred Size (bytes 275:272), 4 KiB units;
    /// 0 = no Host Memory Buffer wanted (NVMe 1.2).
    pub hmpre: u32,
    /// Host Memory Buffer Minimum Size (bytes 279:276), 4 KiB units.
    pub hmmin: u32,
    /// Host Memory Buffer Minimum Descriptor Entry Size (bytes 335:332),
    /// 4 KiB units; 0 = no minimum (NVMe 1.4).
    pub hmminds: u32,
    /// Host Memory Maximum Descriptors Entries (bytes 337:336); 0 = no
    /// limit (NVMe 1.4).
    pub hmmaxd: u16,
    /// Submission Queue Entry Size (byte 512): required (3:0) and maximum
    /// (7:4) exponents.
    pub sqes: u8,
    /// Completion Queue Entry Size (byte 513).
    pub cqes: u8,
    /// Number of Namespaces (bytes 519:516): highest valid NSID.
    pub nn: u32,
    /// Optional NVM Command Support (bytes 521:520).
    pub oncs: Oncs,
    /// Volatile Write Cache (byte 525): bit 0 = present.
    pub vwc: u8,
}

impl IdentifyController {
    /// Parses the 4096-byte structure.
    pub fn parse(buf: &[u8]) -> IdentifyController {
        use controller_field as f;
        IdentifyController {
            vid: f::VID.read(buf) as u16,
            serial: AsciiField::parse(buf, f::SN.at),
            model: AsciiField::parse(buf, f::MN.at),
            firmware: AsciiField::parse(buf, f::FR.at),
            mdts: f::MDTS.read(buf) as u8,
            cntlid: f::CNTLID.read(buf) as u16,
            ver: f::VER.read(buf) as u32,
            rtd3e_us: f::RTD3E.read(buf) as u32,
            oacs: f::OACS.read(buf) as u16,
            elpe: f::ELPE.read(buf) as u8,
            npss: f::NPSS.read(buf) as u8,
            apsta: f::APSTA.read(buf) as u8,
            hmpre: f::HMPRE.read(buf) as u32,
            hmmin: f::HMMIN.read(buf) as u32,
            hmminds: f::HMMINDS.read(buf) as u32,
            hmmaxd: f::HMMAXD.read(buf) as u16,
            sqes: f::SQES.read(buf) as u8,
            cqes: f::CQES.read(buf) as u8,
            nn: f::NN.read(buf) as u32,
            oncs: Oncs(f::ONCS.read(buf) as u16),
            vwc: f::VWC.read(buf) as u8,
        }
    }

    /// Whether the Doorbell Buffer Config command is supported (OACS bit 8,
    /// NVMe 1.4 §5.7): shadow doorbells in host memory.
    pub const fn doorbell_buffer_config(&self) -> bool {
        self.oacs & (1 << 8) != 0
    }

    /// Whether Autonomous Power State Transitions are supported (APSTA
    /// bit 0, §5.21.1.12).
    pub const fn apst_supported(&self) -> bool {
        self.apsta & 1 != 0
    }

    /// Whether a volatile write cache is present.
    pub const fn volatile_write_cache_present(&self) -> bool {
        self.vwc & 1 != 0
    }

    /// MDTS in bytes given the controller's minimum page size; `None` = no
    /// limit (MDTS 0, or too large to express).
    pub fn max_transfer_bytes(&self, min_page_size: usize) -> Option<usize> {
        if self.mdts == 0 {
            return None;
        }
        1usize
            .checked_shl(u32::from(self.mdts))
            .and_then(|n| n.checked_mul(min_page_size))
    }

    /// Whether the 64/16-byte queue entry sizes are accepted (SQES/CQES
    /// minimum exponents at most 6/4 and maximum at least 6/4; a zero byte
    /// means "not reported", accepted).
    pub fn entry_sizes_supported(&self) -> bool {
        let ok = |v: u8, want: u8| v == 0 || ((v & 0xF) <= want && (v >> 4) >= want);
        ok(self.sqes, 6) && ok(self.cqes, 4)
    }
}

/// One LBA Format descriptor (§5.15.2.1, Figure 246).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LbaFormat {
    /// Metadata Size in bytes per block.
    pub metadata_size: u16,
    /// LBA Data Size as an exponent (bytes = 2^LBADS); 0 = format unused.
    pub lbads: u8,
    /// Relative Performance (0 best .. 3 degraded).
    pub relative_performance: u8,
}

impl LbaFormat {
    /// Data bytes per block, `None` if the exponent is unusable (< 9 or
    /// absurdly large).
    pub fn data_size(&self) -> Option<usize> {
        if (9..=31).contains(&self.lbads) {
            Some(1usize << self.lbads)
        } else {
            None
        }
    }
}

/// The fields of Identify Namespace the driver uses (§5.15.2.1, Figure 245).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentifyNamespace {
    /// Namespace Size in blocks (bytes 7:0).
    pub nsze: u64,
    /// Namespace Capacity in blocks (bytes 15:8).
    pub ncap: u64,
    /// Namespace Utilization in blocks (bytes 23:16).
    pub nuse: u64,
    /// Namespace Features (byte 24).
    pub nsfeat: u8,
    /// Number of LBA Formats (byte 25), 1-based here.
    pub format_count: u8,
    /// Formatted LBA Size (byte 26): index bits 3:0 (and 6:5 in NVMe 2.0),
    /// bit 4 = metadata at the end of each block.
    pub flbas: u8,
    /// Namespace Attributes (byte 99): bit 0 = write protected.
    pub nsattr: u8,
    /// LBA formats 0..16 (bytes 191:128).
    pub formats: [LbaFormat; 16],
}

impl IdentifyNamespace {
    /// Parses the 4096-byte structure.
    pub fn parse(buf: &[u8]) -> IdentifyNamespace {
        use namespace_field as n;
        let mut formats = [LbaFormat::default(); n::LBA_FORMATS];
        for (i, f) in formats.iter_mut().enumerate() {
            let d = le(buf, n::LBAF0.at + n::LBAF0.len * i, n::LBAF0.len) as u32;
            *f = LbaFormat {
                metadata_size: d as u16,
                lbads: (d >> 16) as u8,
                relative_performance: ((d >> 24) & 3) as u8,
            };
        }
        IdentifyNamespace {
            nsze: n::NSZE.read(buf),
            ncap: n::NCAP.read(buf),
            nuse: n::NUSE.read(buf),
            nsfeat: n::NSFEAT.read(buf) as u8,
            format_count: (n::NLBAF.read(buf) as u8).saturating_add(1),
            flbas: n::FLBAS.read(buf) as u8,
            nsattr: n::NSATTR.read(buf) as u8,
            formats,
        }
    }

    /// Index of the formatted LBA format.
    pub const fn format_index(&self) -> usize {
        ((self.flbas & 0xF) | ((self.flbas >> 1) & 0x30)) as usize
    }

    /// The formatted LBA format, if its index is one of the 16 parsed.
    pub fn current_format(&self) -> Option<LbaFormat> {
        self.formats.get(self.format_index()).copied()
    }

    /// Whether the namespace is allocated and active (non-zero size; an
    /// inactive NSID reads as a zero-filled structure, §5.15.2).
    pub const fn is_active(&self) -> bool {
        self.nsze != 0
    }

    /// Whether the namespace is write protected (NSATTR bit 0).
    pub const fn write_protected(&self) -> bool {
        self.nsattr & 1 != 0
    }
}

/// Iterates the Active Namespace ID list (§5.15.2.3): up to 1024 NSIDs in
/// increasing order, terminated by zero.
pub fn active_namespaces(buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
    (0..ACTIVE_LIST_ENTRIES)
        .map(move |i| le(buf, NSID_BYTES * i, NSID_BYTES) as u32)
        .take_while(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_fields() {
        let mut b = [0u8; 4096];
        b[4..10].copy_from_slice(b"SN1234");
        b[24..28].copy_from_slice(b"QEMU");
        b[64..67].copy_from_slice(b"1.0");
        b[77] = 5;
        b[516] = 3;
        b[520] = 0b1100;
        b[525] = 1;
        b[512] = 0x66;
        b[513] = 0x44;
        b[88..92].copy_from_slice(&30_000_000u32.to_le_bytes());
        b[263] = 4;
        b[265] = 1;
        b[272..276].copy_from_slice(&8192u32.to_le_bytes());
        b[276..280].copy_from_slice(&2048u32.to_le_bytes());
        b[332..336].copy_from_slice(&16u32.to_le_bytes());
        b[336..338].copy_from_slice(&32u16.to_le_bytes());
        let c = IdentifyController::parse(&b);
        assert_eq!(c.rtd3e_us, 30_000_000);
        assert_eq!((c.npss, c.apst_supported()), (4, true));
        assert_eq!(
            (c.hmpre, c.hmmin, c.hmminds, c.hmmaxd),
            (8192, 2048, 16, 32)
        );
        assert_eq!(c.serial.as_str(), "SN1234");
        assert_eq!(c.model.as_str(), "QEMU");
        assert_eq!(c.firmware.as_str(), "1.0");
        assert_eq!(c.max_transfer_bytes(4096), Some(128 * 1024));
        assert_eq!(c.nn, 3);
        assert!(c.oncs.write_zeroes() && c.oncs.dataset_management() && !c.oncs.compare());
        assert!(c.volatile_write_cache_present());
        assert!(c.entry_sizes_supported());
        // Short or garbage buffers never panic.
        let g = IdentifyController::parse(&[0xFF; 10]);
        assert_eq!(g.mdts, 0);
        assert_eq!(g.serial.as_str(), "??????");
    }

    #[test]
    fn namespace_fields() {
        let mut b = [0u8; 4096];
        b[0] = 0x10;
        b[25] = 1;
        b[26] = 1;
        b[128 + 4 + 2] = 12;
        b[128 + 4] = 8;
        b[99] = 1;
        let n = IdentifyNamespace::parse(&b);
        assert!(n.write_protected());
        assert_eq!(n.nsze, 16);
        assert_eq!(n.format_count, 2);
        let f = n.current_format().unwrap();
        assert_eq!(f.data_size(), Some(4096));
        assert_eq!(f.metadata_size, 8);
    }

    #[test]
    fn namespace_list() {
        let mut b = [0u8; 4096];
        b[0] = 1;
        b[4] = 7;
        assert_eq!(active_namespaces(&b).collect::<std::vec::Vec<_>>(), [1, 7]);
    }
}
