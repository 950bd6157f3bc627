//! Analysis through the layer, over real HTTP on 127.0.0.1: `performance.summary` events per
//! window and before SESSION_END, `alert.error_spike` events, summary-only spans, and what
//! they save on the wire.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Collector, PATIENCE};
use tracing_subscriber::prelude::*;

const SESSION: &str = "analysis-session";

fn http(method: &str, path: &str, status: u16) {
    tracing::info_span!("http.request", session_id = SESSION, method, path, status).in_scope(|| {});
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_name"] == name).collect()
}

#[test]
fn summaries_per_window_and_before_session_end() {
    let collector = Collector::start();
    let interval = Duration::from_millis(400);
    let (layer, guard) = collector.builder(SESSION).summary_interval(interval).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    let started = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..20 {
            http("GET", &format!("/api/v1/futures/3f2a9c1e-5b4e-4d7a-9c1e-{i:012}?wait=1"), 200);
        }
        http("POST", "/api/v1/sampling_sessions/17/sample", 500);
        http("POST", "/api/v1/sampling_sessions/18/sample", 200);
        tracing::info_span!(
            "queue.state_change",
            session_id = SESSION,
            from = "active",
            to = "paused_rate_limit"
        )
        .in_scope(|| {});
        // Past the first window, then a quiet window with nothing to summarise.
        std::thread::sleep(interval * 3);
        http("GET", "/api/v1/futures/9", 200);
    });
    assert!(guard.handle().wait_until_drained(PATIENCE));
    drop(guard);
    let events = collector.accepted_by_index();
    let summaries = named(&events, "performance.summary");
    assert_eq!(summaries.len(), 2, "one for the first window, none for the quiet ones, one at the end");
    assert!(started.elapsed() >= interval * 3);
    let first = &summaries[0];
    assert_eq!(first["event"], "GENERIC_EVENT");
    assert_eq!(first["severity"], "INFO");
    let data = &first["event_data"];
    let window = data["window_s"].as_f64().unwrap();
    assert!((0.3..1.5).contains(&window), "the first window is about one interval: {window}");
    let ops = data["operations"].as_array().unwrap();
    let get = &ops[0];
    assert_eq!(get["name"], "http.request");
    assert_eq!(get["method"], "GET");
    assert_eq!(get["route"], "/api/v1/futures/{id}", "ids replaced, query gone");
    assert_eq!((get["count"].as_u64(), get["errors"].as_u64()), (Some(20), Some(0)));
    for field in ["avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate"] {
        assert!(get[field].as_f64().unwrap() >= 0.0, "{field}");
    }
    let post = ops.iter().find(|o| o["method"] == "POST").unwrap();
    assert_eq!(post["route"], "/api/v1/sampling_sessions/{id}/sample", "two paths, one operation");
    assert_eq!(
        (post["count"].as_u64(), post["errors"].as_u64(), post["error_rate"].as_f64()),
        (Some(2), Some(1), Some(0.5))
    );
    let queue = ops.iter().find(|o| o["name"] == "queue.state_change").unwrap();
    assert_eq!(queue["count"], 1);
    assert!(queue.get("route").is_none());
    assert_eq!(data["top"][0], "http.request GET /api/v1/futures/{id}");
    assert_eq!(data["top"].as_array().unwrap().len(), 3);
    let process = &data["process"];
    if cfg!(target_os = "linux") {
        assert!(process["resident_memory_bytes"].as_u64().unwrap() > 1_000_000);
        assert!(process["threads"].as_u64().unwrap() >= 2, "this thread and the uploader's");
        assert!(process["cpu_time_s"].as_f64().is_some());
    }
    assert!(process.get("tokio").is_none(), "built outside a runtime: {process}");
    let last = &summaries[1]["event_data"];
    assert_eq!(last["operations"].as_array().unwrap().len(), 1, "only the last window's operation");
    assert_eq!(last["operations"][0]["count"], 1);
    let end = events.iter().position(|e| e["event"] == "SESSION_END").unwrap();
    let last_at = events.iter().position(|e| e == summaries[1]).unwrap();
    assert!(last_at < end, "the last summary goes before SESSION_END");
}

#[test]
fn five_failures_of_one_operation_raise_one_alert() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..4 {
            http("GET", &format!("/api/v1/models/{i}"), 503);
        }
        // Another operation's failures do not count towards this one's spike.
        for _ in 0..4 {
            http("POST", "/api/v1/telemetry", 500);
        }
        tracing::info_span!(
            "http.request",
            session_id = SESSION,
            method = "GET",
            path = "/api/v1/models/9",
            error = "operation timed out"
        )
        .in_scope(|| {});
        for _ in 0..10 {
            http("GET", "/api/v1/models/5", 500);
        }
    });
    drop(guard);
    let events = collector.accepted_by_index();
    let alerts = named(&events, "alert.error_spike");
    assert_eq!(alerts.len(), 1, "one alert per operation per window: {alerts:#?}");
    let alert = alerts[0];
    assert_eq!(alert["severity"], "ERROR");
    let data = &alert["event_data"];
    assert_eq!(data["operation"], "http.request");
    assert_eq!(data["method"], "GET");
    assert_eq!(data["route"], "/api/v1/models/{id}");
    assert_eq!(data["errors"], 5);
    assert_eq!(data["window_s"], 10.0);
    assert_eq!(
        data["error_types"],
        serde_json::json!([{"type": "503", "count": 4}, {"type": "timeout", "count": 1}])
    );
    assert!(data["first_error_at"].as_str().unwrap().ends_with('Z'));
    // It follows the span that made the spike.
    let at = events.iter().position(|e| e == alert).unwrap();
    assert_eq!(events[at - 1]["event_data"]["error"], "operation timed out");
}

/// Requests and request bytes the server sees for `spans` HTTP spans.
fn wire_cost(spans: usize, summary_only: bool) -> (usize, usize, Value) {
    let collector = Collector::start();
    // Generous bounds: 100,000 events take seconds to deliver on a loaded machine.
    let mut builder =
        collector.builder(SESSION).max_queue_size(spans + 10).flush_timeout(Duration::from_secs(120));
    if summary_only {
        builder = builder.summary_only(["http.request"]);
    }
    let (layer, guard) = builder.build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        for i in 0..spans {
            let status = if i % 100 == 0 { 500 } else { 200 };
            tracing::info_span!("http.request", method = "POST", path = "/api/v1/forward_backward", status)
                .in_scope(|| {});
        }
    });
    assert!(guard.handle().wait_until_drained(Duration::from_secs(120)));
    let stats = guard.shutdown().stats;
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    let seen = collector.seen();
    let bytes = seen.iter().map(|s| serde_json::to_vec(&s.body).unwrap().len()).sum();
    let events = collector.accepted_by_index();
    let summary = named(&events, "performance.summary").last().map(|s| s["event_data"].clone()).unwrap();
    if summary_only {
        assert_eq!(stats.summarized, spans as u64);
        assert_eq!(stats.accepted, stats.delivered + stats.summarized);
        assert_eq!(named(&events, "http.request").len(), 0, "summarised, not sent");
    } else {
        assert_eq!(stats.summarized, 0);
        assert_eq!(named(&events, "http.request").len(), spans);
    }
    (seen.len(), bytes, summary)
}

#[test]
fn summary_only_spans_are_counted_not_sent() {
    const SPANS: usize = 100_000;
    let (requests, bytes, _) = wire_cost(SPANS, false);
    let (requests_summarized, bytes_summarized, summary) = wire_cost(SPANS, true);
    println!(
        "{SPANS} http spans: {requests} requests, {bytes} bytes; summary-only: {requests_summarized} requests, {bytes_summarized} bytes"
    );
    assert!(requests >= SPANS / 100, "one request per 100 events at most: {requests}");
    assert!(
        requests_summarized <= 4,
        "SESSION_START, the alerts and summary, SESSION_END: {requests_summarized}"
    );
    assert!(bytes_summarized * 1000 < bytes, "{bytes_summarized} vs {bytes}");
    let counted: u64 =
        summary["operations"].as_array().unwrap().iter().map(|o| o["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, SPANS as u64, "every span is in the summary");
    assert_eq!(summary["operations"][0]["errors"], (SPANS / 100) as u64);
}

#[test]
fn spikes_are_timed_by_when_the_spans_closed() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).error_spike(5, Duration::from_secs(1)).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Five requests opened 300 ms apart (1.2 s from first to last), all failing at once.
        let spans: Vec<_> = (0..5)
            .map(|_| {
                let span = tracing::info_span!(
                    "http.request",
                    session_id = SESSION,
                    method = "GET",
                    path = "/slow",
                    status = 504
                );
                std::thread::sleep(Duration::from_millis(300));
                span
            })
            .collect();
        drop(spans);
    });
    drop(guard);
    let events = collector.accepted_by_index();
    assert_eq!(named(&events, "alert.error_spike").len(), 1, "five failures within a second of each other");
}

#[test]
fn summary_only_spans_are_never_lost() {
    // Sessionless: no SESSION_END, the last summary goes at shutdown.
    let collector = Collector::start();
    let (layer, guard) =
        collector.builder(SESSION).sessionless().summary_only(["http.request"]).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..10 {
            http("GET", "/a", 200);
        }
    });
    let stats = guard.shutdown().stats;
    assert_eq!(stats.summarized, 10);
    let events = collector.accepted_by_index();
    let summaries = named(&events, "performance.summary");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["event_data"]["operations"][0]["count"], 10);

    // Without summaries, summary-only spans are sent as events.
    let collector = Collector::start();
    let (layer, guard) =
        collector.builder(SESSION).analysis(false).summary_only(["http.request"]).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..10 {
            http("GET", "/a", 200);
        }
    });
    let stats = guard.shutdown().stats;
    assert_eq!(stats.summarized, 0);
    let events = collector.accepted_by_index();
    assert_eq!(named(&events, "http.request").len(), 10);
    assert!(named(&events, "performance.summary").is_empty());
}

#[test]
fn a_summary_interval_past_any_clock_means_one_summary_at_the_end() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).summary_interval(Duration::MAX).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || http("GET", "/a", 200));
    let stats = guard.shutdown().stats;
    assert_eq!((stats.delivered, stats.queued), (4, 0), "START, the span, the summary, END: {stats:?}");
}

#[test]
fn summaries_measure_the_run_queue_of_the_runtime_the_reporter_was_built_in() {
    let collector = Collector::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (layer, guard) = {
        let _in_runtime = runtime.enter();
        collector.builder(SESSION).build().unwrap()
    };
    // Both workers busy until the session has ended, and five tasks queued behind them.
    let (started, busy) = std::sync::mpsc::channel();
    let release = std::sync::Arc::new(std::sync::Barrier::new(3));
    for _ in 0..2 {
        let (started, release) = (started.clone(), release.clone());
        runtime.spawn(async move {
            started.send(()).unwrap();
            release.wait();
        });
    }
    busy.recv().unwrap();
    busy.recv().unwrap();
    for _ in 0..5 {
        runtime.spawn(async {});
    }
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || http("GET", "/a", 200));
    guard.shutdown();
    release.wait();
    let events = collector.accepted_by_index();
    let summary = named(&events, "performance.summary")[0];
    let tokio = &summary["event_data"]["process"]["tokio"];
    assert_eq!(
        (tokio["workers"].as_u64(), tokio["global_queue_depth"].as_u64()),
        (Some(2), Some(5)),
        "{tokio}"
    );
    assert_eq!(tokio["alive_tasks"], 7, "{tokio}");
}

/// The child of `debug_names_the_fix_the_first_time_an_http_span_has_no_route`: two
/// reporters in turn, each with HTTP spans without a path (reqwest-tracing's default span
/// backend records none) and one with.
#[test]
fn child_http_spans_without_a_path() {
    if !support::child::is_child("child_http_spans_without_a_path") {
        return;
    }
    for debug in [true, true, false] {
        let collector = Collector::start();
        let (layer, guard) = collector.builder(SESSION).debug(debug).build().unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for _ in 0..3 {
                tracing::info_span!("http.request", session_id = SESSION, method = "GET", status = 200)
                    .in_scope(|| {});
            }
            http("GET", "/api/v1/models", 200);
        });
        let events = {
            drop(guard);
            collector.accepted_by_index()
        };
        let routes: Vec<_> = named(&events, "performance.summary")[0]["event_data"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["route"].clone())
            .collect();
        assert!(routes.contains(&Value::from("_unknown")), "{routes:?}");
    }
}

#[test]
fn debug_names_the_fix_the_first_time_an_http_span_has_no_route() {
    let out = support::child::run_ok(&mut support::child::child("child_http_spans_without_a_path"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hints: Vec<&str> = stderr.lines().filter(|l| l.contains("_unknown")).collect();
    assert_eq!(hints.len(), 2, "once per reporter with debug on, never without:\n{stderr}");
    for hint in hints {
        assert!(hint.starts_with("tinker-telemetry: "), "{hint}");
        assert!(hint.contains("SpanBackendWithUrl") && hint.contains("url.path"), "names the fix: {hint}");
    }
}
