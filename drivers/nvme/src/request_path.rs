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
//! | the request paths | `request`, `io_queue` (queued, with `in_flight` and `poll`), `sync_queue` (synchronous) |
//! | futures over a queue | `async_queue` ([`AsyncQueue`](crate::AsyncQueue), with `book`) |
//! | the controller | `controller` (`init`, `admin`, `recovery`, `shutdown`, `host_memory`) |
//! | the application's handles | `block` ([`BlockDevice`](crate::BlockDevice)), `async_controller` ([`AsyncController`](crate::AsyncController)) |
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
//! The data travels in the application's own `DmaBuffer` (memory from the
//! kernel's DMA allocator, its physical address known): it is moved into
//! the request and handed back with the completion, never copied.
//!
//! 1. `IoQueue::submit_read(&ns, lba, buffer, tag)`: the application's
//!    call; the transfer is the whole buffer.
//! 2. `IoQueue::submit_transfer`: the submission routine of reads and
//!    writes (flush, Write Zeroes and discard take `submit_command`); in
//!    turn:
//! 3. `IoQueue::ready`: shutdown and reset state, and whether the handle
//!    was made by this queue's controller (one comparison).
//! 4. `IoQueue::plan` and `Request::check`: the one check of the request
//!    against the namespace (length, range, write permission, zone
//!    boundary, support), before anything reaches the device; then how
//!    many commands the transfer limit makes of it (one, for 4 KiB).
//! 5. `IoQueue::submit_one` (one command): a request record
//!    (`in_flight::Requests::claim`), a free slot (`QueuePair::alloc_slot`)
//!    and its PRPs (`prp::contiguous` over the buffer's physical range,
//!    the slot's PRP list page when it spans more than two pages); a
//!    failure gives them back, and the buffer goes back to the caller in
//!    `Rejected`. A request over the transfer limit takes `IoQueue::claim`
//!    instead: a slot per command, all prepared before the first entry is
//!    written.
//! 6. `request::deadline_ns`: the deadline, computed in this one place.
//! 7. `Request::entry` (`SubmissionEntry::read`): the command.
//! 8. `QueuePair::push`: the one place that writes an entry into a
//!    submission ring (`SubmissionEntry::to_dwords` lays it out).
//! 9. `Requests::start`: the record keeps the tag and the buffer, lent to
//!    the device (`dma::Lent`).
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
//! 13. `Requests::part_done`: the request's last command is back, so is
//!     its buffer (`Lent::reclaim`); the `Completion` hands it over.
//! 14. `QueuePair::ring_completions` and `QueuePair::ring`: one head
//!     doorbell for everything the walk consumed. Requests past their
//!     deadline are reported by `poll` too (`IoQueue::report_expired`,
//!     `QueuePair::take_expired`).
//!
//! # Async: `AsyncQueue::read(..).await`
//!
//! The same queued path, driven by futures of many tasks on one core:
//!
//! 1. `AsyncQueue::read(&ns, lba, buf)`: makes the future (a `Transfer`);
//!    nothing happens until it is polled.
//! 2. `Request::step`: takes a free tag (`Book::take_tag`: one per slot,
//!    made with the handle) or waits in line for one (`Book::wait`), then
//!    `async_queue::submit` calls `IoQueue::submit_read` (steps 1 to 10
//!    above) with the tag as the request's tag.
//! 3. `AsyncQueue::poll_completions`, the executor's idle step:
//!    `IoQueue::poll` (steps 11 to 13), each completion handed to its tag
//!    by `Book::complete`, which keeps the result and the buffer and queues
//!    the future's waker; the wakers are woken once the queue's state is
//!    released (`AsyncQueue::wake`).
//! 4. `Request::collect`: the woken future takes the result and the
//!    buffer; the tag goes to the oldest waiter or back to the free list
//!    (`Book::release`).
//!
//! An `AsyncController`'s idle step does step 3 for every queue it handed
//! out and calls `Controller::recover` when one `needs_recovery`.
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
