//! What the property tests of the queue API and of the `async` path have in
//! common: the two namespaces they run on, the requests they make, the
//! documented checks a request meets before it may reach the device, and
//! a model of the medium the accepted requests leave.

use nvme::Error;
use nvme_sim::{NsConfig, Sim, TestController};

/// (NSID, block size, blocks): namespace 1 has 512-byte blocks, 2 has
/// 4096-byte blocks. Small under Miri, which interprets every byte the
/// simulator touches.
pub const NAMESPACES: [(u32, usize, u64); 2] = if cfg!(miri) {
    [(1, 512, 64), (2, 4096, 16)]
} else {
    [(1, 512, 2048), (2, 4096, 256)]
};
/// MDTS of the simulated controller: 2^2 pages of 4 KiB per command, so
/// requests over 16 KiB take several commands.
pub const MDTS: u8 = 2;
/// The transfer limit that follows.
pub const MAX_TRANSFER: usize = (1 << MDTS) * 4096;

/// The simulator's configuration of [`NAMESPACES`].
pub fn namespace_configs() -> Vec<NsConfig> {
    NAMESPACES
        .iter()
        .map(|&(nsid, block_size, blocks)| NsConfig {
            nsid,
            block_size,
            blocks,
            metadata: 0,
        })
        .collect()
}

/// Block size and block count of namespace `nsid` of [`NAMESPACES`].
pub fn geometry(nsid: u32) -> (usize, u64) {
    let &(_, bs, count) = NAMESPACES.iter().find(|n| n.0 == nsid).unwrap();
    (bs, count)
}

/// Marks the `i`th namespace of [`NAMESPACES`] writable when `writable[i]`.
pub fn set_writable(ctrl: &mut TestController, writable: [bool; 2]) {
    for (&(nsid, _, _), writable) in NAMESPACES.iter().zip(writable) {
        ctrl.namespace(nsid).unwrap().set_writable(writable);
    }
}

/// A request of the queue API, naming its namespace by NSID (which may
/// name no namespace, or one the request may not use).
#[derive(Clone, Debug)]
pub enum Request {
    Read {
        nsid: u32,
        lba: u64,
        len: usize,
    },
    Write {
        nsid: u32,
        lba: u64,
        len: usize,
        fua: bool,
    },
    Zeroes {
        nsid: u32,
        lba: u64,
        blocks: u32,
    },
    Discard {
        nsid: u32,
        lba: u64,
        blocks: u32,
    },
    Flush {
        nsid: u32,
    },
}

impl Request {
    /// The NSID the request names.
    pub fn nsid(&self) -> u32 {
        match *self {
            Request::Read { nsid, .. }
            | Request::Write { nsid, .. }
            | Request::Zeroes { nsid, .. }
            | Request::Discard { nsid, .. }
            | Request::Flush { nsid } => nsid,
        }
    }
}

/// The documented order of checks for a transfer of `len` bytes from
/// `lba` of namespace `nsid`: the length, then as [`expect_blocks`].
pub fn expect_transfer(
    nsid: u32,
    lba: u64,
    len: usize,
    write: bool,
    writable: bool,
) -> Result<(), Error> {
    let (bs, _) = geometry(nsid);
    if len == 0 || !len.is_multiple_of(bs) {
        return Err(Error::InvalidLength);
    }
    expect_blocks(nsid, lba, (len / bs) as u64, write, writable)
}

/// The documented order of checks for `blocks` blocks from `lba` of
/// namespace `nsid`: a count of zero, the range, then write permission.
pub fn expect_blocks(
    nsid: u32,
    lba: u64,
    blocks: u64,
    write: bool,
    writable: bool,
) -> Result<(), Error> {
    let (_, count) = geometry(nsid);
    if blocks == 0 {
        return Err(Error::InvalidLength);
    }
    if lba.checked_add(blocks).is_none_or(|end| end > count) {
        return Err(Error::OutOfRange);
    }
    if write && !writable {
        return Err(Error::NotOwned);
    }
    Ok(())
}

/// A model of the medium: the contents of [`NAMESPACES`], updated by the
/// test as the requests it expects to be accepted would leave them, in
/// order.
pub struct Medium(Vec<(u32, Vec<u8>)>);

impl Medium {
    /// What the simulated device holds now.
    pub fn of(sim: &Sim) -> Medium {
        Medium(
            NAMESPACES
                .iter()
                .map(|&(nsid, _, count)| (nsid, sim.disk(nsid, 0, count)))
                .collect(),
        )
    }

    /// The `bytes` bytes from block `lba` of namespace `nsid`.
    pub fn range(&mut self, nsid: u32, lba: u64, bytes: usize) -> &mut [u8] {
        let (bs, _) = geometry(nsid);
        let start = lba as usize * bs;
        &mut self.namespace_mut(nsid)[start..start + bytes]
    }

    /// The whole of namespace `nsid`.
    pub fn namespace(&self, nsid: u32) -> &[u8] {
        &self.0.iter().find(|d| d.0 == nsid).unwrap().1
    }

    fn namespace_mut(&mut self, nsid: u32) -> &mut [u8] {
        &mut self.0.iter_mut().find(|d| d.0 == nsid).unwrap().1
    }
}
