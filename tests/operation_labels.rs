//! `Builder::operation_label`: a span field of the program's choosing as part of the
//! operation key everywhere the analysis shows operations (the snapshot, the
//! `performance.summary` rows, a real metrics-exporter-prometheus recorder, an OpenTelemetry
//! SDK meter provider with its in-memory exporter), bounded like the other labels, and
//! refused at `build()` when it names a redacted field.

mod support;

use std::collections::BTreeSet;

use metrics_exporter_prometheus::PrometheusBuilder;
use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use support::{Collector, PATIENCE};
use tinker_telemetry::TinkerTelemetryLayer;
use tracing_subscriber::prelude::*;

const SESSION: &str = "labels-session";
const ROUTE: &str = "/api/v1/forward_backward";

fn forward_backward(loss_fn: &str) {
    tracing::info_span!(
        "http.request",
        session_id = SESSION,
        method = "POST",
        path = ROUTE,
        status = 200,
        loss_fn
    )
    .in_scope(|| {});
}

/// The `loss_fn` attribute values of the OpenTelemetry HTTP duration points, with their counts.
fn otel_loss_fns(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
) -> Vec<(Option<String>, u64)> {
    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let metrics = exported.last().unwrap();
    let metric = metrics
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == "http.client.request.duration")
        .unwrap();
    let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() else {
        panic!("{:?}", metric.data())
    };
    let mut points: Vec<_> = h
        .data_points()
        .map(|p| {
            let loss_fn = p.attributes().find(|kv| kv.key.as_str() == "loss_fn").map(|kv| match &kv.value {
                Value::String(s) => s.to_string(),
                other => panic!("{other:?}"),
            });
            (loss_fn, p.count())
        })
        .collect();
    points.sort();
    points
}

/// The `loss_fn` label values of the Prometheus HTTP duration count series, with their counts.
fn prometheus_loss_fns(text: &str) -> Vec<(Option<String>, u64)> {
    let mut out: Vec<_> = text
        .lines()
        .filter(|l| l.starts_with("http_client_request_duration_seconds_count{"))
        .map(|l| {
            let (series, count) = l.rsplit_once(' ').unwrap();
            let loss_fn =
                series.split_once("loss_fn=\"").map(|(_, rest)| rest.split('"').next().unwrap().to_owned());
            (loss_fn, count.parse().unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn two_values_are_two_rows_everywhere_and_a_hundred_stay_bounded() {
    let prometheus = PrometheusBuilder::new().with_recommended_naming(true).install_recorder().unwrap();
    let exporter = InMemoryMetricExporter::default();
    let provider =
        SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
    let collector = Collector::start();
    let (layer, guard) =
        collector.builder(SESSION).operation_label("loss_fn").meter_provider(&provider).build().unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..3 {
            forward_backward("cross_entropy");
        }
        forward_backward("ppo");
    });
    assert!(handle.wait_until_drained(PATIENCE));

    // The snapshot: two entries of one route.
    let snapshot = handle.operations();
    let rows: Vec<(String, u64)> =
        snapshot.operations.iter().map(|o| (o.key.labels["loss_fn"].clone(), o.session.count)).collect();
    assert_eq!(rows, [("cross_entropy".to_owned(), 3), ("ppo".to_owned(), 1)]);
    assert!(snapshot.operations.iter().all(|o| o.key.route.as_deref() == Some(ROUTE)));
    // Prometheus and OpenTelemetry: two series.
    let two = vec![(Some("cross_entropy".to_owned()), 3), (Some("ppo".to_owned()), 1)];
    assert_eq!(prometheus_loss_fns(&prometheus.render()), two, "{}", prometheus.render());
    assert_eq!(otel_loss_fns(&provider, &exporter), two);

    // A hundred distinct values: 32 kept, the rest one `_OTHER`.
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            forward_backward(&format!("loss_{i}"));
        }
    });
    assert!(handle.wait_until_drained(PATIENCE));
    bounded_in_the_snapshot(&handle);
    let series = prometheus_loss_fns(&prometheus.render());
    assert_eq!(series.len(), 33, "{series:?}");
    assert_eq!(series.iter().map(|(_, n)| n).sum::<u64>(), 104);
    assert_eq!(otel_loss_fns(&provider, &exporter).len(), 33);

    drop(guard);
    summary_rows_carry_the_label(&collector);
}

/// The summary at SESSION_END: the same rows as the snapshot, the label as a field of each.
fn summary_rows_carry_the_label(collector: &Collector) {
    let events = collector.accepted_by_index();
    let summary = events.iter().find(|e| e["event_name"] == "performance.summary").unwrap();
    let rows = summary["event_data"]["operations"].as_array().unwrap();
    assert_eq!(rows.len(), 33);
    let ppo = rows.iter().find(|r| r["loss_fn"] == "ppo").unwrap();
    assert_eq!((ppo["route"].as_str(), ppo["count"].as_u64()), (Some(ROUTE), Some(1)));
    assert_eq!(rows.iter().find(|r| r["loss_fn"] == "cross_entropy").unwrap()["count"], 3);
    let top = summary["event_data"]["top"][0].as_str().unwrap();
    assert_eq!(top, format!("http.request POST {ROUTE} loss_fn=_OTHER"));
}

#[test]
fn a_redacted_field_a_field_every_operation_has_and_a_clashing_prometheus_label_are_refused() {
    for (label, reason) in [
        ("api_key", "redacted"),
        ("route", "every operation"),
        ("", "a span field"),
        // Prometheus writes `error.type` as `error_type`, and both labels of one series.
        ("error_type", "every operation"),
        ("http-request-method", "every operation"),
        ("loss.fn", "one Prometheus label"),
        ("le", "a meaning of its own"),
        ("quantile", "a meaning of its own"),
    ] {
        let err = TinkerTelemetryLayer::builder()
            .session_id(SESSION)
            .api_key(support::API_KEY)
            .base_url("http://127.0.0.1:9")
            .enabled(true)
            .operation_label("loss_fn")
            .operation_label(label)
            .build()
            .unwrap_err();
        assert_eq!(err.option(), Some("operation_label"), "{label}");
        assert!(err.to_string().contains(reason), "{label}: {err}");
    }
    let err = TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key(support::API_KEY)
        .base_url("http://127.0.0.1:9")
        .enabled(true)
        .redacted_fields(["loss"])
        .operation_label("loss_fn")
        .build()
        .unwrap_err();
    assert_eq!(err.option(), Some("operation_label"), "the program's own redaction list counts");
}

/// 32 values of `loss_fn` kept in the snapshot, the rest one `_OTHER` entry.
fn bounded_in_the_snapshot(handle: &tinker_telemetry::TelemetryHandle) {
    let values: BTreeSet<String> =
        handle.operations().operations.iter().map(|o| o.key.labels["loss_fn"].clone()).collect();
    assert_eq!(values.len(), 33, "32 values and _OTHER: {values:?}");
    assert!(values.contains("_OTHER") && values.contains("cross_entropy") && values.contains("ppo"));
    let other =
        handle.operations().operations.into_iter().find(|o| o.key.labels["loss_fn"] == "_OTHER").unwrap();
    assert_eq!(other.session.count, 70, "the 100 less the 30 kept after the first two");
}
