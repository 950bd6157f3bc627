//! The guard drains and returns wherever it is dropped: plain threads, both tokio runtime
//! flavours, the blocking pool, a panic unwind; and reporters come and go in one process.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::Collector;
use tinker_telemetry::Severity;

const SESSION: &str = "runtime-session";

/// Builds a reporter, logs one event, and gives the guard to `drop_it`; checks that the
/// event and SESSION_END arrived by the time the drop returned.
fn drains_when_dropped_by(drop_it: impl FnOnce(tinker_telemetry::TelemetryGuard)) {
    let collector = Collector::start();
    let (_layer, guard) = collector.builder(SESSION).build().unwrap();
    guard.handle().log("work", json!({"n": 1}), Severity::Info);
    let started = Instant::now();
    drop_it(guard);
    assert!(started.elapsed() < Duration::from_secs(10), "drop waited past flush_timeout");
    assert_eq!(collector.names(), ["SESSION_START", "work", "SESSION_END"]);
}

#[test]
fn plain_thread() {
    drains_when_dropped_by(|guard| std::thread::spawn(move || drop(guard)).join().unwrap());
}

#[test]
fn inside_a_current_thread_runtime() {
    drains_when_dropped_by(|guard| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            tokio::task::yield_now().await;
            drop(guard);
        });
    });
}

#[test]
fn inside_a_multi_thread_runtime() {
    drains_when_dropped_by(|guard| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            tokio::spawn(async move { drop(guard) }).await.unwrap();
        });
    });
}

#[test]
fn inside_spawn_blocking() {
    drains_when_dropped_by(|guard| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move { tokio::task::spawn_blocking(move || drop(guard)).await.unwrap() });
    });
}

#[test]
fn during_a_panic_unwind() {
    drains_when_dropped_by(|guard| {
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = guard;
            panic!("the program fails while the guard is alive");
        }));
        assert!(unwound.is_err());
    });
}

#[test]
fn two_guards_and_build_drop_build() {
    let collector = Collector::start();
    for round in 0..3 {
        let (_a, guard_a) = collector.builder("first").build().unwrap();
        let (_b, guard_b) = collector.builder("second").build().unwrap();
        guard_a.handle().log("a", json!({ "round": round }), Severity::Info);
        guard_b.handle().log("b", json!({ "round": round }), Severity::Info);
        let (ra, rb) = (guard_a.shutdown(), guard_b.shutdown());
        assert!(ra.drained && rb.drained);
        assert_eq!((ra.stats.delivered, rb.stats.delivered), (3, 3));
    }
    let ends = collector
        .seen()
        .iter()
        .flat_map(|s| s.events().to_vec())
        .filter(|e| e["event"] == "SESSION_END")
        .count();
    assert_eq!(ends, 6);
}

#[test]
fn a_dead_server_cannot_hold_the_drop_past_flush_timeout() {
    // Nothing listens on this port once the listener is gone: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key(support::API_KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .enabled(true)
        .retry_base_delay(Duration::from_secs(5))
        .flush_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    guard.handle().log("lost", json!({}), Severity::Info);
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(300 + 250), "shutdown took {took:?}");
    assert!(!report.drained || report.stats.dropped.total() > 0);
    let s = report.stats;
    assert_eq!(s.delivered, 0);
    assert_eq!(s.accepted, 3);
    assert_eq!(s.dropped.total(), 3, "{s:?}");
    assert_eq!(s.accepted, s.delivered + s.dropped.total() + s.queued);
}

#[test]
fn unbounded_waits_mean_as_long_as_it_takes_not_an_overflow() {
    let collector = Collector::start();
    let (_layer, guard) = collector
        .builder(SESSION)
        .flush_timeout(Duration::MAX)
        .flush_interval(Duration::MAX)
        .http_timeout(Duration::MAX)
        .retry_base_delay(Duration::MAX)
        .build()
        .unwrap();
    let handle = guard.handle();
    handle.log("x", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(Duration::MAX));
    let report = guard.shutdown();
    assert!(report.drained);
    assert_eq!(collector.names(), ["SESSION_START", "x", "SESSION_END"]);
}
