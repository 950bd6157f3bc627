//! A way in for the benchmarks in `bench/`: what one HTTP operation costs each exporter's
//! sink on the uploader thread, without the uploader around it. Hidden from the docs; not
//! part of the API.

use std::time::Duration;

use crate::analysis::sink::Sink;

/// One exporter's sink, driven directly.
#[doc(hidden)]
#[derive(Debug)]
pub struct ExportBench {
    sink: Box<dyn Sink>,
}

impl ExportBench {
    /// The `metrics` facade's sink, recording into the recorder current on the calling thread.
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn metrics() -> Self {
        ExportBench { sink: Box::new(super::metrics::MetricsSink::default()) }
    }

    /// The OpenTelemetry sink, with instruments from a meter of `provider`.
    #[cfg(feature = "opentelemetry")]
    #[must_use]
    pub fn opentelemetry(provider: &impl opentelemetry::metrics::MeterProvider) -> Self {
        ExportBench { sink: Box::new(super::otel::OtelSink::new(&provider.meter(super::otel::METER))) }
    }

    /// Records one HTTP request to the route template `route`; a `status` of 400 or more
    /// fails it with the error type `"500"`, as the analysis's bench does.
    pub fn record_http(&mut self, method: &str, route: &str, status: u16, duration: Duration) {
        self.sink.operation(&crate::analysis::bench::http(method, route, status, duration));
    }
}
