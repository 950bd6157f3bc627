//! The builder's metrics export options, one per feature: the `metrics` facade and an
//! OpenTelemetry `MeterProvider`.

#[cfg(feature = "opentelemetry")]
use std::sync::Arc;

use super::builder::Builder;

impl Builder {
    /// Records every operation (and the delivery counters) through the `metrics` facade,
    /// into whatever recorder the application installs; the crate installs none. Needs the
    /// `metrics` feature. Default: on with the feature.
    ///
    /// | metric | type | attributes |
    /// |---|---|---|
    /// | `http.client.request.duration` (s) | histogram | `http.request.method`, `url.template`, `server.address`, `server.port`, `http.response.status_code`, `error.type` |
    /// | `tinker_telemetry.operation.duration` (s) | histogram | `operation`, `error.type` |
    /// | `tinker_telemetry.queue.state_changes` (spans and events) | counter | `to` |
    /// | `tinker_telemetry.requests.retried` | counter | `error.type` |
    /// | `tinker_telemetry.events.delivered` | counter | |
    /// | `tinker_telemetry.events.dropped` | counter | `reason` |
    /// | `tinker_telemetry.queue.depth` | gauge (an UpDownCounter through OpenTelemetry) | |
    ///
    /// Each [`operation_label`](Builder::operation_label) adds an attribute of its name to
    /// both duration histograms.
    ///
    /// The recorder picks the histogram buckets: give it
    /// [`DURATION_BUCKETS`](crate::DURATION_BUCKETS). Install it before `build()`:
    /// operations recorded before it are lost, though the units and descriptions, the
    /// counters and the queue depth (totals over every reporter of the process) catch up
    /// with a recorder installed later.
    ///
    /// # Examples
    /// With metrics-exporter-prometheus (as `http_client_request_duration_seconds`,
    /// `tinker_telemetry_events_dropped_total`, …):
    /// ```no_run
    /// use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    /// use tinker_telemetry::{DURATION_BUCKETS, TinkerTelemetryLayer};
    ///
    /// let prometheus = PrometheusBuilder::new()
    ///     .with_recommended_naming(true)
    ///     .set_buckets_for_metric(Matcher::Suffix("duration".into()), DURATION_BUCKETS)?
    ///     .install_recorder()?; // or `.install()`, serving /metrics over HTTP
    /// let (layer, guard) = TinkerTelemetryLayer::builder()
    ///     .session_id("6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11")
    ///     .metrics(true) // the default with the feature
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics_facade = enabled;
        self
    }

    /// Records every operation (and the delivery counters) through a meter named
    /// `tinker-telemetry` from `provider`, the application's `SdkMeterProvider` say, with the
    /// metrics [`metrics`](Builder::metrics) lists; the durations are histograms in seconds
    /// with [`DURATION_BUCKETS`](crate::DURATION_BUCKETS) as bounds. Needs the
    /// `opentelemetry` feature. Default: none.
    ///
    /// # Examples
    /// ```
    /// let provider = opentelemetry::metrics::noop::NoopMeterProvider::new();
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().meter_provider(&provider);
    /// ```
    #[cfg(feature = "opentelemetry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn meter_provider(mut self, provider: &impl opentelemetry::metrics::MeterProvider) -> Self {
        let scope = opentelemetry::InstrumentationScope::builder(crate::export::otel::METER)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        self.sinks.push(Arc::new(move || Box::new(crate::export::otel::OtelSink::new(&meter))));
        self
    }
}
