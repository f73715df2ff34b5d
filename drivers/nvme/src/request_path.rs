//! How a request flows: a 4 KiB read from the application to the doorbell
//! and back, function by function.
//!
//! The crate is a stack; each module imports only those below it:
//!
//! | layer | modules |
//! |---|---|
//! | registers and their fields | `registers` |
//! | submission and completion entries | `command`, `status`, `identify`, `log_page`, `zoned` |
//! | PRP building | `prp` |
//! | the queue ring (phase tag, doorbells, shadow doorbells) | `queue` |
//! | namespaces | `namespace` |
//! | the request paths | `request`, `io_queue` (queued), `sync_queue` (synchronous) |
//! | the controller | `controller` (`init`, `admin`, `recovery`, `shutdown`, `host_memory`) |
//! | the application's handle | `block` ([`BlockDevice`](crate::BlockDevice)) |
//!
//! # Queued: `IoQueue::submit_read` and `IoQueue::poll`
//!
//! The namespace is found once, when the application asks the controller
//! for its handle: `Controller::namespace_handle(nsid)` looks the NSID up
//! in the controller's list, checks the namespace usable and returns a
//! [`Namespace`](crate::Namespace) (NSID, block size and count, zoned or
//! not, writable then, and which controller made it). Submissions take
//! that handle; nothing is looked up per request.
//!
//! 1. `IoQueue::submit_read(&ns, lba, blocks, tag)`: the application's
//!    call.
//! 2. `IoQueue::submit`: the one submission routine of the queue; in turn:
//! 3. `IoQueue::ready`: shutdown and reset state, and whether the handle
//!    was made by this queue's controller (one comparison).
//! 4. `Request::check`: the one check of the request against the namespace
//!    (length, range, write permission, buffer size, zone boundary,
//!    support), before anything reaches the device.
//! 5. `QueuePair::alloc_slot`: a free slot (its buffer and PRP list page).
//! 6. `Request::entry` (`SubmissionEntry::read`): the command.
//! 7. `prp::contiguous`: PRP1 and PRP2 for the slot's buffer.
//! 8. `request::deadline_ns`: the deadline, computed in this one place.
//! 9. `QueuePair::push`: the one place that writes an entry into a
//!    submission ring (`SubmissionEntry::to_dwords` lays it out).
//! 10. `QueuePair::ring_submissions` and `QueuePair::ring`: the one place
//!     that rings a doorbell (release fence, shadow doorbell and EventIdx,
//!     MMIO write).
//!
//! And back:
//!
//! 11. `IoQueue::poll`: the completion walk; reports what `take` returns.
//! 12. `QueuePair::take`: the one place that reads a completion entry:
//!     phase tag, acquire fence, decoding (`CompletionEntry::from_dwords`),
//!     command identifier check, submission queue head.
//! 13. `QueuePair::ring_completions` and `QueuePair::ring`: one head
//!     doorbell for everything the walk consumed. Requests past their
//!     deadline are reported by `poll` too (`QueuePair::take_expired`).
//!
//! # Synchronous: `BlockDevice::read`
//!
//! The namespace is found and checked once, by `Controller::namespace`,
//! which makes the [`BlockDevice`](crate::BlockDevice) handle.
//!
//! 1. `BlockDevice::read(lba, buf)` builds the request (`Request::bytes`).
//! 2. `Controller::run`: is the controller running; afterwards, a timeout
//!    or fatal status resets it (`Controller::recover`).
//! 3. `SyncQueue::run`: `Request::check`, then the split by operation.
//! 4. `SyncQueue::transfer`: chunks at the transfer limit; the caller's
//!    buffer in place (`prp::translated`) or the bounce buffer
//!    (`prp::contiguous`); `Request::entry`.
//! 5. `SyncQueue::execute`: `request::deadline_ns`, `QueuePair::alloc_slot`,
//!    `QueuePair::push`, `QueuePair::ring_submissions`.
//! 6. `request::wait_for_slot`: the synchronous completion walk over
//!    `QueuePair::poll` (`take`, then `ring_completions`), with the deadline
//!    and a CSTS check for fatal status.
//!
//! Admin commands take the same ring functions: `Controller::admin_command`
//! pushes, rings and waits with `request::wait_for_slot`.
