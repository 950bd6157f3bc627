//! Bad input: whatever the fields of an event hold (any Unicode, control characters, huge
//! strings, NaN and infinities, 64- and 128-bit extremes, odd `Debug` output, many or oddly
//! named fields), every body the crate sends is valid JSON that the request schema accepts
//! and stays within the documented size; bad configuration is refused by `build()` with the
//! option named; events after shutdown are counted, never a panic.

mod support;

use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::{PATIENCE, RawSeen, RawServer};
use tinker_telemetry::{
    MAX_EVENT_BYTES, MAX_VALUE_BYTES, Severity, TRUNCATION_MARKER, TelemetryGuard, TelemetryHandle,
    TinkerTelemetryLayer,
};
use tracing_subscriber::prelude::*;

const SESSION: &str = "9a7e5c31-0d2b-4f6a-8c4e-2b1d3f5a7c90";

/// What a body may weigh, as the crate documents it: `max_batch_size × MAX_EVENT_BYTES` plus
/// "a few hundred bytes" of envelope (for a UUID session id).
fn body_limit(batch: usize) -> usize {
    batch * MAX_EVENT_BYTES + 512
}

/// One reporter and its server, shared by the cases of one property.
struct Rig {
    server: RawServer,
    dispatch: tracing::Dispatch,
    handle: TelemetryHandle,
    guard: Option<TelemetryGuard>,
    schema: jsonschema::Validator,
}

impl Rig {
    fn new() -> Self {
        let server = RawServer::with_fn(|_| support::Raw::Accept);
        let (layer, guard) = server.builder(SESSION).build().unwrap();
        let handle = guard.handle();
        server.wait_requests(1);
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        Rig { server, dispatch, handle, guard: Some(guard), schema: support::schema() }
    }

    /// Runs `emit` under the reporter's subscriber, waits until it is delivered, and returns
    /// the requests that carried it, each checked against the schema and the size limits.
    fn requests_for(&self, emit: impl FnOnce()) -> Result<Vec<RawSeen>, TestCaseError> {
        let before = self.server.seen().len();
        tracing::dispatcher::with_default(&self.dispatch, emit);
        prop_assert!(self.handle.wait_until_drained(PATIENCE), "not delivered");
        let seen = self.server.seen()[before..].to_vec();
        for request in &seen {
            let body: Value = serde_json::from_slice(&request.raw)
                .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {:?}", request.raw)))?;
            let errors: Vec<String> = self.schema.iter_errors(&body).map(|e| e.to_string()).collect();
            prop_assert!(errors.is_empty(), "schema: {errors:?}");
            prop_assert!(
                request.raw.len() <= body_limit(request.events().len()),
                "body of {} bytes",
                request.raw.len()
            );
            for size in event_sizes(&request.raw) {
                prop_assert!(size <= MAX_EVENT_BYTES, "an event of {size} bytes");
            }
        }
        Ok(seen)
    }

    /// The one event `emit` produced.
    fn event_for(&self, emit: impl FnOnce()) -> Result<(Value, Vec<u8>), TestCaseError> {
        let seen = self.requests_for(emit)?;
        prop_assert_eq!(seen.len(), 1);
        prop_assert_eq!(seen[0].events().len(), 1);
        Ok((seen[0].events()[0].clone(), seen[0].raw.clone()))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let report = guard.shutdown();
            if !std::thread::panicking() {
                let s = report.stats;
                assert_eq!(s.dropped.total(), 0, "{s:?}");
                assert_eq!(s.accepted, s.delivered);
            }
        }
    }
}

/// The serialized length of each element of the body's `events` array, measured on the bytes
/// as sent (re-serializing would hide how wide numbers were written).
fn event_sizes(raw: &[u8]) -> Vec<usize> {
    let start = raw.iter().position(|&b| b == b'[').expect("an events array") + 1;
    let (mut sizes, mut depth, mut in_string, mut escaped, mut from) = (Vec::new(), 0, false, false, start);
    for (i, &b) in raw.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b']' if depth == 0 => {
                sizes.push(i - from);
                from = i + 1;
                if b == b']' {
                    break;
                }
            }
            _ => {}
        }
    }
    sizes
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Any string: every `char` (control characters included), short or huge.
fn any_text() -> impl Strategy<Value = String> {
    let chars = prop::collection::vec(any::<char>(), 0..64).prop_map(String::from_iter);
    let huge = (prop::collection::vec(any::<char>(), 1..8), 1_000usize..40_000)
        .prop_map(|(chars, n)| chars.iter().cycle().take(n).collect::<String>());
    let awkward = prop::sample::select(vec![
        String::new(),
        "\u{0}\u{1}\u{1f}\u{7f}\"\\/\u{2028}\u{2029}\u{feff}".to_owned(),
        "\u{1}".repeat(MAX_VALUE_BYTES),
        "é".repeat(MAX_VALUE_BYTES),
        "\u{10ffff}".repeat(2_000),
    ]);
    prop_oneof![4 => chars, 2 => huge, 1 => awkward]
}

fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::num::f64::ANY,
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MIN_POSITIVE, f64::MAX]),
    ]
}

/// A `Debug` impl that writes its text in pieces and may fail part way.
#[derive(Clone)]
struct OddDebug {
    text: String,
    fail_after: Option<usize>,
}

impl fmt::Debug for OddDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.text.chars().enumerate() {
            if self.fail_after == Some(i) {
                return Err(fmt::Error);
            }
            f.write_fmt(format_args!("{c}"))?;
        }
        f.write_str(" } ] \" \\")
    }
}

#[derive(Debug, Clone)]
struct Fields {
    text: String,
    name: String,
    severity: String,
    message: String,
    float: f64,
    unsigned: u64,
    signed: i64,
    wide: i128,
    uwide: u128,
    flag: bool,
    odd: OddDebug,
}

fn any_fields() -> impl Strategy<Value = Fields> {
    let numbers = (any_float(), any::<u64>(), any::<i64>(), any::<i128>(), any::<u128>(), any::<bool>());
    let extremes = prop::sample::select(vec![
        (f64::NAN, u64::MAX, i64::MIN, i128::MIN, u128::MAX, true),
        (f64::INFINITY, u64::MAX, i64::MAX, i128::MAX, u128::MAX, false),
    ]);
    let odd = (any_text(), prop::option::of(0usize..32))
        .prop_map(|(text, fail_after)| OddDebug { text, fail_after });
    let severity = prop_oneof![
        any_text(),
        prop::sample::select(vec!["critical".to_owned(), " Warn ".to_owned(), "loud".to_owned()]),
    ];
    (any_text(), any_text(), severity, any_text(), prop_oneof![numbers, extremes], odd).prop_map(
        |(text, name, severity, message, (float, unsigned, signed, wide, uwide, flag), odd)| Fields {
            text,
            name,
            severity,
            message,
            float,
            unsigned,
            signed,
            wide,
            uwide,
            flag,
            odd,
        },
    )
}

/// What a string field must arrive as: itself, or cut with the marker at the end.
fn check_text(sent: &str, got: &Value) -> Result<(), TestCaseError> {
    let got = got.as_str().ok_or_else(|| TestCaseError::fail(format!("not a string: {got}")))?;
    if got != sent {
        let kept = got.strip_suffix(TRUNCATION_MARKER);
        prop_assert!(
            kept.is_some_and(|k| sent.starts_with(k)),
            "{got:?} is neither {sent:?} nor a cut of it"
        );
    }
    Ok(())
}

fn check_float(sent: f64, got: &Value) -> Result<(), TestCaseError> {
    match sent {
        f if f.is_nan() => prop_assert_eq!(got, &json!("NaN")),
        f if f == f64::INFINITY => prop_assert_eq!(got, &json!("inf")),
        f if f == f64::NEG_INFINITY => prop_assert_eq!(got, &json!("-inf")),
        f => prop_assert_eq!(got.as_f64(), Some(f)),
    }
    Ok(())
}

#[test]
fn any_tracing_fields_make_a_valid_bounded_body() {
    let rig = Rig::new();
    runner(96)
        .run(&any_fields(), |f| {
            let (event, raw) = rig.event_for(|| {
                tracing::info!(
                    session_id = SESSION,
                    event_name = f.name.as_str(),
                    severity = f.severity.as_str(),
                    text = f.text.as_str(),
                    "odd name: with spaces" = f.text.as_str(),
                    "ünï.cødé/ключ" = f.unsigned,
                    float = f.float,
                    unsigned = f.unsigned,
                    signed = f.signed,
                    wide = f.wide,
                    uwide = f.uwide,
                    flag = f.flag,
                    odd = ?f.odd,
                    shown = %f.message,
                    "{}",
                    f.message
                );
            })?;
            let data = &event["event_data"];
            if data.get("_elided").is_some() {
                // Too large once escaped: sent with a marker instead of the payload.
                prop_assert!(data.as_object().unwrap().len() == 1);
                return Ok(());
            }
            check_text(&f.name, &event["event_name"])?;
            check_text(&f.text, &data["text"])?;
            check_text(&f.text, &data["odd name: with spaces"])?;
            check_text(&f.message, &data["message"])?;
            check_float(f.float, &data["float"])?;
            prop_assert_eq!(data["unsigned"].as_u64(), Some(f.unsigned));
            prop_assert_eq!(data["ünï.cødé/ключ"].as_u64(), Some(f.unsigned));
            prop_assert_eq!(data["signed"].as_i64(), Some(f.signed));
            prop_assert_eq!(data["flag"].as_bool(), Some(f.flag));
            // 128-bit integers keep every digit on the wire.
            let raw = String::from_utf8(raw).unwrap();
            prop_assert!(raw.contains(&format!("\"wide\":{}", f.wide)), "wide {} lost digits", f.wide);
            prop_assert!(raw.contains(&format!("\"uwide\":{}", f.uwide)), "uwide {} lost digits", f.uwide);
            prop_assert!(data["odd"].is_string());
            let severity = event["severity"].as_str().unwrap();
            match f.severity.trim().to_ascii_uppercase().as_str() {
                "CRITICAL" => prop_assert_eq!(severity, "CRITICAL"),
                "WARN" => prop_assert_eq!(severity, "WARNING"),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
}

/// Any JSON value (numbers finite, as JSON requires), keys of any text.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 16, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..16).prop_map(Value::from),
            prop::collection::btree_map(any_text(), inner, 0..16)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn has_secret_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            let k = k.to_ascii_lowercase().replace('-', "_");
            tinker_telemetry::DEFAULT_REDACTED_FIELDS.iter().any(|p| k.contains(p)) || has_secret_key(v)
        }),
        Value::Array(items) => items.iter().any(has_secret_key),
        _ => false,
    }
}

#[test]
fn any_logged_json_makes_a_valid_bounded_body() {
    let rig = Rig::new();
    runner(96)
        .run(&(any_text(), any_json()), |(name, data)| {
            let (event, _) = rig.event_for(|| {
                assert!(rig.handle.log(name.clone(), data.clone(), Severity::Info));
            })?;
            check_text(&name, &event["event_name"])?;
            let sent = &event["event_data"];
            prop_assert!(sent.is_object());
            if sent.get("_elided").is_none() && !has_secret_key(&data) {
                let expected = match &data {
                    Value::Object(_) => data.clone(),
                    Value::Null => json!({}),
                    other => json!({ "value": other }),
                };
                prop_assert_eq!(sent, &expected);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_full_batch_of_worst_case_events_stays_under_the_documented_size() {
    let rig = Rig::new();
    // Control characters cost six bytes each once escaped (`\u0001`).
    let nasty = "\u{1}".repeat(MAX_VALUE_BYTES * 2);
    let seen = rig
        .requests_for(|| {
            for i in 0..100 {
                tracing::info!(
                    session_id = SESSION,
                    event_name = nasty.as_str(),
                    a = nasty.as_str(),
                    b = nasty.as_str(),
                    c = ?nasty,
                    d = %nasty,
                    i,
                    "{nasty}"
                );
            }
        })
        .unwrap();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.events().len(), 100);
    assert!(request.raw.len() > 50 * MAX_EVENT_BYTES / 2, "the events were meant to be huge");
    assert!(request.raw.len() <= body_limit(100), "{} bytes", request.raw.len());
    for event in request.events() {
        assert!(event["event_name"].as_str().unwrap().ends_with(TRUNCATION_MARKER));
    }
    // One value that alone exceeds the event size: the event is sent, its payload elided.
    let huge = json!({ "blob": "\u{1}".repeat(MAX_EVENT_BYTES) });
    let seen = rig.requests_for(|| assert!(rig.handle.log("huge", huge, Severity::Info))).unwrap();
    assert_eq!(seen[0].events()[0]["event_name"], "huge");
    assert!(seen[0].events()[0]["event_data"]["_elided"].is_string());
}

#[test]
fn many_and_oddly_named_fields_are_kept_or_counted() {
    let rig = Rig::new();
    let (event, _) = rig
        .event_for(|| {
            tracing::info!(
                session_id = SESSION,
                f01 = 1,
                f02 = 2,
                f03 = 3,
                f04 = 4,
                f05 = 5,
                f06 = 6,
                f07 = 7,
                f08 = 8,
                f09 = 9,
                f10 = 10,
                f11 = 11,
                f12 = 12,
                f13 = 13,
                f14 = 14,
                f15 = 15,
                f16 = 16,
                f17 = 17,
                f18 = 18,
                f19 = 19,
                f20 = 20,
                f21 = 21,
                f22 = 22,
                f23 = 23,
                f24 = 24,
                "" = "empty name",
                " " = "blank name",
                "\"quoted\"" = true,
                "a.b.c" = 1.5,
                r#type = "raw identifier",
                "message" = 7,
                "x\ny" = "newline in the name"
            );
        })
        .unwrap();
    let data = event["event_data"].as_object().unwrap();
    for i in 1..=24 {
        assert_eq!(data[&format!("f{i:02}")], i, "{data:?}");
    }
    assert_eq!(data[""], "empty name");
    assert_eq!(data["\"quoted\""], true);
    assert_eq!(data["type"], "raw identifier");
    assert_eq!(data["x\ny"], "newline in the name");
    // Thousands of keys through the handle: sent, within the event size.
    let wide: serde_json::Map<String, Value> = (0..20_000).map(|i| (format!("key-{i}"), json!(i))).collect();
    let seen =
        rig.requests_for(|| assert!(rig.handle.log("wide", Value::Object(wide), Severity::Info))).unwrap();
    assert_eq!(seen[0].events()[0]["event_name"], "wide");
}

#[test]
fn fields_past_the_thirty_second_keep_their_names_and_past_the_room_are_counted() {
    let rig = Rig::new();
    // Two empty fields first, so that fields 32 and 33 of the callsite get entries.
    let (event, _) = rig
        .event_for(|| {
            tracing::info!(
                session_id = SESSION,
                event_name = "wide",
                f1 = tracing::field::Empty,
                f2 = tracing::field::Empty,
                f3 = 3u64,
                f4 = 4u64,
                f5 = 5u64,
                f6 = 6u64,
                f7 = 7u64,
                f8 = 8u64,
                f9 = 9u64,
                f10 = 10u64,
                f11 = 11u64,
                f12 = 12u64,
                f13 = 13u64,
                f14 = 14u64,
                f15 = 15u64,
                f16 = 16u64,
                f17 = 17u64,
                f18 = 18u64,
                f19 = 19u64,
                f20 = 20u64,
                f21 = 21u64,
                f22 = 22u64,
                f23 = 23u64,
                f24 = 24u64,
                f25 = 25u64,
                f26 = 26u64,
                f27 = 27u64,
                f28 = 28u64,
                f29 = 29u64,
                f30 = 30u64,
                f31 = 31u64,
                f32 = true,
                f33 = -5i64
            );
        })
        .unwrap();
    assert_eq!(event["event_name"], "wide");
    let data = event["event_data"].as_object().unwrap();
    for i in 3..32 {
        assert_eq!(data[&format!("f{i}")], i, "{data:?}");
    }
    assert_eq!((&data["f32"], &data["f33"]), (&json!(true), &json!(-5)), "{data:?}");
    assert!(!data.contains_key("_fields_dropped"), "{data:?}");
    // Seventy fields and a name: the first 64 are kept, the other 7 counted.
    let (event, _) = rig
        .event_for(|| {
            tracing::info!(
                session_id = SESSION,
                event_name = "many",
                g00 = 0u64,
                g01 = 1u64,
                g02 = 2u64,
                g03 = 3u64,
                g04 = 4u64,
                g05 = 5u64,
                g06 = 6u64,
                g07 = 7u64,
                g08 = 8u64,
                g09 = 9u64,
                g10 = 10u64,
                g11 = 11u64,
                g12 = 12u64,
                g13 = 13u64,
                g14 = 14u64,
                g15 = 15u64,
                g16 = 16u64,
                g17 = 17u64,
                g18 = 18u64,
                g19 = 19u64,
                g20 = 20u64,
                g21 = 21u64,
                g22 = 22u64,
                g23 = 23u64,
                g24 = 24u64,
                g25 = 25u64,
                g26 = 26u64,
                g27 = 27u64,
                g28 = 28u64,
                g29 = 29u64,
                g30 = 30u64,
                g31 = 31u64,
                g32 = 32u64,
                g33 = 33u64,
                g34 = 34u64,
                g35 = 35u64,
                g36 = 36u64,
                g37 = 37u64,
                g38 = 38u64,
                g39 = 39u64,
                g40 = 40u64,
                g41 = 41u64,
                g42 = 42u64,
                g43 = 43u64,
                g44 = 44u64,
                g45 = 45u64,
                g46 = 46u64,
                g47 = 47u64,
                g48 = 48u64,
                g49 = 49u64,
                g50 = 50u64,
                g51 = 51u64,
                g52 = 52u64,
                g53 = 53u64,
                g54 = 54u64,
                g55 = 55u64,
                g56 = 56u64,
                g57 = 57u64,
                g58 = 58u64,
                g59 = 59u64,
                g60 = 60u64,
                g61 = 61u64,
                g62 = 62u64,
                g63 = 63u64,
                g64 = 64u64,
                g65 = 65u64,
                g66 = 66u64,
                g67 = 67u64,
                g68 = 68u64,
                g69 = 69u64
            );
        })
        .unwrap();
    assert_eq!(event["event_name"], "many");
    let data = event["event_data"].as_object().unwrap();
    for j in 0..63 {
        assert_eq!(data[&format!("g{j:02}")], j, "{data:?}");
    }
    assert_eq!(data["_fields_dropped"], 7, "{data:?}");
    assert!(!data.contains_key("g63"), "{data:?}");
}

/// A value whose `Debug` logs while it is being captured.
struct Reentrant;

impl fmt::Debug for Reentrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        tracing::info!(session_id = SESSION, "logged from inside Debug");
        f.write_str("Reentrant")
    }
}

#[test]
fn a_debug_impl_that_logs_while_captured_breaks_nothing() {
    let rig = Rig::new();
    let seen =
        rig.requests_for(|| tracing::info!(session_id = SESSION, value = ?Reentrant, "outer")).unwrap();
    let events: Vec<&Value> = seen.iter().flat_map(|s| s.events()).collect();
    // A scoped dispatcher does not re-enter itself: tracing drops the inner event.
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_name"], "outer");
    assert_eq!(events[0]["event_data"]["value"], "Reentrant");
}

#[test]
fn events_after_shutdown_are_counted_not_panics() {
    let server = RawServer::with_fn(|_| support::Raw::Accept);
    let (layer, guard) = server.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let report = guard.shutdown();
    assert!(report.drained);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (dispatch, handle) = (&dispatch, &handle);
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    for i in 0..500 {
                        tracing::info!(session_id = SESSION, t, i, "late");
                        assert!(!handle.log("late", json!({ "t": t }), Severity::Error));
                    }
                });
            });
        }
    });
    handle.flush();
    let started = std::time::Instant::now();
    assert!(handle.wait_until_drained(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_millis(100), "waited on a stopped uploader");
    let s = handle.stats();
    assert_eq!(s.dropped.after_shutdown, 4 * 500 * 2, "{s:?}");
    assert_eq!(s.delivered, 2, "SESSION_START and SESSION_END only");
    assert_eq!(s.accepted, s.delivered + s.dropped.total() + s.queued);
    assert_eq!(server.seen().iter().map(|r| r.events().len()).sum::<usize>(), 2);
}

// ---------------------------------------------------------------------------------------------
// Bad configuration, through the public API.

fn refused(builder: tinker_telemetry::Builder) -> (Option<&'static str>, String) {
    let err = builder.build().expect_err("build() accepted a bad configuration");
    (err.option(), err.to_string())
}

#[test]
fn bad_configuration_is_refused_with_the_option_named() {
    let base = || {
        TinkerTelemetryLayer::builder()
            .session_id(SESSION)
            .api_key(support::API_KEY)
            .base_url("http://127.0.0.1:9")
            .enabled(true)
    };
    let zero = Duration::ZERO;
    let mut cases: Vec<(&str, tinker_telemetry::Builder)> = vec![
        ("session_id", TinkerTelemetryLayer::builder().api_key(support::API_KEY).enabled(true)),
        ("session_id", base().session_id("  ")),
        ("api_key", base().api_key("tml bad key")),
        ("api_key", base().api_key("tml-line\nbreak")),
        ("base_url", base().base_url("not a url")),
        ("base_url", base().base_url("ftp://127.0.0.1/")),
        ("base_url", base().base_url("http://example.com")),
        ("base_url", base().base_url("https://user:pw@example.com")),
        ("base_url", base().base_url("https://example.com/?q=1")),
        ("flush_interval", base().flush_interval(zero)),
        ("flush_threshold", base().flush_threshold(0)),
        ("flush_threshold", base().max_queue_size(50).max_batch_size(50).flush_threshold(51)),
        ("flush_timeout", base().flush_timeout(zero)),
        ("http_timeout", base().http_timeout(zero)),
        ("retry_base_delay", base().retry_base_delay(zero)),
        ("max_queue_size", base().max_queue_size(0)),
        ("max_batch_size", base().max_batch_size(0)),
        ("max_batch_size", base().max_batch_size(101)),
        ("max_batch_size", base().max_queue_size(10).max_batch_size(20).flush_threshold(5)),
        ("max_in_flight", base().max_in_flight(0)),
        ("summary_interval", base().summary_interval(zero)),
        ("error_spike", base().error_spike(0, Duration::from_secs(10))),
        ("error_spike", base().error_spike(5, zero)),
        ("max_operations", base().max_operations(0)),
    ];
    if std::env::var_os(tinker_telemetry::ENV_API_KEY).is_none() {
        cases.push(("api_key", TinkerTelemetryLayer::builder().session_id(SESSION).enabled(true)));
    }
    for (option, builder) in cases {
        let shown = format!("{builder:?}");
        let (named, message) = refused(builder);
        assert_eq!(named, Some(option), "{shown}: {message}");
        assert!(message.contains(&format!("`{option}`")), "{message}");
    }
    // The edges that are fine.
    for ok in [
        base().max_retries(0),
        base().max_queue_size(1).max_batch_size(1).flush_threshold(1),
        base().max_operations(1).error_spike(1, Duration::from_nanos(1)).no_error_spike(),
        // Disabled, no option can be wrong.
        base().enabled(false).summary_interval(zero).max_operations(0),
    ] {
        let (_layer, guard) = ok.flush_timeout(Duration::from_millis(50)).build().unwrap();
        drop(guard);
    }
}

#[test]
fn data_nested_deeper_than_json_parsers_take_is_cut_and_the_uploader_goes_on() {
    let rig = Rig::new();
    let mut deep = Value::Null;
    for _ in 0..1_000 {
        deep = Value::Array(vec![deep]);
    }
    let (event, _) = rig
        .event_for(|| assert!(rig.handle.log("deep", json!({ "payload": deep }), Severity::Info)))
        .unwrap();
    // Arrays down to the 64th level of `event_data`, then the marker.
    let mut value = &event["event_data"]["payload"];
    let mut levels = 1;
    while let Some(inner) = value.get(0) {
        value = inner;
        levels += 1;
    }
    assert_eq!((value, levels), (&json!(TRUNCATION_MARKER), 64));
    let (event, _) = rig.event_for(|| assert!(rig.handle.log("after", json!({}), Severity::Info))).unwrap();
    assert_eq!(event["event_name"], "after");
}
