//! Captured spans: what the layer keeps while a captured span is open, and how it becomes an
//! event when the span closes, with the `http.request` and `queue.state_change` conventions.

use std::time::Instant;

use tracing::Level;

use crate::capture::visit::{Draft, NamedFields};
use crate::handoff::clock::Stamp;
use crate::handoff::record::{Body, FieldRecord, FieldSource, Record, Text, TextRange, Val};
use crate::severity::Severity;
use crate::urls::scrub_url;

/// The span names captured by default.
pub const DEFAULT_CAPTURED_SPANS: &[&str] = &[HTTP_REQUEST, QUEUE_STATE_CHANGE];

/// The span (or event) name for an HTTP request.
pub(crate) const HTTP_REQUEST: &str = "http.request";
/// The span or event name for a queue state change.
pub(crate) const QUEUE_STATE_CHANGE: &str = "queue.state_change";

/// Queue states in which the queue is paused; a change into one is a warning.
const PAUSED_STATES: &[&str] = &["paused_rate_limit", "paused_capacity"];

/// A captured span's fields, from creation to close.
#[derive(Debug)]
pub(crate) struct SpanCapture {
    started: Instant,
    time: Stamp,
    level: Level,
    pub(crate) draft: Draft<NamedFields>,
    pub(crate) text: String,
}

impl SpanCapture {
    pub(crate) fn new(level: Level) -> Self {
        SpanCapture {
            started: Instant::now(),
            time: Stamp::now(),
            level,
            draft: Draft::default(),
            text: String::new(),
        }
    }

    /// The event for the closed span `name`: its fields plus `duration_ms`.
    ///
    /// A span named `http.request`, or any captured span with an HTTP method field (such as
    /// reqwest-tracing's `HTTP request` or tower-http's `request`), is sent as
    /// `http.request` with normalised fields.
    pub(crate) fn finish(self, name: &'static str) -> Record {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let explicit = self.draft.severity;
        let mut fields = self.draft.finish(&self.text);
        let is_http =
            name == HTTP_REQUEST || fields.fields.iter().any(|(k, _)| http_field(k) == HttpField::Method);
        let name = if is_http {
            fields = normalise_http(&fields);
            HTTP_REQUEST
        } else {
            name
        };
        fields.name = Some(Text::Static(name));
        fields.fields.retain(|(k, _)| *k != "duration_ms");
        fields.fields.push(("duration_ms", Val::F64(duration_ms)));
        let severity = explicit.unwrap_or_else(|| match name {
            HTTP_REQUEST => http_severity(&fields),
            QUEUE_STATE_CHANGE => queue_severity(&fields),
            _ => Severity::from(&self.level),
        });
        Record { time: self.time, severity, body: Body::Fields(Box::new(fields)) }
    }
}

/// What an `http.request` field is, under either its short or its OpenTelemetry name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpField {
    Method,
    Path,
    Url,
    Status,
    Other,
}

fn http_field(name: &str) -> HttpField {
    match name {
        "method" | "http.request.method" | "http.method" => HttpField::Method,
        "path" | "url.path" | "http.target" | "http.route" => HttpField::Path,
        "url" | "url.full" | "http.url" | "uri" => HttpField::Url,
        "status" | "http.response.status_code" | "http.status_code" | "status_code" => HttpField::Status,
        _ => HttpField::Other,
    }
}

/// Renames the request's fields to `method`, `path`, `status` (and `url`), turns a textual
/// status into a number, and strips credentials and query strings from URLs and paths.
fn normalise_http(old: &FieldRecord) -> FieldRecord {
    let mut text = String::with_capacity(old.text.len());
    let mut out = FieldRecord { message: None, fields_dropped: old.fields_dropped, ..FieldRecord::default() };
    let push = |text: &mut String, s: &str| {
        let start = text.len() as u32;
        text.push_str(s);
        TextRange(start, text.len() as u32)
    };
    if let Some(m) = old.message {
        out.message = Some(push(&mut text, old.text(m)).into());
    }
    let mut derived_path = None;
    for &(key, val) in &old.fields {
        let kind = http_field(key);
        let (key, val) = match (kind, val) {
            (HttpField::Method, Val::Str(t)) => ("method", Val::Str(push(&mut text, old.text(t)))),
            (HttpField::Path, Val::Str(t)) => ("path", Val::Str(push(&mut text, &scrub_url(old.text(t))))),
            (HttpField::Url, Val::Str(t)) => {
                let url = scrub_url(old.text(t));
                if let Ok(parsed) = url::Url::parse(&url) {
                    derived_path = Some(parsed.path().to_owned());
                }
                ("url", Val::Str(push(&mut text, &url)))
            }
            (HttpField::Status, Val::Str(t)) => match old.text(t).trim().parse::<u64>() {
                Ok(code) => ("status", Val::U64(code)),
                Err(_) => ("status", Val::Str(push(&mut text, old.text(t)))),
            },
            (HttpField::Status, Val::I64(code)) => ("status", Val::I64(code)),
            (HttpField::Status, Val::U64(code)) => ("status", Val::U64(code)),
            (HttpField::Method, v) => ("method", v),
            (HttpField::Path | HttpField::Url | HttpField::Status, v) => (key, v),
            (HttpField::Other, Val::Str(t) | Val::BigInt(t)) => {
                let copied = push(&mut text, old.text(t));
                (key, if matches!(val, Val::Str(_)) { Val::Str(copied) } else { Val::BigInt(copied) })
            }
            (HttpField::Other, v) => (key, v),
        };
        out.fields.retain(|(k, _)| *k != key);
        out.fields.push((key, val));
    }
    if let Some(path) = derived_path {
        if !out.fields.iter().any(|(k, _)| *k == "path") {
            let t = push(&mut text, &path);
            out.fields.push(("path", Val::Str(t)));
        }
    }
    out.text = text.into_boxed_str();
    out
}

/// ERROR for a 5xx or a recorded `error`/`exception`, WARNING for other 4xx, else INFO.
fn http_severity(rec: &impl FieldSource) -> Severity {
    let failed = rec.pairs().any(|(k, v)| {
        matches!(k, "error" | "exception" | "error.type" | "exception.message")
            || (k == "otel.status_code"
                && matches!(v, Val::Str(t) if rec.text(t).eq_ignore_ascii_case("error")))
    });
    let status = match rec.get("status") {
        Some(Val::U64(s)) => Some(s),
        Some(Val::I64(s)) => u64::try_from(s).ok(),
        _ => None,
    };
    match status {
        _ if failed => Severity::Error,
        Some(s) if s >= 500 => Severity::Error,
        Some(s) if s >= 400 => Severity::Warning,
        _ => Severity::Info,
    }
}

/// WARNING when the queue moves into a paused state, else INFO.
pub(crate) fn queue_severity(rec: &impl FieldSource) -> Severity {
    match rec.get_str("to") {
        Some(to) if PAUSED_STATES.contains(&to.trim()) => Severity::Warning,
        _ => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[(&'static str, &str)]) -> FieldRecord {
        let mut text = String::new();
        let mut out = FieldRecord::default();
        for (k, v) in fields {
            let start = text.len() as u32;
            text.push_str(v);
            out.fields.push((k, Val::Str(TextRange(start, text.len() as u32))));
        }
        out.text = text.into();
        out
    }

    fn get(r: &FieldRecord, k: &str) -> String {
        match r.get(k) {
            Some(Val::Str(t)) => r.text(t).to_owned(),
            Some(Val::U64(n)) => n.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn semantic_convention_names_map_to_short_ones() {
        let r = normalise_http(&rec(&[
            ("http.request.method", "POST"),
            ("url.full", "https://user:pw@api.example.com/v1/sample?token=abc"),
            ("http.response.status_code", "503"),
            ("peer", "api"),
        ]));
        assert_eq!(get(&r, "method"), "POST");
        assert_eq!(get(&r, "url"), "https://api.example.com/v1/sample");
        assert_eq!(get(&r, "path"), "/v1/sample");
        assert_eq!(r.get("status"), Some(Val::U64(503)));
        assert_eq!(get(&r, "peer"), "api");
        assert_eq!(http_severity(&r), Severity::Error);
    }

    #[test]
    fn http_severity_follows_status_and_errors() {
        let with_status = |s: u64| {
            let mut r = FieldRecord::default();
            r.fields.push(("status", Val::U64(s)));
            r
        };
        assert_eq!(http_severity(&with_status(200)), Severity::Info);
        assert_eq!(http_severity(&with_status(404)), Severity::Warning);
        assert_eq!(http_severity(&with_status(500)), Severity::Error);
        let mut r = with_status(200);
        r.fields.push(("error", Val::Bool(true)));
        assert_eq!(http_severity(&r), Severity::Error);
    }

    #[test]
    fn paused_queues_warn() {
        assert_eq!(queue_severity(&rec(&[("to", "paused_rate_limit")])), Severity::Warning);
        assert_eq!(queue_severity(&rec(&[("to", "paused_capacity")])), Severity::Warning);
        assert_eq!(queue_severity(&rec(&[("to", "active")])), Severity::Info);
        assert_eq!(queue_severity(&rec(&[])), Severity::Info);
    }
}
