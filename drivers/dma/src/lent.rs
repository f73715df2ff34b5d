//! The hand-over of memory to the device, expressed in types.
//!
//! Memory the device may be reading or writing must not be touched by the
//! CPU, and must not go back to the allocator. [`Lent`] holds such memory
//! by value and shows only its bus address and length; the bytes come back
//! only through [`Lent::reclaim`], which needs a [`Returned`], made by
//! [`crate::ordering::after_device_signal`] once the device said it is
//! done (a completion, a finished reset). Dropping a `Lent` leaks the
//! memory, whatever its type (a [`crate::DmaBuffer`] that would free
//! itself is kept in a `ManuallyDrop`): that is what a driver must do with
//! memory it cannot prove the device has finished with.
//!
//! [`Custody`] is the same hand-over for an owner that keeps the memory in
//! one place across many loans (a queue slot's data buffer and PRP list):
//! with the CPU ([`Custody::host`]) or lent to the device, never both.

use crate::{DmaRegion, PhysAddr, Returned};
use core::mem::ManuallyDrop;

/// Memory lent to the device (see the module documentation).
#[derive(Debug)]
#[must_use = "dropping lent memory leaks it"]
pub struct Lent<T> {
    /// Never dropped: only `reclaim` takes it out.
    memory: ManuallyDrop<T>,
}

impl<T> Lent<T> {
    /// Hands `memory` to the device. Whatever the CPU wrote into it becomes
    /// visible to the device at the next
    /// [`crate::ordering::before_doorbell`].
    #[inline]
    pub fn new(memory: T) -> Lent<T> {
        Lent {
            memory: ManuallyDrop::new(memory),
        }
    }

    /// Takes the memory back once the device has handed it back.
    #[inline]
    pub fn reclaim(self, returned: &Returned) -> T {
        let _ = returned;
        ManuallyDrop::into_inner(self.memory)
    }

    /// The memory, for its address and length only (crate-internal: the
    /// bytes stay out of reach).
    #[inline]
    pub(crate) fn peek(&self) -> &T {
        &self.memory
    }
}

impl Lent<DmaRegion> {
    /// Physical address of the first byte (for the device's pointers).
    #[inline]
    pub fn phys(&self) -> PhysAddr {
        self.memory.phys()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether the region has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }
}

/// Memory kept in one place that is either the CPU's or lent to the device
/// (see the module documentation). The state is a flag beside the memory,
/// not a move of it, so a loan costs one store on the I/O path; the fields
/// are private, so the memory is reachable only through [`Self::host`] and
/// [`Self::host_mut`], which refuse while it is lent.
#[derive(Debug)]
pub struct Custody<T> {
    memory: T,
    lent: bool,
}

impl<T> Custody<T> {
    /// Memory the CPU holds.
    #[inline]
    pub fn new(memory: T) -> Custody<T> {
        Custody {
            memory,
            lent: false,
        }
    }

    /// The memory, unless it is lent to the device.
    #[inline]
    pub fn host(&self) -> Option<&T> {
        (!self.lent).then_some(&self.memory)
    }

    /// The memory for writing, unless it is lent to the device.
    #[inline]
    pub fn host_mut(&mut self) -> Option<&mut T> {
        (!self.lent).then_some(&mut self.memory)
    }

    /// Whether the memory is lent to the device.
    #[inline]
    pub fn is_lent(&self) -> bool {
        self.lent
    }

    /// Lends the memory to the device (nothing if it already is).
    #[inline]
    pub fn lend(&mut self) {
        self.lent = true;
    }

    /// Takes the memory back after the device handed it back (nothing if
    /// the CPU holds it).
    #[inline]
    pub fn reclaim(&mut self, returned: &Returned) {
        let _ = returned;
        self.lent = false;
    }

    /// The memory if the CPU holds it; memory still lent is given up
    /// (leaked), as the device may still use it.
    #[inline]
    pub fn into_host(self) -> Option<T> {
        (!self.lent).then_some(self.memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::leaked_region;
    use crate::ordering::after_device_signal;

    #[test]
    fn lent_memory_shows_only_its_address_until_returned() {
        let mut region = leaked_region(8192);
        region.copy_in(0, b"data");
        let phys = region.phys();
        let lent = region.lend();
        assert_eq!(
            (lent.phys(), lent.len(), lent.is_empty()),
            (phys, 8192, false)
        );
        let region = lent.reclaim(&after_device_signal());
        assert_eq!(&region.as_slice()[..4], b"data");
    }

    #[test]
    fn custody_is_with_the_host_or_the_device() {
        let mut slot = Custody::new(leaked_region(4096));
        assert!(!slot.is_lent());
        slot.host_mut().unwrap().copy_in(0, &[7]);
        slot.lend();
        slot.lend();
        assert!(slot.is_lent());
        assert!(slot.host().is_none() && slot.host_mut().is_none());
        slot.reclaim(&after_device_signal());
        slot.reclaim(&after_device_signal());
        assert_eq!(slot.host().unwrap().as_slice()[0], 7);
        assert!(slot.into_host().is_some());
        let mut lent = Custody::new(leaked_region(4096));
        lent.lend();
        assert!(
            lent.into_host().is_none(),
            "lent memory is never handed back"
        );
    }
}
