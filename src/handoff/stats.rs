//! Counters a reporter keeps about what it did with its events: those the uploader writes,
//! and the [`Stats`] snapshot users read.

use std::sync::atomic::AtomicU64;

/// What happened to a reporter's events so far.
///
/// Every event the reporter took responsibility for is counted once in `accepted`, and ends in
/// exactly one of `delivered`, one of the `dropped` reasons, `summarized`, `spool.spooled`
/// (left on disk for the next run, with a [spool](crate::Builder::spool_dir)) or `queued`
/// (waiting or in flight). So, once the reporter is quiet,
/// `accepted == delivered + dropped.total() + summarized + spool.spooled + queued`.
///
/// # Examples
/// ```
/// let stats = tinker_telemetry::Stats::default();
/// let settled = stats.delivered + stats.dropped.total() + stats.summarized + stats.spool.spooled;
/// assert_eq!(stats.accepted, settled + stats.queued);
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
    /// What the [spool](crate::Builder::spool_dir) kept, sent again and lost: all zero
    /// without one.
    pub spool: SpoolStats,
}

/// The spool's counters: see [`Builder::spool_dir`](crate::Builder::spool_dir).
///
/// # Examples
/// ```
/// let stats = tinker_telemetry::Stats::default();
/// if stats.spool.spooled > 0 {
///     eprintln!("{} events wait on disk for the next run", stats.spool.spooled);
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SpoolStats {
    /// This reporter's events left in the spool for the next process: unsent when the drain
    /// deadline passed, or out of retries, while their batch was on disk. Counted here instead
    /// of in [`Dropped`].
    pub spooled: u64,
    /// Events of earlier runs (read from the spool) that this reporter delivered.
    pub replayed: u64,
    /// Events of earlier runs removed from the spool without being delivered, by reason.
    pub dropped: SpoolDropped,
    /// Spool files skipped because they could not be read as a batch: empty, truncated,
    /// NUL-filled, a bad checksum, a foreign name, a symlink, too large, or of a newer format
    /// version (that one is left in place for the version that wrote it; the others are
    /// removed).
    pub bad_files: u64,
}

/// Events removed from the spool without being delivered, by reason. See [`SpoolStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SpoolDropped {
    /// Their file was older than [`spool_max_age`](crate::Builder::spool_max_age).
    pub too_old: u64,
    /// The spool was past [`spool_max_bytes`](crate::Builder::spool_max_bytes): the oldest
    /// files went first.
    pub over_size: u64,
    /// The server refused them with a status retrying cannot fix (a 4xx), as
    /// [`Dropped::rejected`].
    pub rejected: u64,
    /// The server answered 413 to their batch.
    pub too_large: u64,
}

impl SpoolDropped {
    /// The sum of every reason.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.too_old + self.over_size + self.rejected + self.too_large
    }
}

/// The spool's counters, written by the uploader thread.
#[derive(Debug, Default)]
pub(crate) struct SpoolCounters {
    pub(crate) spooled: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) too_old: AtomicU64,
    pub(crate) over_size: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) bad_files: AtomicU64,
}

impl SpoolCounters {
    /// A snapshot.
    pub(crate) fn stats(&self) -> SpoolStats {
        let n = |c: &AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        SpoolStats {
            spooled: n(&self.spooled),
            replayed: n(&self.replayed),
            dropped: SpoolDropped {
                too_old: n(&self.too_old),
                over_size: n(&self.over_size),
                rejected: n(&self.rejected),
                too_large: n(&self.too_large),
            },
            bad_files: n(&self.bad_files),
        }
    }

    /// Adds `n` to `counter` (one of these).
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
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
        DeliveryErrorKind::Other | DeliveryErrorKind::Spool => 7,
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
    /// The spool's counters.
    pub(crate) spool: SpoolCounters,
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
    /// The spool could not be used (a directory others can write, a full disk, an fsync
    /// error): it is off for the rest of the run, and delivery goes on from memory.
    Spool,
}
