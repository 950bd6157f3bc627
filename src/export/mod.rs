//! Metrics export, on the uploader thread: every operation the analysis reads (and the
//! reporter's delivery counters) recorded into the metrics system the application runs,
//! each behind its cargo feature. The crate installs nothing global: the application picks
//! its exporter (a `metrics` recorder, an OpenTelemetry `MeterProvider`) and the crate
//! records through it.
//!
//! ```text
//! analysis/analyzer.rs ─▶ Sink::operation / Sink::delivery ─▶ metrics.rs  `metrics` facade
//!                                                          └▶ otel.rs     OpenTelemetry meter
//! names.rs: the metric names, units, attributes and bucket bounds both follow
//! ```

#[cfg(any(feature = "metrics", feature = "opentelemetry"))]
pub(crate) mod bench;
pub(crate) mod names;
#[cfg(any(feature = "metrics", feature = "opentelemetry"))]
pub(crate) mod series;

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
