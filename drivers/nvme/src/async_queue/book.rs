//! The tags of an `AsyncQueue` (one per slot of the raw queue, made once)
//! and the requests waiting for one.
//!
//! A tag goes from free to in flight (its future's waker kept) to done
//! (the result and buffer kept until the future takes them), then back to
//! free. A request reported past its deadline ends as expired, then stuck
//! while the device may still own its slot; one whose future was dropped
//! in flight is abandoned until its completion frees the tag. A freed tag
//! goes straight to the oldest waiter (first come, first served). A
//! request the raw queue refused for want of slots (one of several
//! commands) blocks the line: freed tags go to it alone, and requests
//! granted a tag meanwhile give it up and wait again in their place, so a
//! large request is never starved by small ones. Wakers to wake are
//! collected in `wake_first` and `to_wake`, to be woken once the queue's
//! state is released.

#![forbid(unsafe_code)]

use crate::error::Error;
use crate::hal::DmaBuffer;
use crate::io_queue::Completion;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::task::Waker;

/// Where one tag (one slot's worth of request) stands: one byte, so the
/// hot path tests a tag with one comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Free, on the free list or handed to a waiter.
    Free,
    /// Submitted.
    InFlight,
    /// Submitted, and its future was dropped: nobody waits for it.
    Abandoned,
    /// Completed, its result not yet taken by the future.
    Done,
    /// Completed as past its deadline (`Timeout` or `ControllerFatal`),
    /// its result not yet taken: the device may still own the slot.
    Expired,
    /// Reported (timed out) while the device may still own the slot: out
    /// of use until the raw queue no longer needs recovery.
    Stuck,
}

/// One tag: its stage and what goes with it, each field changed in place
/// (no whole value moved on the way from submission to result).
pub(super) struct Tag {
    pub(super) stage: Stage,
    /// In flight: the waker of its future.
    pub(super) waker: Option<Waker>,
    /// Done: the result, and the buffer back, until the future takes them.
    pub(super) result: Result<(), Error>,
    pub(super) buffer: Option<DmaBuffer>,
}

/// A finished request's output: its buffer back (if it had one), or its
/// error (its buffer, if any, then freed).
pub(super) type Outcome = Result<Option<DmaBuffer>, Error>;

impl Tag {
    /// The outcome of the request done under this tag, taken out of it.
    #[inline]
    pub(super) fn outcome(&mut self) -> Outcome {
        let buffer = self.buffer.take();
        self.result.map(|()| buffer)
    }

    fn free() -> Tag {
        Tag {
            stage: Stage::Free,
            waker: None,
            result: Ok(()),
            buffer: None,
        }
    }
}

/// A request waiting for a tag.
struct Waiter {
    ticket: u64,
    waker: Waker,
}

/// The tags and who waits for them.
pub(super) struct Book {
    pub(super) tags: Vec<Tag>,
    free: Vec<u16>,
    /// Requests waiting for a tag, oldest first.
    waiters: VecDeque<Waiter>,
    /// Tags handed to waiters not yet polled: (ticket, tag).
    granted: Vec<(u64, u16)>,
    next_ticket: u64,
    /// A request the raw queue refused for want of slots: until it goes
    /// through, freed tags go to it alone and nobody else submits.
    blocked: Option<u64>,
    stuck: usize,
    /// The oldest waker to wake once the state is released (usually the
    /// only one: no list operation for it), then the others in order.
    /// The others are taken all at once, as a batch woken outside the
    /// state: `spare` is the room they leave behind, given back after.
    wake_first: Option<Waker>,
    to_wake: Vec<Waker>,
    spare: Vec<Waker>,
}

impl Book {
    /// Requests waiting for a tag.
    pub(super) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Whether no tag is stuck and no request waits.
    pub(super) fn is_idle(&self) -> bool {
        self.stuck == 0 && self.waiters.is_empty() && self.blocked.is_none()
    }

    /// The oldest waker to wake, if any.
    #[inline]
    pub(super) fn first_to_wake(&mut self) -> Option<Waker> {
        self.wake_first.take()
    }

    /// Every waker to wake after the first, in order, as one list, if
    /// there is any (to be woken once the state is released, and its room
    /// given back with [`Self::give_back`]).
    #[inline]
    pub(super) fn take_to_wake(&mut self) -> Option<Vec<Waker>> {
        if self.to_wake.is_empty() {
            return None;
        }
        let room = core::mem::take(&mut self.spare);
        Some(core::mem::replace(&mut self.to_wake, room))
    }

    /// The room of a list [`Self::take_to_wake`] gave, once woken (kept
    /// for the next batch; of two, the larger).
    #[inline]
    pub(super) fn give_back(&mut self, woken: Vec<Waker>) {
        // Emptied by the caller: no waker is dropped under the state.
        debug_assert!(woken.is_empty());
        if woken.capacity() > self.spare.capacity() {
            self.spare = woken;
        }
    }

    /// Queues `waker` to be woken once the state is released, unless the
    /// last one queued wakes the same task (several requests of one task
    /// completing together wake it once).
    #[inline]
    fn push_to_wake(&mut self, waker: Waker) {
        let last = match self.to_wake.last() {
            Some(last) => Some(last),
            None => self.wake_first.as_ref(),
        };
        match last {
            None => self.wake_first = Some(waker),
            Some(last) if last.will_wake(&waker) => {}
            Some(_) => self.to_wake.push(waker),
        }
    }

    /// Whether a waker waits to be woken.
    #[inline]
    pub(super) fn has_to_wake(&self) -> bool {
        self.wake_first.is_some() || !self.to_wake.is_empty()
    }

    /// Whether a tag is stuck (see [`Self::unstick`]).
    #[inline]
    pub(super) fn has_stuck(&self) -> bool {
        self.stuck != 0
    }

    /// `depth` free tags, and room for as many waiters and wakers.
    pub(super) fn new(depth: usize) -> Book {
        let depth = depth.min(usize::from(u16::MAX));
        let mut tags = Vec::with_capacity(depth);
        tags.resize_with(depth, Tag::free);
        Book {
            tags,
            free: (0..depth as u16).rev().collect(),
            waiters: VecDeque::with_capacity(depth),
            granted: Vec::with_capacity(depth),
            next_ticket: 0,
            blocked: None,
            stuck: 0,
            wake_first: None,
            to_wake: Vec::with_capacity(depth),
            spare: Vec::with_capacity(depth),
        }
    }

    /// Gives `tag` to the oldest waiter (to the blocked request only, while
    /// there is one), or back to the free list.
    #[inline]
    pub(super) fn release(&mut self, tag: u16) {
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            t.stage = Stage::Free;
        }
        if self.blocked.is_none() && self.waiters.is_empty() {
            // The common case: nobody waits.
            self.free.push(tag);
        } else {
            self.hand_over(tag);
        }
    }

    /// Gives the free `tag` to the oldest waiter (to the blocked request
    /// only, while there is one), or back to the free list.
    fn hand_over(&mut self, tag: u16) {
        let next = match self.blocked {
            Some(ticket) => self.waiters.iter().position(|w| w.ticket == ticket),
            None => (!self.waiters.is_empty()).then_some(0),
        };
        match next.and_then(|i| self.waiters.remove(i)) {
            Some(w) => {
                self.granted.push((w.ticket, tag));
                self.push_to_wake(w.waker);
            }
            None => self.free.push(tag),
        }
    }

    /// Hands free tags to waiters, oldest first (after a blocked request
    /// went through or left).
    fn dispatch(&mut self) {
        while self.blocked.is_none() && !self.waiters.is_empty() {
            let Some(tag) = self.free.pop() else {
                return;
            };
            self.release(tag);
        }
    }

    /// A free tag for a new request, unless older ones wait for one.
    #[inline]
    pub(super) fn take_tag(&mut self) -> Option<u16> {
        if self.waiters.is_empty() && self.granted.is_empty() && self.blocked.is_none() {
            self.free.pop()
        } else {
            None
        }
    }

    /// Queues a new request for a tag; returns its ticket.
    pub(super) fn wait(&mut self, waker: &Waker) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue(ticket, waker);
        ticket
    }

    /// Puts `ticket` in line, in ticket order.
    fn queue(&mut self, ticket: u64, waker: &Waker) {
        let at = self.waiters.partition_point(|w| w.ticket < ticket);
        self.waiters.insert(
            at,
            Waiter {
                ticket,
                waker: waker.clone(),
            },
        );
    }

    /// The tag granted to `ticket`, if it may submit now; otherwise its
    /// waker refreshed (and, while another request is blocked, its grant
    /// given up and its place in line taken again).
    pub(super) fn granted(&mut self, ticket: u64, waker: &Waker) -> Option<u16> {
        if let Some(i) = self.granted.iter().position(|&(t, _)| t == ticket) {
            if self.blocked.is_none_or(|b| b == ticket) {
                return Some(self.granted.swap_remove(i).1);
            }
            let (_, tag) = self.granted.swap_remove(i);
            self.set_aside(tag);
            self.queue(ticket, waker);
            return None;
        }
        if let Some(w) = self.waiters.iter_mut().find(|w| w.ticket == ticket)
            && !w.waker.will_wake(waker)
        {
            w.waker = waker.clone();
        }
        None
    }

    /// `tag` was refused for want of the raw queue's slots: it is set
    /// aside, and the request (`ticket`, or a new one) blocks the line
    /// until it goes through: every tag freed meanwhile goes to it.
    pub(super) fn refused(&mut self, ticket: Option<u64>, tag: u16, waker: &Waker) -> u64 {
        self.set_aside(tag);
        let ticket = match ticket {
            Some(t) => {
                self.queue(t, waker);
                t
            }
            None => self.wait(waker),
        };
        self.blocked = Some(ticket);
        ticket
    }

    /// Puts `tag` back on the free list without handing it to a waiter.
    fn set_aside(&mut self, tag: u16) {
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            t.stage = Stage::Free;
        }
        self.free.push(tag);
    }

    /// Forgets a waiting request (its future was dropped).
    pub(super) fn leave(&mut self, ticket: u64) {
        if let Some(i) = self.waiters.iter().position(|w| w.ticket == ticket) {
            self.waiters.remove(i);
        } else if let Some(i) = self.granted.iter().position(|&(t, _)| t == ticket) {
            let (_, tag) = self.granted.swap_remove(i);
            self.set_aside(tag);
        }
        if self.blocked == Some(ticket) {
            self.blocked = None;
        }
        self.dispatch();
    }

    /// Marks `tag` in flight, after its submission (by `ticket`, if it
    /// waited: a blocked request going through unblocks the line), with
    /// the waker of the future waiting for it.
    #[inline]
    pub(super) fn sent(&mut self, tag: u16, ticket: Option<u64>, waker: &Waker) {
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            t.stage = Stage::InFlight;
            t.waker = Some(waker.clone());
        }
        if ticket.is_some() && self.blocked == ticket {
            self.blocked = None;
            self.dispatch();
        }
    }

    /// Hands one completion to its tag.
    #[inline]
    pub(super) fn complete(&mut self, c: Completion) {
        let Some(t) = usize::try_from(c.tag)
            .ok()
            .and_then(|i| self.tags.get_mut(i))
        else {
            return;
        };
        match t.stage {
            Stage::InFlight => {}
            Stage::Abandoned => return self.complete_abandoned(c),
            // Anything but one of ours in flight is left as it was.
            _ => return,
        }
        t.stage = if c.result.is_ok() {
            Stage::Done
        } else {
            outcome_stage(&c.result)
        };
        t.result = c.result;
        // An in-flight tag holds no buffer: its future took the last one
        // (or it was never given one). Were one left by a mistake, it is
        // leaked rather than freed, as memory the device may hold always
        // is; and no drop is paid for on every completion.
        core::mem::forget(core::mem::replace(&mut t.buffer, c.buffer));
        if let Some(w) = t.waker.take() {
            self.push_to_wake(w);
        }
    }

    /// A completion for a tag whose future was dropped: nobody waits, the
    /// buffer (if it came back) is freed here.
    #[cold]
    fn complete_abandoned(&mut self, c: Completion) {
        let expired = outcome_stage(&c.result) == Stage::Expired;
        drop(c.buffer);
        // The tag was found in `complete`: it is below the depth.
        self.retire(c.tag as u16, expired);
    }

    /// The future of the request in flight under `tag` was dropped: a
    /// request still with the device is marked abandoned (the queue keeps
    /// its buffer until the completion, and frees it then); a finished one
    /// gives its tag back.
    pub(super) fn abandon(&mut self, tag: u16) {
        let Some(t) = self.tags.get_mut(usize::from(tag)) else {
            return;
        };
        match t.stage {
            Stage::InFlight => {
                t.waker = None;
                t.stage = Stage::Abandoned;
            }
            Stage::Done | Stage::Expired => {
                // Its buffer is freed here.
                t.buffer = None;
                let expired = t.stage == Stage::Expired;
                t.stage = Stage::Free;
                self.retire(tag, expired);
            }
            Stage::Free | Stage::Abandoned | Stage::Stuck => {}
        }
    }

    /// A finished tag goes back into use, or out of use while stuck.
    #[inline]
    pub(super) fn retire(&mut self, tag: u16, stuck: bool) {
        if stuck {
            if let Some(t) = self.tags.get_mut(usize::from(tag)) {
                t.stage = Stage::Stuck;
            }
            self.stuck += 1;
        } else {
            self.release(tag);
        }
    }

    /// As [`Self::retire`], for a tag its future just set free (taking
    /// its result): in the common case it only goes back on the free list.
    #[inline]
    pub(super) fn retire_taken(&mut self, tag: u16, stuck: bool) {
        if !stuck && self.blocked.is_none() && self.waiters.is_empty() {
            self.free.push(tag);
        } else {
            self.retire(tag, stuck);
        }
    }

    /// The result and buffer of the request done under `tag`, its tag
    /// freed, when that is all there is to do: the request was not
    /// reported past its deadline and nobody waits for a tag (otherwise
    /// `None`, and nothing changes).
    #[inline]
    pub(super) fn take_done(&mut self, tag: u16) -> Option<Outcome> {
        if self.blocked.is_some() || !self.waiters.is_empty() {
            return None;
        }
        let t = self.tags.get_mut(usize::from(tag))?;
        if t.stage != Stage::Done {
            return None;
        }
        t.stage = Stage::Free;
        let done = t.outcome();
        self.free.push(tag);
        Some(done)
    }

    /// Stuck tags come back once the raw queue no longer needs recovery
    /// (a reset, or the late completions, freed their slots).
    pub(super) fn unstick(&mut self, needs_recovery: bool) {
        if self.stuck == 0 || needs_recovery {
            return;
        }
        self.stuck = 0;
        for tag in 0..self.tags.len() {
            if self.tags.get(tag).is_some_and(|t| t.stage == Stage::Stuck) {
                // Tags are numbered below the queue depth, within u16.
                self.release(tag as u16);
            }
        }
    }
}

/// The stage a request ends in: `Expired` when it was reported past its
/// deadline (the device may still own its slot until it completes late or
/// the controller is reset), `Done` otherwise.
fn outcome_stage(result: &Result<(), Error>) -> Stage {
    match result {
        Err(Error::Timeout { .. } | Error::ControllerFatal) => Stage::Expired,
        _ => Stage::Done,
    }
}
