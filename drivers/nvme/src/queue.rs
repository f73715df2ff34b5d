//! Submission and completion rings, phase tags, doorbells and fences.
//!
//! A [`QueuePair`] owns the DMA memory of one submission queue and its
//! completion queue (NVMe 1.4 §4.1), so nothing else can alias it. Memory
//! ordering is `dma::ordering`'s, called from here only: a release fence
//! before every doorbell write (entries must be visible before the device
//! is told about them) and an acquire fence after observing a phase flip
//! (the rest of the entry must not be read before its phase bit); the
//! completion carries the proof ([`dma::Returned`]) that the device handed
//! back the memory lent for the command.
//!
//! Command identifiers: a queue of depth `d` has `d` slots. A command's CID
//! is its slot index in the low bits and, in the high bits, a sequence
//! number counting the uses of that slot (so two uses in a row differ
//! whenever the depth leaves bits for it, up to 32768), so a completion is
//! trusted only if its CID matches a slot that is in flight with that
//! exact CID; stale or invented CIDs are reported as unknown and otherwise
//! ignored. The submission queue head reported in every completion is
//! recorded, and a submission is refused when the ring would overrun it.
//!
//! Queues hold `entries` slots in the rings but at most `entries - 1`
//! commands in flight (a full ring would look empty, §4.1.2), so the
//! completion queue (same size) can never overflow, even when its head
//! doorbell is written late.
//!
//! Doorbells cost the most per I/O in a virtual machine (each is a trapped
//! MMIO write), so they can be batched: [`QueuePair::push`] and
//! [`QueuePair::take`] only touch the rings, [`QueuePair::ring_submissions`]
//! and [`QueuePair::ring_completions`] write a doorbell only if its value
//! changed since the last write. [`QueuePair::submit`] and
//! [`QueuePair::poll`] do both, one entry at a time.
//!
//! Shadow doorbells (Doorbell Buffer Config, NVMe 1.4 §5.7, for I/O queues
//! only): the new value is first written to the queue's dword in the shadow
//! page; the MMIO doorbell is written only if the device's EventIdx for the
//! queue lies between the old and the new value, i.e. the device has caught
//! up and stopped looking at the shadow. A full fence separates the shadow
//! write from the EventIdx read (a store followed by a load).

#![forbid(unsafe_code)]

use crate::command::{CompletionEntry, SubmissionEntry};
use crate::hal::{DmaRegion, RegisterAccess, Returned, SharedDwords};
use crate::registers::{Doorbells, offset};
use alloc::sync::Arc;
use alloc::vec::Vec;
use dma::{DmaRing, ordering};

/// How a command identifier is made: the slot index in the low `slot_bits`
/// bits, a rolling sequence number above (none when the slot index needs
/// every bit of the identifier: the sequence is then shifted out).
#[derive(Clone, Copy, Debug)]
struct CidLayout {
    slot_bits: u32,
    /// The low `slot_bits` bits set.
    slot_mask: u32,
    /// One in the sequence's lowest bit (2^16 when there is no sequence,
    /// which a 16-bit identifier drops).
    step: u32,
}

impl CidLayout {
    /// The layout for slots `0..depth`.
    const fn for_depth(depth: usize) -> CidLayout {
        let slot_bits = usize::BITS - (depth.saturating_sub(1)).leading_zeros();
        // A depth fits 16 bits (MQES), so the shift is below 32.
        let slot_bits = if slot_bits > u16::BITS {
            u16::BITS
        } else {
            slot_bits
        };
        CidLayout {
            slot_bits,
            slot_mask: (1u32 << slot_bits) - 1,
            step: 1u32 << slot_bits,
        }
    }

    /// The identifier of the next use of the slot `cid` names: the same
    /// slot, the sequence one higher (wrapping).
    #[inline]
    const fn next(self, cid: u16) -> u16 {
        (cid as u32).wrapping_add(self.step) as u16
    }

    /// The identifier of `slot` under `sequence` (computed in 32 bits, so
    /// a sequence shifted past bit 15 simply drops out).
    #[inline]
    const fn cid(self, slot: u16, sequence: u16) -> u16 {
        ((slot as u32 & self.slot_mask) | ((sequence as u32) << self.slot_bits)) as u16
    }

    /// The slot an identifier names.
    #[inline]
    const fn slot(self, cid: u16) -> usize {
        (cid as u32 & self.slot_mask) as usize
    }
}

/// Bit of [`Slot::command`] set while the slot's command is in flight.
const IN_FLIGHT: u32 = 1 << 16;

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The identifier of the slot's last command in the low 16 bits, and
    /// [`IN_FLIGHT`] while the command is with the device: a completion's
    /// identifier is checked against both in one comparison.
    command: u32,
    deadline_ns: u64,
    timed_out: bool,
}

impl Slot {
    /// Whether the slot's command is in flight.
    #[inline]
    const fn busy(&self) -> bool {
        self.command & IN_FLIGHT != 0
    }

    /// The identifier of the slot's last command.
    #[inline]
    const fn cid(&self) -> u16 {
        self.command as u16
    }
}

/// Result of looking at the completion queue once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Polled {
    /// No new entry.
    Empty,
    /// The command in `slot` completed.
    Done {
        /// Slot (index) of the command.
        slot: u16,
        /// Whether the slot had already been reported as timed out.
        was_timed_out: bool,
        /// The entry's dwords as read (decoded by the caller, as much as it
        /// needs: see `CompletionEntry::outcome_of`).
        dwords: [u32; CompletionEntry::DWORDS],
        /// The device is done with the command's memory.
        returned: Returned,
    },
    /// An entry whose CID (or SQ ID) is not in flight; consumed and ignored.
    Unknown(CompletionEntry),
}

/// The shadow doorbell and EventIdx pages of one controller, shared by its
/// I/O queues (each uses the dwords at its doorbells' offsets).
#[derive(Debug)]
pub(crate) struct ShadowBuffers {
    /// Shadow doorbells, written by the driver.
    pub(crate) doorbells: SharedDwords,
    /// EventIdx values, written by the device.
    pub(crate) event_indexes: SharedDwords,
}

#[derive(Clone, Debug)]
struct Shadow {
    buffers: Arc<ShadowBuffers>,
    sq: usize,
    cq: usize,
}

/// Whether moving a doorbell from `old` to `new` (ring indexes below
/// `entries`) passes the device's `event_index`, i.e. whether it lies in
/// `[old, new)` in ring order; an out-of-range EventIdx always notifies.
pub(crate) fn needs_event(entries: u32, event_index: u32, new: u32, old: u32) -> bool {
    if event_index >= entries {
        return true;
    }
    let distance = |from: u32, to: u32| (to + entries - from) % entries;
    let to_event = distance(event_index, new);
    to_event >= 1 && to_event <= distance(old, new)
}

/// One submission queue and its completion queue.
#[derive(Debug)]
pub(crate) struct QueuePair {
    qid: u16,
    entries: u32,
    sq: DmaRing<{ SubmissionEntry::SIZE }>,
    cq: DmaRing<{ CompletionEntry::SIZE }>,
    sq_tail: u32,
    sq_head: u32,
    cq_head: u32,
    /// The phase tag of new completion entries, as its bit in dword 3
    /// (`CompletionEntry::PHASE_BIT` for phase 1, 0 for phase 0).
    phase: u32,
    sq_doorbell: usize,
    cq_doorbell: usize,
    sq_rung: u32,
    cq_rung: u32,
    shadow: Option<Shadow>,
    slots: Vec<Slot>,
    free: Vec<u16>,
    cids: CidLayout,
    in_flight: usize,
}

impl QueuePair {
    /// Memory needed for the rings of `entries` entries.
    pub(crate) fn ring_bytes(entries: u32) -> (usize, usize) {
        (
            entries as usize * SubmissionEntry::SIZE,
            entries as usize * CompletionEntry::SIZE,
        )
    }

    /// A pair over zeroed rings `sq` and `cq` of `entries` (>= 2) entries.
    pub(crate) fn new(
        qid: u16,
        entries: u32,
        sq: DmaRegion,
        cq: DmaRegion,
        doorbells: Doorbells,
    ) -> QueuePair {
        let depth = entries.saturating_sub(1).max(1) as usize;
        let mut free = Vec::with_capacity(depth);
        // Lowest slots first out of the stack.
        free.extend((0..depth as u16).rev());
        let cids = CidLayout::for_depth(depth);
        let mut pair = QueuePair {
            qid,
            entries,
            sq: DmaRing::new(sq),
            cq: DmaRing::new(cq),
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: CompletionEntry::PHASE_BIT,
            sq_doorbell: doorbells.submission_tail(qid),
            cq_doorbell: doorbells.completion_head(qid),
            sq_rung: 0,
            cq_rung: 0,
            shadow: None,
            // Each slot's identifier starts at sequence 0.
            slots: (0..depth)
                .map(|i| Slot {
                    command: u32::from(cids.cid(i as u16, 0)),
                    deadline_ns: 0,
                    timed_out: false,
                })
                .collect(),
            free,
            cids,
            in_flight: 0,
        };
        pair.reset();
        pair
    }

    /// Queue identifier (0 = admin).
    pub(crate) fn qid(&self) -> u16 {
        self.qid
    }

    /// Ring size in entries.
    pub(crate) fn entries(&self) -> u32 {
        self.entries
    }

    /// Maximum commands in flight.
    pub(crate) fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Commands in flight (including timed-out ones not yet completed).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Physical base of the submission ring.
    pub(crate) fn sq_region(&self) -> &DmaRegion {
        self.sq.region()
    }

    /// Physical base of the completion ring.
    pub(crate) fn cq_region(&self) -> &DmaRegion {
        self.cq.region()
    }

    /// Forgets every command and starts over at index 0, phase 1, with a
    /// zeroed completion ring. Only valid while the queue does not exist on
    /// the device (after a controller reset or before creation).
    pub(crate) fn reset(&mut self) {
        self.cq.region_mut().zero();
        self.sq_tail = 0;
        self.sq_head = 0;
        self.cq_head = 0;
        self.sq_rung = 0;
        self.cq_rung = 0;
        if let Some(shadow) = &self.shadow {
            shadow.buffers.doorbells.store(shadow.sq, 0);
            shadow.buffers.doorbells.store(shadow.cq, 0);
        }
        self.phase = CompletionEntry::PHASE_BIT;
        self.in_flight = 0;
        self.free.clear();
        for (i, s) in self.slots.iter_mut().enumerate().rev() {
            s.command &= !IN_FLIGHT;
            s.timed_out = false;
            self.free.push(i as u16);
        }
    }

    /// Uses the shadow doorbells in `buffers` from now on (`None`: MMIO
    /// doorbells only). Never for the admin queue.
    pub(crate) fn set_shadow(&mut self, buffers: Option<Arc<ShadowBuffers>>) {
        self.shadow = buffers.filter(|_| self.qid != 0).map(|buffers| Shadow {
            buffers,
            sq: self.sq_doorbell - offset::DOORBELL_BASE,
            cq: self.cq_doorbell - offset::DOORBELL_BASE,
        });
    }

    /// The ring index after `index`.
    #[inline]
    fn next(&self, index: u32) -> u32 {
        if index + 1 >= self.entries {
            0
        } else {
            index + 1
        }
    }

    /// Takes a free slot, if any (and if the submission ring has room).
    #[inline]
    pub(crate) fn alloc_slot(&mut self) -> Option<u16> {
        if self.next(self.sq_tail) == self.sq_head {
            return None;
        }
        self.free.pop()
    }

    /// Slots that [`Self::alloc_slot`] can hand out now: free, and with
    /// room for their entries in the submission ring.
    pub(crate) fn free_slots(&self) -> usize {
        let used = if self.sq_tail >= self.sq_head {
            self.sq_tail - self.sq_head
        } else {
            self.sq_tail + self.entries - self.sq_head
        };
        let ring_room = self.entries.saturating_sub(1 + used) as usize;
        self.free.len().min(ring_room)
    }

    /// Returns a slot obtained from [`Self::alloc_slot`] but not submitted.
    pub(crate) fn release_slot(&mut self, slot: u16) {
        if let Some(s) = self.slots.get(slot as usize)
            && !s.busy()
            && !self.free.contains(&slot)
        {
            self.free.push(slot);
        }
    }

    /// Writes `entry` into the ring under `slot`'s command identifier and
    /// rings the tail doorbell.
    pub(crate) fn submit<R: RegisterAccess>(
        &mut self,
        regs: &R,
        slot: u16,
        entry: &SubmissionEntry,
        deadline_ns: u64,
    ) {
        self.push(slot, entry, deadline_ns);
        self.ring_submissions(regs);
    }

    /// Writes `entry` into the ring under `slot`'s command identifier; the
    /// device sees it at the next [`Self::ring_submissions`].
    #[inline]
    pub(crate) fn push(&mut self, slot: u16, entry: &SubmissionEntry, deadline_ns: u64) {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let cid = self.cids.next(s.cid());
        *s = Slot {
            command: u32::from(cid) | IN_FLIGHT,
            deadline_ns,
            timed_out: false,
        };
        self.in_flight += 1;
        self.sq
            .write_entry_qwords(self.sq_tail as usize, &entry.to_qwords(cid));
        self.sq_tail = self.next(self.sq_tail);
    }

    /// Tells the device about every entry pushed since the last call (one
    /// tail doorbell write, none if nothing was pushed).
    #[inline]
    pub(crate) fn ring_submissions<R: RegisterAccess>(&mut self, regs: &R) {
        if self.sq_tail != self.sq_rung {
            // The entries must be visible to the device before the doorbell.
            ordering::before_doorbell();
            let slot = self.shadow.as_ref().map(|s| s.sq);
            self.ring(regs, self.sq_doorbell, slot, self.sq_tail, self.sq_rung);
            self.sq_rung = self.sq_tail;
        }
    }

    /// Whether entries were pushed but not yet announced to the device.
    #[inline]
    pub(crate) fn has_unrung_submissions(&self) -> bool {
        self.sq_tail != self.sq_rung
    }

    /// Releases every completion entry consumed since the last call to the
    /// device (one head doorbell write, none if nothing was consumed).
    #[inline]
    pub(crate) fn ring_completions<R: RegisterAccess>(&mut self, regs: &R) {
        if self.cq_head != self.cq_rung {
            let slot = self.shadow.as_ref().map(|s| s.cq);
            self.ring(regs, self.cq_doorbell, slot, self.cq_head, self.cq_rung);
            self.cq_rung = self.cq_head;
        }
    }

    /// Moves one doorbell from `old` to `new`: with shadow doorbells the
    /// value goes to the shadow slot and the register is written only when
    /// the device's EventIdx lies in between; without them, to the register.
    #[inline]
    fn ring<R: RegisterAccess>(
        &self,
        regs: &R,
        register: usize,
        shadow_slot: Option<usize>,
        new: u32,
        old: u32,
    ) {
        let notify = match (&self.shadow, shadow_slot) {
            (Some(shadow), Some(slot)) => {
                shadow.buffers.doorbells.store(slot, new);
                ordering::between_store_and_load();
                let event = shadow.buffers.event_indexes.load(slot);
                needs_event(self.entries, event, new, old)
            }
            _ => true,
        };
        if notify {
            regs.write32(register, new);
        }
    }

    /// Consumes the next completion entry, if the device has posted one,
    /// and writes the head doorbell.
    pub(crate) fn poll<R: RegisterAccess>(&mut self, regs: &R) -> Polled {
        let polled = self.take();
        self.ring_completions(regs);
        polled
    }

    /// Consumes the next completion entry, if the device has posted one;
    /// the device learns the new head at the next [`Self::ring_completions`].
    #[inline]
    pub(crate) fn take(&mut self) -> Polled {
        self.take_entry(true)
    }

    /// [`Self::take`] for commands whose command-specific result (dwords 0
    /// and 1) nobody reads (reads, writes, flushes): those dwords are left
    /// unread, as zero.
    #[inline]
    pub(crate) fn take_status(&mut self) -> Polled {
        self.take_entry(false)
    }

    /// [`Self::take`], reading dwords 0 and 1 only if `results`.
    #[inline(always)]
    fn take_entry(&mut self, results: bool) -> Polled {
        // The whole entry is checked to lie in the ring once.
        let Some(entry) = self
            .cq
            .read_entry::<{ CompletionEntry::DWORDS }>(self.cq_head as usize)
        else {
            return Polled::Empty;
        };
        let dw3 = entry.read(CompletionEntry::STATUS_DWORD);
        if dw3 & CompletionEntry::PHASE_BIT != self.phase {
            return Polled::Empty;
        }
        // The phase flip is seen; read the rest of the entry only now (the
        // status dword stays the one whose phase was checked).
        let returned = ordering::after_device_signal();
        let dwords = if results {
            [entry.read(0), entry.read(1), entry.read(2), dw3]
        } else {
            [0, 0, entry.read(2), dw3]
        };
        self.cq_head += 1;
        if self.cq_head == self.entries {
            self.cq_head = 0;
            self.phase ^= CompletionEntry::PHASE_BIT;
        }
        let (sq_head, sq_id) = CompletionEntry::sq_of(dwords[2]);
        if u32::from(sq_head) < self.entries {
            self.sq_head = u32::from(sq_head);
        }
        let cid = CompletionEntry::cid_of(dw3);
        let index = self.cids.slot(cid);
        match self.slots.get_mut(index) {
            Some(s) if s.command == u32::from(cid) | IN_FLIGHT && sq_id == self.qid => {
                let was_timed_out = s.timed_out;
                s.command = u32::from(cid);
                s.timed_out = false;
                self.in_flight -= 1;
                self.free.push(index as u16);
                Polled::Done {
                    slot: index as u16,
                    was_timed_out,
                    dwords,
                    returned,
                }
            }
            _ => Polled::Unknown(CompletionEntry::from_dwords(dwords)),
        }
    }

    /// The first in-flight slot (not yet reported) whose deadline passed;
    /// it is marked as reported and stays busy until its completion arrives
    /// or the queue is reset.
    pub(crate) fn take_expired(&mut self, now_ns: u64) -> Option<u16> {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.busy() && !s.timed_out && now_ns > s.deadline_ns {
                s.timed_out = true;
                return Some(i as u16);
            }
        }
        None
    }

    /// The earliest deadline of the in-flight slots not yet reported as
    /// timed out. Deadlines are submission time plus one fixed timeout, so
    /// no later submission can have an earlier one.
    pub(crate) fn earliest_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.busy() && !s.timed_out)
            .map(|s| s.deadline_ns)
            .min()
    }

    /// The command identifier of the in-flight command in `slot`.
    #[cfg(test)]
    pub(crate) fn cid_of(&self, slot: u16) -> Option<u16> {
        self.slots
            .get(slot as usize)
            .filter(|s| s.busy())
            .map(|s| s.cid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Status;
    use crate::hal::test_support::leaked_region;
    use crate::registers::Cap;
    use core::cell::RefCell;

    #[test]
    fn command_identifiers_name_their_slot_at_every_depth() {
        for depth in [1usize, 2, 3, 127, 128, 1024, 65535, 65536] {
            let layout = CidLayout::for_depth(depth);
            for slot in [0, depth / 2, depth - 1] {
                let slot = slot as u16;
                let a = layout.cid(slot, 1);
                let b = layout.cid(slot, 2);
                assert_eq!(layout.next(a), b);
                assert_eq!(
                    layout.slot(layout.next(layout.cid(slot, u16::MAX))),
                    slot as usize
                );
                assert_eq!(
                    (layout.slot(a), layout.slot(b)),
                    (slot as usize, slot as usize)
                );
                // A sequence number tells reuses of a slot apart whenever
                // the slot index leaves bits for it.
                assert_eq!(a != b, depth <= 32768, "depth {depth}");
            }
        }
    }

    #[derive(Default)]
    struct Doorbell(RefCell<Vec<(usize, u32)>>);
    impl RegisterAccess for Doorbell {
        fn read32(&self, _: usize) -> u32 {
            0
        }
        fn write32(&self, offset: usize, value: u32) {
            self.0.borrow_mut().push((offset, value));
        }
    }

    fn post(q: &mut QueuePair, index: u32, cid: u16, phase: bool, sq_head: u16) {
        let e = CompletionEntry {
            dw0: 0,
            dw1: 0,
            sq_head,
            sq_id: q.qid,
            cid,
            phase,
            status: Status::SUCCESS,
        };
        for (i, v) in e.to_dwords().iter().enumerate() {
            q.cq.region_mut()
                .write_volatile_u32(index as usize * 16 + 4 * i, *v);
        }
    }

    #[test]
    fn phase_wraps_and_cids_are_checked() {
        let regs = Doorbell::default();
        let (sqb, cqb) = QueuePair::ring_bytes(4);
        let mut q = QueuePair::new(
            1,
            4,
            leaked_region(sqb),
            leaked_region(cqb),
            Doorbells::new(Cap(0)),
        );
        assert_eq!(q.depth(), 3);
        let mut phase = true;
        let mut index = 0;
        for round in 0..20u16 {
            let slot = q.alloc_slot().unwrap();
            q.submit(&regs, slot, &SubmissionEntry::flush(1), 100);
            let cid = q.cid_of(slot).unwrap();
            assert_eq!(q.poll(&regs), Polled::Empty);
            // Unknown CID is not trusted.
            post(&mut q, index, cid ^ 0x8000, phase, 0);
            assert!(matches!(q.poll(&regs), Polled::Unknown(_)), "round {round}");
            index = (index + 1) % 4;
            if index == 0 {
                phase = !phase;
            }
            post(&mut q, index, cid, phase, ((round as u32 + 1) % 4) as u16);
            assert!(matches!(q.poll(&regs), Polled::Done { slot: s, .. } if s == slot));
            index = (index + 1) % 4;
            if index == 0 {
                phase = !phase;
            }
        }
        assert_eq!(q.in_flight(), 0);
        assert!(regs.0.borrow().iter().any(|&(o, _)| o == 0x1008));
    }

    #[test]
    fn batched_doorbells_are_written_once_and_only_when_changed() {
        let regs = Doorbell::default();
        let (sqb, cqb) = QueuePair::ring_bytes(8);
        let mut q = QueuePair::new(
            1,
            8,
            leaked_region(sqb),
            leaked_region(cqb),
            Doorbells::new(Cap(0)),
        );
        let mut cids = Vec::new();
        for _ in 0..3 {
            let slot = q.alloc_slot().unwrap();
            q.push(slot, &SubmissionEntry::flush(1), 100);
            cids.push(q.cid_of(slot).unwrap());
        }
        assert!(regs.0.borrow().is_empty(), "push wrote a doorbell");
        assert!(q.has_unrung_submissions());
        q.ring_submissions(&regs);
        q.ring_submissions(&regs);
        assert_eq!(*regs.0.borrow(), [(0x1008, 3)]);
        assert!(!q.has_unrung_submissions());
        post(&mut q, 0, cids[0], true, 3);
        post(&mut q, 1, cids[1], true, 3);
        assert!(matches!(q.take(), Polled::Done { .. }));
        assert!(matches!(q.take(), Polled::Done { .. }));
        assert_eq!(q.take(), Polled::Empty);
        assert_eq!(regs.0.borrow().len(), 1, "take wrote a doorbell");
        q.ring_completions(&regs);
        q.ring_completions(&regs);
        assert_eq!(*regs.0.borrow(), [(0x1008, 3), (0x100c, 2)]);
        assert_eq!(q.in_flight(), 1);
        // After a reset nothing is announced again.
        q.reset();
        q.ring_submissions(&regs);
        q.ring_completions(&regs);
        assert_eq!(regs.0.borrow().len(), 2);
    }

    #[test]
    fn event_index_decides_whether_the_doorbell_is_written() {
        // [old, new) in ring order, also across the wrap.
        assert!(needs_event(8, 2, 3, 2));
        assert!(!needs_event(8, 1, 3, 2));
        assert!(!needs_event(8, 3, 3, 2));
        assert!(needs_event(8, 7, 1, 6));
        assert!(needs_event(8, 0, 1, 6));
        assert!(!needs_event(8, 5, 1, 6));
        assert!(needs_event(8, 9, 1, 0), "EventIdx out of range");

        let regs = Doorbell::default();
        let (sqb, cqb) = QueuePair::ring_bytes(8);
        let mut q = QueuePair::new(
            1,
            8,
            leaked_region(sqb),
            leaked_region(cqb),
            Doorbells::new(Cap(0)),
        );
        let buffers = Arc::new(ShadowBuffers {
            doorbells: SharedDwords::new(leaked_region(4096)),
            event_indexes: SharedDwords::new(leaked_region(4096)),
        });
        q.set_shadow(Some(buffers.clone()));
        // The device waits at 0 (EventIdx 0): the first tail needs MMIO.
        let slot = q.alloc_slot().unwrap();
        q.submit(&regs, slot, &SubmissionEntry::flush(1), 100);
        assert_eq!(*regs.0.borrow(), [(0x1008, 1)]);
        assert_eq!(buffers.doorbells.load(8), 1);
        // The device is still busy before index 1: shadow only.
        let slot = q.alloc_slot().unwrap();
        q.submit(&regs, slot, &SubmissionEntry::flush(1), 100);
        assert_eq!(buffers.doorbells.load(8), 2);
        assert_eq!(regs.0.borrow().len(), 1);
        // It caught up to 2 and asks to be told: MMIO again.
        buffers.event_indexes.store(8, 2);
        let slot = q.alloc_slot().unwrap();
        q.submit(&regs, slot, &SubmissionEntry::flush(1), 100);
        assert_eq!(regs.0.borrow().last(), Some(&(0x1008, 3)));
        // Completion heads: passing EventIdx 0 notifies, the next head
        // (EventIdx left behind) goes to the shadow only.
        let cid = q.cid_of(0).unwrap();
        post(&mut q, 0, cid, true, 1);
        assert!(matches!(q.poll(&regs), Polled::Done { slot: 0, .. }));
        assert_eq!(regs.0.borrow().last(), Some(&(0x100c, 1)));
        let cid = q.cid_of(1).unwrap();
        post(&mut q, 1, cid, true, 2);
        assert!(matches!(q.poll(&regs), Polled::Done { slot: 1, .. }));
        assert_eq!(buffers.doorbells.load(12), 2);
        assert_eq!(regs.0.borrow().len(), 3);
        // The admin queue never uses the shadow.
        let (sqb, cqb) = QueuePair::ring_bytes(4);
        let mut admin = QueuePair::new(
            0,
            4,
            leaked_region(sqb),
            leaked_region(cqb),
            Doorbells::new(Cap(0)),
        );
        admin.set_shadow(Some(buffers));
        let slot = admin.alloc_slot().unwrap();
        admin.submit(&regs, slot, &SubmissionEntry::flush(1), 100);
        assert_eq!(regs.0.borrow().last(), Some(&(0x1000, 1)));
    }

    #[test]
    fn refuses_beyond_depth() {
        let regs = Doorbell::default();
        let (sqb, cqb) = QueuePair::ring_bytes(4);
        let mut q = QueuePair::new(
            1,
            4,
            leaked_region(sqb),
            leaked_region(cqb),
            Doorbells::new(Cap(0)),
        );
        for _ in 0..3 {
            let s = q.alloc_slot().unwrap();
            q.submit(&regs, s, &SubmissionEntry::flush(1), 0);
        }
        assert_eq!(q.alloc_slot(), None);
        // One completes, but the device reports it has not consumed any
        // entry (SQ head still 0): the ring is full, whatever the slots say.
        let cid = q.cid_of(2).unwrap();
        post(&mut q, 0, cid, true, 0);
        assert!(matches!(q.poll(&regs), Polled::Done { slot: 2, .. }));
        assert_eq!(q.alloc_slot(), None);
        assert_eq!(q.take_expired(1), Some(0));
        assert_eq!(q.take_expired(1), Some(1));
    }
}
