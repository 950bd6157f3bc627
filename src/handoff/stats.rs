//! Counters a reporter keeps about what it did with its events: those the uploader writes,
//! and the [`Stats`] snapshot users read.

/// What happened to a reporter's events so far.
///
/// Every event the reporter took responsibility for is counted once in `accepted`, and ends in
/// exactly one of `delivered`, one of the `dropped` reasons, `summarized`, `spool.spooled`
/// (left on disk, with a [spool](crate::Builder::spool_dir), for this process to send once
/// the server returns or for the next one) or `queued`
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
///     eprintln!("{} events went to disk rather than being dropped", stats.spool.spooled);
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SpoolStats {
    /// This reporter's events left in the spool: unsent when the drain deadline passed, or out
    /// of retries, while their batch was on disk. Counted here instead of in [`Dropped`]; the
    /// next process sends them, or this one (from the spool, counted in `replayed`) when
    /// their retries ran out while it lives.
    pub spooled: u64,
    /// Events read from the spool and delivered: earlier runs', and this reporter's own
    /// after their retries ran out.
    pub replayed: u64,
    /// Events removed from the spool without being delivered (earlier runs', or this
    /// reporter's own once on disk), by reason.
    pub dropped: SpoolDropped,
    /// Spool files skipped because they could not be read as a batch: empty, truncated,
    /// NUL-filled, a bad checksum, a foreign name, a symlink, too large, or of a newer format
    /// version (that one is left in place for the version that wrote it; the others are
    /// removed).
    pub bad_files: u64,
}

/// Why an event was removed from the spool without being delivered: the one list of spool
/// drop reasons, which [`SpoolDropped`], the `telemetry.dropped` reports and the exporters'
/// `reason` label follow. (They are not [`DropReason`]s: [`Dropped`] counts this reporter's
/// events lost from memory; an event on disk was counted `spooled` when it was its own, or
/// was an earlier run's.)
///
/// # Examples
/// ```
/// use tinker_telemetry::SpoolDropReason;
/// assert_eq!(SpoolDropReason::OverSize.name(), "spool_over_size");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SpoolDropReason {
    /// Their file was older than [`spool_max_age`](crate::Builder::spool_max_age).
    TooOld,
    /// The spool was past [`spool_max_bytes`](crate::Builder::spool_max_bytes): the oldest
    /// files went first.
    OverSize,
    /// The server refused them with a status retrying cannot fix (a 4xx), as
    /// [`DropReason::Rejected`].
    Rejected,
    /// The server answered 413 to their batch.
    TooLarge,
}

impl SpoolDropReason {
    /// Every reason, in the order reports and exporters list them (after the
    /// [`DropReason`]s).
    pub const ALL: [SpoolDropReason; 4] = [
        SpoolDropReason::TooOld,
        SpoolDropReason::OverSize,
        SpoolDropReason::Rejected,
        SpoolDropReason::TooLarge,
    ];

    /// The reason's name on the wire (`telemetry.dropped`'s `by_reason`) and in the
    /// exporters' `reason` label: `spool_` and the name of its field in [`SpoolDropped`].
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            SpoolDropReason::TooOld => "spool_too_old",
            SpoolDropReason::OverSize => "spool_over_size",
            SpoolDropReason::Rejected => "spool_rejected",
            SpoolDropReason::TooLarge => "spool_too_large",
        }
    }
}

/// Events removed from the spool without being delivered, by reason. See [`SpoolStats`]
/// and [`SpoolDropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SpoolDropped {
    /// [`SpoolDropReason::TooOld`].
    pub too_old: u64,
    /// [`SpoolDropReason::OverSize`].
    pub over_size: u64,
    /// [`SpoolDropReason::Rejected`].
    pub rejected: u64,
    /// [`SpoolDropReason::TooLarge`].
    pub too_large: u64,
}

impl SpoolDropped {
    /// The drops of one reason.
    #[must_use]
    pub fn get(&self, reason: SpoolDropReason) -> u64 {
        match reason {
            SpoolDropReason::TooOld => self.too_old,
            SpoolDropReason::OverSize => self.over_size,
            SpoolDropReason::Rejected => self.rejected,
            SpoolDropReason::TooLarge => self.too_large,
        }
    }

    /// Every reason with its drops, in [`SpoolDropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (SpoolDropReason, u64)> + '_ {
        SpoolDropReason::ALL.into_iter().map(|reason| (reason, self.get(reason)))
    }

    /// The sum of every reason.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }

    /// The counts `count` gives each reason.
    pub(crate) fn from_fn(mut count: impl FnMut(SpoolDropReason) -> u64) -> Self {
        SpoolDropped {
            too_old: count(SpoolDropReason::TooOld),
            over_size: count(SpoolDropReason::OverSize),
            rejected: count(SpoolDropReason::Rejected),
            too_large: count(SpoolDropReason::TooLarge),
        }
    }

    /// The drops of each reason beyond those of `before`.
    pub(crate) fn since(&self, before: &SpoolDropped) -> SpoolDropped {
        SpoolDropped::from_fn(|reason| self.get(reason).saturating_sub(before.get(reason)))
    }
}

/// Why an event was given up on: the one list of drop reasons, which [`Dropped`], the
/// `telemetry.dropped` reports and the exporters' `reason` label all follow.
///
/// # Examples
/// ```
/// use tinker_telemetry::DropReason;
/// assert_eq!(DropReason::QueueFull.name(), "queue_full");
/// assert_eq!(DropReason::ALL.len(), 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue held `max_queue_size` events already. Reported to the server as a
    /// `telemetry.dropped` event once space returns.
    QueueFull,
    /// The server refused the request with a status that retrying cannot fix (400, 401, 403,
    /// 404, 422, other 4xx, 3xx).
    Rejected,
    /// Every retry failed.
    RetriesExhausted,
    /// The server answered 413 to a request holding this event alone.
    TooLarge,
    /// The event arrived after the session ended or the reporter shut down.
    AfterShutdown,
    /// The drain deadline (`flush_timeout`) passed before the event could be sent.
    UnsentAtShutdown,
}

impl DropReason {
    /// Every reason, in the order reports and exporters list them.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::Rejected,
        DropReason::RetriesExhausted,
        DropReason::TooLarge,
        DropReason::AfterShutdown,
        DropReason::UnsentAtShutdown,
    ];

    /// The reason's name on the wire (`telemetry.dropped`'s `by_reason`) and in the
    /// exporters' `reason` label: the name of its field in [`Dropped`].
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Rejected => "rejected",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::TooLarge => "too_large",
            DropReason::AfterShutdown => "after_shutdown",
            DropReason::UnsentAtShutdown => "unsent_at_shutdown",
        }
    }
}

/// Events given up on, by reason. See [`Stats`] and [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Dropped {
    /// [`DropReason::QueueFull`].
    pub queue_full: u64,
    /// [`DropReason::Rejected`].
    pub rejected: u64,
    /// [`DropReason::RetriesExhausted`].
    pub retries_exhausted: u64,
    /// [`DropReason::TooLarge`].
    pub too_large: u64,
    /// [`DropReason::AfterShutdown`].
    pub after_shutdown: u64,
    /// [`DropReason::UnsentAtShutdown`].
    pub unsent_at_shutdown: u64,
}

impl Dropped {
    /// The drops of one reason.
    #[must_use]
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::Rejected => self.rejected,
            DropReason::RetriesExhausted => self.retries_exhausted,
            DropReason::TooLarge => self.too_large,
            DropReason::AfterShutdown => self.after_shutdown,
            DropReason::UnsentAtShutdown => self.unsent_at_shutdown,
        }
    }

    /// Every reason with its drops, in [`DropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().map(|reason| (reason, self.get(reason)))
    }

    /// The sum of every reason.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }

    /// The drops of each reason beyond those of `before` (none where `before` has more).
    pub(crate) fn since(&self, before: &Dropped) -> Dropped {
        Dropped::from_fn(|reason| self.get(reason).saturating_sub(before.get(reason)))
    }

    /// The counts `count` gives each reason.
    pub(crate) fn from_fn(mut count: impl FnMut(DropReason) -> u64) -> Self {
        Dropped {
            queue_full: count(DropReason::QueueFull),
            rejected: count(DropReason::Rejected),
            retries_exhausted: count(DropReason::RetriesExhausted),
            too_large: count(DropReason::TooLarge),
            after_shutdown: count(DropReason::AfterShutdown),
            unsent_at_shutdown: count(DropReason::UnsentAtShutdown),
        }
    }
}

#[cfg(test)]
impl Stats {
    /// The counters of `n` requests sent again after a 5xx, for tests.
    pub(crate) fn retried_after_server_errors(n: u64) -> Self {
        Stats { retries: n, retried: Retried { server_error: n, ..Retried::default() }, ..Stats::default() }
    }
}

/// The failure that made a request be sent again: the one list of retry causes, which
/// [`Retried`] and the exporters' `error.type` label follow. The uploader decides the cause
/// of each retry; the counters only count it.
///
/// # Examples
/// ```
/// use tinker_telemetry::RetryCause;
/// assert_eq!(RetryCause::RateLimited.error_type(), "429");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RetryCause {
    /// A 5xx status.
    ServerError,
    /// A 429 status.
    RateLimited,
    /// A 408 status.
    RequestTimeout,
    /// No answer within `http_timeout`.
    Timeout,
    /// The connection could not be made or was cut.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The host name could not be resolved.
    Dns,
    /// Any other failure without a status.
    Other,
}

impl RetryCause {
    /// Every cause, in the order the exporters list them.
    pub const ALL: [RetryCause; 8] = [
        RetryCause::ServerError,
        RetryCause::RateLimited,
        RetryCause::RequestTimeout,
        RetryCause::Timeout,
        RetryCause::Connect,
        RetryCause::Tls,
        RetryCause::Dns,
        RetryCause::Other,
    ];

    /// The cause as the exporters' `error.type` label has it, after the OpenTelemetry
    /// conventions: `5xx` for any server error status, the status for 429 and 408, the
    /// failure's kind otherwise, `_OTHER` for anything else.
    #[must_use]
    pub const fn error_type(self) -> &'static str {
        match self {
            RetryCause::ServerError => "5xx",
            RetryCause::RateLimited => "429",
            RetryCause::RequestTimeout => "408",
            RetryCause::Timeout => "timeout",
            RetryCause::Connect => "connect",
            RetryCause::Tls => "tls",
            RetryCause::Dns => "dns",
            RetryCause::Other => "_OTHER",
        }
    }
}

/// Requests sent again, by the failure that made them sent again. See [`Stats`] and
/// [`RetryCause`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Retried {
    /// [`RetryCause::ServerError`].
    pub server_error: u64,
    /// [`RetryCause::RateLimited`].
    pub rate_limited: u64,
    /// [`RetryCause::RequestTimeout`].
    pub request_timeout: u64,
    /// [`RetryCause::Timeout`].
    pub timeout: u64,
    /// [`RetryCause::Connect`].
    pub connect: u64,
    /// [`RetryCause::Tls`].
    pub tls: u64,
    /// [`RetryCause::Dns`].
    pub dns: u64,
    /// [`RetryCause::Other`].
    pub other: u64,
}

impl Retried {
    /// The retries of one cause.
    #[must_use]
    pub fn get(&self, cause: RetryCause) -> u64 {
        match cause {
            RetryCause::ServerError => self.server_error,
            RetryCause::RateLimited => self.rate_limited,
            RetryCause::RequestTimeout => self.request_timeout,
            RetryCause::Timeout => self.timeout,
            RetryCause::Connect => self.connect,
            RetryCause::Tls => self.tls,
            RetryCause::Dns => self.dns,
            RetryCause::Other => self.other,
        }
    }

    /// Every cause with its retries, in [`RetryCause::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (RetryCause, u64)> + '_ {
        RetryCause::ALL.into_iter().map(|cause| (cause, self.get(cause)))
    }

    /// The sum of every cause: [`Stats::retries`].
    #[must_use]
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }

    /// The counts `count` gives each cause.
    pub(crate) fn from_fn(mut count: impl FnMut(RetryCause) -> u64) -> Self {
        Retried {
            server_error: count(RetryCause::ServerError),
            rate_limited: count(RetryCause::RateLimited),
            request_timeout: count(RetryCause::RequestTimeout),
            timeout: count(RetryCause::Timeout),
            connect: count(RetryCause::Connect),
            tls: count(RetryCause::Tls),
            dns: count(RetryCause::Dns),
            other: count(RetryCause::Other),
        }
    }
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
