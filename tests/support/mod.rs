//! Test support, by role: the wiremock collector most tests send to (`collector.rs`), a raw
//! TCP server for faults (`raw.rs`), what both keep of a request (`requests.rs`), TLS
//! (`tls.rs`), a proxy (`proxy.rs`), children of the test binary (`child.rs`), the
//! programs of `tests/programs/` (`programs.rs`) and what the spool's tests share
//! (`spool.rs`); here, what every suite shares.
#![allow(dead_code, unused_imports, unreachable_pub, reason = "each test binary uses a part of it")]

pub mod child;
pub mod collector;
pub mod programs;
pub mod proxy;
pub mod raw;
pub mod requests;
pub mod spool;
pub mod tls;

use std::time::{Duration, Instant};

use serde_json::Value;
use tinker_telemetry::{Builder, TinkerTelemetryLayer};

pub use collector::{Collector, Gate, Reply, Seen, accepted_body};
pub use raw::{Raw, RawSeen, RawServer, raw_response, raw_response_with};

/// Generous bound for anything a test waits on; a healthy run takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const API_KEY: &str = "tml-test-KEY-0123456789";

/// A builder aimed at `uri`, with test-friendly timings: no interval flush within a test,
/// 5 ms retry backoff, 5 s requests, 10 s drain.
pub fn test_builder(uri: &str, session: &str) -> Builder {
    TinkerTelemetryLayer::builder()
        .session_id(session)
        .api_key(API_KEY)
        .base_url(uri)
        .enabled(true)
        .flush_interval(Duration::from_secs(3600))
        .retry_base_delay(Duration::from_millis(5))
        .http_timeout(Duration::from_secs(5))
        .flush_timeout(Duration::from_secs(10))
}

/// A port on 127.0.0.1 that nothing listens on: connections to it are refused.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Each event's `event_name`, or its `event` type when it has none.
pub fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_name"].as_str().unwrap_or(e["event"].as_str().unwrap()).to_owned())
        .collect()
}

/// Checks what every session's accepted events must satisfy: indices unique and contiguous
/// from 0, SESSION_START at 0, SESSION_END last (if present), event ids unique UUID v4s.
pub fn assert_well_formed(events: &[Value]) {
    let mut indices: Vec<u64> = events.iter().map(|e| e["event_session_index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    let expected: Vec<u64> = (0..events.len() as u64).collect();
    assert_eq!(indices, expected, "indices must be unique and contiguous from 0");
    let mut ids = std::collections::HashSet::new();
    for e in events {
        let id = uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert!(ids.insert(id), "duplicate event_id {id}");
        let ts = e["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27, "timestamp {ts} must have six fraction digits");
        assert!(ts.ends_with('Z'));
    }
    let by_index = |i: u64| events.iter().find(|e| e["event_session_index"] == i).unwrap();
    if let Some(start) = events.iter().find(|e| e["event"] == "SESSION_START") {
        assert_eq!(start["event_session_index"], 0);
    }
    if let Some(end) = events.iter().find(|e| e["event"] == "SESSION_END") {
        assert_eq!(end["event_session_index"], events.len() as u64 - 1, "SESSION_END must be last");
        assert_eq!(events.iter().filter(|e| e["event"] == "SESSION_END").count(), 1);
        let _ = by_index(0);
    }
}

/// The official request schema, compiled.
pub fn schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/telemetry_send_request.schema.json")).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

/// Polls `done` every millisecond until it holds; panics naming `what` after [`PATIENCE`].
/// For state the uploader publishes only through its counters (a retry being scheduled).
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < until, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// This process's resident set size, in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}
