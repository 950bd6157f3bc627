//! Callsites whose fields the emitting thread cannot tell by index: a `session_id`,
//! `message`, `event_name` or `severity` past the 32nd field, and callsites with more
//! fields than an entry's index byte holds. Their events are captured with every field told
//! by its name: the event's own `session_id` decides, its message names it, its severity
//! counts, and a field at an index no entry holds is counted in `_fields_dropped`, never
//! sent under another field's name. Also: a `severity` still counts when the fields before
//! it spent the event's text budget.

mod support;

use std::sync::OnceLock;

use serde_json::{Value, json};
use support::{PATIENCE, Raw, RawServer};
use tinker_telemetry::{MAX_VALUE_BYTES, TelemetryGuard, TelemetryHandle};
use tracing::callsite::{Callsite, Identifier};
use tracing::field::{FieldSet, Value as FieldValue};
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::prelude::*;

const SESSION: &str = "3c9d1e5f-7a2b-4c6d-8e0f-1a2b3c4d5e6f";
const OTHER: &str = "8e0f1a2b-3c4d-4e6f-9a7b-5c6d7e8f9a0b";

/// A reporter of [`SESSION`] and the server it sends to.
struct Rig {
    server: RawServer,
    dispatch: tracing::Dispatch,
    handle: TelemetryHandle,
    _guard: TelemetryGuard,
}

impl Rig {
    fn new() -> Self {
        let server = RawServer::with_fn(|_| Raw::Accept);
        let (layer, guard) = server.builder(SESSION).build().unwrap();
        server.wait_requests(1);
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        Rig { server, dispatch, handle: guard.handle(), _guard: guard }
    }

    /// The events `emit` produced (SESSION_START left out), once delivered.
    fn events_for(&self, emit: impl FnOnce()) -> Vec<Value> {
        let before = self.server.accepted_events().len();
        tracing::dispatcher::with_default(&self.dispatch, emit);
        assert!(self.handle.wait_until_drained(PATIENCE), "not delivered");
        let events = self.server.accepted_events().split_off(before);
        events.into_iter().filter(|e| e["event"] != "SESSION_START").collect()
    }
}

/// `tracing::info!` with the fields in the first brackets, then 32 fields `f00 = 0` to
/// `f31 = 31`, then those in the second brackets: past the 32nd field.
macro_rules! info_around_32_fields {
    ([$($before:tt)*] [$($after:tt)*]) => {
        tracing::info!(
            $($before)*
            f00 = 0u64, f01 = 1u64, f02 = 2u64, f03 = 3u64, f04 = 4u64, f05 = 5u64, f06 = 6u64,
            f07 = 7u64, f08 = 8u64, f09 = 9u64, f10 = 10u64, f11 = 11u64, f12 = 12u64,
            f13 = 13u64, f14 = 14u64, f15 = 15u64, f16 = 16u64, f17 = 17u64, f18 = 18u64,
            f19 = 19u64, f20 = 20u64, f21 = 21u64, f22 = 22u64, f23 = 23u64, f24 = 24u64,
            f25 = 25u64, f26 = 26u64, f27 = 27u64, f28 = 28u64, f29 = 29u64, f30 = 30u64,
            f31 = 31u64,
            $($after)*
        )
    };
}

#[test]
fn a_message_past_the_thirty_second_field_names_the_event() {
    let rig = Rig::new();
    let events = rig.events_for(|| {
        info_around_32_fields!([session_id = SESSION,][message = "past the thirty-second"]);
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_name"], "past the thirty-second", "{:?}", events[0]);
    let data = events[0]["event_data"].as_object().unwrap();
    for i in 0..32 {
        assert_eq!(data[&format!("f{i:02}")], i, "{data:?}");
    }
    assert!(!data.contains_key("session_id") && !data.contains_key("_fields_dropped"), "{data:?}");
}

#[test]
fn a_session_id_past_the_thirty_second_field_decides_the_event() {
    let rig = Rig::new();
    let events = rig.events_for(|| {
        // Ours, outside any span: kept.
        info_around_32_fields!([] [session_id = SESSION, event_name = "ours"]);
        // Another session's, inside a span of ours: its own `session_id` wins, so left out.
        let span = tracing::info_span!("ours", session_id = SESSION);
        let _in = span.enter();
        info_around_32_fields!([] [session_id = OTHER, event_name = "theirs"]);
        tracing::info!(event_name = "ours too");
    });
    let names: Vec<&Value> = events.iter().map(|e| &e["event_name"]).collect();
    assert_eq!(names, ["ours", "ours too"], "{events:?}");
    assert_eq!(events[0]["event_data"]["f31"], 31);
}

#[test]
fn a_severity_counts_after_the_fields_before_it_spent_the_budget() {
    let rig = Rig::new();
    let big = "x".repeat(MAX_VALUE_BYTES);
    let events = rig.events_for(|| {
        let b = big.as_str();
        tracing::info!(session_id = SESSION, event_name = "as a string", a = b, b = b, c = b, d = b, severity = "error");
        tracing::info!(session_id = SESSION, event_name = "displayed", a = b, b = b, c = b, d = b, severity = %"critical");
        tracing::info!(session_id = SESSION, event_name = "not one", a = b, b = b, c = b, d = b, severity = "no such");
    });
    let by_name = |name: &str| events.iter().find(|e| e["event_name"] == name).unwrap();
    for (name, severity) in [("as a string", "ERROR"), ("displayed", "CRITICAL")] {
        let event = by_name(name);
        assert_eq!(event["severity"], severity, "{name}");
        assert!(event["event_data"].get("severity").is_none(), "{name}: {event:?}");
    }
    // Not a severity: a value like any other, cut to what the budget left.
    let event = by_name("not one");
    assert_eq!(event["severity"], "INFO");
    assert_eq!(event["event_data"]["severity"], tinker_telemetry::TRUNCATION_MARKER);
}

/// A callsite of `N` fields `f0`…, the last called `session_id`, built by hand: the macros
/// do not make callsites this wide.
struct Wide(OnceLock<&'static Metadata<'static>>);

impl Callsite for Wide {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.0.get().unwrap()
    }
}

fn wide_callsite<const N: usize>() -> &'static Metadata<'static> {
    let callsite: &'static Wide = Box::leak(Box::new(Wide(OnceLock::new())));
    let names: Vec<&'static str> = (0..N)
        .map(|i| match i {
            _ if i == N - 1 => "session_id",
            _ => &*Box::leak(format!("f{i}").into_boxed_str()),
        })
        .collect();
    let meta = Box::leak(Box::new(Metadata::new(
        "wide",
        "wide_callsites",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(Box::leak(names.into_boxed_slice()), Identifier(callsite)),
        Kind::EVENT,
    )));
    callsite.0.set(meta).unwrap();
    meta
}

/// Emits an event of `meta` whose fields at `recorded` hold their index, whose
/// `session_id` is `session`, whose field at `error.0` holds the error `error.1`, and whose
/// other fields are empty.
fn emit_wide<const N: usize>(
    meta: &'static Metadata<'static>,
    recorded: &[usize],
    session: &str,
    error: Option<(usize, &(dyn std::error::Error + 'static))>,
) {
    let fields: Vec<_> = meta.fields().iter().collect();
    let numbers: Vec<u64> = (0..N as u64).collect();
    let values: [(&tracing::field::Field, Option<&dyn FieldValue>); N] = std::array::from_fn(|i| {
        let value: Option<&dyn FieldValue> = match (i, &error) {
            _ if i == N - 1 => Some(&session),
            (_, Some((at, error))) if *at == i => Some(error),
            _ if recorded.contains(&i) => Some(&numbers[i]),
            _ => None,
        };
        (&fields[i], value)
    });
    Event::dispatch(meta, &meta.fields().value_set(&values));
}

#[test]
fn a_callsite_wider_than_an_entry_byte_counts_what_it_cannot_hold() {
    let rig = Rig::new();
    let meta = wide_callsite::<300>();
    let events = rig.events_for(|| {
        emit_wide::<300>(meta, &[0, 1, 254, 255, 290], SESSION, None);
        emit_wide::<300>(meta, &[0, 1], OTHER, None);
    });
    assert_eq!(events.len(), 1, "{events:?}");
    let data = events[0]["event_data"].as_object().unwrap();
    // Every field kept is under its own name; the two past index 254 are counted.
    for (name, value) in data.iter().filter(|(k, _)| *k != "_fields_dropped") {
        assert_eq!(format!("f{value}"), *name, "{data:?}");
    }
    let kept = (&data["f0"], &data["f1"], &data["f254"]);
    assert_eq!(kept, (&json!(0), &json!(1), &json!(254)), "{data:?}");
    assert_eq!(data["_fields_dropped"], 2, "{data:?}");
}

#[test]
fn an_error_past_an_entry_byte_makes_the_event_an_exception() {
    let rig = Rig::new();
    let meta = wide_callsite::<300>();
    let error = std::io::Error::other("disk on fire");
    let events = rig.events_for(|| emit_wide::<300>(meta, &[0], SESSION, Some((280, &error))));
    let exception = events.iter().find(|e| e["event"] == "UNHANDLED_EXCEPTION");
    assert_eq!(exception.map(|e| &e["error_message"]), Some(&json!("disk on fire")), "{events:?}");
}
