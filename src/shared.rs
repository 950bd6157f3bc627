//! The hand-off between the threads that emit events and the uploader thread: per-thread
//! [`Lanes`] bounded by one counter, the counters behind [`Stats`], the drain watermark, and
//! the control channel.
//!
//! Lanes grow as they fill and shrink once drained, so an idle reporter holds no memory for
//! its maximum size. The emitting thread does one atomic add, one push into its own lane, one
//! load of the wake mark and, once per `flush_threshold` waiting events, wakes the uploader.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use crossbeam_utils::CachePadded;
use tokio::sync::{Notify, mpsc};

use crate::clock::Stamp;
use crate::lanes::Lanes;
use crate::record::{Body, Record};
use crate::severity::Severity;
use crate::stats::{Dropped, Stats};

/// A message to the uploader that must not wait behind queued events.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send everything queued now. With a reply: the index the uploader will have reached
    /// once everything queued before this message is delivered or dropped.
    Flush(Option<std::sync::mpsc::SyncSender<u64>>),
    /// Send what is left, stop by `deadline`, answer with the final stats.
    Shutdown { deadline: Instant, reply: std::sync::mpsc::SyncSender<Stats> },
}

/// Counters written by the uploader thread.
#[derive(Debug, Default)]
pub(crate) struct UploadCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) retries_exhausted: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) unsent_at_shutdown: AtomicU64,
    pub(crate) after_shutdown_taken: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
}

/// When a push wakes the uploader: once `held` reaches `at` (the events the uploader has
/// sealed into batches, plus `flush_threshold`), that is once `flush_threshold` events wait,
/// whatever is in flight. `pending` makes it one wake-up per threshold, not one per push.
#[derive(Debug)]
struct WakeMark {
    at: AtomicUsize,
    pending: AtomicBool,
}

/// State shared by the layer, handles, guard and uploader of one reporter.
#[derive(Debug)]
pub(crate) struct Shared {
    lanes: Lanes,
    /// SESSION_END, and events pushed by a thread being torn down (which has no lane): taken
    /// after the lanes.
    queue: SegQueue<Record>,
    /// SESSION_START, taken before anything else.
    start: Mutex<Option<Record>>,
    /// Events accepted and not yet delivered or dropped: in the queue, being batched, or in
    /// flight. Bounded by `max_queue`, so memory is bounded whatever the server does.
    held: CachePadded<AtomicUsize>,
    dropped_full: CachePadded<AtomicU64>,
    dropped_closed: AtomicU64,
    /// Events settled by the uploader, whatever their fate.
    settled: AtomicU64,
    closed: AtomicBool,
    /// A `Control::Flush(None)` is on its way to the uploader.
    flush_requested: AtomicBool,
    session_ended: AtomicBool,
    max_queue: usize,
    threshold: usize,
    /// When the emitting threads wake the uploader.
    wake_mark: CachePadded<WakeMark>,
    pub(crate) wake: Notify,
    pub(crate) counters: UploadCounters,
    control: mpsc::UnboundedSender<Control>,
    /// Index below which every event is delivered or finally dropped.
    watermark: Mutex<u64>,
    watermark_changed: Condvar,
    pub(crate) started: Instant,
    pub(crate) session_id: Box<str>,
    pub(crate) sessionless: bool,
}

impl Shared {
    pub(crate) fn new(
        max_queue: usize,
        threshold: usize,
        session_id: Box<str>,
        sessionless: bool,
    ) -> (Shared, mpsc::UnboundedReceiver<Control>) {
        let (control, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            lanes: Lanes::default(),
            queue: SegQueue::new(),
            start: Mutex::new(None),
            held: CachePadded::new(AtomicUsize::new(0)),
            dropped_full: CachePadded::new(AtomicU64::new(0)),
            dropped_closed: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            session_ended: AtomicBool::new(false),
            max_queue,
            threshold,
            wake_mark: CachePadded::new(WakeMark {
                at: AtomicUsize::new(threshold),
                pending: AtomicBool::new(false),
            }),
            wake: Notify::new(),
            counters: UploadCounters::default(),
            control,
            watermark: Mutex::new(0),
            watermark_changed: Condvar::new(),
            started: Instant::now(),
            session_id,
            sessionless,
        };
        (shared, rx)
    }

    /// Hands a record to the uploader without blocking. Returns false, counting the record as
    /// dropped, when the queue is full or the reporter has shut down.
    #[inline]
    pub(crate) fn push(&self, record: Record) -> bool {
        let Some(before) = self.admit() else { return false };
        if before >= self.max_queue {
            self.held.fetch_sub(1, Relaxed);
            self.dropped_full.fetch_add(1, Relaxed);
            return false;
        }
        self.enqueue(record);
        let mark = &*self.wake_mark;
        if before + 1 >= mark.at.load(SeqCst)
            && !mark.pending.load(Relaxed)
            && !mark.pending.swap(true, AcqRel)
        {
            self.wake.notify_one();
        }
        true
    }

    /// Counts one event in `held`, then checks that the reporter is not closed; returns how
    /// many were held before, or `None` (the event counted as dropped after shutdown).
    ///
    /// Counting first, all SeqCst with `close` and the reads of `held` in
    /// [`take_last`](Shared::take_last): either this push sees the close, or the last take
    /// sees the event coming and waits for it. The same increment, with the loads of the
    /// wake mark in `push`, makes sure either the uploader's re-check after it moved the mark
    /// sees this event, or the push sees the moved mark.
    #[inline]
    fn admit(&self) -> Option<usize> {
        let before = self.held.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.held.fetch_sub(1, SeqCst);
            self.dropped_closed.fetch_add(1, Relaxed);
            return None;
        }
        Some(before)
    }

    /// Moves the wake mark to `flush_threshold` events past the `sealed` ones (in batches
    /// waiting or in flight, which `held` also counts), and re-arms the wake-up. Only the
    /// uploader calls this.
    ///
    /// Returns true when events pushed while the mark moved already reach it: the caller must
    /// take again, as their pushes may have checked the old mark. An event counted in `held`
    /// but not in the queue yet does not count: its push checks the new mark itself.
    pub(crate) fn rearm_wake(&self, sealed: usize) -> bool {
        let mark = &*self.wake_mark;
        let at = sealed + self.threshold;
        mark.pending.store(false, Release);
        mark.at.store(at, SeqCst);
        self.held.load(SeqCst) >= at && !(self.queue.is_empty() && self.lanes.is_empty())
    }

    /// Puts an accepted record in the calling thread's lane.
    #[inline]
    fn enqueue(&self, record: Record) {
        self.lanes.push(record, |record| self.queue.push(record));
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
            self.held.fetch_sub(1, SeqCst);
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

    /// Events accepted and not yet settled.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Acquire)
    }

    /// Counts one event as accepted past the queue bound: SESSION_START and SESSION_END, and
    /// the `telemetry.dropped` reports the uploader makes itself. (A fatal error is counted
    /// by `admit`, past the bound too.) SeqCst: see `admit`.
    pub(crate) fn hold_past_bound(&self) {
        self.held.fetch_add(1, SeqCst);
    }

    /// Books `n` events as finished, adding them to `counter` (delivered or a drop reason).
    /// They stay held until the uploader [`release`](Shared::release)s them.
    pub(crate) fn count(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
        self.settled.fetch_add(n, Relaxed);
    }

    /// Frees the queue room of `n` finished events. Only the uploader thread calls this, so
    /// its own count of events taken from the queue stays in step with `held`.
    pub(crate) fn release(&self, n: u64) {
        self.held.fetch_sub(n as usize, AcqRel);
    }

    /// [`count`](Shared::count) and [`release`](Shared::release) at once, for events the
    /// uploader settles itself.
    pub(crate) fn settle(&self, counter: &AtomicU64, n: u64) {
        self.count(counter, n);
        self.release(n);
    }

    pub(crate) fn max_queue(&self) -> usize {
        self.max_queue
    }

    /// Takes up to `max` records: SESSION_START first, then each thread's in the order it
    /// pushed them, then SESSION_END. They stay held until settled.
    pub(crate) fn take(&self, max: usize, mut each: impl FnMut(Record)) -> usize {
        let mut n = 0;
        let start =
            if max > 0 { self.start.lock().unwrap_or_else(PoisonError::into_inner).take() } else { None };
        if let Some(start) = start {
            each(start);
            n += 1;
        }
        n += self.lanes.drain(max - n, &mut each);
        while n < max {
            match self.queue.pop() {
                Some(r) => {
                    each(r);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Once closed, takes every record left, including those of pushes that passed the closed
    /// check just before the close and have not reached their lane yet: while `held` counts
    /// more than the `unsettled` records the uploader has and those taken here, it waits for
    /// them, up to `grace`. Returns how many it took; they are held until settled.
    pub(crate) fn take_last(&self, unsettled: usize, grace: Duration, mut each: impl FnMut(Record)) -> usize {
        let until = Instant::now() + grace;
        let mut n = self.take(usize::MAX, &mut each);
        // SeqCst: see `admit`.
        while self.held.load(SeqCst) > unsettled + n && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(50));
            n += self.take(usize::MAX, &mut each);
        }
        n
    }

    pub(crate) fn dropped_queue_full(&self) -> u64 {
        self.dropped_full.load(Relaxed)
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

    /// The uploader took a flush request: the next one needs a message again.
    pub(crate) fn flush_taken(&self) {
        self.flush_requested.store(false, Release);
    }

    /// Pushes an event that must not be lost to a full queue (a fatal error or panic, at most
    /// one per fatal path), unless the reporter is closed.
    pub(crate) fn push_critical(&self, record: Record) -> bool {
        // Past the bound: `admit`'s count, whatever it was.
        if self.admit().is_none() {
            return false;
        }
        self.enqueue(record);
        self.wake.notify_one();
        true
    }

    pub(crate) fn set_watermark(&self, index: u64) {
        let mut w = self.watermark.lock().unwrap_or_else(PoisonError::into_inner);
        if *w != index {
            *w = index;
            self.watermark_changed.notify_all();
        }
    }

    /// Waits until the watermark reaches `target` or `deadline` passes.
    pub(crate) fn wait_watermark(&self, target: u64, deadline: Instant) -> bool {
        let mut w = self.watermark.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *w >= target {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            w = self
                .watermark_changed
                .wait_timeout(w, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// A consistent-enough snapshot of the counters: exact once the reporter is quiet.
    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let held = self.held.load(Acquire) as u64;
        let dropped = Dropped {
            queue_full: self.dropped_full.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            retries_exhausted: c.retries_exhausted.load(Relaxed),
            too_large: c.too_large.load(Relaxed),
            after_shutdown: self.dropped_closed.load(Relaxed) + c.after_shutdown_taken.load(Relaxed),
            unsent_at_shutdown: c.unsent_at_shutdown.load(Relaxed),
        };
        Stats {
            accepted: self.settled.load(Relaxed)
                + held
                + dropped.queue_full
                + self.dropped_closed.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            dropped,
            retries: c.retries.load(Relaxed),
            batches_sent: c.batches_sent.load(Relaxed),
            queued: held,
        }
    }
}

/// How long until `deadline`, zero once it has passed.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a wake-up is waiting for the uploader (and consumes it).
    fn woken(shared: &Shared) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            tokio::select! {
                biased;
                () = shared.wake.notified() => true,
                () = std::future::ready(()) => false,
            }
        })
    }

    #[test]
    fn the_last_take_waits_for_a_push_that_passed_the_closed_check_before_the_close() {
        let (shared, _control) = Shared::new(100, 10, "s".into(), true);
        push(&shared, 3);
        // A push admitted just before the close, on its way to its lane.
        assert_eq!(shared.admit(), Some(3));
        assert!(shared.close());
        assert_eq!(shared.admit(), None, "after the close a push is refused");
        let taken = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                shared.enqueue(record());
            });
            shared.take_last(0, Duration::from_secs(10), drop)
        });
        assert_eq!(taken, 4, "the three queued and the one still on its way");
        assert!(!shared.push(record()), "a push after the close is refused");
        // SESSION_END claimed by another thread (a fatal path) that has not queued it yet:
        // the shutdown's own claim fails, and its last take waits for the record.
        shared.hold_past_bound();
        shared.session_ended.store(true, SeqCst);
        let taken = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                shared.queue.push(record());
            });
            shared.take_last(4, Duration::from_secs(10), drop)
        });
        assert_eq!(taken, 1, "the SESSION_END on its way");
        shared.release(5);
        let (ended, _control) = Shared::new(100, 10, "s".into(), false);
        let before = ended.held();
        assert!(ended.end_session());
        assert!(!ended.end_session(), "once per reporter");
        assert_eq!(ended.held(), before + 1, "the losing claim gives its count back");
        // Without a push in flight it does not wait.
        let started = Instant::now();
        assert_eq!(shared.take_last(0, Duration::from_secs(10), drop), 0);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    fn record() -> Record {
        let body = Body::Json { name: "x".into(), data: serde_json::Value::Null };
        Record { time: Stamp::now(), severity: Severity::Info, body }
    }

    fn push(shared: &Shared, n: usize) {
        for _ in 0..n {
            assert!(shared.push(record()));
        }
    }

    #[test]
    fn pushes_wake_the_uploader_once_per_threshold_of_waiting_events() {
        let (shared, _control) = Shared::new(100, 10, "s".into(), true);
        push(&shared, 9);
        assert!(!woken(&shared));
        push(&shared, 1);
        assert!(woken(&shared), "the tenth waiting event wakes the uploader");
        push(&shared, 20);
        assert!(!woken(&shared), "once, until the uploader re-arms");
        // The uploader takes all 30 and sends them: held while in flight, but not waiting.
        assert_eq!(shared.take(usize::MAX, drop), 30);
        assert!(!shared.rearm_wake(30));
        push(&shared, 9);
        assert!(!woken(&shared), "events in flight do not count as waiting");
        push(&shared, 1);
        assert!(woken(&shared), "ten new events wake it, whatever is in flight");
        // Had those ten arrived while the mark moved, the re-arm would say so.
        assert!(shared.rearm_wake(30));
        assert_eq!(shared.take(usize::MAX, drop), 10);
        assert!(!shared.rearm_wake(40), "nothing waits in the queue");
    }
}
