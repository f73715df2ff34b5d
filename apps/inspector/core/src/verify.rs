//! The write-read-verify pass: `span` bytes of a block target from byte
//! `start` are written with a pattern derived from each block's LBA and a
//! generation number, flushed, read back and compared block by block.
//!
//! A write-protected target (known before, or found at the first write it
//! refuses with "Namespace is Write Protected" or "Write Fault",
//! `nvme::Error::refuses_writes`) gets no more writes: the span is read
//! twice instead and the two passes compared chunk by chunk (the content is
//! whatever is on the disk). The refusal is reported as an [`Event`], not
//! counted as an error.
//!
//! The pass prints nothing and keeps no time: what happens is handed to the
//! caller's observer as [`Event`]s (progress after every chunk), so the
//! image prints it on its consoles and a host test records it.

use alloc::vec::Vec;

use crate::target::BlockTarget;

/// Bytes per request.
const CHUNK_BYTES: usize = 128 * 1024;

/// The three passes; a target that takes writes gets the first two, a
/// write-protected one the last two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Writing the pattern.
    Write,
    /// Reading back (and comparing with the pattern, after a write pass).
    Read,
    /// Reading a second time, compared with the first read.
    ReadAgain,
}

/// What happened during a pass, as it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Not one whole block lies inside the span past `start`.
    TooSmall,
    /// The target is write-protected: no write pass, the span is read twice.
    WriteProtected,
    /// A write was refused as by a write-protected namespace: the write
    /// pass stops there, the span is read twice.
    WriteRefused {
        /// First block of the refused write.
        lba: u64,
        /// What the device said.
        error: nvme::Error,
    },
    /// A request failed (counted in [`VerifyReport::errors`]).
    Failed {
        /// The pass it belongs to (`Write` also for the flush).
        pass: Pass,
        /// First block of the request.
        lba: u64,
        /// What the device said.
        error: nvme::Error,
    },
    /// A block read back is not the one written.
    Mismatch {
        /// The block.
        lba: u64,
    },
    /// The two reads of the chunk at `lba` differ (write-protected target).
    ReadsDiffer {
        /// First block of the chunk.
        lba: u64,
    },
    /// A chunk is done.
    Progress {
        /// The pass.
        pass: Pass,
        /// Blocks of the span done in this pass.
        done: u64,
        /// Blocks in the span.
        total: u64,
    },
}

/// What the pass found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Bytes written, flushed and read back (0 when no write pass completed).
    pub verified_bytes: u64,
    /// Bytes read twice and compared (write-protected target).
    pub read_verified_bytes: u64,
    /// Blocks that differed from the pattern, or chunks whose two reads
    /// differed.
    pub mismatches: u64,
    /// Requests that failed (refused writes on a write-protected target are
    /// not counted).
    pub errors: u64,
    /// The target is write-protected (known before, or found by a write).
    pub write_protected: bool,
}

/// Fill `block` with the pattern of `lba` at `generation`: the LBA and the
/// generation in the first 16 bytes, then words of a generator seeded by
/// both, so a block read from the wrong place, or left by another run,
/// differs.
pub fn pattern(block: &mut [u8], lba: u64, generation: u64) {
    let mut state = lba.rotate_left(17) ^ generation ^ 0x6a09_e667_f3bc_c908;
    for (index, word) in block.chunks_mut(8).enumerate() {
        let value = match index {
            0 => lba,
            1 => generation,
            _ => next(&mut state),
        };
        word.copy_from_slice(&value.to_le_bytes()[..word.len()]);
    }
}

/// SplitMix64.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of `bytes`, to compare two reads of a chunk.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Run the pass over `span` bytes of `target` from byte `start` (both
/// rounded down to whole blocks), writing the pattern of `generation`;
/// `observe` sees every [`Event`].
pub fn verify(
    target: &mut dyn BlockTarget,
    start: u64,
    span: u64,
    generation: u64,
    observe: &mut dyn FnMut(Event),
) -> VerifyReport {
    let mut report = VerifyReport::default();
    let bs = target.block_size();
    if bs == 0 {
        observe(Event::TooSmall);
        return report;
    }
    let first = start / bs as u64;
    let last = target
        .block_count()
        .min(first.saturating_add(span / bs as u64));
    if last <= first {
        observe(Event::TooSmall);
        return report;
    }
    let total = last - first;
    let chunk = (CHUNK_BYTES / bs).max(1);
    let mut buf = alloc::vec![0u8; chunk * bs];
    let mut expected = alloc::vec![0u8; bs];
    let mut writing = !target.write_protected();
    if !writing {
        observe(Event::WriteProtected);
        report.write_protected = true;
    }
    // Read-twice mode: the first read records a digest per chunk, the
    // second compares.
    let mut digests: Vec<u64> = Vec::new();
    for pass in [Pass::Write, Pass::Read, Pass::ReadAgain] {
        match pass {
            Pass::Write if !writing => continue,
            Pass::ReadAgain if writing => break,
            _ => {}
        }
        let mut lba = first;
        let mut index = 0usize;
        while lba < last {
            let n = (chunk as u64).min(last - lba) as usize;
            let bytes = &mut buf[..n * bs];
            if pass == Pass::Write {
                for (i, block) in bytes.chunks_mut(bs).enumerate() {
                    pattern(block, lba + i as u64, generation);
                }
                match target.write(lba, bytes) {
                    Ok(()) => {}
                    Err(error) if error.refuses_writes() => {
                        observe(Event::WriteRefused { lba, error });
                        report.write_protected = true;
                        writing = false;
                        break;
                    }
                    Err(error) => {
                        observe(Event::Failed { pass, lba, error });
                        report.errors += 1;
                    }
                }
            } else {
                match target.read(lba, bytes) {
                    Ok(()) if writing => {
                        for (i, block) in bytes.chunks(bs).enumerate() {
                            pattern(&mut expected, lba + i as u64, generation);
                            if block != &expected[..] {
                                observe(Event::Mismatch {
                                    lba: lba + i as u64,
                                });
                                report.mismatches += 1;
                            }
                        }
                    }
                    Ok(()) if pass == Pass::Read => digests.push(digest(bytes)),
                    Ok(()) => {
                        if digests.get(index) != Some(&digest(bytes)) {
                            observe(Event::ReadsDiffer { lba });
                            report.mismatches += 1;
                        }
                    }
                    Err(error) => {
                        observe(Event::Failed { pass, lba, error });
                        report.errors += 1;
                        if pass == Pass::Read {
                            digests.push(0);
                        }
                    }
                }
            }
            lba += n as u64;
            index += 1;
            observe(Event::Progress {
                pass,
                done: lba - first,
                total,
            });
        }
        if pass == Pass::Write
            && writing
            && let Err(error) = target.flush()
        {
            observe(Event::Failed {
                pass,
                lba: first,
                error,
            });
            report.errors += 1;
        }
    }
    let bytes = total * bs as u64;
    if writing {
        report.verified_bytes = bytes;
    } else {
        report.read_verified_bytes = bytes;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_by_block_and_by_generation() {
        let mut a = [0u8; 512];
        let mut b = [0u8; 512];
        pattern(&mut a, 7, 1);
        pattern(&mut b, 7, 1);
        assert_eq!(a, b);
        pattern(&mut b, 8, 1);
        assert_ne!(a[16..], b[16..]);
        pattern(&mut b, 7, 2);
        assert_ne!(a[16..], b[16..]);
        assert_eq!(a[..8], 7u64.to_le_bytes());
        assert_eq!(a[8..16], 1u64.to_le_bytes());
    }
}
