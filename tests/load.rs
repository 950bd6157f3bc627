//! Load: a flood while the server is down keeps exactly `max_queue_size` events in bounded
//! memory and reports the rest; eight threads at full pace get every event delivered exactly
//! once, in a contiguous index order, between SESSION_START and SESSION_END; and the
//! threshold still sends at once while other requests are slow.

mod support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use support::{Collector, PATIENCE, Raw, RawServer, assert_well_formed, eventually, rss_bytes};
use tinker_telemetry::Severity;
use tracing_subscriber::prelude::*;

const SESSION: &str = "5d0c9e43-1a8b-4c2f-8e6d-7b3a9f1e2c45";

/// The flood measures the whole process's memory: nothing else heavy may run meanwhile.
static ALONE: Mutex<()> = Mutex::new(());

/// A 200-byte payload, so that keeping every event would show in the resident set.
const PAYLOAD: &str = concat!(
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "01234567"
);

#[test]
fn fifty_thousand_events_while_the_server_is_down_keep_exactly_the_queue() {
    let _alone = ALONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    const EVENTS: u64 = 50_000;
    const QUEUE: usize = 1_000;
    // Nothing listens on the port yet: the server is down. SESSION_START's retries (at 0.2,
    // 0.6, 1.4, 3.0 … s) outlast the flood; the server comes up right after it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key(support::API_KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .enabled(true)
        .max_queue_size(QUEUE)
        .retry_base_delay(Duration::from_millis(200))
        .max_retries(10)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let handle = guard.handle();
    eventually("SESSION_START's first attempt to be refused", || handle.stats().retries >= 1);

    let rss_before = rss_bytes();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..EVENTS {
            tracing::info!(session_id = SESSION, i, payload = PAYLOAD, "flood");
        }
    });
    let grew = rss_bytes().saturating_sub(rss_before);
    let stats = handle.stats();
    assert_eq!(stats.queued, QUEUE as u64, "SESSION_START and {} events fill the queue", QUEUE - 1);
    assert_eq!(stats.dropped.queue_full, EVENTS - (QUEUE as u64 - 1), "{stats:?}");
    assert_eq!(stats.delivered, 0, "{stats:?}");
    // Keeping all 50,000 events would take well over 10 MiB (the payload alone is 10 MB).
    assert!(grew < 4 << 20, "the resident set grew by {} KiB during the flood", grew >> 10);

    let server = RawServer::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    assert!(report.drained);

    let mut events = server.accepted_events();
    events.sort_by_key(|e| e["event_session_index"].as_u64());
    assert_well_formed(&events);
    let kept: Vec<u64> = events
        .iter()
        .filter(|e| e["event_name"] == "flood")
        .map(|e| e["event_data"]["i"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, (0..QUEUE as u64 - 1).collect::<Vec<_>>(), "the first events are kept, in order");
    let reports: Vec<_> = events.iter().filter(|e| e["event_name"] == "telemetry.dropped").collect();
    assert_eq!(reports.len(), 1, "one report for one overflow");
    let lost = EVENTS - (QUEUE as u64 - 1);
    assert_eq!(
        reports[0]["event_data"],
        json!({"count": lost, "total": lost, "by_reason": {"queue_full": lost}})
    );
    assert_eq!(events.first().unwrap()["event"], "SESSION_START");
    assert_eq!(events.last().unwrap()["event"], "SESSION_END");

    let s = report.stats;
    assert_eq!(s.accepted, 1 + EVENTS + 1 + 1, "START, the flood, the report, END");
    assert_eq!(s.delivered, events.len() as u64);
    assert_eq!(s.delivered, 1 + (QUEUE as u64 - 1) + 1 + 1);
    assert_eq!(s.dropped.total(), lost, "{s:?}");
    assert_eq!(s.accepted, s.delivered + s.dropped.total() + s.queued);
}

#[test]
fn eight_threads_at_the_queues_pace_deliver_every_event_exactly_once() {
    let _alone = ALONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 10_000;
    const QUEUE: u64 = 10_000;
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).max_queue_size(QUEUE as usize).build().unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (dispatch, handle) = (&dispatch, &handle);
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    for i in 0..PER_THREAD {
                        // Keep to the queue's pace: never fill it.
                        while handle.stats().queued > QUEUE * 3 / 4 {
                            std::thread::yield_now();
                        }
                        tracing::info!(session_id = SESSION, t, i, "work");
                    }
                });
            });
        }
    });
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    assert!(report.drained);

    let seen = collector.seen();
    let mut events = collector.accepted_by_index();
    assert_well_formed(&events);
    let total = THREADS * PER_THREAD;
    assert_eq!(events.len() as u64, total + 2);
    assert_eq!(seen[0].events().len(), 1, "SESSION_START goes alone");
    assert_eq!(seen[0].events()[0]["event"], "SESSION_START");
    let end = seen.last().unwrap().events().last().unwrap();
    assert_eq!(end["event"], "SESSION_END", "SESSION_END is in the last request");
    assert_eq!(end["event_session_index"], total + 1);

    // Every (thread, i) exactly once, and each thread's events indexed in its own order.
    events.retain(|e| e["event_name"] == "work");
    let mut next: HashMap<u64, u64> = HashMap::new();
    for e in &events {
        let (t, i) = (e["event_data"]["t"].as_u64().unwrap(), e["event_data"]["i"].as_u64().unwrap());
        let expected = next.entry(t).or_default();
        assert_eq!(i, *expected, "thread {t}: event {i} out of order or repeated");
        *expected += 1;
    }
    assert_eq!(next.len() as u64, THREADS);
    assert!(next.values().all(|&n| n == PER_THREAD));

    let s = report.stats;
    assert_eq!((s.accepted, s.delivered, s.dropped.total(), s.queued), (total + 2, total + 2, 0, 0), "{s:?}");
    assert_eq!(s.batches_sent as usize, seen.len());
}

#[test]
fn threads_emitting_through_shutdown_leave_nothing_queued_and_every_event_accounted_for() {
    let _alone = ALONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for round in 0..5 {
        let collector = Collector::start();
        // A small queue keeps the backlog at shutdown short: the rest is dropped as full.
        let (layer, guard) = collector.builder(SESSION).max_queue_size(2_000).build().unwrap();
        let handle = guard.handle();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let stop = std::sync::atomic::AtomicBool::new(false);
        let emitted = std::sync::atomic::AtomicU64::new(0);
        let report = std::thread::scope(|scope| {
            for t in 0..4u64 {
                let (dispatch, stop, emitted) = (&dispatch, &stop, &emitted);
                scope.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        let mut i = 0u64;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            tracing::info!(session_id = SESSION, t, i, "work");
                            i += 1;
                        }
                        emitted.fetch_add(i, std::sync::atomic::Ordering::Relaxed);
                    });
                });
            }
            std::thread::sleep(Duration::from_millis(30));
            // Shut down while the four threads keep emitting.
            let report = guard.shutdown();
            std::thread::sleep(Duration::from_millis(10));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            report
        });
        let emitted = emitted.into_inner();
        let s = handle.stats();
        assert_eq!(s.queued, 0, "round {round}: nothing left counted as queued: {s:?}");
        // Events dropped after the close and before SESSION_END was taken are reported first.
        let reports = s.accepted - (emitted + 2);
        assert!(reports <= 1, "round {round}: every event, START, END and a report: {s:?}");
        assert_eq!(s.accepted, s.delivered + s.dropped.total(), "round {round}: {s:?}");
        assert!(s.dropped.after_shutdown > 0, "round {round}: the threads outlived the reporter: {s:?}");
        assert!(report.drained || s.dropped.unsent_at_shutdown > 0, "round {round}: {report:?}");
        let arrived = collector.accepted_events().len() as u64;
        assert_eq!(arrived, s.delivered, "round {round}: what the server got is what was counted");
    }
}

#[test]
fn the_threshold_sends_at_once_while_another_request_is_slow() {
    // The first batch after SESSION_START hangs until its (long) timeout; the second must not
    // wait for it, there are free request slots.
    let server = RawServer::with_plan(vec![Raw::Accept, Raw::Hang]);
    let (_layer, guard) = server
        .builder(SESSION)
        .flush_threshold(10)
        .max_in_flight(4)
        .http_timeout(PATIENCE * 2)
        .flush_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let handle = guard.handle();
    server.wait_requests(1);
    for round in 0..3 {
        for i in 0..10 {
            handle.log("tick", json!({ "round": round, "i": i }), Severity::Info);
        }
        let seen = server.wait_requests(2 + round);
        assert_eq!(seen[1 + round].events().len(), 10, "round {round}");
    }
    eventually("only the hung batch to be left", || handle.stats().queued == 10);
    assert_eq!(handle.stats().delivered, 1 + 2 * 10);
    drop(guard);
}
