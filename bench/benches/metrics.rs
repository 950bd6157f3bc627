//! What recording one HTTP request's duration costs, through tinker-telemetry's aggregation
//! (the uploader thread's work for one captured `http.request` span) and through its peers,
//! the `metrics` facade with metrics-exporter-prometheus and the OpenTelemetry SDK's
//! histogram, in one criterion run so that the ratios between them hold.
//!
//! ```text
//! cd bench && cargo bench --bench metrics -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every benchmark cycles through the same twenty requests (`tinker_telemetry_bench::workload`:
//! ids that template to five routes, durations from 2 ms to 8 s, a 500 one time in 50).
//! tinker-telemetry is given the raw path and templates it itself; the peers are given the
//! route template as a `&'static str` label, the way a program that knows its routes would
//! (`…/static_route`), and, so that they do the same work, the raw path templated by a copy
//! of the crate's rule into an owned label (`…/templated`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use tinker_telemetry::{AnalysisBench, DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW};
use tinker_telemetry_bench::workload::{
    BOUNDARIES_S, DURATIONS, REQUESTS, SERVER_ADDRESS, durations, status, status_text, template,
};

const NAME: &str = "http.client.request.duration";
/// Records between two upkeeps of the Prometheus recorder (which moves the samples its
/// histograms have buffered into their buckets).
const UPKEEP_EVERY: u64 = 1_000;

#[inline]
fn pick(i: u64) -> (&'static tinker_telemetry_bench::workload::Request, usize) {
    (&REQUESTS[(i % REQUESTS.len() as u64) as usize], (i % DURATIONS as u64) as usize)
}

fn benches(c: &mut Criterion) {
    let durations = durations();
    let seconds: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
    let mut g = c.benchmark_group("record");

    // tinker-telemetry: what the uploader does with one captured http.request span once it
    // has read its fields: template the path, find the key, count the duration in its
    // histogram, and on a 500 run the error-spike rule (defaults: 5 errors in 10 s).
    let mut tinker = AnalysisBench::new(DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW);
    let mut alerts = 0u64;
    g.bench_function("tinker/aggregate", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for i in 0..n {
                let (r, d) = pick(i);
                alerts += u64::from(tinker.record_http(r.method, black_box(r.path), status(i), durations[d]));
            }
            start.elapsed()
        })
    });
    eprintln!("[tinker] keys {}, alerts raised {alerts}", tinker.keys());

    // The `metrics` facade with the Prometheus recorder, histogram buckets set to the
    // OpenTelemetry bounds. Its histograms buffer raw samples and put them in buckets at
    // upkeep (every 5 s on the exporter's thread); `…/static_route` and `…/templated` time
    // that upkeep too, every 1,000 records, since it is the aggregation of what was recorded.
    let recorder = PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets_for_metric(Matcher::Full(NAME.into()), &BOUNDARIES_S)
        .expect("buckets are set")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let mut prometheus = |name: &str, upkeep_timed: bool, templated: bool| {
            let mut route = String::new();
            g.bench_function(name, |b| {
                b.iter_custom(|n| {
                    let mut timed = Duration::ZERO;
                    let mut done = 0;
                    while done < n {
                        let end = (done + UPKEEP_EVERY).min(n);
                        let start = Instant::now();
                        for i in done..end {
                            let (r, d) = pick(i);
                            let code = status_text(status(i));
                            if templated {
                                template(black_box(r.path), &mut route);
                                metrics::histogram!(NAME,
                                    "http.request.method" => r.method,
                                    "http.route" => route.clone(),
                                    "http.response.status_code" => code,
                                    "server.address" => SERVER_ADDRESS)
                                .record(seconds[d]);
                            } else {
                                metrics::histogram!(NAME,
                                    "http.request.method" => r.method,
                                    "http.route" => black_box(r.route),
                                    "http.response.status_code" => code,
                                    "server.address" => SERVER_ADDRESS)
                                .record(seconds[d]);
                            }
                        }
                        let recorded = start.elapsed();
                        let start = Instant::now();
                        handle.run_upkeep();
                        timed += if upkeep_timed { recorded + start.elapsed() } else { recorded };
                        done = end;
                    }
                    timed
                })
            });
        };
        prometheus("metrics/prometheus/static_route", true, false);
        prometheus("metrics/prometheus/static_route_no_upkeep", false, false);
        prometheus("metrics/prometheus/templated", true, true);
    });
    let rendered = handle.render();
    let series = rendered.lines().filter(|l| l.contains("_count{")).count();
    eprintln!("[metrics] {series} series rendered, {} bytes", rendered.len());

    // The OpenTelemetry SDK: an f64 histogram with the recommended bounds, behind a periodic
    // reader (60 s) whose exporter only counts what it is given; the record call does all of
    // the aggregation.
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
    let mut recorded = 0u64;
    let mut otel = |name: &str, templated: bool| {
        let mut route = String::new();
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                let start = Instant::now();
                for i in 0..n {
                    let (r, d) = pick(i);
                    let code = i64::from(status(i));
                    let route_kv = if templated {
                        template(black_box(r.path), &mut route);
                        KeyValue::new("http.route", route.clone())
                    } else {
                        KeyValue::new("http.route", black_box(r.route))
                    };
                    histogram.record(
                        seconds[d],
                        &[
                            KeyValue::new("http.request.method", r.method),
                            route_kv,
                            KeyValue::new("http.response.status_code", code),
                            KeyValue::new("server.address", SERVER_ADDRESS),
                        ],
                    );
                }
                recorded += n;
                start.elapsed()
            })
        });
    };
    otel("opentelemetry/histogram/static_route", false);
    otel("opentelemetry/histogram/templated", true);
    provider.shutdown().expect("the meter provider shuts down");
    let got = exported.load(Relaxed);
    eprintln!("[opentelemetry] recorded {recorded}, exported count {got}");
    g.finish();
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

criterion_group!(metrics, benches);
criterion_main!(metrics);
