//! The producer's view of the hand-off: what the emitting threads, the handle and the guard
//! call. Nothing here blocks: a push is an atomic add, a push into the thread's own lane and,
//! once per `flush_threshold` waiting events, a wake-up.

use std::sync::PoisonError;
use std::sync::atomic::Ordering::*;

use super::Handoff;
use super::clock::Stamp;
use super::control::Control;
use super::lanes::LastLane;
use super::record::{Body, Captured, Record};
use crate::severity::Severity;

impl Handoff {
    /// Hands a record to the uploader without blocking. Returns false, counting the record as
    /// dropped, when the queue is full or the reporter has shut down.
    #[inline(always)]
    pub(crate) fn push(&self, record: Record) -> bool {
        let Some(before) = self.admit_within_bounds(record.heap_bytes()) else { return false };
        self.enqueue(record);
        self.wake_at(before);
        true
    }

    /// Hands a captured event to the uploader without blocking: its bytes go into the
    /// thread's lane (`last`, when it is this reporter's), and the uploader makes its record.
    /// Returns false, counting the event as dropped, when the queue is full or the reporter
    /// has shut down.
    #[inline(always)]
    pub(crate) fn push_captured(&self, last: &mut LastLane, event: &Captured<'_>) -> bool {
        let Some(before) = self.admit_within_bounds(event.heap_bytes()) else { return false };
        if !self.lanes.push_captured(last, event) {
            self.queue.push(event.to_record());
        }
        self.wake_at(before);
        true
    }

    /// [`admit`](Self::admit) within the queue's bounds, for an event holding `bytes` of
    /// heap: how many were held before, or `None` (the event counted as dropped).
    #[inline(always)]
    fn admit_within_bounds(&self, bytes: usize) -> Option<usize> {
        let before = self.admit()?;
        if before >= self.max_queue || !self.admit_bytes(bytes) {
            self.load.held.fetch_sub(1, Relaxed);
            self.dropped_full.fetch_add(1, Relaxed);
            return None;
        }
        Some(before)
    }

    /// Wakes the uploader when the push that found `before` events held reached the wake mark.
    #[inline(always)]
    fn wake_at(&self, before: usize) {
        let mark = &*self.wake_mark;
        if before + 1 >= mark.at.load(SeqCst)
            && !mark.pending.load(Relaxed)
            && !mark.pending.swap(true, AcqRel)
        {
            self.wake.notify_one();
        }
    }

    /// Counts one event in `held`, then checks that the reporter is not closed; returns how
    /// many were held before, or `None` (the event counted as dropped after shutdown).
    ///
    /// Counting first, all SeqCst with `close` and the reads of `held` in
    /// [`take_last`](Handoff::take_last): either this push sees the close, or the last take
    /// sees the event coming and waits for it. The same increment, with the loads of the
    /// wake mark in `push`, makes sure either the uploader's re-check after it moved the mark
    /// sees this event, or the push sees the moved mark.
    ///
    /// A reporter seen closed already is refused before `held` is touched, so threads that go
    /// on emitting after the shutdown do not make the last take wait for events that will not
    /// come. Only a thread that saw the reporter open just before it closed can still be
    /// counted, then refused: if it is descheduled between the two for longer than the last
    /// take's grace, the report shows it queued.
    #[inline]
    pub(super) fn admit(&self) -> Option<usize> {
        if self.closed.load(Relaxed) {
            self.dropped_closed.fetch_add(1, Relaxed);
            return None;
        }
        let before = self.load.held.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.load.held.fetch_sub(1, SeqCst);
            self.dropped_closed.fetch_add(1, Relaxed);
            return None;
        }
        Some(before)
    }

    /// Counts `bytes` of payload against `max_bytes`; false (nothing counted) when the bound
    /// is reached. A record without heap payload only checks the bound: the line is already
    /// this thread's after `admit`.
    #[inline(always)]
    fn admit_bytes(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return self.load.bytes.load(Relaxed) < self.max_bytes;
        }
        self.admit_heap_bytes(bytes)
    }

    /// [`admit_bytes`](Self::admit_bytes) for a record with heap payload.
    #[inline(always)]
    fn admit_heap_bytes(&self, bytes: usize) -> bool {
        let load = &self.load.bytes;
        let before = load.fetch_add(bytes, Relaxed);
        if before.saturating_add(bytes) > self.max_bytes {
            load.fetch_sub(bytes, Relaxed);
            return false;
        }
        true
    }

    /// Puts an accepted record in the calling thread's lane.
    #[inline]
    pub(super) fn enqueue(&self, record: Record) {
        self.lanes.push(record, |record| self.queue.push(record));
    }

    /// Pushes an event that must not be lost to a full queue (a fatal error or panic, at most
    /// one per fatal path), unless the reporter is closed.
    pub(crate) fn push_critical(&self, record: Record) -> bool {
        // Past the bound: `admit`'s count, whatever it was.
        if self.admit().is_none() {
            return false;
        }
        self.load.bytes.fetch_add(record.heap_bytes(), Relaxed);
        self.enqueue(record);
        self.wake.notify_one();
        true
    }

    pub(crate) fn push_session_start(&self) {
        if !self.sessionless {
            let record = Record { time: Stamp::now(), severity: Severity::Info, body: Body::SessionStart };
            self.hold_past_bound();
            *self.start.lock().unwrap_or_else(PoisonError::into_inner) = Some(record);
        }
    }

    /// Enqueues SESSION_END unless it already was: at most once per reporter. Returns whether
    /// this call enqueued it.
    pub(crate) fn end_session(&self) -> bool {
        if self.sessionless {
            return false;
        }
        // Held past the bound, so that it is never lost to a full queue, and before the claim:
        // a shutdown that finds the session ended waits in its last take for this record.
        self.hold_past_bound();
        if self.session_ended.swap(true, SeqCst) {
            self.load.held.fetch_sub(1, SeqCst);
            return false;
        }
        let duration = self.started.elapsed();
        let record =
            Record { time: Stamp::now(), severity: Severity::Info, body: Body::SessionEnd { duration } };
        // After every lane.
        self.queue.push(record);
        true
    }

    /// Marks the reporter closed: later pushes are counted as dropped after shutdown. Returns
    /// false when it already was.
    pub(crate) fn close(&self) -> bool {
        // SeqCst: see `admit`.
        !self.closed.swap(true, SeqCst)
    }

    pub(crate) fn send_control(&self, c: Control) -> bool {
        self.control.send(c).is_ok()
    }

    /// Asks for a send of everything queued, unless such a request is already waiting: a
    /// storm of flushes (one per logged error) costs the uploader one take, and the control
    /// channel one message.
    pub(crate) fn request_flush(&self) {
        if !self.flush_requested.swap(true, AcqRel) && !self.send_control(Control::Flush(None)) {
            self.flush_requested.store(false, Release);
        }
    }
}
