//! A block target: what the inspector's checks need of a disk. Whole
//! logical blocks are read, written and flushed in place, synchronously;
//! errors are the NVMe driver's.
//!
//! Every `nvme::BlockDevice` is one, whatever its hardware (the kernel's
//! mapped registers and DMA memory, or the simulated controller), and a test
//! can wrap one to misbehave on purpose.

use nvme::{BlockDevice, Clock, DmaAllocator, Error, RegisterAccess};

/// A disk of `block_count` blocks of `block_size` bytes.
pub trait BlockTarget {
    /// Bytes per block.
    fn block_size(&self) -> usize;
    /// Number of blocks.
    fn block_count(&self) -> u64;
    /// True if the disk is known not to take writes (before any is tried).
    fn write_protected(&self) -> bool;
    /// Read whole blocks from `lba` into `buf` (a multiple of the block size).
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Write whole blocks from `buf` at `lba`.
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), Error>;
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> BlockTarget for BlockDevice<'_, R, D, C> {
    fn block_size(&self) -> usize {
        BlockDevice::block_size(self)
    }

    fn block_count(&self) -> u64 {
        BlockDevice::block_count(self)
    }

    fn write_protected(&self) -> bool {
        self.info().write_protected
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        BlockDevice::read(self, lba, buf)
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        BlockDevice::write(self, lba, buf)
    }

    fn flush(&mut self) -> Result<(), Error> {
        BlockDevice::flush(self)
    }
}
