//! [`TelemetryGuard`]: ends the session and drains the queue when the program ends.

use std::fmt;
use std::thread::JoinHandle;

use super::handle::TelemetryHandle;
use super::reporter::ShutdownReport;
use crate::handoff::control::deadline_in;
use crate::handoff::stats::Stats;

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
/// When the session was already ended through a handle ([`TelemetryHandle::shutdown`]) it
/// returns at once; in a process forked from the one that built it, it sends nothing and
/// returns at once.
///
/// `std::process::exit` runs no destructors: the guard never drops, and whatever is queued,
/// SESSION_END included, is lost. Call [`shutdown`](TelemetryGuard::shutdown) (or
/// [`TelemetryHandle::shutdown`]) before `exit`, or return from `main`.
///
/// Events captured after the guard is gone are counted as dropped.
#[must_use = "dropping the guard ends the session at once; hold it until the program ends"]
pub struct TelemetryGuard {
    handle: TelemetryHandle,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = self.handle.reporter().is_some_and(|r| !r.shut_down());
        f.debug_struct("TelemetryGuard").field("handle", &self.handle).field("running", &running).finish()
    }
}

impl TelemetryGuard {
    pub(crate) fn enabled(handle: TelemetryHandle, thread: JoinHandle<()>) -> Self {
        if let Some(reporter) = handle.reporter() {
            reporter.set_uploader(thread);
        }
        TelemetryGuard { handle }
    }

    pub(crate) fn disabled(handle: TelemetryHandle) -> Self {
        TelemetryGuard { handle }
    }

    /// A handle for logging and flushing from anywhere; it stays usable after the guard is
    /// gone, but what it logs then is counted as dropped.
    #[must_use]
    pub fn handle(&self) -> TelemetryHandle {
        self.handle.clone()
    }

    /// Ends the session and drains the queue now, returning the final counters. Does what
    /// dropping the guard does, and tells you how it went. When the session was already
    /// ended through a handle, returns that shutdown's report.
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
    pub fn shutdown(self) -> ShutdownReport {
        self.finish()
    }

    fn finish(&self) -> ShutdownReport {
        match self.handle.reporter() {
            Some(reporter) => reporter.shutdown_by(deadline_in(reporter.flush_timeout)),
            None => ShutdownReport { stats: Stats::default(), drained: true },
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
