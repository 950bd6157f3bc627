//! [`TelemetryHandle`]: logging, flushing and stats from anywhere in the program.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::reporter::{Reporter, ShutdownReport};
use crate::analysis::live::Live;
use crate::analysis::notify::SpikeCalls;
use crate::analysis::report::{OperationsSnapshot, UsageReport};
use crate::errors::classify::Classifier;
use crate::handoff::Handoff;
use crate::handoff::clock::Stamp;
use crate::handoff::control::deadline_in;
use crate::handoff::record::{Body, Record};
use crate::handoff::stats::{DeliveryError, Stats};
use crate::limits::{MAX_VALUE_BYTES, truncate_owned};
use crate::severity::Severity;

/// A cheap, cloneable handle to a reporter: log events directly, flush, wait for delivery,
/// read the counters, and end the session from any thread. `Clone + Send + Sync`; get one
/// from [`TelemetryGuard::handle`].
///
/// When telemetry is disabled every method is a no-op that returns at once. In a process
/// forked from the one that built the reporter, nothing is sent (the uploader thread stayed
/// in the parent) and every method that would wait returns at once.
///
/// [`TelemetryGuard::handle`]: crate::TelemetryGuard::handle
#[derive(Clone)]
pub struct TelemetryHandle {
    reporter: Option<Arc<Reporter>>,
    session_id: Arc<str>,
    /// What the uploader's analysis publishes.
    live: Option<Arc<Live>>,
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
        live: Arc<Live>,
    ) -> Self {
        let session_id = Arc::from(&*handoff.session_id);
        let reporter = Arc::new(Reporter::new(handoff, flush_timeout, classifier));
        TelemetryHandle { reporter: Some(reporter), session_id, live: Some(live) }
    }

    pub(crate) fn disabled(session_id: String) -> Self {
        TelemetryHandle { reporter: None, session_id: session_id.into(), live: None }
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
        if let Some(reporter) = self.reporter.as_ref().filter(|r| r.in_own_process()) {
            reporter.handoff.request_flush();
        }
    }

    /// Flushes, then waits until every event queued before the call has been delivered or
    /// finally dropped, for at most `timeout`. Returns whether that happened in time (always
    /// true when telemetry is disabled; false at once in a forked child).
    ///
    /// Blocks the calling thread; in async code use
    /// [`wait_until_drained_async`](Self::wait_until_drained_async).
    pub fn wait_until_drained(&self, timeout: Duration) -> bool {
        let Some(reporter) = &self.reporter else { return true };
        reporter.drain_by(deadline_in(timeout))
    }

    /// [`wait_until_drained`](Self::wait_until_drained) for async code: flushes when called,
    /// and returns a future that resolves once every event queued before the call is
    /// delivered or finally dropped, or `timeout` (counted from the call) has passed. The
    /// wait runs on a short-lived thread of its own, never on the runtime's threads; the
    /// future works with any executor.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # rt.block_on(async {
    /// use std::time::Duration;
    ///
    /// let handle = guard.handle();
    /// assert!(handle.wait_until_drained_async(Duration::from_secs(5)).await);
    /// # });
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn wait_until_drained_async(&self, timeout: Duration) -> impl Future<Output = bool> + Send + 'static {
        let deadline = deadline_in(timeout);
        let reporter = self.reporter.clone();
        let request = reporter.as_ref().and_then(|r| r.request_drain());
        async move {
            let Some(reporter) = reporter else { return true };
            if !reporter.in_own_process() {
                return false;
            }
            off_thread(move || reporter.wait_drained(request, deadline)).await.unwrap_or(false)
        }
    }

    /// Ends the session and drains, from any thread, without the guard: what dropping the
    /// [`TelemetryGuard`](crate::TelemetryGuard) does (SESSION_END, a flush, a wait for the
    /// uploader), bounded by `timeout` instead of `flush_timeout`.
    ///
    /// Once per reporter, whoever calls it: a second call, or the guard's drop, returns the
    /// first call's report at once; a call made while another is draining waits for that
    /// report (at most its own `timeout`). Events logged afterwards are counted as dropped.
    /// Blocks the calling thread; in async code use [`shutdown_async`](Self::shutdown_async).
    /// In a forked child it sends nothing and returns at once, with `drained` false.
    ///
    /// # Examples
    /// Ending the session from a worker thread, while `main` still holds the guard:
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// use std::time::Duration;
    ///
    /// let handle = guard.handle();
    /// let worker = std::thread::spawn(move || handle.shutdown(Duration::from_secs(5)));
    /// let report = worker.join().unwrap();
    /// assert!(report.drained);
    /// drop(guard); // returns at once: the session has ended
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        match &self.reporter {
            Some(reporter) => reporter.shutdown_by(deadline_in(timeout)),
            None => ShutdownReport { stats: Stats::default(), drained: true },
        }
    }

    /// [`shutdown`](Self::shutdown) for async code: ends the session when called (later
    /// events are counted as dropped, SESSION_END is queued), and returns a future that
    /// drains on a short-lived thread of its own, never blocking the runtime's threads, and
    /// resolves to the report once done or `timeout` (counted from the call) has passed.
    /// Works with any executor. A future dropped before it is polled leaves the drain to the
    /// guard's drop.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// # let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    /// # rt.block_on(async {
    /// use std::time::Duration;
    ///
    /// let handle = guard.handle();
    /// let report = handle.shutdown_async(Duration::from_secs(5)).await;
    /// assert_eq!(report.stats.dropped.total(), 0);
    /// # });
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn shutdown_async(&self, timeout: Duration) -> impl Future<Output = ShutdownReport> + Send + 'static {
        let deadline = deadline_in(timeout);
        let reporter = self.reporter.clone();
        if let Some(reporter) = &reporter {
            reporter.end_session();
        }
        async move {
            let Some(reporter) = reporter else {
                return ShutdownReport { stats: Stats::default(), drained: true };
            };
            if !reporter.in_own_process() {
                return reporter.shutdown_by(deadline);
            }
            let waiter = Arc::clone(&reporter);
            match off_thread(move || waiter.shutdown_by(deadline)).await {
                Some(report) => report,
                None => ShutdownReport { stats: reporter.handoff.stats(), drained: false },
            }
        }
    }

    /// The last delivery attempt that failed, in words that name the cause ("401 from the
    /// server: the API key was rejected", "TLS: invalid peer certificate: UnknownIssuer",
    /// "connect: connection refused"); `None` when none has failed (or telemetry is disabled).
    /// A later success does not clear it: compare [`DeliveryError::at`] with your own times.
    #[must_use]
    pub fn last_delivery_error(&self) -> Option<DeliveryError> {
        self.handoff().and_then(|h| h.last_error())
    }

    /// The reporter's counters now. See [`Stats`] for what they mean.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.handoff().map(|h| h.stats()).unwrap_or_default()
    }

    /// Every operation of the session so far, one entry per operation key (name, method,
    /// route template, [operation labels](crate::Builder::operation_label)), the most used
    /// first: its numbers in the last completed summary window (the `performance.summary`
    /// row sent for it) and since the session began, with when that window closed.
    ///
    /// As fresh as the uploader's last take, which comes every
    /// [`flush_interval`](crate::Builder::flush_interval), whenever
    /// [`flush_threshold`](crate::Builder::flush_threshold) events wait, at each summary and
    /// after a flush; [`wait_until_drained`](Self::wait_until_drained) returns after one
    /// that took everything queued before it, so a read after it sees the current state.
    /// Never blocks an emitting thread and holds up the uploader at most while a pointer is
    /// copied; the copy of the entries is made on the calling thread. Empty while the
    /// analysis is off ([`Builder::analysis`](crate::Builder::analysis)) or telemetry is
    /// disabled, and in a process forked from the one that built the reporter.
    ///
    /// # Examples
    /// Send work to the endpoint with the lower p95 over the last window:
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// let snapshot = guard.handle().operations();
    /// let p95 = |route| {
    ///     snapshot
    ///         .find("http.request", Some("POST"), Some(route))
    ///         .and_then(|op| op.window)
    ///         .map_or(0.0, |window| window.p95_ms)
    /// };
    /// let route = if p95("/a/sample") <= p95("/b/sample") { "/a/sample" } else { "/b/sample" };
    /// # let _ = route;
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    #[must_use]
    pub fn operations(&self) -> OperationsSnapshot {
        self.live().map(|live| live.snapshot()).unwrap_or_default()
    }

    /// What the uploader publishes, in the process that built the reporter (a forked child
    /// has no uploader, and its copy of the lock may have been taken when it forked).
    fn live(&self) -> Option<&Arc<Live>> {
        self.live.as_ref().filter(|_| self.reporter.as_ref().is_some_and(|r| r.in_own_process()))
    }

    /// The session's usage report: its ten most used operations (those
    /// `performance.summary`'s `top` names) with their numbers, and the totals over every
    /// operation. As fresh as [`operations`](Self::operations); empty while the analysis is
    /// off or telemetry is disabled.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// let usage = guard.handle().usage();
    /// for op in &usage.top {
    ///     println!("{:>8} {}", op.session.count, op.key.display());
    /// }
    /// println!("{} operations, {:.2} % failed", usage.count, usage.error_rate * 100.0);
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    #[must_use]
    pub fn usage(&self) -> UsageReport {
        self.live().map(|live| live.usage()).unwrap_or_default()
    }

    /// What became of the error spikes passed to the
    /// [`on_error_spike`](crate::Builder::on_error_spike) callback: calls that returned,
    /// that panicked, and spikes skipped while the callback was busy. All 0 without a
    /// callback or while telemetry is disabled.
    #[must_use]
    pub fn error_spike_calls(&self) -> SpikeCalls {
        self.live.as_ref().map(|live| live.spike_calls.read()).unwrap_or_default()
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
