//! The analysis read by the program itself, over real HTTP on 127.0.0.1:
//! `TelemetryHandle::operations()` and `usage()` against the spans emitted and the
//! `performance.summary` events the collector received, windows rolling by
//! `summary_interval`, readers on many threads while others emit, and the empty answers
//! with the analysis off or telemetry disabled.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Collector, PATIENCE};
use tinker_telemetry::{OperationsSnapshot, QUANTILE_RELATIVE_ERROR, TelemetryHandle};
use tracing_subscriber::prelude::*;

const SESSION: &str = "operations-session";

fn http(method: &str, path: &str, status: u16) {
    tracing::info_span!("http.request", session_id = SESSION, method, path, status).in_scope(|| {});
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_name"] == name).collect()
}

/// Reads the snapshot until `done` holds of it (the uploader publishes after its takes).
fn until(handle: &TelemetryHandle, done: impl Fn(&OperationsSnapshot) -> bool) -> OperationsSnapshot {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let snapshot = handle.operations();
        if done(&snapshot) {
            return snapshot;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?}: {snapshot:#?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The exact quantile of sorted values, by the summary's rank rule.
fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

#[test]
fn counts_are_exact_and_quantiles_within_the_error_after_spans_of_known_durations() {
    const SPANS: usize = 300;
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..SPANS {
            let status = if i % 10 == 0 { 503 } else { 200 };
            let span = tracing::info_span!(
                "http.request",
                session_id = SESSION,
                method = "POST",
                path = format!("/api/v1/sessions/{i}/sample"),
                status
            );
            // Durations spread from a few µs to about 2 ms.
            let hold = Instant::now() + Duration::from_micros((i % 20) as u64 * 100);
            span.in_scope(|| while Instant::now() < hold {});
        }
    });
    // The take that answers the drain also publishes: the snapshot is now the current state.
    assert!(handle.wait_until_drained(PATIENCE));
    let snapshot = handle.operations();
    let op = snapshot.find("http.request", Some("POST"), Some("/api/v1/sessions/{id}/sample")).unwrap();
    assert_eq!((op.session.count, op.session.errors), (SPANS as u64, (SPANS / 10) as u64));
    assert_eq!(op.session.error_rate, 0.1);
    assert_eq!(op.window, None, "no window has closed");
    assert_eq!(snapshot.window_closed_at, None);
    // The durations the spans really had, as the collector received them.
    let events = collector.accepted_by_index();
    let mut durations: Vec<f64> = named(&events, "http.request")
        .iter()
        .map(|e| e["event_data"]["duration_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(durations.len(), SPANS);
    durations.sort_by(f64::total_cmp);
    for (got, q) in [(op.session.p50_ms, 0.5), (op.session.p95_ms, 0.95), (op.session.p99_ms, 0.99)] {
        let want = exact(&durations, q);
        // Rounded to the microsecond as the summary's numbers are.
        assert!((got - want).abs() <= want * QUANTILE_RELATIVE_ERROR + 0.0005, "q{q}: {got} vs {want}");
    }
    let max = *durations.last().unwrap();
    assert!((op.session.max_ms - max).abs() <= 0.0005, "{} vs {max}", op.session.max_ms);
    let mean = durations.iter().sum::<f64>() / SPANS as f64;
    assert!((op.session.avg_ms - mean).abs() <= 0.001, "{} vs {mean}", op.session.avg_ms);
    let usage = handle.usage();
    assert_eq!((usage.operations, usage.count, usage.errors), (1, SPANS as u64, (SPANS / 10) as u64));
    assert_eq!(usage.top[0].key, op.key);
}

#[test]
fn windows_roll_as_summary_interval_says() {
    let collector = Collector::start();
    let interval = Duration::from_millis(300);
    let (layer, guard) = collector.builder(SESSION).summary_interval(interval).build().unwrap();
    let handle = guard.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    let _default = tracing::subscriber::set_default(subscriber);
    for _ in 0..5 {
        http("GET", "/a", 200);
    }
    let first = until(&handle, |s| s.operations.first().and_then(|o| o.window).is_some());
    let closed = first.window_closed_at.unwrap();
    assert_eq!(first.operations[0].window.unwrap().count, 5);
    let window_s = first.window_s.unwrap();
    assert!((0.2..2.0).contains(&window_s), "about one interval: {window_s}");
    for _ in 0..3 {
        http("GET", "/a", 500);
    }
    let second = until(&handle, |s| s.window_closed_at.is_some_and(|at| at > closed));
    let op = &second.operations[0];
    let window = op.window.unwrap();
    assert_eq!((window.count, window.errors), (3, 3), "only the second window's spans");
    assert_eq!((op.session.count, op.session.errors), (8, 3), "the session's");
    let gap = second.window_closed_at.unwrap().duration_since(closed).unwrap();
    assert!(gap >= interval - Duration::from_millis(50), "windows close an interval apart: {gap:?}");
}

#[test]
fn the_snapshot_agrees_with_the_summary_sent_for_the_same_window() {
    let collector = Collector::start();
    let interval = Duration::from_millis(500);
    let builder = collector.builder(SESSION).summary_interval(interval).capture_span("forward_backward");
    let (layer, guard) = builder.operation_label("loss_fn").build().unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..40u64 {
            http("GET", &format!("/api/v1/futures/{i}"), if i % 7 == 0 { 500 } else { 200 });
            let loss_fn = if i % 2 == 0 { "cross_entropy" } else { "ppo" };
            tracing::info_span!("forward_backward", session_id = SESSION, loss_fn).in_scope(|| {});
        }
        tracing::info_span!("queue.state_change", session_id = SESSION, to = "active").in_scope(|| {});
    });
    let first = until(&handle, |s| s.window_closed_at.is_some());
    let last = {
        // The last window ends at SESSION_END; the snapshot keeps it.
        tracing::dispatcher::with_default(&dispatch, || http("POST", "/api/v1/sample", 200));
        guard.shutdown();
        handle.operations()
    };
    let events = collector.accepted_by_index();
    let summaries = named(&events, "performance.summary");
    assert_eq!(summaries.len(), 2, "{summaries:#?}");
    agrees(&first, summaries[0]);
    agrees(&last, summaries[1]);
    let top: Vec<String> = handle.usage().top.iter().map(|o| o.key.display()).collect();
    assert_eq!(
        serde_json::to_value(&top).unwrap(),
        summaries[1]["event_data"]["top"],
        "the usage report's top"
    );
}

/// Asserts that `snapshot`'s last window is the `summary` event's: one entry per row, each
/// entry's key and window numbers the row, field by field.
fn agrees(snapshot: &OperationsSnapshot, summary: &Value) {
    let rows = summary["event_data"]["operations"].as_array().unwrap();
    let in_window: Vec<_> = snapshot.operations.iter().filter(|o| o.window.is_some()).collect();
    assert_eq!(in_window.len(), rows.len(), "one entry per row: {rows:#?}");
    for row in rows {
        let entry = in_window
            .iter()
            .find(|o| {
                let key = serde_json::to_value(&o.key).unwrap();
                key.as_object().unwrap().iter().all(|(k, v)| row[k] == *v)
            })
            .unwrap_or_else(|| panic!("no entry for {row}"));
        let mut mine = serde_json::to_value(&entry.key).unwrap();
        let numbers = serde_json::to_value(entry.window.unwrap()).unwrap();
        mine.as_object_mut().unwrap().extend(numbers.as_object().unwrap().clone());
        assert_eq!(&mine, row, "field by field");
    }
    let window_s = summary["event_data"]["window_s"].as_f64().unwrap();
    assert!((snapshot.window_s.unwrap() - window_s).abs() < 0.01, "{window_s}");
}

#[test]
fn with_the_analysis_off_or_telemetry_disabled_reads_are_empty() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).analysis(false).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || http("GET", "/a", 200));
    assert!(guard.handle().wait_until_drained(PATIENCE));
    assert_eq!(guard.handle().operations(), OperationsSnapshot::default());
    assert!(guard.handle().usage().top.is_empty());
    drop(guard);

    let (layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder().enabled(false).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || http("GET", "/a", 200));
    let handle = guard.handle();
    assert_eq!(handle.operations(), OperationsSnapshot::default());
    assert_eq!(handle.usage().count, 0);
    assert_eq!(handle.error_spike_calls(), tinker_telemetry::SpikeCalls::default());
}

#[test]
fn sixteen_readers_never_hold_up_four_emitting_threads() {
    const EMITTERS: usize = 4;
    const READERS: usize = 16;
    const SPANS: usize = 2_000;
    let collector = Collector::start();
    let (layer, guard) = collector
        .builder(SESSION)
        .summary_interval(Duration::from_millis(50))
        .max_queue_size(EMITTERS * SPANS + 100)
        .build()
        .unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(EMITTERS + READERS));
    let readers: Vec<_> =
        (0..READERS).map(|_| reader(handle.clone(), stop.clone(), reads.clone(), start.clone())).collect();
    let emitters: Vec<_> = (0..EMITTERS)
        .map(|t| {
            let (dispatch, start) = (dispatch.clone(), start.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    start.wait();
                    for i in 0..SPANS {
                        http("GET", &format!("/{}/{i}", ["alpha", "beta", "gamma", "delta"][t]), 200);
                    }
                })
            })
        })
        .collect();
    emitters.into_iter().for_each(|t| t.join().unwrap());
    // Reading went on all the while the spans were emitted; the drain needs the cores.
    stop.store(true, Relaxed);
    readers.into_iter().for_each(|t| t.join().unwrap());
    assert!(handle.wait_until_drained(PATIENCE));
    let snapshot = handle.operations();
    let stats = guard.shutdown().stats;
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    let counted: u64 = snapshot.operations.iter().map(|o| o.session.count).sum();
    assert_eq!(counted, (EMITTERS * SPANS) as u64, "every span, in the snapshot after the drain");
    assert_eq!(snapshot.operations.len(), EMITTERS, "one route template per thread");
    assert!(reads.load(Relaxed) >= READERS as u64, "every reader read");
}

/// A thread reading the snapshot and the usage report in a loop until `stop`, checking that
/// the session's count never goes back.
fn reader(
    handle: TelemetryHandle,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
    start: Arc<Barrier>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        start.wait();
        let mut seen = 0;
        while !stop.load(Relaxed) {
            let snapshot = handle.operations();
            let counted: u64 = snapshot.operations.iter().map(|o| o.session.count).sum();
            assert!(counted >= seen, "the session's count never goes back");
            seen = counted;
            assert!(handle.usage().count >= counted);
            reads.fetch_add(1, Relaxed);
        }
    })
}
