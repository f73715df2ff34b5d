//! The ownership signature: a namespace is writable by the unikernel only if
//! it carries this header (DESIGN.md, "Data safety").
//!
//! The header is 512 bytes at byte offset 4096 of the namespace (LBA 8 with
//! 512-byte blocks, LBA 1 with 4 KiB blocks), so it sits at the same place
//! whatever the block size, clear of an MBR and of the first GPT sectors'
//! usual content. Layout, little-endian:
//!
//! | bytes   | field                                                   |
//! |---------|---------------------------------------------------------|
//! | 0..16   | magic `NVMe-UNIKERNEL\r\n`                              |
//! | 16..20  | format version (1)                                      |
//! | 20..24  | namespace ID                                            |
//! | 24..44  | controller serial, ASCII, space-padded as in Identify   |
//! | 44..52  | namespace size in bytes                                 |
//! | 52..508 | zero                                                    |
//! | 508..512| CRC-32 (IEEE) of bytes 0..508                           |
//!
//! A header whose serial or size does not match the namespace it is read
//! from (an image copied to another disk, a resized file) does not count:
//! the owner stamped a different disk.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Byte offset of the header in the namespace.
pub const OFFSET: u64 = 4096;
/// Length of the header.
pub const LEN: usize = 512;
/// The magic value.
pub const MAGIC: [u8; 16] = *b"NVMe-UNIKERNEL\r\n";
/// The format version this crate writes and accepts.
pub const VERSION: u32 = 1;
const SERIAL_LEN: usize = 20;

/// What a header claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Namespace ID.
    pub nsid: u32,
    /// Controller serial (space-padded ASCII, 20 bytes).
    pub serial: [u8; SERIAL_LEN],
    /// Namespace size in bytes.
    pub size_bytes: u64,
}

/// Why a header is not a valid signature for a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The buffer is shorter than a header.
    TooShort,
    /// No magic value: the disk was never stamped.
    NoMagic,
    /// A format version this build does not know.
    UnknownVersion(u32),
    /// The checksum does not match: the header is damaged.
    BadChecksum,
    /// Stamped for another controller (serial differs).
    OtherSerial,
    /// Stamped for another namespace ID.
    OtherNamespace,
    /// Stamped for a namespace of another size.
    OtherSize,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Mismatch::TooShort => f.write_str("header buffer too short"),
            Mismatch::NoMagic => f.write_str("no ownership signature"),
            Mismatch::UnknownVersion(v) => write!(f, "signature format version {v} is unknown"),
            Mismatch::BadChecksum => f.write_str("signature checksum does not match"),
            Mismatch::OtherSerial => f.write_str("signature names another controller serial"),
            Mismatch::OtherNamespace => f.write_str("signature names another namespace"),
            Mismatch::OtherSize => f.write_str("signature names another namespace size"),
        }
    }
}

impl Signature {
    /// A signature for `serial` (trimmed or padded to 20 bytes).
    pub fn new(nsid: u32, serial: &str, size_bytes: u64) -> Signature {
        Signature {
            nsid,
            serial: pad_serial(serial.as_bytes()),
            size_bytes,
        }
    }

    /// The 512-byte header.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..16].copy_from_slice(&MAGIC);
        out[16..20].copy_from_slice(&VERSION.to_le_bytes());
        out[20..24].copy_from_slice(&self.nsid.to_le_bytes());
        out[24..44].copy_from_slice(&self.serial);
        out[44..52].copy_from_slice(&self.size_bytes.to_le_bytes());
        let crc = crc32(&out[..LEN - 4]);
        out[LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse a header without checking it against a namespace.
    pub fn decode(header: &[u8]) -> Result<Signature, Mismatch> {
        let header = header.get(..LEN).ok_or(Mismatch::TooShort)?;
        if header[0..16] != MAGIC {
            return Err(Mismatch::NoMagic);
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let version = word(16);
        if version != VERSION {
            return Err(Mismatch::UnknownVersion(version));
        }
        if word(LEN - 4) != crc32(&header[..LEN - 4]) {
            return Err(Mismatch::BadChecksum);
        }
        let mut serial = [0u8; SERIAL_LEN];
        serial.copy_from_slice(&header[24..44]);
        let mut size = [0u8; 8];
        size.copy_from_slice(&header[44..52]);
        Ok(Signature {
            nsid: word(20),
            serial,
            size_bytes: u64::from_le_bytes(size),
        })
    }

    /// Check that `header` is a valid signature for this namespace.
    pub fn verify(
        header: &[u8],
        nsid: u32,
        serial: &[u8],
        size_bytes: u64,
    ) -> Result<Signature, Mismatch> {
        let signature = Signature::decode(header)?;
        if signature.serial != pad_serial(serial) {
            return Err(Mismatch::OtherSerial);
        }
        if signature.nsid != nsid {
            return Err(Mismatch::OtherNamespace);
        }
        if signature.size_bytes != size_bytes {
            return Err(Mismatch::OtherSize);
        }
        Ok(signature)
    }
}

/// Serial numbers compare as Identify reports them: 20 bytes, space-padded,
/// so trailing spaces and NULs do not matter.
fn pad_serial(serial: &[u8]) -> [u8; SERIAL_LEN] {
    let mut out = [b' '; SERIAL_LEN];
    let trimmed = trim(serial);
    let n = trimmed.len().min(SERIAL_LEN);
    out[..n].copy_from_slice(&trimmed[..n]);
    out
}

fn trim(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    let start = bytes[..end].iter().position(|&b| b != b' ').unwrap_or(end);
    &bytes[start..end]
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_verify() {
        let sig = Signature::new(1, "UNIKERNEL0", 1 << 30);
        let header = sig.encode();
        assert_eq!(Signature::decode(&header), Ok(sig));
        assert_eq!(
            Signature::verify(&header, 1, b"UNIKERNEL0          ", 1 << 30),
            Ok(sig)
        );
        assert_eq!(
            Signature::verify(&header, 1, b"UNIKERNEL0\0\0", 1 << 30),
            Ok(sig)
        );
    }

    #[test]
    fn every_mismatch_is_named() {
        let header = Signature::new(1, "UNIKERNEL0", 1 << 30).encode();
        assert_eq!(
            Signature::verify(&header, 1, b"OTHER", 1 << 30),
            Err(Mismatch::OtherSerial)
        );
        assert_eq!(
            Signature::verify(&header, 2, b"UNIKERNEL0", 1 << 30),
            Err(Mismatch::OtherNamespace)
        );
        assert_eq!(
            Signature::verify(&header, 1, b"UNIKERNEL0", 1 << 29),
            Err(Mismatch::OtherSize)
        );
        assert_eq!(Signature::decode(&[0u8; 512]), Err(Mismatch::NoMagic));
        assert_eq!(Signature::decode(&header[..100]), Err(Mismatch::TooShort));
        let mut damaged = header;
        damaged[30] ^= 1;
        assert_eq!(Signature::decode(&damaged), Err(Mismatch::BadChecksum));
        let mut future = header;
        future[16] = 2;
        assert_eq!(Signature::decode(&future), Err(Mismatch::UnknownVersion(2)));
    }

    #[test]
    fn no_single_bit_flip_goes_unnoticed() {
        let header = Signature::new(3, "S", 4096 * 1000).encode();
        for bit in 0..LEN * 8 {
            let mut flipped = header;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Signature::verify(&flipped, 3, b"S", 4096 * 1000).is_err(),
                "bit {bit}"
            );
        }
    }
}
