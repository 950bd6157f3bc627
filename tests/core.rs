//! The core capability over real HTTP: capture, wire format, batching, flushing, retries,
//! draining and configuration.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{API_KEY, Collector, Gate, PATIENCE, Reply, assert_well_formed};
use tinker_telemetry::{Severity, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

const SESSION: &str = "6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11";

#[test]
fn a_session_arrives_wire_exact_and_in_order() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        tracing::info!(
            event_name = "user.action",
            button = "submit",
            count = 3u64,
            ratio = 0.5,
            ok = true,
            delta = -2i64
        );
        tracing::warn!(session_id = "other", "not ours");
        tracing::debug!("below min_level");
        tracing::error!(disk = "sda", "disk full");
        tracing::info!(severity = "critical", event_name = "escalated");
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        tracing::info!(session_id = SESSION, "seen by no layer of ours");
    });
    assert!(handle.log("cache.miss", json!({"key": "user:123"}), Severity::Warning));
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    assert!(report.drained);

    let events = collector.accepted_by_index();
    assert_well_formed(&events);
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["SESSION_START", "GENERIC_EVENT", "GENERIC_EVENT", "GENERIC_EVENT", "GENERIC_EVENT", "SESSION_END"]
    );
    assert_eq!(events[1]["event_name"], "user.action");
    assert_eq!(events[1]["severity"], "INFO");
    assert_eq!(
        events[1]["event_data"],
        json!({"button": "submit", "count": 3, "ratio": 0.5, "ok": true, "delta": -2})
    );
    assert_eq!(events[2]["event_name"], "disk full");
    assert_eq!(events[2]["severity"], "ERROR");
    assert_eq!(events[2]["event_data"], json!({"disk": "sda"}));
    assert_eq!(events[3]["event_name"], "escalated");
    assert_eq!(events[3]["severity"], "CRITICAL");
    assert_eq!(events[4]["event_name"], "cache.miss");
    assert_eq!(events[4]["severity"], "WARNING");
    assert_eq!(events[4]["event_data"], json!({"key": "user:123"}));
    let duration = events[5]["duration"].as_str().unwrap();
    assert!(duration.starts_with("0:00:"), "{duration}");

    for seen in collector.seen() {
        assert_eq!(seen.body["session_id"], SESSION);
        assert_eq!(seen.body["platform"], "Linux");
        assert_eq!(seen.body["sdk_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(seen.header("x-api-key"), Some(API_KEY));
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert!(seen.header("user-agent").unwrap().starts_with("tinker-telemetry/"));
        assert!(uuid::Uuid::parse_str(seen.header("x-idempotency-key").unwrap()).is_ok());
    }
    let stats = report.stats;
    assert_eq!(stats.accepted, 6);
    assert_eq!(stats.delivered, 6);
    assert_eq!(stats.dropped.total(), 0);
    assert_eq!(stats.queued, 0);
}

#[test]
fn two_hundred_fifty_events_go_as_full_batches_then_the_rest() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    // SESSION_START goes alone, at once.
    let first = collector.wait_requests(1);
    assert_eq!(first[0].events().len(), 1);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..250 {
            tracing::info!(session_id = SESSION, i, "tick");
        }
    });
    collector.wait_requests(3);
    drop(guard);
    let sizes: Vec<usize> = collector.seen().iter().map(|s| s.events().len()).collect();
    assert_eq!(sizes, [1, 100, 100, 51], "START, two threshold batches, then 50 + END at shutdown");
    let events = collector.accepted_by_index();
    assert_well_formed(&events);
    assert_eq!(events.len(), 252);
}

#[test]
fn the_threshold_sends_before_the_interval() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).flush_threshold(10).build().unwrap();
    collector.wait_requests(1);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..10 {
            tracing::info!(session_id = SESSION, i, "tick");
        }
    });
    // The interval is an hour: only the threshold can have sent this.
    let seen = collector.wait_requests(2);
    assert_eq!(seen[1].events().len(), 10);
    drop(guard);
}

#[test]
fn the_interval_sends_what_is_below_the_threshold() {
    let collector = Collector::start();
    let (layer, guard) =
        collector.builder(SESSION).flush_interval(Duration::from_millis(50)).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(session_id = SESSION, "one");
        tracing::info!(session_id = SESSION, "two");
    });
    let until = std::time::Instant::now() + PATIENCE;
    while collector.accepted_events().len() < 3 {
        assert!(std::time::Instant::now() < until, "the interval never sent");
        collector.wait_requests(collector.seen().len() + 1);
    }
    assert!(guard.handle().wait_until_drained(PATIENCE));
    assert_eq!(guard.handle().stats().queued, 0);
    drop(guard);
    assert_eq!(collector.names(), ["SESSION_START", "one", "two", "SESSION_END"]);
}

#[test]
fn a_full_queue_drops_counts_and_reports_once_space_returns() {
    let gate = Gate::default();
    let collector = Collector::with_plan(vec![Reply::Held(gate.clone())]);
    let (layer, guard) =
        collector.builder(SESSION).max_queue_size(10).max_batch_size(10).flush_threshold(10).build().unwrap();
    let handle = guard.handle();
    // SESSION_START is in flight and held: nothing else is sent, so the queue fills.
    collector.wait_requests(1);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..50 {
            tracing::info!(session_id = SESSION, i, "tick");
        }
    });
    let stats = handle.stats();
    assert_eq!(stats.dropped.queue_full, 41, "START and 9 events fill the queue of 10");
    assert_eq!(stats.queued, 10);
    gate.open();
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    let events = collector.accepted_by_index();
    assert_well_formed(&events);
    let dropped: Vec<_> = events.iter().filter(|e| e["event_name"] == "telemetry.dropped").collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["event_data"], json!({"count": 41, "total": 41, "by_reason": {"queue_full": 41}}));
    assert_eq!(dropped[0]["severity"], "WARNING");
    let s = report.stats;
    assert_eq!(s.accepted, 1 + 50 + 1 + 1, "START, 50 events, telemetry.dropped, END");
    assert_eq!(s.delivered, events.len() as u64);
    assert_eq!(s.accepted, s.delivered + s.dropped.total() + s.queued);
}

/// Starts a reporter, waits for SESSION_START to arrive, logs one event and waits until it
/// is delivered or dropped.
fn log_one_after_start(collector: &Collector) -> tinker_telemetry::TelemetryGuard {
    let (_layer, guard) = collector.builder(SESSION).build().unwrap();
    collector.wait_requests(1);
    guard.handle().log("x", json!({}), Severity::Info);
    assert!(guard.handle().wait_until_drained(PATIENCE));
    guard
}

#[test]
fn retryable_failures_are_retried_with_the_same_payload() {
    let collector = Collector::with_plan(vec![
        Reply::Status(200),
        Reply::Status(503),
        Reply::Status(502),
        Reply::Status(200),
    ]);
    let guard = log_one_after_start(&collector);
    let handle = guard.handle();
    let seen = collector.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].body, seen[3].body, "retries resend the same events (same event_id)");
    assert_eq!(seen[1].header("x-idempotency-key"), seen[3].header("x-idempotency-key"));
    assert_eq!(seen[2].header("x-idempotency-key"), seen[3].header("x-idempotency-key"));
    let stats = handle.stats();
    assert_eq!((stats.retries, stats.delivered, stats.dropped.total()), (2, 2, 0));
    drop(guard);
}

#[test]
fn client_errors_are_not_retried_and_are_counted() {
    let collector = Collector::with_plan(vec![Reply::Status(200), Reply::Status(400)]);
    let (guard, handle) = collector.reporter(SESSION);
    collector.wait_requests(1);
    handle.log("refused", json!({}), Severity::Info);
    handle.log("refused.too", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    assert_eq!(collector.seen().len(), 2, "a 400 is never sent again");
    assert_eq!(handle.stats().dropped.rejected, 2);
    handle.log("later", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    // The two refused events are reported before the session ends.
    assert_eq!(collector.names(), ["SESSION_START", "later", "telemetry.dropped", "SESSION_END"]);
    let dropped = &collector.accepted_by_index()[2];
    assert_eq!(dropped["event_data"], json!({"count": 2, "total": 2, "by_reason": {"rejected": 2}}));
    assert_eq!(report.stats.retries, 0);
}

#[test]
fn retry_after_is_honoured() {
    let collector = Collector::with_plan(vec![
        Reply::Status(200),
        Reply::with(429, |t| t.insert_header("retry-after", "1")),
        Reply::Status(200),
    ]);
    // Backoff alone would wait 5 ms.
    let guard = log_one_after_start(&collector);
    let seen = collector.seen();
    assert_eq!(seen.len(), 3);
    let waited = seen[2].at - seen[1].at;
    assert!(waited >= Duration::from_millis(950), "waited only {waited:?}");
    drop(guard);
}

#[test]
fn disabled_sends_nothing_and_costs_nothing() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).enabled(false).build().unwrap();
    assert!(!layer.is_enabled());
    let handle = guard.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(session_id = SESSION, "x");
    });
    assert!(!handle.log("x", json!({}), Severity::Info));
    assert!(handle.wait_until_drained(Duration::ZERO));
    assert_eq!(handle.stats(), tinker_telemetry::Stats::default());
    let report = guard.shutdown();
    assert!(report.drained);
    assert!(collector.seen().is_empty());
    assert!(!thread_exists("tinker-telemetry"));
}

fn thread_exists(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .any(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
        })
        .unwrap_or(false)
}

#[test]
fn two_reporters_in_one_registry_each_see_their_own_session() {
    let collector = Collector::start();
    let (layer_a, guard_a) = collector.builder("session-a").build().unwrap();
    let (layer_b, guard_b) = collector.builder("session-b").build().unwrap();
    let subscriber = tracing_subscriber::registry().with(layer_a).with(layer_b);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(session_id = "session-a", "for a");
        let span = tracing::info_span!("work", session_id = "session-b");
        let _in = span.enter();
        tracing::info!("for b");
        tracing::info!(session_id = "session-a", "for a again, inside b's span");
    });
    drop(guard_a);
    drop(guard_b);
    let seen = collector.seen();
    let names_of = |session: &str| -> Vec<String> {
        let events = collector.session_events(session);
        assert_well_formed(&events);
        events.iter().filter_map(|e| e["event_name"].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(names_of("session-a"), ["for a", "for a again, inside b's span"]);
    assert_eq!(names_of("session-b"), ["for b"]);
    let process: std::collections::HashSet<_> = seen.iter().map(|s| s.body["process_uuid"].clone()).collect();
    assert_eq!(process.len(), 1, "one process_uuid for every reporter in the process");
}

#[test]
fn sessionless_sends_a_plain_uuid_and_no_session_events() {
    let collector = Collector::start();
    let (layer, guard) = TinkerTelemetryLayer::builder()
        .sessionless()
        .api_key(API_KEY)
        .base_url(collector.uri())
        .enabled(true)
        .build()
        .unwrap();
    let session = guard.handle().session_id().to_owned();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!("anything");
        tracing::info!(session_id = "whatever", "anything else");
    });
    drop(guard);
    let seen = collector.seen();
    assert!(uuid::Uuid::parse_str(&session).is_ok());
    assert!(seen.iter().all(|s| s.body["session_id"] == session.as_str()));
    assert_eq!(collector.names(), ["anything", "anything else"]);
}

#[test]
fn events_after_shutdown_are_counted_not_sent() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    let report = guard.shutdown();
    assert!(!handle.log("late", json!({}), Severity::Info));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(session_id = SESSION, "late too");
    });
    assert_eq!(handle.stats().dropped.after_shutdown, 2);
    assert_eq!(report.stats.delivered, 2);
    assert_eq!(collector.names(), ["SESSION_START", "SESSION_END"]);
}

#[test]
fn nothing_shows_the_api_key() {
    let collector = Collector::start();
    let builder = collector.builder(SESSION);
    let (layer, guard) = builder.clone().build().unwrap();
    let shown = format!("{builder:?} {layer:?} {guard:?} {:?} {:?}", guard.handle(), guard.handle().stats());
    assert!(!shown.contains("KEY-0123456789"), "{shown}");
    let err = builder.max_queue_size(0).build().unwrap_err();
    assert!(!format!("{err} {err:?}").contains("KEY-0123456789"));
    drop(guard);
}

#[test]
fn disabled_telemetry_needs_no_option_and_wants_no_event() {
    use tracing::Subscriber as _;
    use tracing::level_filters::LevelFilter;
    // No session id, no key, no URL, and a size that would be refused: disabled, nothing fails.
    let (layer, guard) = TinkerTelemetryLayer::builder().max_batch_size(0).enabled(false).build().unwrap();
    assert!(!layer.is_enabled() && !guard.handle().is_enabled());
    // Registered as an `Option`, the disabled layer tells the subscriber it wants nothing, so
    // the macros' level check skips every callsite when no other layer wants one.
    let alone = tracing_subscriber::registry().with(layer.clone().into_option());
    assert_eq!(alone.max_level_hint(), Some(LevelFilter::OFF));
    let with_fmt =
        tracing_subscriber::registry().with(layer.into_option()).with(tracing_subscriber::fmt::layer());
    assert_ne!(with_fmt.max_level_hint(), Some(LevelFilter::OFF), "other layers keep what they want");
    let (enabled, _guard) = Collector::start().builder(SESSION).build().unwrap();
    assert!(enabled.clone().into_option().is_some());
    assert_eq!(tracing_subscriber::registry().with(enabled.into_option()).max_level_hint(), None);
    assert!(guard.shutdown().drained);
}
