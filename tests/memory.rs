//! Memory is bounded in bytes, not only in events: 10,000 events of 16 KiB while the server
//! is down stay within `max_queue_bytes` plus a fixed overhead. (Its own binary: the heap
//! counted is the process's, and no other test may allocate meanwhile.)
//!
//! The bound is on the heap the process holds, counted by `peak_alloc` as the global
//! allocator: its peak, not a sample. The resident set is printed beside it and held to twice
//! the bound: glibc keeps a per-thread arena, so the emitting thread's freed events and the
//! uploader's batches each keep their own high-water mark, whatever the heap's.

mod support;

use std::time::Duration;

use peak_alloc::PeakAlloc;
use serde_json::json;
use support::rss_bytes;
use tinker_telemetry::{DEFAULT_MAX_QUEUE_BYTES, Severity};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const SESSION: &str = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d";
const EVENTS: usize = 10_000;
const PAYLOAD: usize = 16 * 1024;
const MIB: u64 = 1024 * 1024;

#[test]
fn large_events_while_the_server_is_down_stay_within_the_byte_bound() {
    // A port nothing listens on: every request is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("http://127.0.0.1:{port}");
    let (_layer, guard) = support::test_builder(&uri, SESSION).max_queue_size(EVENTS).build().unwrap();
    let handle = guard.handle();
    let blob = "x".repeat(PAYLOAD);
    handle.log("warm-up", json!({ "blob": blob }), Severity::Info);
    let before = rss_bytes();
    let heap_before = HEAP.current_usage() as u64;
    HEAP.reset_peak_usage();
    for i in 0..EVENTS {
        handle.log("large", json!({ "i": i, "blob": blob }), Severity::Info);
    }
    // The uploader answers the wait's flush once it has taken (serialized) everything queued;
    // with the server down nothing drains.
    assert!(!handle.wait_until_drained(Duration::from_millis(300)));
    let stats = handle.stats();
    let grown = rss_bytes().saturating_sub(before);
    let heap_grown = (HEAP.peak_usage() as u64).saturating_sub(heap_before);
    println!(
        "heap grew {} MiB at its peak, RSS {} MiB; queued {} events, {} bytes; {:?}",
        heap_grown / MIB,
        grown / MIB,
        stats.queued,
        stats.queued_bytes,
        stats.dropped
    );
    // Events are admitted up to the bound; their JSON adds its envelope (under 256 bytes).
    assert!(stats.queued_bytes <= DEFAULT_MAX_QUEUE_BYTES as u64 + stats.queued * 256, "{stats:?}");
    assert!(stats.dropped.queue_full > 0, "the byte bound dropped nothing: {stats:?}");
    // The documented bound: max_queue_bytes plus 256 bytes per queued event and 8 MiB.
    let bound = DEFAULT_MAX_QUEUE_BYTES as u64 + EVENTS as u64 * 256 + 8 * MIB;
    assert!(
        heap_grown <= bound,
        "the heap grew {} MiB, above the {} MiB bound",
        heap_grown / MIB,
        bound / MIB
    );
    assert!(grown <= 2 * bound, "RSS grew {} MiB, above twice the {} MiB bound", grown / MIB, bound / MIB);
    let report = guard.shutdown();
    assert_eq!(report.stats.queued_bytes, 0, "every byte is given back: {report:?}");
    assert_eq!(
        report.stats.accepted,
        report.stats.delivered + report.stats.dropped.total() + report.stats.queued
    );
}
