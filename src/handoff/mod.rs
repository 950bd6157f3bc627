//! The hand-off between the threads that emit events and the uploader thread: per-thread
//! [`Lanes`] bounded by one counter, the counters behind [`Stats`], the drain watermark, and
//! the control channel. [`Handoff`] is the state both sides share; `produce.rs` holds what
//! the emitting threads call, `consume.rs` what the uploader calls.
//!
//! Lanes grow as they fill and shrink once drained, so an idle reporter holds no memory for
//! its maximum size. The emitting thread does one atomic add, one push into its own lane, one
//! load of the wake mark and, once per `flush_threshold` waiting events, wakes the uploader.

pub(crate) mod clock;
pub(crate) mod consume;
pub(crate) mod control;
mod counters;
pub(crate) use counters::SpoolCounters;
pub(crate) mod lanes;
pub(crate) mod packed;
pub(crate) mod produce;
pub(crate) mod record;
pub(crate) mod stats;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crossbeam_queue::SegQueue;
use crossbeam_utils::CachePadded;
use tokio::sync::{Notify, mpsc};

use control::Control;
use counters::UploadCounters;
use lanes::Lanes;
use record::Record;
use stats::DeliveryError;

/// What waits, counted against the queue's bounds.
#[derive(Debug)]
struct Load {
    /// Events accepted and not yet delivered or dropped: in a lane, being batched, or in
    /// flight. Bounded by `max_queue`, so memory is bounded whatever the server does.
    held: AtomicUsize,
    /// Bytes of those events' payloads: the heap a record holds while it waits in a lane,
    /// then its JSON while it waits in a batch or in flight. Bounded by `max_bytes`.
    bytes: AtomicUsize,
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
pub(crate) struct Handoff {
    lanes: Lanes,
    /// SESSION_END, and events pushed by a thread being torn down (which has no lane): taken
    /// after the lanes.
    queue: SegQueue<Record>,
    /// SESSION_START, taken before anything else.
    start: Mutex<Option<Record>>,
    /// What the queue bound counts, on one cache line: a push touches both.
    load: CachePadded<Load>,
    /// Pushes refused because the queue was full ([`DropReason::QueueFull`]): counted by the
    /// emitting threads, as such events are never taken.
    ///
    /// [`DropReason::QueueFull`]: stats::DropReason::QueueFull
    dropped_full: CachePadded<AtomicU64>,
    /// Pushes refused after the close ([`DropReason::AfterShutdown`]), likewise.
    ///
    /// [`DropReason::AfterShutdown`]: stats::DropReason::AfterShutdown
    dropped_closed: AtomicU64,
    /// Events settled by the uploader, whatever their fate.
    settled: AtomicU64,
    closed: AtomicBool,
    /// A `Control::Flush(None)` is on its way to the uploader.
    flush_requested: AtomicBool,
    session_ended: AtomicBool,
    max_queue: usize,
    max_bytes: usize,
    threshold: usize,
    /// When the emitting threads wake the uploader.
    wake_mark: CachePadded<WakeMark>,
    pub(crate) wake: Notify,
    counters: UploadCounters,
    control: mpsc::UnboundedSender<Control>,
    /// Index below which every event is delivered or finally dropped.
    watermark: Mutex<u64>,
    watermark_changed: Condvar,
    /// The last failed delivery attempt, in words.
    last_error: Mutex<Option<DeliveryError>>,
    pub(crate) started: Instant,
    pub(crate) session_id: Box<str>,
    pub(crate) sessionless: bool,
}

impl Handoff {
    pub(crate) fn new(
        max_queue: usize,
        max_bytes: usize,
        threshold: usize,
        session_id: Box<str>,
        sessionless: bool,
    ) -> (Handoff, mpsc::UnboundedReceiver<Control>) {
        let (control, rx) = mpsc::unbounded_channel();
        let handoff = Handoff {
            lanes: Lanes::default(),
            queue: SegQueue::new(),
            start: Mutex::new(None),
            load: CachePadded::new(Load { held: AtomicUsize::new(0), bytes: AtomicUsize::new(0) }),
            dropped_full: CachePadded::new(AtomicU64::new(0)),
            dropped_closed: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            session_ended: AtomicBool::new(false),
            max_queue,
            max_bytes,
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
            last_error: Mutex::new(None),
            started: Instant::now(),
            session_id,
            sessionless,
        };
        (handoff, rx)
    }

    /// Events accepted and not yet settled.
    pub(crate) fn held(&self) -> usize {
        self.load.held.load(Acquire)
    }

    /// Counts one event as accepted past the queue bound: SESSION_START and SESSION_END, and
    /// the `telemetry.dropped` reports the uploader makes itself. (A fatal error is counted
    /// by `admit`, past the bound too.) SeqCst: see `admit`.
    pub(crate) fn hold_past_bound(&self) {
        self.load.held.fetch_add(1, SeqCst);
    }

    /// Records a failed delivery attempt (the uploader calls this).
    pub(crate) fn set_last_error(&self, error: DeliveryError) {
        *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// The last failed delivery attempt.
    pub(crate) fn last_error(&self) -> Option<DeliveryError> {
        self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::clock::Stamp;
    use super::record::Body;
    use super::*;
    use crate::severity::Severity;

    /// Whether a wake-up is waiting for the uploader (and consumes it).
    fn woken(handoff: &Handoff) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            tokio::select! {
                biased;
                () = handoff.wake.notified() => true,
                () = std::future::ready(()) => false,
            }
        })
    }

    #[test]
    fn the_last_take_waits_for_a_push_that_passed_the_closed_check_before_the_close() {
        let (handoff, _control) = Handoff::new(100, usize::MAX, 10, "s".into(), true);
        push(&handoff, 3);
        // A push admitted just before the close, on its way to its lane.
        assert_eq!(handoff.admit(), Some(3));
        assert!(handoff.close());
        assert_eq!(handoff.admit(), None, "after the close a push is refused");
        let taken = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                handoff.enqueue(record());
            });
            handoff.take_last(0, Duration::from_secs(10), drop)
        });
        assert_eq!(taken, 4, "the three queued and the one still on its way");
        assert!(!handoff.push(record()), "a push after the close is refused");
        // SESSION_END claimed by another thread (a fatal path) that has not queued it yet:
        // the shutdown's own claim fails, and its last take waits for the record.
        handoff.hold_past_bound();
        handoff.session_ended.store(true, SeqCst);
        let taken = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                handoff.queue.push(record());
            });
            handoff.take_last(4, Duration::from_secs(10), drop)
        });
        assert_eq!(taken, 1, "the SESSION_END on its way");
        handoff.release(5);
        let (ended, _control) = Handoff::new(100, usize::MAX, 10, "s".into(), false);
        let before = ended.held();
        assert!(ended.end_session());
        assert!(!ended.end_session(), "once per reporter");
        assert_eq!(ended.held(), before + 1, "the losing claim gives its count back");
        // Without a push in flight it does not wait.
        let started = Instant::now();
        assert_eq!(handoff.take_last(0, Duration::from_secs(10), drop), 0);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    fn record() -> Record {
        let body = Body::Json { name: "x".into(), data: serde_json::Value::Null };
        Record { time: Stamp::now(), severity: Severity::Info, body }
    }

    fn push(handoff: &Handoff, n: usize) {
        for _ in 0..n {
            assert!(handoff.push(record()));
        }
    }

    #[test]
    fn pushes_wake_the_uploader_once_per_threshold_of_waiting_events() {
        let (handoff, _control) = Handoff::new(100, usize::MAX, 10, "s".into(), true);
        push(&handoff, 9);
        assert!(!woken(&handoff));
        push(&handoff, 1);
        assert!(woken(&handoff), "the tenth waiting event wakes the uploader");
        push(&handoff, 20);
        assert!(!woken(&handoff), "once, until the uploader re-arms");
        // The uploader takes all 30 and sends them: held while in flight, but not waiting.
        assert_eq!(handoff.take(usize::MAX, drop), 30);
        assert!(!handoff.rearm_wake(30));
        push(&handoff, 9);
        assert!(!woken(&handoff), "events in flight do not count as waiting");
        push(&handoff, 1);
        assert!(woken(&handoff), "ten new events wake it, whatever is in flight");
        // Had those ten arrived while the mark moved, the re-arm would say so.
        assert!(handoff.rearm_wake(30));
        assert_eq!(handoff.take(usize::MAX, drop), 10);
        assert!(!handoff.rearm_wake(40), "nothing waits in the queue");
    }
}
