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
    /// The same requests by the failure that made them sent again.
    pub retried: Retried,
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

#[cfg(test)]
impl Stats {
    /// The counters of `n` requests sent again after a 5xx, for tests.
    pub(crate) fn retried_after_server_errors(n: u64) -> Self {
        Stats { retries: n, retried: Retried { server_error: n, ..Retried::default() }, ..Stats::default() }
    }
}

/// Requests sent again, by the failure that made them sent again. See [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Retried {
    /// A 5xx status.
    pub server_error: u64,
    /// A 429 status.
    pub rate_limited: u64,
    /// A 408 status.
    pub request_timeout: u64,
    /// No answer within `http_timeout`.
    pub timeout: u64,
    /// The connection could not be made or was cut.
    pub connect: u64,
    /// The TLS handshake failed.
    pub tls: u64,
    /// The host name could not be resolved.
    pub dns: u64,
    /// Any other failure without a status.
    pub other: u64,
}

impl Retried {
    /// The sum of every cause: [`Stats::retries`].
    #[must_use]
    pub fn total(&self) -> u64 {
        self.by_cause().iter().sum()
    }

    /// The counts in [`RETRY_CAUSES`] order.
    pub(crate) fn by_cause(&self) -> [u64; RETRY_CAUSES] {
        [
            self.server_error,
            self.rate_limited,
            self.request_timeout,
            self.timeout,
            self.connect,
            self.tls,
            self.dns,
            self.other,
        ]
    }

    pub(crate) fn from_causes(c: [u64; RETRY_CAUSES]) -> Self {
        let [server_error, rate_limited, request_timeout, timeout, connect, tls, dns, other] = c;
        Retried { server_error, rate_limited, request_timeout, timeout, connect, tls, dns, other }
    }
}

/// How many causes [`Retried`] tells apart.
pub(crate) const RETRY_CAUSES: usize = 8;

/// The index in [`Retried::by_cause`] of a retry after a failure of `kind`.
pub(crate) fn retry_cause(kind: DeliveryErrorKind) -> usize {
    match kind {
        DeliveryErrorKind::Status(429) => 1,
        DeliveryErrorKind::Status(408) => 2,
        DeliveryErrorKind::Status(_) => 0,
        DeliveryErrorKind::Timeout => 3,
        DeliveryErrorKind::Connect => 4,
        DeliveryErrorKind::Tls => 5,
        DeliveryErrorKind::Dns => 6,
        DeliveryErrorKind::Other => 7,
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
    /// [`Retried`]'s counts, by [`retry_cause`]; their sum is [`Stats::retries`].
    pub(crate) retried: [AtomicU64; RETRY_CAUSES],
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
