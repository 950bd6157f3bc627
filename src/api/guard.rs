//! [`TelemetryGuard`]: ends the session and drains the queue when the program ends.

use std::fmt;
use std::sync::mpsc::sync_channel;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::handle::TelemetryHandle;
use crate::handoff::control::{Control, deadline_in, remaining};
use crate::handoff::stats::Stats;

/// How long past the drain deadline the guard waits for the uploader's answer, for the
/// uploader's own bookkeeping after it gave up on what was left.
const ANSWER_GRACE: Duration = Duration::from_millis(150);

/// Ends the session and sends what is queued when dropped (or on
/// [`shutdown`](TelemetryGuard::shutdown)): SESSION_END, a flush, and a wait of at most the
/// builder's `flush_timeout` for the uploader to finish.
///
/// Hold it until `main` returns, bound to a name: `let (layer, _) = builder.build()?`
/// drops it at once and ends the session before anything is captured. Dropping it works from
/// a plain `main`, inside any tokio runtime, and while a panic unwinds; it never panics. It
/// blocks its thread until the queue is drained or `flush_timeout` has passed, plus at most
/// 200 ms for the uploader's bookkeeping and its thread's exit; dropped inside an async task
/// it blocks that task's worker thread (on a current-thread runtime, every task) for as long.
///
/// Events captured after the guard is gone are counted as dropped.
#[must_use = "dropping the guard ends the session at once; hold it until the program ends"]
pub struct TelemetryGuard {
    handle: TelemetryHandle,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("handle", &self.handle)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

/// What [`TelemetryGuard::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// The final counters: what was delivered and, by reason, what was dropped.
    pub stats: Stats,
    /// True when every event was delivered or finally dropped before the deadline; false
    /// when the deadline cut the drain short (see `stats.dropped.unsent_at_shutdown`).
    pub drained: bool,
}

impl TelemetryGuard {
    pub(crate) fn enabled(handle: TelemetryHandle, thread: JoinHandle<()>) -> Self {
        TelemetryGuard { handle, thread: Some(thread) }
    }

    pub(crate) fn disabled(handle: TelemetryHandle) -> Self {
        TelemetryGuard { handle, thread: None }
    }

    /// A handle for logging and flushing from anywhere; it stays usable after the guard is
    /// gone, but what it logs then is counted as dropped.
    #[must_use]
    pub fn handle(&self) -> TelemetryHandle {
        self.handle.clone()
    }

    /// Ends the session and drains the queue now, returning the final counters. Does what
    /// dropping the guard does, and tells you how it went.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// let report = guard.shutdown();
    /// assert!(report.drained);
    /// assert_eq!(report.stats.dropped.total(), 0);
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn shutdown(mut self) -> ShutdownReport {
        self.finish()
    }

    fn finish(&mut self) -> ShutdownReport {
        let Some(thread) = self.thread.take() else {
            return ShutdownReport { stats: self.handle.stats(), drained: true };
        };
        let Some(handoff) = self.handle.handoff().cloned() else {
            return ShutdownReport { stats: Stats::default(), drained: true };
        };
        handoff.close();
        handoff.end_session();
        let deadline = deadline_in(self.handle.flush_timeout);
        let (reply, answer) = sync_channel(1);
        if !handoff.send_control(Control::Shutdown { deadline, reply }) {
            let stats = handoff.stats();
            return ShutdownReport { stats, drained: stats.queued == 0 };
        }
        match answer.recv_timeout(remaining(deadline) + ANSWER_GRACE) {
            Ok(stats) => {
                // The uploader answered as its last act; its thread ends right after.
                join_briefly(thread);
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

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
