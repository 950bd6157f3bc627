//! [`Reporter`]: the user-facing state of one reporter, shared by its guard and every handle:
//! the hand-off, the drain timeout, the process it was built in, the uploader thread, and how
//! far the shutdown has got. Drains and the shutdown run here, on the caller's thread.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::errors::classify::Classifier;
use crate::handoff::Handoff;
use crate::handoff::control::{Control, remaining};
use crate::handoff::stats::Stats;

/// How long past the drain deadline a shutdown waits for the uploader's answer, for the
/// uploader's own bookkeeping after it gave up on what was left.
const ANSWER_GRACE: Duration = Duration::from_millis(150);

/// What a shutdown achieved: [`TelemetryGuard::shutdown`](crate::TelemetryGuard::shutdown),
/// [`TelemetryHandle::shutdown`](crate::TelemetryHandle::shutdown) and their async form.
///
/// # Examples
/// ```
/// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
/// #     .session_id("s").enabled(false).build()?;
/// let report = guard.shutdown();
/// if !report.drained {
///     eprintln!("telemetry: {} events not sent", report.stats.dropped.unsent_at_shutdown);
/// }
/// # Ok::<(), tinker_telemetry::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// The final counters: what was delivered and, by reason, what was dropped.
    pub stats: Stats,
    /// True when every event was delivered or finally dropped before the deadline; false
    /// when the deadline cut the drain short (see `stats.dropped.unsent_at_shutdown`), and
    /// in a process forked from the one that built the reporter, where nothing is sent.
    pub drained: bool,
}

/// How far the shutdown has got.
#[derive(Debug, Clone, Copy)]
#[expect(clippy::large_enum_variant, reason = "one per reporter, never moved on a hot path")]
enum Ending {
    Open,
    /// A caller is draining; others wait for its report.
    Draining,
    Done(ShutdownReport),
}

/// One reporter as the user-facing side sees it.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub(crate) handoff: Arc<Handoff>,
    pub(crate) flush_timeout: Duration,
    pub(crate) classifier: Arc<Classifier>,
    /// The process that built the reporter: the only one with an uploader thread.
    pid: u32,
    uploader: Mutex<Option<JoinHandle<()>>>,
    /// A shutdown has begun (read without a lock: the panic hook checks it).
    shutting_down: AtomicBool,
    ending: Mutex<Ending>,
    ended: Condvar,
}

impl Reporter {
    pub(crate) fn new(handoff: Arc<Handoff>, flush_timeout: Duration, classifier: Arc<Classifier>) -> Self {
        Reporter {
            handoff,
            flush_timeout,
            classifier,
            pid: std::process::id(),
            uploader: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            ending: Mutex::new(Ending::Open),
            ended: Condvar::new(),
        }
    }

    pub(crate) fn set_uploader(&self, thread: JoinHandle<()>) {
        *self.uploader.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
    }

    /// Whether this is the process that built the reporter. In a forked child the uploader
    /// thread does not exist: nothing there may wait for it, or wake its runtime.
    pub(crate) fn in_own_process(&self) -> bool {
        std::process::id() == self.pid
    }

    /// Whether a shutdown has begun: the guard dropped, or `shutdown` called.
    pub(crate) fn shut_down(&self) -> bool {
        self.shutting_down.load(Acquire)
    }

    /// Asks the uploader for the index it will have settled once everything queued now is
    /// delivered or dropped; `None` when it has stopped (or lives in another process).
    pub(crate) fn request_drain(&self) -> Option<Receiver<u64>> {
        if !self.in_own_process() {
            return None;
        }
        let (tx, rx) = sync_channel(1);
        self.handoff.send_control(Control::Flush(Some(tx))).then_some(rx)
    }

    /// Waits for the drain [`request_drain`](Self::request_drain) asked for, until
    /// `deadline`. Returns whether everything queued at the request was settled in time.
    pub(crate) fn wait_drained(&self, request: Option<Receiver<u64>>, deadline: Instant) -> bool {
        if !self.in_own_process() {
            return false;
        }
        // No request: the uploader has stopped; drained if it settled everything first.
        let Some(answer) = request else { return self.handoff.stats().queued == 0 };
        match answer.recv_timeout(remaining(deadline)) {
            Ok(target) => self.handoff.wait_watermark(target, deadline),
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => self.handoff.stats().queued == 0,
        }
    }

    /// Flushes and waits, until `deadline`, for everything queued now to be settled.
    pub(crate) fn drain_by(&self, deadline: Instant) -> bool {
        let request = self.request_drain();
        self.wait_drained(request, deadline)
    }

    /// Ends the session: later events are counted as dropped, SESSION_END is queued unless it
    /// already was.
    pub(crate) fn end_session(&self) {
        if self.in_own_process() {
            self.handoff.close();
            self.handoff.end_session();
        }
    }

    /// Ends the session and drains by `deadline`, once per reporter: the first caller does
    /// it, a caller arriving meanwhile waits for its report (until its own deadline), and a
    /// caller arriving after gets the same report at once.
    pub(crate) fn shutdown_by(&self, deadline: Instant) -> ShutdownReport {
        if !self.in_own_process() {
            // The uploader thread is the parent's: leave its handle alone, send nothing.
            // `try_lock`: a thread of the parent may have held the lock when the process forked.
            if let Some(thread) = self.uploader.try_lock().ok().and_then(|mut t| t.take()) {
                std::mem::forget(thread);
            }
            return ShutdownReport { stats: self.handoff.stats(), drained: false };
        }
        let mut ending = self.ending.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match *ending {
                Ending::Done(report) => return report,
                Ending::Open => break,
                Ending::Draining => {
                    let left = remaining(deadline);
                    if left.is_zero() {
                        return ShutdownReport { stats: self.handoff.stats(), drained: false };
                    }
                    ending = self.ended.wait_timeout(ending, left).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
        *ending = Ending::Draining;
        self.shutting_down.store(true, Release);
        drop(ending);
        let report = self.stop_uploader(deadline);
        *self.ending.lock().unwrap_or_else(PoisonError::into_inner) = Ending::Done(report);
        self.ended.notify_all();
        report
    }

    /// SESSION_END, then the uploader's last drain and its final counters.
    fn stop_uploader(&self, deadline: Instant) -> ShutdownReport {
        let handoff = &self.handoff;
        handoff.close();
        handoff.end_session();
        let (reply, answer) = sync_channel(1);
        if !handoff.send_control(Control::Shutdown { deadline, reply }) {
            let stats = handoff.stats();
            return ShutdownReport { stats, drained: stats.queued == 0 };
        }
        match answer.recv_timeout(remaining(deadline) + ANSWER_GRACE) {
            Ok(stats) => {
                // The uploader answered as its last act; its thread ends right after.
                if let Some(thread) = self.uploader.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    join_briefly(thread);
                }
                let drained = stats.dropped.unsent_at_shutdown == 0 && stats.queued == 0;
                ShutdownReport { stats, drained }
            }
            // The uploader is stuck past the deadline: leave its thread behind.
            Err(_) => ShutdownReport { stats: handoff.stats(), drained: false },
        }
    }
}

/// Joins `thread` if it ends within a few milliseconds; otherwise lets it go.
fn join_briefly(thread: JoinHandle<()>) {
    let until = Instant::now() + Duration::from_millis(50);
    while !thread.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    if thread.is_finished() {
        let _ = thread.join();
    }
}
