//! The `opentelemetry` feature: operations and delivery counters through the application's
//! `SdkMeterProvider`, read back from an in-memory exporter.

mod support;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use support::{Collector, Reply};
use tinker_telemetry::DURATION_BUCKETS;
use tracing_subscriber::prelude::*;

const SESSION: &str = "otel-session";

fn attrs<'a>(kv: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = kv.map(|kv| (kv.key.to_string(), kv.value.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn s(k: &str, v: &str) -> (String, Value) {
    (k.to_owned(), Value::from(v.to_owned()))
}

#[test]
fn operations_and_counters_reach_an_sdk_meter_provider() {
    let exporter = InMemoryMetricExporter::default();
    let provider =
        SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
    // SESSION_START fails once (a retry), then is refused (dropped as `rejected`).
    let collector = Collector::with_plan(vec![Reply::Status(503), Reply::Status(400)]);
    let (layer, guard) = collector.builder(SESSION).meter_provider(&provider).metrics(false).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        for _ in 0..2 {
            tracing::info_span!(
                "http.request",
                method = "GET",
                url = "https://tinker.example/api/v1/futures/77?x=1",
                status = 200
            )
            .in_scope(|| std::thread::sleep(std::time::Duration::from_millis(20)));
        }
        tracing::info_span!(
            "http.request",
            method = "POST",
            url = "https://tinker.example:8443/api/v1/sessions/5/heartbeat",
            status = 503
        )
        .in_scope(|| {});
        tracing::info_span!("queue.state_change", to = "paused_capacity").in_scope(|| {});
    });
    let stats = guard.shutdown().stats;
    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let scope = exported
        .last()
        .unwrap()
        .scope_metrics()
        .find(|s| s.scope().name() == "tinker-telemetry")
        .expect("the crate's meter");
    assert_eq!(scope.scope().version(), Some(env!("CARGO_PKG_VERSION")));
    let metric = |name: &str| -> &Metric {
        scope.metrics().find(|m| m.name() == name).unwrap_or_else(|| panic!("{name}"))
    };

    let http = metric("http.client.request.duration");
    assert_eq!(http.unit(), "s");
    let AggregatedMetrics::F64(MetricData::Histogram(h)) = http.data() else { panic!("{:?}", http.data()) };
    let points: Vec<_> = h.data_points().collect();
    assert_eq!(points.len(), 2, "one series per method, route, status");
    let get = points.iter().find(|p| p.count() == 2).expect("the two GETs");
    assert_eq!(get.bounds().collect::<Vec<_>>(), DURATION_BUCKETS, "explicit bounds");
    assert!(get.min().unwrap() >= 0.02 && get.sum() >= 0.04, "seconds: {:?} {}", get.min(), get.sum());
    let counts: Vec<u64> = get.bucket_counts().collect();
    assert_eq!(counts.len(), DURATION_BUCKETS.len() + 1);
    assert_eq!(
        (counts[..2].iter().sum::<u64>(), counts.iter().sum::<u64>()),
        (0, 2),
        "20 ms each: {counts:?}"
    );
    assert_eq!(
        attrs(get.attributes()),
        vec![
            s("http.request.method", "GET"),
            ("http.response.status_code".to_owned(), Value::I64(200)),
            s("server.address", "tinker.example"),
            ("server.port".to_owned(), Value::I64(443)),
            s("url.template", "/api/v1/futures/{id}"),
        ]
    );
    let post = points.iter().find(|p| p.count() == 1).unwrap();
    assert_eq!(
        attrs(post.attributes()),
        vec![
            s("error.type", "503"),
            s("http.request.method", "POST"),
            ("http.response.status_code".to_owned(), Value::I64(503)),
            s("server.address", "tinker.example"),
            ("server.port".to_owned(), Value::I64(8443)),
            s("url.template", "/api/v1/sessions/{id}/heartbeat"),
        ]
    );

    let AggregatedMetrics::F64(MetricData::Histogram(other)) =
        metric("tinker_telemetry.operation.duration").data()
    else {
        panic!()
    };
    let point = other.data_points().next().unwrap();
    assert_eq!((point.count(), attrs(point.attributes())), (1, vec![s("operation", "queue.state_change")]));
    let sum = |name: &str, with: &[(String, Value)]| -> u64 {
        let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric(name).data() else { panic!("{name}") };
        sum.data_points().filter(|p| attrs(p.attributes()) == with).map(|p| p.value()).sum()
    };
    assert_eq!(sum("tinker_telemetry.queue.state_changes", &[s("to", "paused_capacity")]), 1);
    assert!(stats.retries >= 1);
    assert!(stats.dropped.rejected >= 1 && stats.dropped.total() == stats.dropped.rejected, "{stats:?}");
    assert_eq!(stats.retried.server_error, stats.retries, "{stats:?}");
    assert_eq!(sum("tinker_telemetry.requests.retried", &[s("error.type", "5xx")]), stats.retries);
    assert_eq!(sum("tinker_telemetry.events.delivered", &[]), stats.delivered);
    for reason in
        ["queue_full", "rejected", "retries_exhausted", "too_large", "after_shutdown", "unsent_at_shutdown"]
    {
        let AggregatedMetrics::U64(MetricData::Sum(dropped)) =
            metric("tinker_telemetry.events.dropped").data()
        else {
            panic!()
        };
        let want = if reason == "rejected" { stats.dropped.rejected } else { 0 };
        assert!(
            dropped
                .data_points()
                .any(|p| attrs(p.attributes()) == vec![s("reason", reason)] && p.value() == want),
            "{reason}"
        );
    }
    let AggregatedMetrics::I64(MetricData::Sum(depth)) = metric("tinker_telemetry.queue.depth").data() else {
        panic!()
    };
    assert!(!depth.is_monotonic());
    assert_eq!(depth.data_points().next().unwrap().value(), 0, "nothing left queued");
}

/// Every attribute value of the points of the metric `name`, by attribute.
fn values_of(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
    name: &str,
    key: &str,
) -> Vec<Value> {
    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let metric = exported
        .last()
        .unwrap()
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("{name}"));
    let attributes: Vec<Vec<KeyValue>> = match metric.data() {
        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
            h.data_points().map(|p| p.attributes().cloned().collect()).collect()
        }
        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
            sum.data_points().map(|p| p.attributes().cloned().collect()).collect()
        }
        other => panic!("{other:?}"),
    };
    let mut out: Vec<Value> =
        attributes.iter().flatten().filter(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone()).collect();
    out.sort_by_key(|v| v.to_string());
    out.dedup();
    out
}

#[test]
fn labels_stay_bounded_and_clean_whatever_the_program_records() {
    let exporter = InMemoryMetricExporter::default();
    let provider =
        SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
    let collector = Collector::start();
    let (layer, guard) = collector
        .builder(SESSION)
        .meter_provider(&provider)
        .metrics(false)
        .max_operations(2)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        // Four routes past a cap of two keys.
        for route in ["/r/a", "/r/b", "/r/c", "/r/d"] {
            tracing::info_span!("http.request", method = "GET", path = route, status = 200).in_scope(|| {});
        }
        // A hundred error types, hosts and ports on one route.
        for i in 0..100 {
            let (error_type, host) = (format!("e{i}"), format!("h{i}.example"));
            let port = 1000 + i;
            tracing::info_span!("http.request", method = "GET", path = "/r/a", host, port, error.type = error_type)
                .in_scope(|| {});
        }
        // Credentials in a host field, and a status no HTTP server sends.
        tracing::info_span!(
            "http.request",
            method = "GET",
            path = "/r/a",
            host = "user:hunter2@h0.example",
            status = 200
        )
        .in_scope(|| {});
        tracing::info_span!("http.request", method = "GET", path = "/r/a", status = 1234).in_scope(|| {});
        // Queue state changes as events, forty states.
        for i in 0..40 {
            tracing::info!(event_name = "queue.state_change", to = format!("s{i}").as_str());
        }
    });
    guard.shutdown();
    let events = collector.accepted_by_index();
    assert!(!format!("{events:?}").contains("hunter2"), "a credential reached the server");

    let http = "http.client.request.duration";
    let string = |v: &[&str]| -> Vec<Value> { v.iter().map(|s| Value::from(s.to_string())).collect() };
    assert_eq!(
        values_of(&provider, &exporter, http, "url.template"),
        string(&["/r/a", "/r/b", "_other"]),
        "routes past the cap fold"
    );
    let types = values_of(&provider, &exporter, http, "error.type");
    assert_eq!(types.len(), 65, "64 error types and _OTHER: {types:?}");
    assert!(types.contains(&Value::from("_OTHER")));
    let hosts = values_of(&provider, &exporter, http, "server.address");
    assert_eq!(hosts.len(), 33, "32 hosts and _OTHER: {hosts:?}");
    assert!(hosts.iter().all(|h| !h.to_string().contains("hunter2") && !h.to_string().contains('@')));
    assert_eq!(values_of(&provider, &exporter, http, "server.port").len(), 16, "16 ports, then none");
    let statuses = values_of(&provider, &exporter, http, "http.response.status_code");
    assert_eq!(statuses, vec![Value::I64(200)], "1234 is no status");
    let states = values_of(&provider, &exporter, "tinker_telemetry.queue.state_changes", "to");
    assert_eq!(states.len(), 33, "32 states from events, and _OTHER: {states:?}");
    assert!(states.contains(&Value::from("s0")) && states.contains(&Value::from("_OTHER")));
}

/// A meter provider whose histograms panic when recorded into: an application's exporter
/// with a bug.
struct PanickingProvider;

struct PanickingInstruments;

struct Panics;

impl opentelemetry::metrics::SyncInstrument<f64> for Panics {
    fn measure(&self, _: f64, _: &[KeyValue]) {
        panic!("the application's meter failed");
    }
}

impl opentelemetry::metrics::InstrumentProvider for PanickingInstruments {
    fn f64_histogram(
        &self,
        _: opentelemetry::metrics::HistogramBuilder<'_, opentelemetry::metrics::Histogram<f64>>,
    ) -> opentelemetry::metrics::Histogram<f64> {
        opentelemetry::metrics::Histogram::new(std::sync::Arc::new(Panics))
    }
}

impl opentelemetry::metrics::MeterProvider for PanickingProvider {
    fn meter_with_scope(&self, _: opentelemetry::InstrumentationScope) -> opentelemetry::metrics::Meter {
        opentelemetry::metrics::Meter::new(std::sync::Arc::new(PanickingInstruments))
    }
}

#[test]
fn a_meter_that_panics_turns_the_analysis_off_and_loses_nothing() {
    let collector = Collector::start();
    let (layer, guard) = collector
        .builder(SESSION)
        .meter_provider(&PanickingProvider)
        .metrics(false)
        .summary_only(["http.request"])
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        for i in 0..5 {
            tracing::info_span!("http.request", method = "GET", path = "/a", status = 200, i).in_scope(|| {});
        }
        tracing::info!(event_name = "after", "still delivered");
    });
    let stats = guard.shutdown().stats;
    let events = collector.accepted_by_index();
    let requests = events.iter().filter(|e| e["event_name"] == "http.request").count();
    assert_eq!(requests, 5, "summary-only spans are sent once the analysis is off");
    assert!(events.iter().any(|e| e["event_name"] == "after"));
    assert!(events.iter().all(|e| e["event_name"] != "performance.summary"));
    assert_eq!(events.last().unwrap()["event"], "SESSION_END");
    assert_eq!((stats.delivered, stats.summarized, stats.dropped.total()), (8, 0, 0), "{stats:?}");
}
