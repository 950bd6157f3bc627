//! The drain at the end of a program, over real HTTP on 127.0.0.1: it keeps retrying with
//! the normal backoff while the deadline allows, never cuts a server's `Retry-After` short,
//! honours a rate limit for every request, tells the server what was lost before
//! SESSION_END, and sends SESSION_END only after everything else is answered.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    Collector, Gate, Raw, RawServer, Reply, assert_well_formed, eventually, names, raw_response_with,
};
use tinker_telemetry::Severity;

const SESSION: &str = "5b0e7c1d-2a9f-4e3b-8c6d-1f2a3b4c5d6e";

fn retry_after(secs: u64) -> Raw {
    Raw::WriteClose(raw_response_with(429, &[&format!("retry-after: {secs}")]))
}

#[test]
fn a_program_ending_during_a_brief_outage_loses_nothing() {
    // SESSION_START meets two 500s; the program ends during the first backoff.
    let server = RawServer::with_plan(vec![Raw::Status(500), Raw::Status(500)]);
    let (_layer, guard) =
        server.builder(SESSION).retry_base_delay(Duration::from_millis(300)).build().unwrap();
    let handle = guard.handle();
    for i in 0..5 {
        handle.log("work", json!({ "i": i }), Severity::Info);
    }
    server.wait_requests(1);
    let dropped_at = Instant::now();
    let report = guard.shutdown();
    let took = dropped_at.elapsed();
    assert!(report.drained, "{report:?}");
    assert_eq!(report.stats.dropped.total(), 0, "{report:?}");
    let mut events = server.accepted_events();
    events.sort_by_key(|e| e["event_session_index"].as_u64());
    assert_well_formed(&events);
    assert_eq!(names(&events), ["SESSION_START", "work", "work", "work", "work", "work", "SESSION_END"]);
    // The backoffs (300 ms, then 600 ms, each + up to 10 %) were kept, not cut short.
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(3), "drop took {took:?}");
    let seen = server.seen();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(300), "first retry too early");
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(600), "second retry too early");
}

#[test]
fn a_retry_after_at_shutdown_is_waited_out() {
    let server = RawServer::with_plan(vec![retry_after(2)]);
    let (_layer, guard) = server.builder(SESSION).flush_timeout(Duration::from_secs(10)).build().unwrap();
    server.wait_requests(1);
    let report = guard.shutdown();
    assert!(report.drained, "{report:?}");
    let seen = server.seen();
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(2),
        "resent {:?} after a Retry-After of 2 s",
        seen[1].at - seen[0].at
    );
    assert_eq!(report.stats.delivered, 2, "SESSION_START and SESSION_END: {report:?}");
}

#[test]
fn a_retry_after_past_the_deadline_is_not_cut_short_and_the_drop_stays_bounded() {
    let server = RawServer::with_fn(|_| retry_after(3600));
    let flush_timeout = Duration::from_secs(2);
    let (_layer, guard) = server.builder(SESSION).flush_timeout(flush_timeout).build().unwrap();
    server.wait_requests(1);
    let dropped_at = Instant::now();
    let report = guard.shutdown();
    let took = dropped_at.elapsed();
    assert!(took <= flush_timeout + Duration::from_millis(250), "drop took {took:?}");
    assert_eq!(server.seen().len(), 1, "nothing resent while the server asked for quiet");
    assert!(!report.drained);
    assert_eq!(report.stats.dropped.unsent_at_shutdown, 2, "START and END counted: {report:?}");
    assert_eq!(
        report.stats.accepted,
        report.stats.delivered + report.stats.dropped.total() + report.stats.queued
    );
}

#[test]
fn a_rate_limit_holds_back_every_request_until_it_ends() {
    let server = RawServer::with_plan(vec![Raw::Accept, retry_after(2)]);
    let (_layer, guard) = server.builder(SESSION).max_batch_size(1).build().unwrap();
    let handle = guard.handle();
    server.wait_requests(1);
    handle.log("first", json!({}), Severity::Info);
    handle.flush();
    let limited = server.wait_requests(2)[1].at;
    eventually("the client to read the 429", || handle.stats().retries == 1);
    // Two more batches wait while the rate limit holds.
    handle.log("second", json!({}), Severity::Info);
    handle.log("third", json!({}), Severity::Info);
    handle.flush();
    let seen = server.wait_requests(5);
    for s in &seen[2..] {
        assert!(
            s.at - limited >= Duration::from_secs(2),
            "a request {:?} into a 2 s Retry-After",
            s.at - limited
        );
    }
    let report = guard.shutdown();
    assert!(report.drained && report.stats.dropped.total() == 0, "{report:?}");
    let names = names(&server.accepted_events());
    for name in ["first", "second", "third"] {
        assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
    }
}

#[test]
fn drops_are_reported_before_session_end_even_when_the_program_ends_first() {
    // The server is slow (SESSION_START held) while 50,000 events meet a queue of 10,000.
    let gate = Gate::default();
    let collector = Collector::with_plan(vec![Reply::Held(gate.clone())]);
    let (_layer, guard) = collector.builder(SESSION).max_queue_size(10_000).build().unwrap();
    let handle = guard.handle();
    collector.wait_requests(1);
    for i in 0..50_000 {
        handle.log("flood", json!({ "i": i }), Severity::Info);
    }
    gate.open();
    let report = guard.shutdown();
    assert!(report.drained, "{report:?}");
    let lost = report.stats.dropped.queue_full;
    assert_eq!(lost, 50_000 - (10_000 - 1), "SESSION_START held one place");
    let events = collector.accepted_by_index();
    assert_well_formed(&events);
    let reports: Vec<_> = events.iter().filter(|e| e["event_name"] == "telemetry.dropped").collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        reports[0]["event_data"],
        json!({"count": lost, "total": lost, "by_reason": {"queue_full": lost}})
    );
    let end = events.last().unwrap();
    assert_eq!(end["event"], "SESSION_END");
    assert!(reports[0]["event_session_index"].as_u64() < end["event_session_index"].as_u64());
}

#[test]
fn session_end_is_sent_only_after_every_other_batch_is_answered() {
    let (collector, gate) = Collector::holding_second();
    let (guard, handle) = collector.reporter(SESSION);
    collector.wait_requests(1);
    handle.log("held", json!({}), Severity::Info);
    handle.flush();
    collector.wait_requests(2);
    let shutdown = std::thread::spawn(move || guard.shutdown());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.seen().len(), 2, "SESSION_END went out while a batch was unanswered");
    let answered = Instant::now();
    gate.open();
    let report = shutdown.join().unwrap();
    assert!(report.drained, "{report:?}");
    let seen = collector.wait_requests(3);
    assert_eq!(seen[2].events()[0]["event"], "SESSION_END");
    assert!(seen[2].at >= answered, "SESSION_END arrived before the held batch was answered");
}
