//! The builder's analysis options: summaries, error-spike alerts and their callback,
//! summary-only spans, operation labels and the cap on distinct operations. Their defaults are set with every other option's in
//! `builder.rs`, and checked with them in `check.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::builder::Builder;
use crate::analysis::notify::SpikeCallback;
use crate::analysis::report::ErrorSpike;
use crate::analysis::spike::SpikeRule;

impl Builder {
    /// Whether the reporter analyses its captured spans: `performance.summary` events every
    /// [`summary_interval`](Builder::summary_interval) and
    /// [`error_spike`](Builder::error_spike) alerts. Metrics exporters (the `metrics` and
    /// `opentelemetry` features) record either way. Default: on.
    pub fn analysis(mut self, enabled: bool) -> Self {
        self.analysis.enabled = enabled;
        self
    }

    /// How often a `performance.summary` event is sent: per operation (a captured span's
    /// name, method and route template), its count, errors, error rate, mean, p50, p95, p99
    /// and largest duration over the interval, plus the ten most used operations and the
    /// process's memory, CPU time and threads. None is sent for an interval in which no
    /// captured span closed; one more goes just before SESSION_END. Default: 60 s.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().summary_interval(Duration::from_secs(10));
    /// ```
    pub fn summary_interval(mut self, interval: Duration) -> Self {
        self.analysis.summary_interval = interval;
        self
    }

    /// Raise one `alert.error_spike` event (severity ERROR) when one operation fails
    /// `threshold` times within a sliding `window`, then none for that operation until a
    /// window has passed since. Default: 5 errors in 10 s.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().error_spike(10, Duration::from_secs(30));
    /// ```
    pub fn error_spike(mut self, threshold: usize, window: Duration) -> Self {
        self.analysis.spike = Some(SpikeRule { threshold, window });
        self
    }

    /// No error-spike alerts. Default: alerts on (see [`error_spike`](Builder::error_spike)).
    pub fn no_error_spike(mut self) -> Self {
        self.analysis.spike = None;
        self
    }

    /// The most distinct operations (name, method and route template) the analysis keeps;
    /// operations past it are counted together under the name `_other`. Default: 256.
    pub fn max_operations(mut self, operations: usize) -> Self {
        self.analysis.max_operations = operations;
        self
    }

    /// Makes the span field `field` part of every operation's key: spans of one name and
    /// route with different values of it are counted apart, in
    /// [`TelemetryHandle::operations`](crate::TelemetryHandle::operations), in
    /// `performance.summary` rows and alerts (a field named after the label), and as an
    /// attribute of the same name in the metrics exporters. For the dimensions a program
    /// chooses: `forward_backward` by `loss_fn`, sampling by `model`. Each call adds one label.
    ///
    /// Bounded like the other labels: past 32 distinct values of one label (per reporter) a
    /// new value counts as `_OTHER`, as does one longer than 64 bytes; a span without the
    /// field has no value for it. Text, integer and boolean fields are read (a float is a
    /// measurement, not a dimension). `build()` refuses, with a [`BuildError`] naming
    /// `operation_label`, a field the redaction list covers (its values are never sent), one
    /// given twice, the names every operation has already (`name`, `method`, `route`, the
    /// row's numbers, the exporters' attributes, also as Prometheus writes them: `error_type`
    /// is `error.type`), two labels Prometheus would write as one (`loss.fn` and `loss_fn`),
    /// and `le` and `quantile`, which Prometheus gives a meaning of its own. Default: none.
    ///
    /// # Examples
    /// ```
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().operation_label("loss_fn");
    /// // tracing::info_span!("forward_backward", session_id, loss_fn = "cross_entropy")
    /// ```
    ///
    /// [`BuildError`]: crate::BuildError
    pub fn operation_label(mut self, field: impl Into<String>) -> Self {
        self.analysis.operation_labels.push(field.into().into_boxed_str());
        self
    }

    /// Calls `callback` with every error spike as its `alert.error_spike` is made (see
    /// [`error_spike`](Builder::error_spike)), so that the program can back off or fail over
    /// without polling: once per spike, like the alert. It runs on a thread of its own, never
    /// on a thread that emitted a span nor on the uploader's. A callback that panics is
    /// counted and called again for the next spike; one that blocks holds up only itself: at
    /// most 16 spikes wait for it, later ones are skipped and counted
    /// ([`TelemetryHandle::error_spike_calls`](crate::TelemetryHandle::error_spike_calls)).
    /// Never called while alerts are off ([`no_error_spike`](Builder::no_error_spike),
    /// [`analysis(false)`](Builder::analysis)). Default: none.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let degraded = Arc::new(AtomicBool::new(false));
    /// let flag = Arc::clone(&degraded);
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().on_error_spike(move |spike| {
    ///     if spike.route.as_deref() == Some("/api/v1/sample") {
    ///         flag.store(true, Ordering::Relaxed);
    ///     }
    /// });
    /// ```
    pub fn on_error_spike<F>(mut self, callback: F) -> Self
    where
        F: Fn(&ErrorSpike) + Send + Sync + 'static,
    {
        self.analysis.on_error_spike = Some(SpikeCallback(Arc::new(callback)));
        self
    }

    /// Span names counted in `performance.summary` events (and by the metrics exporters)
    /// instead of being sent one event each: for high-volume spans whose numbers matter more
    /// than each occurrence. Each name is also captured (see
    /// [`capture_span`](Builder::capture_span)); HTTP spans all go by `http.request`. They
    /// are counted in [`Stats::summarized`](crate::Stats::summarized). With
    /// [`analysis(false)`](Builder::analysis) no summary is made and they are sent as usual.
    /// Default: none.
    ///
    /// # Examples
    /// ```
    /// // Every HTTP request in the summaries, none as an event of its own.
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().summary_only(["http.request"]);
    /// ```
    pub fn summary_only<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.analysis.summary_only = names.into_iter().map(|n| n.into().into_boxed_str()).collect();
        self
    }
}
