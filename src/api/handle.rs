//! [`TelemetryHandle`]: logging, flushing and stats from anywhere in the program.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use crate::errors::classify::Classifier;
use crate::handoff::Handoff;
use crate::handoff::clock::Stamp;
use crate::handoff::control::{Control, deadline_in, remaining};
use crate::handoff::record::{Body, Record};
use crate::handoff::stats::{DeliveryError, Stats};
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
    handoff: Option<Arc<Handoff>>,
    session_id: Arc<str>,
    pub(crate) flush_timeout: Duration,
    pub(crate) classifier: Arc<Classifier>,
    /// Whether this reporter's panic hook is installed.
    pub(crate) panic_hook: Arc<AtomicBool>,
}

impl fmt::Debug for TelemetryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryHandle")
            .field("session_id", &self.session_id)
            .field("enabled", &self.handoff.is_some())
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
        let panic_hook = Arc::new(AtomicBool::new(false));
        TelemetryHandle { handoff: Some(handoff), session_id, flush_timeout, classifier, panic_hook }
    }

    pub(crate) fn disabled(session_id: String) -> Self {
        TelemetryHandle {
            handoff: None,
            session_id: session_id.into(),
            flush_timeout: Duration::ZERO,
            classifier: Arc::default(),
            panic_hook: Arc::default(),
        }
    }

    pub(crate) fn handoff(&self) -> Option<&Arc<Handoff>> {
        self.handoff.as_ref()
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
        let Some(handoff) = &self.handoff else { return false };
        let name = truncate_owned(event_name.into(), MAX_VALUE_BYTES).into_boxed_str();
        handoff.push(Record { time: Stamp::now(), severity, body: Body::Json { name, data: event_data } })
    }

    /// Asks the uploader to send everything queued now, without waiting for it.
    pub fn flush(&self) {
        if let Some(handoff) = &self.handoff {
            handoff.request_flush();
        }
    }

    /// Flushes, then waits until every event queued before the call has been delivered or
    /// finally dropped, for at most `timeout`. Returns whether that happened in time (always
    /// true when telemetry is disabled).
    ///
    /// Blocks the calling thread; in async code run it with `tokio::task::spawn_blocking`.
    pub fn wait_until_drained(&self, timeout: Duration) -> bool {
        let Some(handoff) = &self.handoff else { return true };
        let deadline = deadline_in(timeout);
        let (tx, rx) = sync_channel(1);
        if !handoff.send_control(Control::Flush(Some(tx))) {
            // The uploader has stopped: drained if it settled everything before it did.
            return handoff.stats().queued == 0;
        }
        match rx.recv_timeout(remaining(deadline)) {
            Ok(target) => handoff.wait_watermark(target, deadline),
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => handoff.stats().queued == 0,
        }
    }

    /// The last delivery attempt that failed, in words that name the cause ("401 from the
    /// server: the API key was rejected", "TLS: invalid peer certificate: UnknownIssuer",
    /// "connect: connection refused"); `None` when none has failed (or telemetry is disabled).
    /// A later success does not clear it: compare [`DeliveryError::at`] with your own times.
    #[must_use]
    pub fn last_delivery_error(&self) -> Option<DeliveryError> {
        self.handoff.as_ref().and_then(|h| h.last_error())
    }

    /// The reporter's counters now. See [`Stats`] for what they mean.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.handoff.as_ref().map(|s| s.stats()).unwrap_or_default()
    }

    /// The session this reporter belongs to (a generated UUID for a session-less reporter).
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Tells reporters apart (0 when disabled).
    pub(crate) fn reporter_id(&self) -> usize {
        self.handoff.as_ref().map_or(0, |s| Arc::as_ptr(s) as usize)
    }

    /// Whether telemetry is enabled for this reporter.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.handoff.is_some()
    }
}
