//! A controller for `async` code: it owns the [`Controller`] and the
//! queues it hands out as [`AsyncQueue`]s, and recovers from faults
//! without the application's help.
//!
//! [`AsyncController::poll_completions`] is the executor's idle step for
//! the whole controller: it polls every queue it handed out, and when one
//! has a request past its deadline (the device lost it, or CSTS.CFS or
//! all-ones registers were seen at the deadline) it calls
//! [`Controller::recover`], which resets the controller and recreates its
//! queues, then polls them again. A fatal controller (CSTS.CFS) or one
//! whose registers read as all ones is noticed sooner, without waiting for
//! a deadline: when the queues have had requests in flight and no
//! completion for [`HEALTH_CHECK_MS`] by the controller's clock, the poller
//! reads CSTS once (an MMIO read, so once per such quiet period, never on
//! every poll) and recovers at once if it says so. Each request in flight then completes
//! exactly once: with its data, as `Timeout` / `ControllerFatal` (the one
//! past its deadline) or as `Reset` (the others); requests waiting for a
//! slot, and later ones, go to the rebuilt queues. A recovery that fails
//! [`MAX_FAILED_RECOVERIES`] times in a row shuts the controller down, so
//! every request still in flight or to come fails with `ShutDown` instead
//! of waiting for a device that is gone.
//!
//! Like [`AsyncQueue`], the handle is clonable and single-threaded.

#![forbid(unsafe_code)]

use crate::async_queue::AsyncQueue;
use crate::controller::Controller;
use crate::error::Error;
use crate::hal::{Clock, DmaAllocator, RegisterAccess};
use crate::namespace::Namespace;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

/// Failed recoveries in a row after which the controller is shut down.
pub const MAX_FAILED_RECOVERIES: u32 = 3;

/// Milliseconds without a completion, requests in flight, after which the
/// poller reads the controller's status (see the module documentation).
pub const HEALTH_CHECK_MS: u64 = 5;

struct State<R: RegisterAccess, D: DmaAllocator, C: Clock> {
    controller: Controller<R, D, C>,
    queues: Vec<AsyncQueue<R, C>>,
    recoveries: u64,
    failed_recoveries: u32,
    last_recovery_error: Option<Error>,
    /// Since when (controller clock, ns) requests have been in flight with
    /// no completion, or the status was last read; `None` while completions
    /// come or nothing is in flight.
    quiet_since_ns: Option<u64>,
}

/// A clonable handle of a controller driven by an executor (see the module
/// documentation).
pub struct AsyncController<R: RegisterAccess, D: DmaAllocator, C: Clock> {
    state: Rc<RefCell<State<R, D, C>>>,
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Clone for AsyncController<R, D, C> {
    fn clone(&self) -> Self {
        AsyncController {
            state: self.state.clone(),
        }
    }
}

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> fmt::Debug for AsyncController<R, D, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AsyncController");
        if let Ok(s) = self.state.try_borrow() {
            d.field("queues", &s.queues.len())
                .field("recoveries", &s.recoveries);
        }
        d.finish_non_exhaustive()
    }
}

impl<R, D, C> AsyncController<R, D, C>
where
    R: RegisterAccess + Clone,
    D: DmaAllocator,
    C: Clock + Clone,
{
    /// Takes `controller` over.
    pub fn new(controller: Controller<R, D, C>) -> AsyncController<R, D, C> {
        AsyncController {
            state: Rc::new(RefCell::new(State {
                controller,
                queues: Vec::new(),
                recoveries: 0,
                failed_recoveries: 0,
                last_recovery_error: None,
                quiet_since_ns: None,
            })),
        }
    }

    /// A queue pair of the controller as an [`AsyncQueue`], polled (and
    /// recovered) by [`Self::poll_completions`] from now on. `batch`
    /// turns doorbell batching on (see [`AsyncQueue::new`]).
    pub fn take_queue(&self, batch: bool) -> Result<AsyncQueue<R, C>, Error> {
        let mut state = self.state.try_borrow_mut().map_err(|_| Error::QueueFull)?;
        let mut raw = state.controller.take_io_queue()?;
        raw.set_doorbell_batching(batch);
        let queue = AsyncQueue::new(raw);
        state.queues.push(queue.clone());
        Ok(queue)
    }

    /// The handle of namespace `nsid` (see
    /// [`Controller::namespace_handle`]).
    pub fn namespace_handle(&self, nsid: u32) -> Result<Namespace, Error> {
        let state = self.state.try_borrow().map_err(|_| Error::QueueFull)?;
        state.controller.namespace_handle(nsid)
    }

    /// Runs `f` on the controller (identity, logs, the synchronous block
    /// API, ownership). `None` when called from inside `poll_completions`
    /// (a waker polling a task in place), which cannot lend it.
    pub fn with_controller<T>(&self, f: impl FnOnce(&mut Controller<R, D, C>) -> T) -> Option<T> {
        let mut state = self.state.try_borrow_mut().ok()?;
        Some(f(&mut state.controller))
    }

    /// Controller resets done by [`Self::poll_completions`].
    pub fn recoveries(&self) -> u64 {
        self.state.try_borrow().map_or(0, |s| s.recoveries)
    }

    /// Why the last recovery failed, if it did.
    pub fn last_recovery_error(&self) -> Option<Error> {
        self.state
            .try_borrow()
            .ok()
            .and_then(|s| s.last_recovery_error)
    }

    /// Sends the shutdown notification (see [`Controller::shutdown`]);
    /// requests in flight then complete as `ShutDown` at the next poll, as
    /// does every later one.
    pub fn shutdown(&self) -> Result<(), Error> {
        let result = self
            .with_controller(|c| c.shutdown())
            .unwrap_or(Err(Error::QueueFull));
        self.poll_queues();
        result
    }

    /// The executor's idle step for this controller: polls every queue,
    /// recovers the controller when one needs it, and returns how many
    /// completions were handled.
    pub fn poll_completions(&self) -> usize {
        let mut n = self.poll_queues();
        if (self.any_needs_recovery() || self.fatal_while_quiet(n)) && self.recover() {
            // Deliver the `Reset`s at once, and free the slots.
            n += self.poll_queues();
        }
        n
    }

    /// Polls every queue once, with the state released meanwhile (a waker
    /// may run code that uses this handle).
    fn poll_queues(&self) -> usize {
        let mut n = 0;
        let mut index = 0;
        loop {
            let queue = match self.state.try_borrow() {
                Ok(state) => state.queues.get(index).cloned(),
                Err(_) => None,
            };
            let Some(queue) = queue else {
                return n;
            };
            n += queue.poll_completions();
            index += 1;
        }
    }

    /// Whether the controller is fatal or gone (or a recovery of it
    /// failed), read from CSTS once the
    /// queues have had requests in flight and no completion (`completions`
    /// is this poll's count) for [`HEALTH_CHECK_MS`], and then once per
    /// such period.
    fn fatal_while_quiet(&self, completions: usize) -> bool {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return false;
        };
        if completions > 0 || !state.queues.iter().any(|q| q.in_flight() > 0) {
            state.quiet_since_ns = None;
            return false;
        }
        let now = state.controller.now_ns();
        match state.quiet_since_ns {
            None => {
                state.quiet_since_ns = Some(now);
                false
            }
            Some(since) if now.saturating_sub(since) >= HEALTH_CHECK_MS * 1_000_000 => {
                state.quiet_since_ns = Some(now);
                // After a failed recovery the controller is not running:
                // try again, whatever its status says.
                let fatal = state.failed_recoveries > 0 || state.controller.is_fatal();
                if fatal {
                    log::warn!("nvme: controller fatal with requests in flight");
                }
                fatal
            }
            Some(_) => false,
        }
    }

    fn any_needs_recovery(&self) -> bool {
        self.state
            .try_borrow()
            .is_ok_and(|s| s.queues.iter().any(AsyncQueue::needs_recovery))
    }

    /// Resets the controller; after too many failures in a row, shuts it
    /// down. Returns whether the queues changed state.
    fn recover(&self) -> bool {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return false;
        };
        if state.controller.is_shut_down() {
            return false;
        }
        match state.controller.recover() {
            Ok(()) => {
                state.recoveries += 1;
                state.failed_recoveries = 0;
                true
            }
            Err(e) => {
                log::warn!("nvme: recovery failed: {e}");
                state.last_recovery_error = Some(e);
                state.failed_recoveries += 1;
                if state.failed_recoveries >= MAX_FAILED_RECOVERIES {
                    log::warn!(
                        "nvme: giving the controller up after {MAX_FAILED_RECOVERIES} failed recoveries"
                    );
                    // Whatever the notification's fate, the queues now
                    // refuse everything with `ShutDown`.
                    let _ = state.controller.shutdown();
                    return true;
                }
                false
            }
        }
    }
}
