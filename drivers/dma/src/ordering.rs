//! Memory ordering between the CPU and a device, in one place.
//!
//! The device is another agent reading and writing memory: what the driver
//! wrote into a ring or a buffer must be visible before the device is told
//! (the doorbell write), and what the device wrote must not be read before
//! the signal that says it is there (a completion entry's phase tag, or the
//! controller reported reset). Three fences cover every case; drivers call
//! these functions instead of writing fences of their own.
//!
//! On x86 the release and acquire fences cost no instruction (the hardware
//! keeps stores and loads in order; the fences stop the compiler from
//! moving accesses across them); the full fence is an `mfence` or locked
//! instruction.

use core::sync::atomic::{Ordering, fence};

/// Proof that the device has handed memory back: made only by
/// [`after_device_signal`], after the CPU saw the device's signal (a
/// completion entry whose phase tag flipped, a controller reset that
/// finished). It turns [`crate::Lent`] memory back into memory the CPU may
/// read; everything the device wrote before its signal is visible then.
#[derive(Debug, PartialEq, Eq)]
pub struct Returned(());

/// Before a doorbell write: every write to memory the device will read
/// (queue entries, PRP lists, data buffers) becomes visible first.
#[inline]
pub fn before_doorbell() {
    fence(Ordering::Release);
}

/// After seeing the device's signal (a completion's phase tag, a finished
/// controller reset): nothing the device wrote before it is read early.
/// Returns the proof that lent memory is the CPU's again.
#[inline]
pub fn after_device_signal() -> Returned {
    fence(Ordering::Acquire);
    Returned(())
}

/// Between a store the device must see and a load of what the device wrote
/// in answer (shadow doorbell, then EventIdx, NVMe 1.4 §5.7): the store is
/// globally visible before the load reads.
#[inline]
pub fn between_store_and_load() {
    fence(Ordering::SeqCst);
}
