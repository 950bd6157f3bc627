//! The fault matrix over real HTTP on 127.0.0.1: every way the server can fail, what the
//! uploader does about it, that the next healthy batch still goes through, that nothing is
//! accepted twice and that the counters add up; then the same faults at shutdown, which must
//! never hold the guard past `flush_timeout` + 250 ms.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use support::{Collector, PATIENCE, Raw, RawServer, Reply, closed_port, eventually, raw_response};
use tinker_telemetry::{Builder, Severity, Stats};
use wiremock::ResponseTemplate;

const SESSION: &str = "0b6f3a52-2f5e-4b8e-9a57-3c1d2e4f5a60";

/// What the guard may take past `flush_timeout`.
const SHUTDOWN_SLACK: Duration = Duration::from_millis(250);

/// Events the scenario logs: two while the fault lasts, one once the server is healthy.
const FAULTED: [&str; 2] = ["faulted.1", "faulted.2"];
const HEALTHY: &str = "healthy";

/// Runs the scenario against a server whose first answer (to SESSION_START) is a 200 and whose
/// next answers are the fault: logs the two faulted events, waits until they are settled,
/// logs the healthy one, waits again and shuts down. Returns the final counters.
fn scenario(builder: Builder, wait_for_start: impl FnOnce()) -> Stats {
    let (_layer, guard) = builder.build().unwrap();
    let handle = guard.handle();
    wait_for_start();
    for name in FAULTED {
        assert!(handle.log(name, json!({ "fault": true }), Severity::Info));
    }
    assert!(handle.wait_until_drained(PATIENCE), "the faulted batch never settled");
    assert!(handle.log(HEALTHY, json!({}), Severity::Info));
    assert!(handle.wait_until_drained(PATIENCE), "the healthy batch never settled");
    let report = guard.shutdown();
    assert!(report.drained, "{report:?}");
    report.stats
}

/// What must hold after every fault: the healthy event and SESSION_END arrived, no event was
/// accepted twice, and every event the reporter took is counted exactly once.
fn assert_recovered(stats: &Stats, accepted: &[Value]) {
    let names: Vec<&str> =
        accepted.iter().map(|e| e["event_name"].as_str().or(e["event"].as_str()).unwrap()).collect();
    assert!(names.contains(&HEALTHY), "the next healthy batch was not delivered: {names:?}");
    assert!(names.contains(&"SESSION_END"), "{names:?}");
    let ids: HashSet<&str> = accepted.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), accepted.len(), "an event was accepted twice: {names:?}");
    let indices: HashSet<u64> = accepted.iter().map(|e| e["event_session_index"].as_u64().unwrap()).collect();
    assert_eq!(indices.len(), accepted.len(), "an index was accepted twice: {names:?}");
    // What the fault cost is reported before SESSION_END.
    let reports = names.iter().filter(|n| **n == "telemetry.dropped").count() as u64;
    assert_eq!(reports, u64::from(stats.dropped.total() > 0), "{names:?} {stats:?}");
    assert_eq!(stats.accepted, 5 + reports, "START, two faulted, healthy, a report, END: {stats:?}");
    assert_eq!(stats.delivered, accepted.len() as u64, "{stats:?}");
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert_eq!(stats.accepted, stats.delivered + stats.dropped.total() + stats.queued, "{stats:?}");
}

/// The requests that carried the faulted events, in order.
fn faulted_requests(collector: &Collector) -> Vec<support::Seen> {
    collector
        .seen()
        .into_iter()
        .filter(|s| s.events().iter().any(|e| e["event_name"] == FAULTED[0]))
        .collect()
}

fn through_collector(fault: Vec<Reply>, configure: impl FnOnce(Builder) -> Builder) -> (Stats, Collector) {
    let collector = Collector::with_plan(vec![Reply::Status(200)]);
    collector.plan(fault);
    let stats = scenario(configure(collector.builder(SESSION)), || {
        collector.wait_requests(1);
    });
    (stats, collector)
}

fn through_raw(fault: Vec<Raw>, configure: impl FnOnce(Builder) -> Builder) -> (Stats, RawServer) {
    let server = RawServer::with_plan([vec![Raw::Accept], fault].concat());
    let stats = scenario(configure(server.builder(SESSION)), || {
        server.wait_requests(1);
    });
    (stats, server)
}

fn raw_faulted_requests(server: &RawServer) -> Vec<support::RawSeen> {
    server.seen().into_iter().filter(|s| s.events().iter().any(|e| e["event_name"] == FAULTED[0])).collect()
}

// ---------------------------------------------------------------------------------------------
// Retryable statuses.

#[test]
fn server_errors_are_retried_and_delivered_when_the_server_recovers() {
    for status in [500, 502, 503, 504] {
        let (stats, collector) = through_collector(vec![Reply::Status(status), Reply::Status(status)], |b| b);
        assert_recovered(&stats, &collector.accepted_events());
        let tries = faulted_requests(&collector);
        assert_eq!(tries.len(), 3, "{status}: two failures, then the delivery");
        assert!(tries.iter().all(|t| t.body == tries[0].body), "{status}: a retry changed the events");
        let key = tries[0].header("x-idempotency-key");
        assert!(tries.iter().all(|t| t.header("x-idempotency-key") == key), "{status}");
        assert_eq!((stats.retries, stats.dropped.total()), (2, 0), "{status}: {stats:?}");
        assert_eq!(stats.retried.server_error, 2, "{status}: counted by cause: {stats:?}");
        assert_eq!(collector.names(), ["SESSION_START", "faulted.1", "faulted.2", "healthy", "SESSION_END"]);
    }
}

#[test]
fn exhausted_retries_are_dropped_and_counted_and_the_uploader_moves_on() {
    let (stats, collector) = through_collector(vec![Reply::Status(503); 4], |b| b.max_retries(3));
    assert_recovered(&stats, &collector.accepted_events());
    assert_eq!(faulted_requests(&collector).len(), 4, "the first try and three retries");
    assert_eq!(stats.dropped.retries_exhausted, 2, "{stats:?}");
    assert_eq!(stats.retries, 3);
    assert_eq!(collector.names(), ["SESSION_START", "healthy", "telemetry.dropped", "SESSION_END"]);
}

#[test]
fn too_many_requests_waits_for_retry_after_in_seconds() {
    let fault = vec![Reply::with(429, |t| t.insert_header("retry-after", "1"))];
    let (stats, collector) = through_collector(fault, |b| b);
    assert_recovered(&stats, &collector.accepted_events());
    let tries = faulted_requests(&collector);
    assert_eq!(tries.len(), 2);
    let waited = tries[1].at - tries[0].at;
    // Backoff alone would have waited about 5 ms.
    assert!(waited >= Duration::from_millis(1000), "retried after {waited:?}, before Retry-After: 1");
    assert_eq!((stats.retries, stats.dropped.total()), (1, 0));
    assert_eq!((stats.retried.rate_limited, stats.retried.total()), (1, 1), "{stats:?}");
}

#[test]
fn too_many_requests_waits_for_retry_after_as_an_http_date() {
    // Whole seconds only: a date 2 s ahead is between 1 and 2 s ahead.
    let not_before = SystemTime::now() + Duration::from_secs(2);
    let date = httpdate::fmt_http_date(not_before);
    let not_before = httpdate::parse_http_date(&date).unwrap();
    let fault = vec![Reply::with(429, |t| t.insert_header("retry-after", date.as_str()))];
    let anchor = (Instant::now(), SystemTime::now());
    let (stats, collector) = through_collector(fault, |b| b);
    assert_recovered(&stats, &collector.accepted_events());
    let tries = faulted_requests(&collector);
    assert_eq!(tries.len(), 2);
    let retried_at = anchor.1 + (tries[1].at - anchor.0);
    assert!(
        retried_at + Duration::from_millis(5) >= not_before,
        "retried {:?} before the Retry-After date",
        not_before.duration_since(retried_at).unwrap_or_default()
    );
    assert_eq!((stats.retries, stats.dropped.total()), (1, 0));
}

// ---------------------------------------------------------------------------------------------
// Final statuses.

#[test]
fn client_errors_are_not_retried_and_are_counted_as_rejected() {
    for status in [400, 401, 403, 404, 422] {
        let (stats, collector) = through_collector(vec![Reply::Status(status)], |b| b);
        assert_recovered(&stats, &collector.accepted_events());
        assert_eq!(faulted_requests(&collector).len(), 1, "{status} was sent again");
        assert_eq!(stats.dropped.rejected, 2, "{status}: {stats:?}");
        assert_eq!(stats.dropped.total(), 2, "{status}: {stats:?}");
        assert_eq!(stats.retries, 0, "{status}");
        assert_eq!(
            collector.names(),
            ["SESSION_START", "healthy", "telemetry.dropped", "SESSION_END"],
            "{status}"
        );
    }
}

#[test]
fn payload_too_large_splits_the_batch_down_to_single_events() {
    let collector = Collector::with_plan(vec![Reply::Status(200)]);
    // Four events in one batch: 413; its first half: 413; event 0 alone: 200; event 1
    // alone: 413 (too large on its own); the second half: 200.
    collector.plan([413, 413, 200, 413, 200].map(Reply::Status));
    let (guard, handle) = collector.reporter(SESSION);
    collector.wait_requests(1);
    for i in 0..4 {
        handle.log(format!("part.{i}"), json!({ "i": i }), Severity::Info);
    }
    assert!(handle.wait_until_drained(PATIENCE));
    handle.log(HEALTHY, json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let stats = guard.shutdown().stats;

    let sizes: Vec<usize> = collector.seen()[1..6].iter().map(|s| s.events().len()).collect();
    assert_eq!(sizes, [4, 2, 1, 1, 2], "halves, down to single events");
    let keys: HashSet<_> =
        collector.seen()[1..6].iter().map(|s| s.header("x-idempotency-key").unwrap().to_owned()).collect();
    assert_eq!(keys.len(), 5, "each part is a new payload with its own idempotency key");
    assert_eq!(
        collector.names(),
        ["SESSION_START", "part.0", "part.2", "part.3", "healthy", "telemetry.dropped", "SESSION_END"]
    );
    let accepted = collector.accepted_events();
    let ids: HashSet<&str> = accepted.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), accepted.len());
    assert_eq!(stats.dropped.too_large, 1, "{stats:?}");
    assert_eq!(stats.dropped.total(), 1);
    assert_eq!(stats.retries, 0, "a split is not a retry");
    assert_eq!((stats.accepted, stats.delivered, stats.queued), (8, 7, 0));
}

// ---------------------------------------------------------------------------------------------
// Network faults.

/// A port on 127.0.0.1 that nothing listens on (until a listener is bound to it again).
fn builder_for_port(port: u16) -> Builder {
    tinker_telemetry::TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key(support::API_KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .enabled(true)
        .flush_interval(Duration::from_secs(3600))
        .http_timeout(Duration::from_secs(5))
        .flush_timeout(Duration::from_secs(10))
}

#[test]
fn connection_refused_is_retried_until_the_server_listens() {
    let port = closed_port();
    // Attempts at about 0, 100, 300 and 700 ms: the listener comes up after the first.
    let (_layer, guard) =
        builder_for_port(port).retry_base_delay(Duration::from_millis(100)).build().unwrap();
    let handle = guard.handle();
    eventually("SESSION_START's first attempt to be refused", || handle.stats().retries >= 1);
    let server = RawServer::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    server.wait_requests(1);
    for name in FAULTED {
        handle.log(name, json!({}), Severity::Info);
    }
    handle.log(HEALTHY, json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let stats = guard.shutdown().stats;
    assert_recovered(&stats, &server.accepted_events());
    assert_eq!(server.seen()[0].events()[0]["event"], "SESSION_START");
    assert!(stats.retries >= 1);
    assert_eq!(stats.retried.connect, stats.retries, "refused connections: {stats:?}");
    assert_eq!((stats.delivered, stats.dropped.total()), (5, 0), "{stats:?}");
}

#[test]
fn connection_refused_past_the_retry_budget_is_counted_and_the_uploader_moves_on() {
    let port = closed_port();
    let (_layer, guard) =
        builder_for_port(port).retry_base_delay(Duration::from_millis(5)).max_retries(2).build().unwrap();
    let handle = guard.handle();
    for name in FAULTED {
        handle.log(name, json!({}), Severity::Info);
    }
    assert!(handle.wait_until_drained(PATIENCE));
    let before = handle.stats();
    assert_eq!(before.dropped.retries_exhausted, 3, "START and both events: {before:?}");
    assert_eq!(before.retries, 2 * 2);
    let server = RawServer::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    handle.log(HEALTHY, json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let stats = guard.shutdown().stats;
    let names: Vec<Value> = server.accepted_events().iter().map(|e| e["event_name"].clone()).collect();
    assert_eq!(
        names,
        [json!(HEALTHY), json!("telemetry.dropped"), Value::Null],
        "then the report and SESSION_END"
    );
    assert_eq!((stats.accepted, stats.delivered, stats.dropped.retries_exhausted), (6, 3, 3));
    assert_eq!(stats.accepted, stats.delivered + stats.dropped.total() + stats.queued);
}

#[test]
fn a_server_that_never_answers_is_cut_off_by_the_request_timeout() {
    let timeout = Duration::from_millis(200);
    let (stats, collector) = through_collector(vec![Reply::Hang], |b| b.http_timeout(timeout));
    assert_recovered(&stats, &collector.accepted_events());
    let tries = faulted_requests(&collector);
    assert_eq!(tries.len(), 2);
    assert!(!tries[0].accepted && tries[1].accepted);
    assert!(tries[1].at - tries[0].at >= timeout, "retried before the timeout");
    assert_eq!((stats.retries, stats.dropped.total()), (1, 0));
    assert_eq!(stats.retried.timeout, 1, "{stats:?}");
}

#[test]
fn a_server_that_never_answers_any_try_costs_the_batch_not_the_uploader() {
    let (stats, collector) = through_collector(vec![Reply::Hang, Reply::Hang], |b| {
        b.http_timeout(Duration::from_millis(200)).max_retries(1)
    });
    assert_recovered(&stats, &collector.accepted_events());
    assert_eq!(stats.dropped.retries_exhausted, 2, "{stats:?}");
    assert_eq!(collector.names(), ["SESSION_START", "healthy", "telemetry.dropped", "SESSION_END"]);
}

#[test]
fn a_connection_reset_before_the_response_is_retried() {
    let (stats, server) = through_raw(vec![Raw::Reset, Raw::Reset], |b| b);
    assert_recovered(&stats, &server.accepted_events());
    assert_eq!(raw_faulted_requests(&server).len(), 1, "the two resets happen before the body is read");
    assert_eq!((stats.retries, stats.dropped.total()), (2, 0), "{stats:?}");
}

#[test]
fn a_response_cut_inside_its_head_is_retried() {
    let cut = Raw::WriteClose(Raw::accept_cut_at(20));
    let (stats, server) = through_raw(vec![cut.clone(), cut], |b| b);
    assert_recovered(&stats, &server.accepted_events());
    let tries = raw_faulted_requests(&server);
    assert_eq!(tries.len(), 3);
    assert_eq!(tries[0].raw, tries[2].raw, "the retry resends the same bytes");
    assert_eq!((stats.retries, stats.dropped.total()), (2, 0));
}

#[test]
fn an_error_cut_inside_its_body_is_retried() {
    let mut cut = raw_response(503, br#"{"detail":"overloaded, try again"}"#);
    cut.truncate(cut.len() - 10);
    let (stats, server) = through_raw(vec![Raw::WriteClose(cut)], |b| b);
    assert_recovered(&stats, &server.accepted_events());
    assert_eq!(raw_faulted_requests(&server).len(), 2);
    assert_eq!((stats.retries, stats.dropped.total()), (1, 0));
}

#[test]
fn a_200_cut_inside_its_body_is_delivered_once() {
    let full = Raw::accept_cut_at(usize::MAX).len();
    let (stats, server) = through_raw(vec![Raw::WriteClose(Raw::accept_cut_at(full - 5))], |b| b);
    assert_recovered(&stats, &server.accepted_events());
    assert_eq!(raw_faulted_requests(&server).len(), 1, "a 200 must not be sent again");
    assert_eq!((stats.retries, stats.delivered, stats.dropped.total()), (0, 5, 0));
}

#[test]
fn a_200_whose_body_never_ends_is_delivered_once() {
    let full = Raw::accept_cut_at(usize::MAX).len();
    let stall = Raw::WriteStall(Raw::accept_cut_at(full - 5));
    let (stats, server) = through_raw(vec![stall], |b| b.http_timeout(Duration::from_millis(200)));
    assert_recovered(&stats, &server.accepted_events());
    assert_eq!(raw_faulted_requests(&server).len(), 1, "a 200 must not be sent again");
    assert_eq!((stats.retries, stats.delivered, stats.dropped.total()), (0, 5, 0));
}

#[test]
fn a_200_with_an_empty_or_non_json_body_is_delivered_and_the_uploader_keeps_going() {
    let odd_bodies = [
        ResponseTemplate::new(200),
        ResponseTemplate::new(200).set_body_string("<html>accepted, probably</html>"),
        ResponseTemplate::new(200).set_body_raw(vec![0xff, 0xfe, 0x00], "application/json"),
        ResponseTemplate::new(202).set_body_string("{\"status\":"),
        ResponseTemplate::new(204),
    ];
    for template in odd_bodies {
        let shown = format!("{template:?}");
        let status = if shown.contains("202") {
            202
        } else if shown.contains("204") {
            204
        } else {
            200
        };
        let (stats, collector) = through_collector(vec![Reply::With(status, template)], |b| b);
        assert_recovered(&stats, &collector.accepted_events());
        assert_eq!(faulted_requests(&collector).len(), 1, "{shown}");
        assert_eq!((stats.retries, stats.delivered, stats.dropped.total()), (0, 5, 0), "{shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shutdown under every fault.

/// A fault that lasts: every request after SESSION_START's gets it (None: nothing listens).
#[derive(Debug, Clone, Copy)]
enum Lasting {
    Status(u16),
    RetryAfterAnHour,
    Hang,
    Reset,
    CutHead,
    StalledHead,
    Refused,
    EmptyOk,
}

const LASTING: [Lasting; 14] = [
    Lasting::Status(500),
    Lasting::Status(502),
    Lasting::Status(503),
    Lasting::Status(504),
    Lasting::RetryAfterAnHour,
    Lasting::Status(400),
    Lasting::Status(401),
    Lasting::Status(413),
    Lasting::Hang,
    Lasting::Reset,
    Lasting::CutHead,
    Lasting::StalledHead,
    Lasting::Refused,
    Lasting::EmptyOk,
];

impl Lasting {
    fn answer(self) -> Raw {
        match self {
            Lasting::Status(s) => Raw::Status(s),
            Lasting::RetryAfterAnHour => Raw::WriteClose(
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3600\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"
                    .to_vec(),
            ),
            Lasting::Hang => Raw::Hang,
            Lasting::Reset => Raw::Reset,
            Lasting::CutHead => Raw::WriteClose(Raw::accept_cut_at(12)),
            Lasting::StalledHead => Raw::WriteStall(Raw::accept_cut_at(12)),
            Lasting::Refused => unreachable!(),
            Lasting::EmptyOk => Raw::WriteClose(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec()),
        }
    }
}

/// Events logged while the fault lasts.
const STUCK: u64 = 5;

/// Starts a reporter facing `fault` with production-like retry timings (1 s backoff, 5 s
/// request timeout) and a 400 ms `flush_timeout`, logs [`STUCK`] events and waits until the
/// fault has them. Returns the guard and a way to read what the server accepted.
fn facing(fault: Lasting) -> (tinker_telemetry::TelemetryGuard, Option<RawServer>, Duration) {
    let flush_timeout = Duration::from_millis(400);
    let server = match fault {
        Lasting::Refused => None,
        _ => Some(RawServer::with_fn(move |n| if n == 0 { Raw::Accept } else { fault.answer() })),
    };
    let builder = match &server {
        Some(s) => s.builder(SESSION),
        None => builder_for_port(closed_port()),
    };
    let (_layer, guard) = builder
        .retry_base_delay(Duration::from_secs(1))
        .http_timeout(Duration::from_secs(5))
        .flush_timeout(flush_timeout)
        .build()
        .unwrap();
    let handle = guard.handle();
    if let Some(s) = &server {
        s.wait_requests(1);
        eventually("SESSION_START to be delivered", || handle.stats().delivered == 1);
    }
    for i in 0..STUCK {
        handle.log("stuck", json!({ "i": i }), Severity::Info);
    }
    handle.flush();
    match (&server, fault) {
        (None, _) => eventually("a refused attempt", || handle.stats().retries >= 1),
        (Some(_), Lasting::Status(400 | 401 | 413) | Lasting::EmptyOk) => {}
        (Some(s), _) => {
            s.wait_requests(2);
        }
    }
    (guard, server, flush_timeout)
}

/// What must hold once the guard is gone, whatever the fault.
fn assert_accounted(fault: Lasting, stats: &Stats, server: Option<&RawServer>) {
    let accepted = server.map(RawServer::accepted_events).unwrap_or_default();
    let ids: HashSet<&str> = accepted.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), accepted.len(), "{fault:?}: an event was accepted twice");
    // A fault that settled the stuck events before SESSION_END was taken is reported first.
    let reports = stats.accepted - (1 + STUCK + 1);
    assert!(reports <= 1, "{fault:?}: {stats:?}");
    assert_eq!(stats.delivered, accepted.len() as u64, "{fault:?}: {stats:?}");
    assert_eq!(stats.queued, 0, "{fault:?}: {stats:?}");
    assert_eq!(stats.accepted, stats.delivered + stats.dropped.total(), "{fault:?}: {stats:?}");
    let d = &stats.dropped;
    let (counter, want) = match fault {
        Lasting::EmptyOk => (stats.delivered, STUCK + 2 + reports),
        Lasting::Status(400 | 401) => (d.rejected, STUCK + 1 + reports),
        Lasting::Status(413) => (d.too_large, STUCK + 1 + reports),
        // SESSION_START could not be sent either.
        Lasting::Refused => (d.unsent_at_shutdown, STUCK + 2 + reports),
        _ => (d.unsent_at_shutdown, STUCK + 1 + reports),
    };
    assert_eq!(counter, want, "{fault:?}: {stats:?}");
    assert_eq!(d.total(), if matches!(fault, Lasting::EmptyOk) { 0 } else { want }, "{fault:?}: {stats:?}");
}

#[test]
fn dropping_the_guard_returns_within_flush_timeout_whatever_the_fault() {
    for fault in LASTING {
        let (guard, server, flush_timeout) = facing(fault);
        let handle = guard.handle();
        let started = Instant::now();
        drop(guard);
        let took = started.elapsed();
        assert!(took <= flush_timeout + SHUTDOWN_SLACK, "{fault:?}: the drop took {took:?}");
        assert_accounted(fault, &handle.stats(), server.as_ref());
    }
}

#[test]
fn shutdown_reports_what_could_not_be_sent_whatever_the_fault() {
    for fault in LASTING {
        let (guard, server, flush_timeout) = facing(fault);
        let started = Instant::now();
        let report = guard.shutdown();
        let took = started.elapsed();
        assert!(took <= flush_timeout + SHUTDOWN_SLACK, "{fault:?}: shutdown took {took:?}");
        assert_accounted(fault, &report.stats, server.as_ref());
        let unsent = report.stats.dropped.unsent_at_shutdown;
        assert_eq!(report.drained, unsent == 0, "{fault:?}: {report:?}");
    }
}

#[test]
fn a_backoff_past_the_drain_deadline_becomes_one_last_attempt_before_it() {
    let collector = Collector::with_plan(vec![Reply::Status(200), Reply::Status(503)]);
    let flush_timeout = Duration::from_secs(2);
    let (_layer, guard) = collector
        .builder(SESSION)
        .retry_base_delay(Duration::from_secs(60))
        .flush_timeout(flush_timeout)
        .build()
        .unwrap();
    let handle = guard.handle();
    collector.wait_requests(1);
    handle.log("waiting", json!({}), Severity::Info);
    handle.flush();
    collector.wait_requests(2);
    eventually("the retry to be scheduled", || handle.stats().retries == 1);
    assert!(!handle.wait_until_drained(Duration::from_millis(200)), "the backoff was not honoured");
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    // The one-minute backoff ends past the 2 s deadline: the last attempt starts a second
    // (the last attempt's window) before it, and succeeds.
    assert!(took >= Duration::from_millis(900) && took <= flush_timeout + SHUTDOWN_SLACK, "took {took:?}");
    assert!(report.drained, "{report:?}");
    assert_eq!(collector.names(), ["SESSION_START", "waiting", "SESSION_END"]);
    assert_eq!(collector.seen().len(), 4, "START, the failure, the last attempt, END");
    let s = report.stats;
    assert_eq!((s.accepted, s.delivered, s.dropped.total(), s.retries), (3, 3, 0, 1));
}
