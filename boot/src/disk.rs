//! Scratch NVMe disk images: sparse raw files.

use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Parse a size such as `64M`, `1G`, `4096` (bytes) or `512K`.
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let value: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a size (try 64M or 1G)"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => bail!("{text:?}: unknown unit {unit:?} (use K, M, G or T)"),
    };
    let bytes = value
        .checked_mul(1 << shift)
        .with_context(|| format!("{text:?} is too large"))?;
    if bytes == 0 || bytes % 4096 != 0 {
        bail!("{text:?}: a disk size must be a non-zero multiple of 4 KiB");
    }
    Ok(bytes)
}

/// Create a sparse raw image of `size` bytes at `path` if none exists.
/// Returns true if it was created.
pub fn create_if_missing(path: &Path, size: u64) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_len(size)
        .with_context(|| format!("sizing {} to {size} bytes", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert!(parse_size("").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("1000").is_err(), "not a multiple of 4 KiB");
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn creates_sparse_image_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/disk.img");
        assert!(create_if_missing(&path, 1 << 20).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        std::fs::write(&path, b"keep").unwrap();
        assert!(!create_if_missing(&path, 1 << 20).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}

/// Stamp the ownership signature into a raw image: the disk then belongs to
/// the unikernel when it is attached as namespace `nsid` of a controller
/// with serial `serial` (what `./run.sh run` gives disk N: `UNIKERNEL<N>`).
pub fn stamp(path: &Path, serial: &str, nsid: u32) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    if size < ownership::OFFSET + ownership::LEN as u64 {
        bail!(
            "{} is too small ({size} bytes) to carry a signature",
            path.display()
        );
    }
    let header = ownership::Signature::new(nsid, serial, size).encode();
    file.seek(SeekFrom::Start(ownership::OFFSET))?;
    file.write_all(&header)?;
    file.sync_all()?;
    Ok(())
}

/// Read the signature of a raw image, if it has a valid one.
pub fn read_stamp(path: &Path) -> Result<Result<ownership::Signature, ownership::Mismatch>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut header = [0u8; ownership::LEN];
    file.seek(SeekFrom::Start(ownership::OFFSET))?;
    if file.read_exact(&mut header).is_err() {
        return Ok(Err(ownership::Mismatch::TooShort));
    }
    Ok(ownership::Signature::decode(&header))
}

#[cfg(test)]
mod stamp_tests {
    use super::*;

    #[test]
    fn stamped_image_verifies_for_its_serial_and_size_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        create_if_missing(&path, 1 << 20).unwrap();
        assert_eq!(
            read_stamp(&path).unwrap(),
            Err(ownership::Mismatch::NoMagic)
        );
        stamp(&path, "UNIKERNEL0", 1).unwrap();
        let signature = read_stamp(&path).unwrap().unwrap();
        assert_eq!(
            signature,
            ownership::Signature::new(1, "UNIKERNEL0", 1 << 20)
        );
        let data = std::fs::read(&path).unwrap();
        assert!(
            data[..4096].iter().all(|&b| b == 0),
            "stamp wrote before its offset"
        );
        assert!(
            data[4096 + 512..].iter().all(|&b| b == 0),
            "stamp wrote past its header"
        );
        let tiny = dir.path().join("tiny.img");
        std::fs::write(&tiny, [0u8; 1000]).unwrap();
        assert!(stamp(&tiny, "X", 1).is_err());
    }
}
