//! The kernel heap: `linked_list_allocator` over physically contiguous
//! frames, reached through the physical-memory mapping (no extra mapping is
//! needed, and heap memory is DMA-able as it is).

use linked_list_allocator::LockedHeap;
use x86_64::PhysAddr;

use super::PhysicalMap;

// Only on the bare-metal target: on the host (the `cost_executor`
// example) the library allocates through std.
#[cfg_attr(target_os = "none", global_allocator)]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hand the heap `len` bytes at physical `start`.
///
/// # Safety
/// `[start, start + len)` must be frames taken from the frame allocator for
/// the heap alone, and this must be called once.
pub unsafe fn init(map: PhysicalMap, start: PhysAddr, len: usize) {
    let bottom = map.virt(start).as_mut_ptr::<u8>();
    // SAFETY: the caller guarantees the memory is unused, owned by the heap
    // from now on, and that this is the only initialisation.
    unsafe { ALLOCATOR.lock().init(bottom, len) };
}

/// Bytes of heap in use and free.
pub fn usage() -> (usize, usize) {
    let heap = ALLOCATOR.lock();
    (heap.used(), heap.free())
}
