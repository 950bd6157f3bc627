//! The bytes the server receives for captured events, pinned: a constant message, a
//! formatted one, a name given at the callsite, fields of every type (integers at their
//! extremes, 128-bit values, floats JSON cannot spell, Debug and Display values, Unicode,
//! escapes, URLs with credentials, secret-looking names, a value over the size limit), many
//! fields, a severity override and an error value. Only each event's id and timestamp are
//! masked; everything else must arrive byte for byte as pinned here.

mod support;

use std::fmt;

use support::RawServer;
use tracing_subscriber::prelude::*;

const SESSION: &str = "3c9d2e71-8a4b-4f0e-9d6c-1a2b3c4d5e6f";

/// An error with a source, recorded as a `dyn Error` field.
#[derive(Debug)]
struct Outer(Inner);

#[derive(Debug)]
struct Inner;

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the step failed")
    }
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk full")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl std::error::Error for Inner {}

/// A Debug value whose output needs escaping.
#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug only")]
struct Config {
    name: &'static str,
    ratio: f32,
}

/// Emits one event of each shape, in order.
fn emit() {
    messages();
    types();
    wide_and_overridden();
    error_and_span();
}

/// A constant message, a formatted one, a message alone, a name given at the callsite.
fn messages() {
    tracing::info!(
        session_id = SESSION,
        event_name = "http.call",
        duration_ms = 12u64,
        status = "ok",
        "request complete"
    );
    tracing::warn!(session_id = SESSION, step = 3u64, "step {} of {}: {:?}", 3, 10, "done");
    tracing::info!(session_id = SESSION, "plain message");
    tracing::info!(name: "callsite.name", session_id = SESSION, attempt = 1u64);
}

/// Fields of every type, and a value over the size limit.
fn types() {
    tracing::info!(
        session_id = SESSION,
        event_name = "types",
        i = -9_223_372_036_854_775_808i64,
        u = u64::MAX,
        f = 0.731_f64,
        whole = 2.0_f64,
        nan = f64::NAN,
        inf = f64::INFINITY,
        ninf = f64::NEG_INFINITY,
        yes = true,
        no = false,
        text = "quote \" backslash \\ newline \n tab \t nul \u{0} é ✓ 🦀",
        empty = "",
        debug = ?Config { name: "a\"b", ratio: 0.5 },
        option = ?Some(5),
        display = %std::net::Ipv4Addr::LOCALHOST,
        big = i128::MIN,
        ubig = u128::MAX,
        small128 = 42i128,
        url = "see https://user:pw@example.com/a/b?token=x#frag now",
        api_key = "tml-secret",
        password = 7u64,
    );
    let long = "x".repeat(tinker_telemetry::MAX_VALUE_BYTES + 10);
    tracing::info!(session_id = SESSION, event_name = "long", long = long.as_str(), after = 1u64);
}

/// Seventeen fields and a formatted message; a severity override, and one that is not.
fn wide_and_overridden() {
    tracing::info!(
        session_id = SESSION,
        f1 = 1u64,
        f2 = 2i64,
        f3 = "3",
        f4 = 4.5,
        f5 = true,
        f6 = "six",
        f7 = 7u64,
        f8 = 8u64,
        f9 = "nine",
        f10 = 10u64,
        f11 = 11u64,
        f12 = "twelve",
        f13 = 13.25,
        f14 = false,
        f15 = 15u64,
        f16 = "sixteen",
        f17 = 17u64,
        "wide {}",
        17
    );
    tracing::info!(session_id = SESSION, event_name = "override", severity = "ERROR", n = 1u64);
    tracing::info!(session_id = SESSION, event_name = "bad override", severity = "LOUD", n = 2u64);
}

/// An error value, an event below `min_level` and one whose session is its span's.
fn error_and_span() {
    let error = Outer(Inner);
    tracing::error!(session_id = SESSION, error = &error as &dyn std::error::Error, "saving the checkpoint");
    let span = tracing::info_span!("session", session_id = SESSION);
    span.in_scope(|| tracing::debug!(event_name = "below min_level"));
    span.in_scope(|| tracing::info!(event_name = "inherited", shard = 2u64, "from the span {}", "session"));
}

/// The events as pinned, one per line, SESSION_START and SESSION_END included.
const PINNED: &str = r##"{"event":"SESSION_START","event_id":"*","event_session_index":0,"severity":"INFO","timestamp":"*"}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":1,"severity":"INFO","timestamp":"*","event_name":"http.call","event_data":{"message":"request complete","duration_ms":12,"status":"ok"}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":2,"severity":"WARNING","timestamp":"*","event_name":"step 3 of 10: \"done\"","event_data":{"step":3}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":3,"severity":"INFO","timestamp":"*","event_name":"plain message","event_data":{}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":4,"severity":"INFO","timestamp":"*","event_name":"callsite.name","event_data":{"attempt":1}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":5,"severity":"INFO","timestamp":"*","event_name":"types","event_data":{"i":-9223372036854775808,"u":18446744073709551615,"f":0.731,"whole":2.0,"nan":"NaN","inf":"inf","ninf":"-inf","yes":true,"no":false,"text":"quote \" backslash \\ newline \n tab \t nul \u0000 é ✓ 🦀","empty":"","debug":"Config { name: \"a\\\"b\", ratio: 0.5 }","option":"Some(5)","display":"127.0.0.1","big":-170141183460469231731687303715884105728,"ubig":340282366920938463463374607431768211455,"small128":42,"url":"see https://example.com/a/b now","api_key":"[REDACTED]","password":"[REDACTED]"}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":6,"severity":"INFO","timestamp":"*","event_name":"long","event_data":{"long":"x{4096}…[truncated]","after":1}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":7,"severity":"INFO","timestamp":"*","event_name":"wide 17","event_data":{"f1":1,"f2":2,"f3":"3","f4":4.5,"f5":true,"f6":"six","f7":7,"f8":8,"f9":"nine","f10":10,"f11":11,"f12":"twelve","f13":13.25,"f14":false,"f15":15,"f16":"sixteen","f17":17}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":8,"severity":"ERROR","timestamp":"*","event_name":"override","event_data":{"n":1}}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":9,"severity":"INFO","timestamp":"*","event_name":"bad override","event_data":{"severity":"LOUD","n":2}}
{"event":"UNHANDLED_EXCEPTION","event_id":"*","event_session_index":10,"severity":"ERROR","timestamp":"*","error_type":"Outer","error_message":"the step failed","traceback":"While: saving the checkpoint\nCaused by: Inner: disk full"}
{"event":"GENERIC_EVENT","event_id":"*","event_session_index":11,"severity":"INFO","timestamp":"*","event_name":"inherited","event_data":{"message":"from the span session","shard":2}}
{"event":"SESSION_END","event_id":"*","event_session_index":12,"severity":"INFO","timestamp":"*","duration":"*"}"##;

#[test]
fn captured_events_arrive_byte_for_byte_as_pinned() {
    let server = RawServer::with_fn(|_| support::Raw::Accept);
    let (layer, guard) = server.builder(SESSION).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    let report = guard.shutdown();
    assert_eq!(report.stats.dropped.total(), 0, "{:?}", report.stats);
    let mut events: Vec<String> = server.seen().iter().flat_map(|seen| events_of(&seen.raw)).collect();
    // Requests in flight together may arrive in any order.
    events.sort_by_key(|e| {
        serde_json::from_str::<serde_json::Value>(e).unwrap()["event_session_index"].as_u64()
    });
    let events: Vec<String> = events.iter().map(|e| masked(e)).collect();
    let got = events.join("\n");
    assert_eq!(got, PINNED, "the wire bytes changed:\n{got}");
}

/// Each element of the body's `events` array, as the bytes sent.
fn events_of(body: &[u8]) -> Vec<String> {
    let body = std::str::from_utf8(body).expect("a UTF-8 body");
    let rest = body.strip_prefix("{\"events\":[").expect("the body starts with the events");
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0, false, false, 0);
    for (i, c) in rest.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    out.push(rest[start..=i].to_owned());
                }
            }
            ']' if depth == 0 => return out,
            ']' => depth -= 1,
            ',' if depth == 0 => start = i + 1,
            _ => {}
        }
    }
    panic!("the events array does not end: {body}");
}

/// `event` with what differs at every run masked: its id, its timestamp, SESSION_END's
/// duration, a traceback's backtrace (present or not as the environment says); a run of the
/// same letter is written as its count.
fn masked(event: &str) -> String {
    let mut out = event.to_owned();
    for key in ["\"event_id\":\"", "\"timestamp\":\"", "\"duration\":\""] {
        let Some(at) = out.find(key).map(|at| at + key.len()) else { continue };
        let len = out[at..].find('"').expect("the value ends");
        out.replace_range(at..at + len, "*");
    }
    if let Some(at) = out.find("\\nBacktrace:") {
        let end = out.rfind("\"}").expect("the traceback ends the event");
        out.replace_range(at..end, "");
    }
    let mut runs = String::new();
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        let mut n = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            n += 1;
        }
        if n > 16 { runs.push_str(&format!("{c}{{{n}}}")) } else { (0..n).for_each(|_| runs.push(c)) }
    }
    runs
}
