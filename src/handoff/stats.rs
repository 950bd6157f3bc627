//! Counters a reporter keeps about what it did with its events: those the uploader writes,
//! and the [`Stats`] snapshot users read.

use std::sync::atomic::AtomicU64;

/// What happened to a reporter's events so far.
///
/// Every event the reporter took responsibility for is counted once in `accepted`, and ends in
/// exactly one of `delivered`, one of the `dropped` reasons, `summarized` or `queued` (waiting
/// or in flight). So, once the reporter is quiet,
/// `accepted == delivered + dropped.total() + summarized + queued`.
///
/// # Examples
/// ```
/// let stats = tinker_telemetry::Stats::default();
/// assert_eq!(stats.accepted, stats.delivered + stats.dropped.total() + stats.summarized + stats.queued);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Events captured by the layer or logged through the handle, including SESSION_START,
    /// SESSION_END and the events the crate makes itself (`telemetry.dropped`,
    /// `performance.summary`, `alert.error_spike`).
    pub accepted: u64,
    /// Events in requests the server answered with a 2xx status.
    pub delivered: u64,
    /// Events given up on, by reason.
    pub dropped: Dropped,
    /// Captured spans of a [`summary_only`](crate::Builder::summary_only) name: counted in
    /// the `performance.summary` events (and the metrics exporters) instead of sent.
    pub summarized: u64,
    /// Requests sent again after a retryable failure (network error, timeout, 408, 429, 5xx).
    pub retries: u64,
    /// Requests the server answered with a 2xx status.
    pub batches_sent: u64,
    /// Events waiting in the queue or in a request not yet answered.
    pub queued: u64,
    /// Bytes of those events' payloads: what their fields and text hold while they wait to
    /// be taken, then their JSON. Bounded by
    /// [`Builder::max_queue_bytes`](crate::Builder::max_queue_bytes).
    pub queued_bytes: u64,
}

/// Events given up on, by reason. See [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Dropped {
    /// The queue held `max_queue_size` events already. Reported to the server as a
    /// `telemetry.dropped` event once space returns.
    pub queue_full: u64,
    /// The server refused the request with a status that retrying cannot fix (400, 401, 403,
    /// 404, 422, other 4xx, 3xx).
    pub rejected: u64,
    /// Every retry failed.
    pub retries_exhausted: u64,
    /// The server answered 413 to a request holding this event alone.
    pub too_large: u64,
    /// The event arrived after the session ended or the reporter shut down.
    pub after_shutdown: u64,
    /// The drain deadline (`flush_timeout`) passed before the event could be sent.
    pub unsent_at_shutdown: u64,
}

impl Dropped {
    /// The sum of every reason.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.queue_full
            + self.rejected
            + self.retries_exhausted
            + self.too_large
            + self.after_shutdown
            + self.unsent_at_shutdown
    }
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
    pub(crate) summarized: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
}

/// The last delivery attempt that failed, in words: see
/// [`TelemetryHandle::last_delivery_error`](crate::TelemetryHandle::last_delivery_error).
/// Its text names the cause and never contains the API key or a URL's query.
///
/// # Examples
/// ```
/// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder().enabled(false).build()?;
/// if let Some(err) = guard.handle().last_delivery_error() {
///     eprintln!("telemetry is failing: {err}"); // "401 from the server: the API key was rejected"
/// }
/// # Ok::<(), tinker_telemetry::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryError {
    /// What kind of failure it was.
    pub kind: DeliveryErrorKind,
    /// The failure in words.
    pub message: String,
    /// When it happened.
    pub at: std::time::SystemTime,
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kind of a [`DeliveryError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryErrorKind {
    /// The server answered with a status that is not a success (the number).
    Status(u16),
    /// No answer within `http_timeout`.
    Timeout,
    /// The connection could not be made or was cut.
    Connect,
    /// The TLS handshake failed (an untrusted certificate, say).
    Tls,
    /// The host name could not be resolved.
    Dns,
    /// Anything else.
    Other,
}
