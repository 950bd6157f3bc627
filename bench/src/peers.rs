//! One recorded HTTP request, the same for tinker-telemetry's aggregation and for its peers
//! (the `metrics` facade with metrics-exporter-prometheus, and the OpenTelemetry SDK's
//! histogram), shared by the `metrics` criterion bench and the `record` program that
//! callgrind is pointed at. The `i`-th record is `workload::REQUESTS[i % 20]`, with a
//! duration from `workload::durations()` and a 500 one time in 50.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use tinker_telemetry::{
    AnalysisBench, DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW, ExportBench,
};

use crate::workload::{
    BOUNDARIES_S, DURATIONS, REQUESTS, Request, SERVER_ADDRESS, durations, status, status_text, template,
};

/// The histogram's name, OpenTelemetry's for an HTTP client's request durations.
pub const NAME: &str = "http.client.request.duration";

/// What the peers are given as `url.template`: the template as a `&'static str`, the way a
/// program that knows its routes would label them, or the raw path templated by a copy of
/// the crate's rule into an owned label, the same work tinker-telemetry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Static,
    Templated,
}

/// The workload's durations, as `Duration`s and as seconds.
#[derive(Debug)]
pub struct Inputs {
    pub durations: Vec<Duration>,
    pub seconds: Vec<f64>,
    route: String,
}

impl Default for Inputs {
    fn default() -> Self {
        let durations = durations();
        let seconds = durations.iter().map(Duration::as_secs_f64).collect();
        Inputs { durations, seconds, route: String::new() }
    }
}

#[inline]
fn pick(i: u64) -> (&'static Request, usize) {
    (&REQUESTS[(i % REQUESTS.len() as u64) as usize], (i % DURATIONS as u64) as usize)
}

/// tinker-telemetry's analysis with the defaults: 256 keys, 5 errors in 10 s make a spike.
#[must_use]
pub fn tinker() -> AnalysisBench {
    AnalysisBench::new(DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW)
}

/// Records the `i`-th request through tinker-telemetry's aggregation: the raw path is
/// templated, its key found, the duration counted, a 500 run through the spike rule.
/// Returns whether it raised an alert.
#[inline]
pub fn record_tinker(t: &mut AnalysisBench, inputs: &Inputs, i: u64) -> bool {
    let (r, d) = pick(i);
    t.record_http(r.method, std::hint::black_box(r.path), status(i), inputs.durations[d])
}

/// Records the `i`-th request through one of tinker-telemetry's exporter sinks, as the
/// uploader hands it an operation: the route already templated (the analysis did that).
#[inline]
pub fn record_export(e: &mut ExportBench, inputs: &Inputs, i: u64) {
    let (r, d) = pick(i);
    e.record_http(r.method, std::hint::black_box(r.route), status(i), inputs.durations[d]);
}

/// A Prometheus recorder with recommended naming and the OpenTelemetry bucket bounds for
/// [`NAME`], not installed: use it with `metrics::with_local_recorder`.
#[must_use]
pub fn prometheus() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets_for_metric(Matcher::Full(NAME.into()), &BOUNDARIES_S)
        .expect("buckets are set")
        .build_recorder()
}

/// Records the `i`-th request through the `metrics` facade, to whatever recorder is
/// installed. Its Prometheus histograms buffer the sample; `PrometheusHandle::run_upkeep`
/// puts the buffered samples in their buckets.
#[inline]
pub fn record_metrics(inputs: &mut Inputs, route: Route, i: u64) {
    let (r, d) = pick(i);
    let code = status_text(status(i));
    match route {
        Route::Static => metrics::histogram!(NAME,
            "http.request.method" => r.method,
            "url.template" => std::hint::black_box(r.route),
            "http.response.status_code" => code,
            "server.address" => SERVER_ADDRESS)
        .record(inputs.seconds[d]),
        Route::Templated => {
            template(std::hint::black_box(r.path), &mut inputs.route);
            metrics::histogram!(NAME,
                "http.request.method" => r.method,
                "url.template" => inputs.route.clone(),
                "http.response.status_code" => code,
                "server.address" => SERVER_ADDRESS)
            .record(inputs.seconds[d]);
        }
    }
}

/// An OpenTelemetry meter provider with a periodic reader (every 60 s) whose exporter only
/// keeps the count it is given, and its f64 histogram [`NAME`] with the bounds of
/// [`BOUNDARIES_S`]. The counter holds, after the provider's shutdown, how many records
/// were exported.
#[must_use]
pub fn opentelemetry() -> (SdkMeterProvider, Histogram<f64>, Arc<AtomicU64>) {
    let exporter = CountingExporter::default();
    let exported = Arc::clone(&exporter.0);
    let reader = PeriodicReader::builder(exporter).with_interval(Duration::from_secs(60)).build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let histogram = provider
        .meter("tinker-bench")
        .f64_histogram(NAME)
        .with_unit("s")
        .with_boundaries(BOUNDARIES_S.to_vec())
        .build();
    (provider, histogram, exported)
}

/// Records the `i`-th request in an OpenTelemetry histogram, with the same four attributes.
#[inline]
pub fn record_opentelemetry(h: &Histogram<f64>, inputs: &mut Inputs, route: Route, i: u64) {
    let (r, d) = pick(i);
    let route_kv = match route {
        Route::Static => KeyValue::new("url.template", std::hint::black_box(r.route)),
        Route::Templated => {
            template(std::hint::black_box(r.path), &mut inputs.route);
            KeyValue::new("url.template", inputs.route.clone())
        }
    };
    h.record(
        inputs.seconds[d],
        &[
            KeyValue::new("http.request.method", r.method),
            route_kv,
            KeyValue::new("http.response.status_code", i64::from(status(i))),
            KeyValue::new("server.address", SERVER_ADDRESS),
        ],
    );
}

/// Keeps, at each export, the total count of the histograms' data points (cumulative, so
/// the last export holds everything recorded).
#[derive(Debug, Default)]
struct CountingExporter(Arc<AtomicU64>);

impl PushMetricExporter for CountingExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let mut total = 0;
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                if let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() {
                    total += h.data_points().map(|p| p.count()).sum::<u64>();
                }
            }
        }
        self.0.store(total, Relaxed);
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}
