//! The `metrics` feature: operations and delivery counters through the `metrics` facade into
//! a real metrics-exporter-prometheus recorder, read back from its Prometheus text output.

mod support;

use std::collections::BTreeMap;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use support::{Collector, Gate, Reply};
use tinker_telemetry::DURATION_BUCKETS;
use tracing_subscriber::prelude::*;

const SESSION: &str = "export-session";

/// One sample line of the text format: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name && with.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {with:?}: {found:?}");
    found[0].2
}

fn labels_of<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a BTreeMap<String, String>> {
    samples.iter().filter(|(n, ..)| n == name).map(|(_, l, _)| l).collect()
}

#[test]
fn operations_and_counters_reach_a_prometheus_recorder() {
    // SESSION_START is held until the recorder is installed; the spans' batch then fails
    // once (a retry) and is refused (its events dropped as `rejected`).
    let gate = Gate::default();
    let collector =
        Collector::with_plan(vec![Reply::Held(gate.clone()), Reply::Status(503), Reply::Status(400)]);
    let (layer, guard) = collector.builder(SESSION).capture_span("checkpoint.save").build().unwrap();
    // The application installs its recorder after `build()`, once the uploader has already
    // taken SESSION_START and passed its counters to the (then no-op) recorder: the units
    // and descriptions must reach the new recorder all the same.
    collector.wait_requests(1);
    let handle = PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets_for_metric(Matcher::Suffix("duration".into()), DURATION_BUCKETS)
        .unwrap()
        .install_recorder()
        .unwrap();
    gate.open();
    collector.wait_requests(1).iter().for_each(|seen| assert!(seen.accepted));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        for i in 0..3 {
            let url = format!("https://tinker.example/api/v1/futures/3f2a9c1e-5b4e-4d7a-9c1e-{i:012}?wait=1");
            tracing::info_span!("http.request", method = "GET", url, status = 200).in_scope(|| {});
        }
        tracing::info_span!(
            "http.request",
            method = "POST",
            url = "https://tinker.example/api/v1/sampling_sessions/17/sample",
            status = 500
        )
        .in_scope(|| {});
        tracing::info_span!(
            "http.request",
            method = "POST",
            url = "https://tinker.example/api/v1/telemetry",
            error = "operation timed out"
        )
        .in_scope(|| {});
        for to in ["paused_rate_limit", "active"] {
            tracing::info_span!("queue.state_change", from = "x", to).in_scope(|| {});
        }
        // At least 30 ms: above the 0.025 s bucket, below 10 s (seconds, not milliseconds).
        tracing::info_span!("checkpoint.save", step = 7)
            .in_scope(|| std::thread::sleep(std::time::Duration::from_millis(30)));
    });
    let stats = guard.shutdown().stats;
    let text = handle.render();
    assert!(!text.contains("wait=1") && !text.contains("3f2a9c1e"), "no query, no id:\n{text}");
    let samples = parse(&text);

    // The families, their types and descriptions: the names dashboards and alerts query.
    let families: BTreeMap<&str, &str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split_once(' ').unwrap()).collect();
    let want = BTreeMap::from([
        ("http_client_request_duration_seconds", "histogram"),
        ("tinker_telemetry_events_delivered_total", "counter"),
        ("tinker_telemetry_events_dropped_total", "counter"),
        ("tinker_telemetry_operation_duration_seconds", "histogram"),
        ("tinker_telemetry_queue_depth", "gauge"),
        ("tinker_telemetry_queue_state_changes_total", "counter"),
        ("tinker_telemetry_requests_retried_total", "counter"),
    ]);
    assert_eq!(families, want, "{text}");
    for name in want.keys() {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} is described:\n{text}");
    }
    assert!(
        text.contains("# HELP http_client_request_duration_seconds Duration of HTTP client requests."),
        "{text}"
    );

    let http = "http_client_request_duration_seconds";
    let allowed = [
        "http_request_method",
        "url_template",
        "server_address",
        "server_port",
        "http_response_status_code",
        "error_type",
    ];
    for (name, labels, _) in samples.iter().filter(|(n, ..)| n.starts_with(http)) {
        assert!(labels.keys().all(|k| k == "le" || allowed.contains(&k.as_str())), "{name} {labels:?}");
    }
    let get = [
        ("http_request_method", "GET"),
        ("url_template", "/api/v1/futures/{id}"),
        ("server_address", "tinker.example"),
        ("server_port", "443"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(value(&samples, &format!("{http}_count"), &get), 3.0);
    let buckets: Vec<String> = labels_of(&samples, &format!("{http}_bucket"))
        .into_iter()
        .filter(|l| l.get("http_request_method").map(String::as_str) == Some("GET"))
        .map(|l| l["le"].clone())
        .collect();
    let mut bounds: Vec<String> = DURATION_BUCKETS.iter().map(f64::to_string).collect();
    bounds.push("+Inf".into());
    assert_eq!(buckets, bounds, "the bounds the recorder was given, as a histogram");
    assert_eq!(value(&samples, &format!("{http}_bucket"), &[get[0], ("le", "+Inf")]), 3.0);
    let failed = [
        ("url_template", "/api/v1/sampling_sessions/{id}/sample"),
        ("http_response_status_code", "500"),
        ("error_type", "500"),
    ];
    assert_eq!(value(&samples, &format!("{http}_count"), &failed), 1.0);
    let timed_out = labels_of(&samples, &format!("{http}_count"))
        .into_iter()
        .find(|l| l.get("error_type").map(String::as_str) == Some("timeout"))
        .expect("the timed-out request");
    assert!(!timed_out.contains_key("http_response_status_code"), "no response, no status: {timed_out:?}");
    assert!(
        labels_of(&samples, &format!("{http}_count"))
            .iter()
            .filter(|l| l.get("http_request_method").map(String::as_str) == Some("GET"))
            .all(|l| !l.contains_key("error_type")),
        "success has no error.type"
    );

    let ops = "tinker_telemetry_operation_duration_seconds_count";
    assert_eq!(value(&samples, ops, &[("operation", "queue.state_change")]), 2.0);
    assert_eq!(value(&samples, ops, &[("operation", "checkpoint.save")]), 1.0);
    let bucket = |le| {
        let name = "tinker_telemetry_operation_duration_seconds_bucket";
        value(&samples, name, &[("operation", "checkpoint.save"), ("le", le)])
    };
    assert_eq!((bucket("0.025"), bucket("10"), bucket("+Inf")), (0.0, 1.0, 1.0), "30 ms, in seconds");
    for to in ["paused_rate_limit", "active"] {
        assert_eq!(value(&samples, "tinker_telemetry_queue_state_changes_total", &[("to", to)]), 1.0);
    }
    assert!(stats.retries >= 1);
    // The 503 retried once, counted under its error type; every other type present at 0.
    assert_eq!(stats.retried.server_error, stats.retries, "{stats:?}");
    let retried = "tinker_telemetry_requests_retried_total";
    assert_eq!(value(&samples, retried, &[("error_type", "5xx")]), stats.retries as f64);
    assert_eq!(labels_of(&samples, retried).len(), 8, "5xx, 429, 408, timeout, connect, tls, dns, _OTHER");
    assert_eq!(value(&samples, "tinker_telemetry_events_delivered_total", &[]), stats.delivered as f64);
    // Every reason's series, the ones that never happened at 0.
    assert!(stats.dropped.rejected >= 1);
    assert_eq!(stats.dropped.total(), stats.dropped.rejected);
    for reason in
        ["queue_full", "rejected", "retries_exhausted", "too_large", "after_shutdown", "unsent_at_shutdown"]
    {
        let want = if reason == "rejected" { stats.dropped.rejected as f64 } else { 0.0 };
        assert_eq!(
            value(&samples, "tinker_telemetry_events_dropped_total", &[("reason", reason)]),
            want,
            "{reason}"
        );
    }
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.dropped.total(),
        "every event settled, so the counters above are whole"
    );
    assert_eq!(value(&samples, "tinker_telemetry_queue_depth", &[]), 0.0);
}
