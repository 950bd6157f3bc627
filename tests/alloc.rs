//! Allocations on the emitting thread: none per captured event once the thread's lane has
//! grown to its working size, whatever the event's size; none per ignored event.
//!
//! A captured event's fields and text are copied into the lane's byte buffer; the uploader
//! makes the record. The lane grows while the thread emits more events between two takes
//! than it ever has; after a take the thread writes into room at least that large.
//!
//! The crate forbids `unsafe_code` in every target, so the counting `#[global_allocator]` is
//! `allocation-counter`'s (linked into this test binary only): it counts per thread, so the
//! uploader's own allocations, on its thread, are not counted here.

mod support;

use support::{Collector, PATIENCE};
use tinker_telemetry::TelemetryHandle;
use tracing_subscriber::prelude::*;

const SESSION: &str = "6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11";
const OTHER: &str = "0b9f0c7d-2e11-4d7a-9c1e-6f1c2a9e5b4e";

/// Events measured per case, after as many for warm-up (the thread's scratch buffer, the
/// lane's room, the registry's thread-locals).
const EVENTS: u64 = 1_000;

/// Allocations made by this thread while `emit` runs `EVENTS` times, after a warm-up of as
/// many and a take of them by the uploader.
fn allocations(handle: &TelemetryHandle, mut emit: impl FnMut(u64)) -> u64 {
    (0..EVENTS).for_each(&mut emit);
    assert!(handle.wait_until_drained(PATIENCE));
    allocation_counter::measure(|| (0..EVENTS).for_each(&mut emit)).count_total
}

/// Asserts `emit` captured every event it made: 2 × `EVENTS` more accepted.
fn accepted_by(handle: &TelemetryHandle, emit: impl FnMut(u64)) -> u64 {
    let before = quiet_accepted(handle);
    let count = allocations(handle, emit);
    assert_eq!(quiet_accepted(handle) - before, 2 * EVENTS, "every event should have been captured");
    count
}

/// `accepted` once nothing is in flight: while a batch settles, a snapshot can count it twice.
fn quiet_accepted(handle: &TelemetryHandle) -> u64 {
    assert!(handle.wait_until_drained(PATIENCE));
    handle.stats().accepted
}

/// Asserts `emit` captured none of its events.
fn ignored_by(handle: &TelemetryHandle, emit: impl FnMut(u64)) -> u64 {
    let before = quiet_accepted(handle);
    let count = allocations(handle, emit);
    assert_eq!(quiet_accepted(handle), before, "no event should have been captured");
    count
}

#[test]
fn a_captured_event_allocates_nothing_once_the_lane_has_grown() {
    let collector = Collector::start();
    // The uploader takes only when asked (by `wait_until_drained`): the lane holds a whole
    // warm-up, as it holds what a thread emits between two takes.
    let builder = collector.builder(SESSION).max_queue_size(10 * EVENTS as usize);
    let (layer, guard) = builder.flush_threshold(5 * EVENTS as usize).build().unwrap();
    let handle = guard.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    let counts = tracing::subscriber::with_default(subscriber, || {
        let own = accepted_by(&handle, |i| {
            tracing::info!(
                session_id = SESSION,
                event_name = "train.step",
                step = i,
                loss = 0.731,
                model = "llama"
            )
        });
        let session = tracing::info_span!("session", session_id = SESSION);
        let inherited = session.in_scope(|| {
            accepted_by(&handle, |i| {
                tracing::info!(event_name = "train.step", step = i, loss = 0.731, model = "llama")
            })
        });
        let rich = rich(&handle);
        let wide = sixteen_fields(&handle);
        [
            ("own session_id", own),
            ("inherited from a span", inherited),
            ("rich", rich),
            ("sixteen fields", wide),
        ]
    });
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 1 + 8 * EVENTS + 1, "{:?}", report.stats);
    for (case, count) in counts {
        let per_event = count as f64 / EVENTS as f64;
        println!("{case}: {per_event:.3} allocations per captured event");
        assert_eq!(count, 0, "{case}: {count} allocations for {EVENTS} captured events");
    }
}

/// Allocations for events with a formatted message, Debug and Display values.
fn rich(handle: &TelemetryHandle) -> u64 {
    accepted_by(handle, |i| {
        tracing::warn!(
            session_id = SESSION,
            a = i,
            b = "b",
            c = ?Some(i),
            d = true,
            e = -1i64,
            f = %i,
            "step {i} of {}",
            EVENTS
        )
    })
}

/// Allocations for events with sixteen fields (160 bytes of entries).
fn sixteen_fields(handle: &TelemetryHandle) -> u64 {
    accepted_by(handle, |i| {
        tracing::info!(
            session_id = SESSION,
            f1 = i,
            f2 = i,
            f3 = i,
            f4 = i,
            f5 = "5",
            f6 = "6",
            f7 = 7.0,
            f8 = true,
            f9 = i,
            f10 = i,
            f11 = i,
            f12 = "12",
            f13 = "13",
            f14 = 14.0,
            f15 = false,
            f16 = i,
        )
    })
}

#[test]
fn an_ignored_event_allocates_nothing() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let cases = [
            (
                "no session_id",
                ignored_by(&handle, |i| {
                    tracing::info!(event_name = "train.step", step = i, loss = 0.731, model = "llama")
                }),
            ),
            (
                "another session",
                ignored_by(&handle, |i| {
                    tracing::info!(session_id = OTHER, event_name = "train.step", step = i, model = "llama")
                }),
            ),
            (
                "another session, as Display",
                ignored_by(&handle, |i| tracing::info!(session_id = %OTHER, step = i, "a message {i}")),
            ),
            (
                "below min_level",
                ignored_by(&handle, |i| {
                    tracing::debug!(
                        session_id = SESSION,
                        event_name = "train.step",
                        step = i,
                        model = "llama"
                    )
                }),
            ),
            (
                "in another session's span",
                tracing::info_span!("session", session_id = OTHER).in_scope(|| {
                    ignored_by(&handle, |i| {
                        tracing::info!(event_name = "train.step", step = i, model = "llama")
                    })
                }),
            ),
        ];
        for (case, count) in cases {
            assert_eq!(count, 0, "{case}: {count} allocations for {EVENTS} ignored events");
        }
    });
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 2, "only SESSION_START and SESSION_END: {:?}", report.stats);
}
