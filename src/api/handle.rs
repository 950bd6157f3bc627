//! [`TelemetryHandle`]: logging, flushing and stats from anywhere in the program.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::reporter::Reporter;
use crate::errors::classify::Classifier;
use crate::handoff::Handoff;
use crate::handoff::clock::Stamp;
use crate::handoff::control::deadline_in;
use crate::handoff::record::{Body, Record};
use crate::handoff::stats::Stats;
use crate::limits::{MAX_VALUE_BYTES, truncate_owned};
use crate::severity::Severity;

/// A cheap, cloneable handle to a reporter: log events directly, flush, wait for delivery and
/// read the counters. `Clone + Send + Sync`; get one from [`TelemetryGuard::handle`].
///
/// When telemetry is disabled every method is a no-op that returns at once.
///
/// [`TelemetryGuard::handle`]: crate::TelemetryGuard::handle
#[derive(Clone)]
pub struct TelemetryHandle {
    reporter: Option<Arc<Reporter>>,
    session_id: Arc<str>,
}

impl fmt::Debug for TelemetryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryHandle")
            .field("session_id", &self.session_id)
            .field("enabled", &self.reporter.is_some())
            .finish_non_exhaustive()
    }
}

impl TelemetryHandle {
    pub(crate) fn enabled(
        handoff: Arc<Handoff>,
        flush_timeout: Duration,
        classifier: Arc<Classifier>,
    ) -> Self {
        let session_id = Arc::from(&*handoff.session_id);
        let reporter = Arc::new(Reporter::new(handoff, flush_timeout, classifier));
        TelemetryHandle { reporter: Some(reporter), session_id }
    }

    pub(crate) fn disabled(session_id: String) -> Self {
        TelemetryHandle { reporter: None, session_id: session_id.into() }
    }

    pub(crate) fn reporter(&self) -> Option<&Arc<Reporter>> {
        self.reporter.as_ref()
    }

    pub(crate) fn handoff(&self) -> Option<&Arc<Handoff>> {
        self.reporter.as_ref().map(|r| &r.handoff)
    }

    /// Queues a `GENERIC_EVENT` named `event_name` with `event_data` as its payload.
    ///
    /// `event_data` should be a JSON object; `null` is sent as `{}` and any other value as
    /// `{"value": …}`. Keys that look secret are redacted (see
    /// [`Builder::redacted_fields`](crate::Builder::redacted_fields)). Never blocks.
    ///
    /// Returns whether the event was queued: false when telemetry is disabled, the queue is
    /// full (the drop is counted and reported), or the reporter has shut down.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// use tinker_telemetry::Severity;
    ///
    /// let handle = guard.handle();
    /// handle.log("cache.miss", serde_json::json!({"key": "user:123"}), Severity::Warning);
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn log(
        &self,
        event_name: impl Into<String>,
        event_data: serde_json::Value,
        severity: Severity,
    ) -> bool {
        let Some(handoff) = self.handoff() else { return false };
        let name = truncate_owned(event_name.into(), MAX_VALUE_BYTES).into_boxed_str();
        handoff.push(Record { time: Stamp::now(), severity, body: Body::Json { name, data: event_data } })
    }

    /// Asks the uploader to send everything queued now, without waiting for it.
    pub fn flush(&self) {
        if let Some(reporter) = &self.reporter {
            reporter.handoff.request_flush();
        }
    }

    /// Flushes, then waits until every event queued before the call has been delivered or
    /// finally dropped, for at most `timeout`. Returns whether that happened in time (always
    /// true when telemetry is disabled).
    ///
    /// Blocks the calling thread; in async code run it with `tokio::task::spawn_blocking`.
    pub fn wait_until_drained(&self, timeout: Duration) -> bool {
        let Some(reporter) = &self.reporter else { return true };
        reporter.drain_by(deadline_in(timeout))
    }

    /// [`wait_until_drained`](Self::wait_until_drained) as a future that waits on a thread
    /// of its own: flushes when called; `timeout` counts from the call.
    pub(super) fn wait_until_drained_async(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = bool> + Send + 'static {
        let deadline = deadline_in(timeout);
        let reporter = self.reporter.clone();
        let request = reporter.as_ref().and_then(|r| r.request_drain());
        async move {
            let Some(reporter) = reporter else { return true };
            off_thread(move || reporter.wait_drained(request, deadline)).await.unwrap_or(false)
        }
    }

    /// The reporter's counters now. See [`Stats`] for what they mean.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.handoff().map(|h| h.stats()).unwrap_or_default()
    }

    /// The session this reporter belongs to (a generated UUID for a session-less reporter).
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Tells reporters apart (0 when disabled).
    pub(crate) fn reporter_id(&self) -> usize {
        self.reporter.as_ref().map_or(0, |r| Arc::as_ptr(r) as usize)
    }

    /// Whether telemetry is enabled for this reporter.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.reporter.is_some()
    }
}

/// Runs `wait` on a short-lived thread of its own, started when the future is first
/// polled, so that an async caller never blocks its executor's threads. `None` when no
/// thread could be started or `wait` panicked.
pub(super) async fn off_thread<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The name keeps the panic hook from waiting on this thread's own panics.
    let spawned = std::thread::Builder::new().name("tinker-telemetry-drain".into()).spawn(move || {
        let _ = tx.send(wait());
    });
    match spawned {
        Ok(_) => rx.await.ok(),
        Err(_) => None,
    }
}
