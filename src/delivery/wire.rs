//! Wire encoding, on the uploader thread: a record as the JSON event object the Tinker API
//! takes, with secret-looking fields redacted, every URL in a string stripped of credentials
//! and query, and the size bounded; and the small pieces of the format every request shares
//! (timestamps, durations, platform, process UUID).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use uuid::Uuid;

use super::redact::Redactor;
use crate::handoff::clock::format_timestamp;
use crate::handoff::record::{Body, FieldSource, Record, Val};
use crate::limits::{MAX_EVENT_BYTES, REDACTED, TRUNCATION_MARKER};
use crate::urls::scrub_urls_in;

/// Serializes one record as a wire event object.
///
/// The output never exceeds [`MAX_EVENT_BYTES`]: an event whose payload would is sent with
/// its payload replaced by a marker saying how large it was.
pub(crate) fn to_wire_json(
    record: &Record,
    time: SystemTime,
    event_id: &uuid::Uuid,
    index: u64,
    redactor: &Redactor,
) -> Vec<u8> {
    let event = WireEvent { record, time, event_id, index, redactor, elide: false };
    let mut out = Vec::with_capacity(256);
    // Serialization stops as soon as the event passes the limit: a huge value is never
    // written out whole only to be thrown away.
    if serde_json::to_writer(Capped(&mut out), &event).is_ok() {
        return out;
    }
    out.clear();
    let event = WireEvent { elide: true, ..event };
    // With the payload elided only fixed-size fields and the (length-limited) name remain.
    if serde_json::to_writer(&mut out, &event).is_err() {
        out.clear();
    }
    out
}

/// A buffer that refuses to grow past [`MAX_EVENT_BYTES`].
struct Capped<'a>(&'a mut Vec<u8>);

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_EVENT_BYTES {
            return Err(std::io::Error::other("event larger than MAX_EVENT_BYTES"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct WireEvent<'a> {
    record: &'a Record,
    /// When the event happened, on the wall clock.
    time: SystemTime,
    event_id: &'a uuid::Uuid,
    index: u64,
    redactor: &'a Redactor,
    /// Replace the payload by a marker (the event was too large to send).
    elide: bool,
}

const ELIDED: &str = "[elided: event larger than the size limit]";

impl Serialize for WireEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut m = s.serialize_map(None)?;
        let kind = match r.body {
            Body::SessionStart => "SESSION_START",
            Body::SessionEnd { .. } => "SESSION_END",
            Body::Packed(_) | Body::Fields(_) | Body::Json { .. } => "GENERIC_EVENT",
            Body::Exception(_) => "UNHANDLED_EXCEPTION",
        };
        m.serialize_entry("event", kind)?;
        let mut id = uuid::Uuid::encode_buffer();
        m.serialize_entry("event_id", self.event_id.hyphenated().encode_lower(&mut id))?;
        m.serialize_entry("event_session_index", &self.index)?;
        m.serialize_entry("severity", &r.severity)?;
        m.serialize_entry("timestamp", &format_timestamp(self.time))?;
        match &r.body {
            Body::SessionStart => {}
            Body::SessionEnd { duration } => {
                m.serialize_entry("duration", &format_duration(*duration))?;
            }
            Body::Packed(f) => self.fields(&mut m, f)?,
            Body::Fields(f) => self.fields(&mut m, &**f)?,
            Body::Json { name, data } => {
                m.serialize_entry("event_name", &*scrub_urls_in(name))?;
                if self.elide {
                    m.serialize_entry("event_data", &Elided)?;
                } else {
                    m.serialize_entry("event_data", &JsonData { data, redactor: self.redactor })?;
                }
            }
            Body::Exception(e) => {
                m.serialize_entry("error_type", &e.error_type)?;
                if self.elide {
                    m.serialize_entry("error_message", ELIDED)?;
                } else {
                    m.serialize_entry("error_message", &*scrub_urls_in(&e.error_message))?;
                    if let Some(tb) = &e.traceback {
                        m.serialize_entry("traceback", &*scrub_urls_in(tb))?;
                    }
                }
            }
        }
        m.end()
    }
}

impl WireEvent<'_> {
    fn fields<M: SerializeMap, F: FieldSource>(&self, m: &mut M, f: &F) -> Result<(), M::Error> {
        m.serialize_entry("event_name", &*scrub_urls_in(f.event_name("event")))?;
        if self.elide {
            m.serialize_entry("event_data", &Elided)
        } else {
            m.serialize_entry("event_data", &FieldData { f, redactor: self.redactor })
        }
    }
}

struct Elided;

impl Serialize for Elided {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("_elided", ELIDED)?;
        m.end()
    }
}

struct FieldData<'a, F> {
    f: &'a F,
    redactor: &'a Redactor,
}

impl<F: FieldSource> Serialize for FieldData<'_, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.f;
        let mut m = s.serialize_map(None)?;
        if let (Some(_), Some(msg)) = (f.name(), f.message()) {
            m.serialize_entry("message", &*scrub_urls_in(f.text(msg)))?;
        }
        for (key, val) in f.pairs() {
            if self.redactor.is_secret(key) {
                m.serialize_entry(key, REDACTED)?;
                continue;
            }
            match val {
                Val::I64(v) => m.serialize_entry(key, &v)?,
                Val::U64(v) => m.serialize_entry(key, &v)?,
                Val::F64(v) => m.serialize_entry(key, &Float(v))?,
                Val::Bool(v) => m.serialize_entry(key, &v)?,
                Val::Str(t) => m.serialize_entry(key, &*scrub_urls_in(f.text(t)))?,
                Val::BigInt(t) => m.serialize_entry(key, &BigInt(f.text(t)))?,
            }
        }
        if f.fields_dropped() > 0 {
            m.serialize_entry("_fields_dropped", &f.fields_dropped())?;
        }
        m.end()
    }
}

/// A float as a JSON number, or as a string when JSON has no spelling for it.
struct Float(f64);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

/// A 128-bit integer kept as digits; written as a JSON number.
struct BigInt<'a>(&'a str);

impl Serialize for BigInt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(v) = self.0.parse::<i128>() {
            s.serialize_i128(v)
        } else if let Ok(v) = self.0.parse::<u128>() {
            s.serialize_u128(v)
        } else {
            s.serialize_str(self.0)
        }
    }
}

struct JsonData<'a> {
    data: &'a serde_json::Value,
    redactor: &'a Redactor,
}

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.data {
            serde_json::Value::Object(_) => {
                Redacted { v: self.data, redactor: self.redactor, depth: 0 }.serialize(s)
            }
            serde_json::Value::Null => s.serialize_map(Some(0))?.end(),
            other => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("value", &Redacted { v: other, redactor: self.redactor, depth: 0 })?;
                m.end()
            }
        }
    }
}

/// How deep an event's data nests: an array or object deeper is sent as
/// [`TRUNCATION_MARKER`]. Serializing is recursive, on the uploader's thread, and common JSON
/// parsers refuse 128 levels.
const MAX_DATA_DEPTH: u32 = 64;

/// A JSON value with the values of secret-looking keys replaced, at any depth, nested at most
/// [`MAX_DATA_DEPTH`] deep; `depth` is the level it is at.
struct Redacted<'a> {
    v: &'a serde_json::Value,
    redactor: &'a Redactor,
    depth: u32,
}

impl Redacted<'_> {
    /// `v`, one level deeper.
    fn inner<'a>(&'a self, v: &'a serde_json::Value) -> Redacted<'a> {
        Redacted { v, redactor: self.redactor, depth: self.depth + 1 }
    }
}

impl Serialize for Redacted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.v {
            serde_json::Value::Object(_) | serde_json::Value::Array(_) if self.depth >= MAX_DATA_DEPTH => {
                s.serialize_str(TRUNCATION_MARKER)
            }
            serde_json::Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    if self.redactor.is_secret(k) {
                        m.serialize_entry(k, REDACTED)?;
                    } else {
                        m.serialize_entry(k, &self.inner(v))?;
                    }
                }
                m.end()
            }
            serde_json::Value::Array(items) => s.collect_seq(items.iter().map(|v| self.inner(v))),
            serde_json::Value::String(text) => s.serialize_str(&scrub_urls_in(text)),
            other => other.serialize(s),
        }
    }
}

/// Formats a duration the way Python's `str(timedelta)` does, which is what the backend
/// expects in `SESSION_END.duration`: `0:00:05.123456`, `0:00:05`, `1 day, 1:00:00`.
///
/// The duration is rounded to whole microseconds, as `timedelta` stores it.
pub(crate) fn format_duration(d: Duration) -> String {
    let total_micros = d.as_secs() as u128 * 1_000_000 + u128::from((d.subsec_nanos() + 500) / 1000);
    let micros = (total_micros % 1_000_000) as u32;
    let total_secs = total_micros / 1_000_000;
    let days = total_secs / 86_400;
    let rem = total_secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let mut out = String::with_capacity(32);
    if days > 0 {
        let plural = if days == 1 { "" } else { "s" };
        out.push_str(&format!("{days} day{plural}, "));
    }
    out.push_str(&format!("{h}:{m:02}:{s:02}"));
    if micros > 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out
}

/// The operating system's name as Python's `platform.system()` reports it.
pub(crate) fn platform() -> &'static str {
    match std::env::consts::OS {
        "linux" | "android" => "Linux",
        "macos" | "ios" => "Darwin",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        "netbsd" => "NetBSD",
        "openbsd" => "OpenBSD",
        "solaris" | "illumos" => "SunOS",
        _ => "Unknown",
    }
}

/// The UUID that identifies this process, made once and shared by every reporter in it.
pub(crate) fn process_uuid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::clock::Stamp;
    use crate::handoff::record::{ExceptionRecord, FieldRecord, Text, TextRange};
    use crate::severity::Severity;

    fn record(body: Body) -> Record {
        Record { time: Stamp::from(SystemTime::UNIX_EPOCH), severity: Severity::Info, body }
    }

    fn wire(body: Body) -> serde_json::Value {
        let id = uuid::Uuid::nil();
        let bytes = to_wire_json(&record(body), SystemTime::UNIX_EPOCH, &id, 7, &Redactor::default());
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn fields_keep_json_types_and_special_floats_become_strings() {
        let text: Box<str> = "hello12345678901234567890123456789012345678".into();
        let mut f = FieldRecord { text, ..FieldRecord::default() };
        f.name = Some(Text::Static("user.action"));
        f.fields.push(("s", Val::Str(TextRange(0, 5))));
        f.fields.push(("i", Val::I64(-3)));
        f.fields.push(("u", Val::U64(u64::MAX)));
        f.fields.push(("f", Val::F64(1.5)));
        f.fields.push(("nan", Val::F64(f64::NAN)));
        f.fields.push(("inf", Val::F64(f64::NEG_INFINITY)));
        f.fields.push(("b", Val::Bool(true)));
        f.fields.push(("big", Val::BigInt(TextRange(5, 43))));
        let v = wire(Body::Fields(Box::new(f)));
        assert_eq!(v["event"], "GENERIC_EVENT");
        assert_eq!(v["event_name"], "user.action");
        assert_eq!(v["event_session_index"], 7);
        assert_eq!(v["event_id"], "00000000-0000-0000-0000-000000000000");
        let d = &v["event_data"];
        assert_eq!(d["s"], "hello");
        assert_eq!(d["i"], -3);
        assert_eq!(d["u"], u64::MAX);
        assert_eq!(d["f"], 1.5);
        assert_eq!(d["nan"], "NaN");
        assert_eq!(d["inf"], "-inf");
        assert_eq!(d["b"], true);
        // Wider than u64: still a number on the wire, parsed back as a float by serde_json.
        assert!(d["big"].is_number(), "{d}");
    }

    #[test]
    fn message_is_the_name_unless_an_event_name_is_given() {
        let mut f = FieldRecord { text: "ran out".into(), ..FieldRecord::default() };
        f.message = Some(Text::Range(0, 7));
        let v = wire(Body::Fields(Box::new(f)));
        assert_eq!(v["event_name"], "ran out");
        assert_eq!(v["event_data"], serde_json::json!({}));

        let mut f = FieldRecord { text: "ran out".into(), ..FieldRecord::default() };
        f.message = Some(Text::Range(0, 7));
        f.name = Some(Text::Static("disk"));
        let v = wire(Body::Fields(Box::new(f)));
        assert_eq!(v["event_name"], "disk");
        assert_eq!(v["event_data"]["message"], "ran out");
    }

    #[test]
    fn json_payloads_are_objects_and_secrets_are_redacted() {
        let v = wire(Body::Json { name: "x".into(), data: serde_json::json!(3) });
        assert_eq!(v["event_data"], serde_json::json!({"value": 3}));
        let v = wire(Body::Json { name: "x".into(), data: serde_json::Value::Null });
        assert_eq!(v["event_data"], serde_json::json!({}));
        let data = serde_json::json!({"Api_Key": "tml-x", "nested": [{"password": 1}], "ok": 2});
        let v = wire(Body::Json { name: "x".into(), data });
        assert_eq!(v["event_data"]["Api_Key"], "[REDACTED]");
        assert_eq!(v["event_data"]["nested"][0]["password"], "[REDACTED]");
        assert_eq!(v["event_data"]["ok"], 2);
    }

    #[test]
    fn serialization_stops_at_the_limit() {
        let huge = "x".repeat(MAX_EVENT_BYTES * 64);
        let data = serde_json::json!({"blob": huge});
        let mut out = Vec::new();
        let record = record(Body::Json { name: "big".into(), data });
        let event = WireEvent {
            record: &record,
            time: SystemTime::UNIX_EPOCH,
            event_id: &uuid::Uuid::nil(),
            index: 0,
            redactor: &Redactor::default(),
            elide: false,
        };
        assert!(serde_json::to_writer(Capped(&mut out), &event).is_err());
        assert!(out.len() <= MAX_EVENT_BYTES && out.capacity() <= 2 * MAX_EVENT_BYTES, "{}", out.capacity());
    }

    #[test]
    fn oversized_events_are_elided_not_lost() {
        let huge = "x".repeat(MAX_EVENT_BYTES * 2);
        let v = wire(Body::Json { name: "big".into(), data: serde_json::json!({"blob": huge}) });
        assert_eq!(v["event_name"], "big");
        assert!(v["event_data"]["_elided"].is_string());
        let bytes = to_wire_json(
            &record(Body::Exception(Box::new(ExceptionRecord {
                error_type: "E".into(),
                error_message: "m".repeat(MAX_EVENT_BYTES),
                traceback: None,
            }))),
            SystemTime::UNIX_EPOCH,
            &uuid::Uuid::nil(),
            0,
            &Redactor::default(),
        );
        assert!(bytes.len() <= MAX_EVENT_BYTES);
    }

    #[test]
    fn session_end_carries_duration() {
        let v = wire(Body::SessionEnd { duration: Duration::from_millis(5_123) });
        assert_eq!(v["event"], "SESSION_END");
        assert_eq!(v["duration"], "0:00:05.123000");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn duration_matches_python_timedelta_str() {
        let cases = [
            (Duration::from_micros(5_123_456), "0:00:05.123456"),
            (Duration::from_secs(5), "0:00:05"),
            (Duration::from_micros(3_723_457_244), "1:02:03.457244"),
            (Duration::from_secs(90_000), "1 day, 1:00:00"),
            (Duration::from_secs(2 * 86_400 + 61), "2 days, 0:01:01"),
            (Duration::from_nanos(999_999_999), "0:00:01"),
            (Duration::from_nanos(1_499), "0:00:00.000001"),
            (Duration::ZERO, "0:00:00"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn process_uuid_is_stable_and_a_uuid() {
        assert_eq!(process_uuid(), process_uuid());
        assert!(Uuid::parse_str(process_uuid()).is_ok());
        assert_eq!(platform(), if cfg!(target_os = "linux") { "Linux" } else { platform() });
    }
}
