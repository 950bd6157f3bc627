//! A captured span's record read as an [`Operation`]: its kind, its low-cardinality labels
//! (method, route template, host and port), its outcome (status, error type) and its duration.

use std::fmt::Write;
use std::time::Duration;

use super::labels::{Labels, OTHER_ERROR_TYPE, OTHER_METHOD};
use super::sink::{OpKind, OpLabels, Operation};
use crate::handoff::record::{FieldRecord, FieldSource, Val};
use crate::severity::Severity;

/// The route of an HTTP operation without a path, or whose path is too long or deep to be a
/// route: every such request is counted under this one value.
pub(crate) const UNKNOWN_ROUTE: &str = "_unknown";
/// What an id segment of a path becomes in its template.
const ID: &str = "{id}";
/// Paths with more segments than this, or more bytes than [`MAX_ROUTE_BYTES`], are not
/// templated but counted as [`UNKNOWN_ROUTE`].
const MAX_SEGMENTS: usize = 8;
const MAX_ROUTE_BYTES: usize = 128;
/// The longest error type kept; a longer one is `_OTHER`.
const MAX_ERROR_TYPE_BYTES: usize = 64;

/// Text an [`Operation`] borrows: the route template, error type and operation label values
/// are built here, the rest comes from the record.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    route: String,
    error_type: String,
    /// The operation labels' values, one after the other.
    label_text: String,
    /// Each label's value in `label_text`.
    label_ranges: Vec<Option<(u32, u32)>>,
    /// A label value that is not text, written out.
    number: String,
}

impl Scratch {
    /// Reads the values of the operation labels `names` from `rec`, each held to its bound
    /// by `labels`, for the next [`read`].
    pub(crate) fn read_labels(&mut self, names: &[Box<str>], rec: &FieldRecord, labels: &mut Labels) {
        self.label_text.clear();
        self.label_ranges.clear();
        for (i, name) in names.iter().enumerate() {
            self.number.clear();
            let value = match rec.get(name) {
                Some(Val::Str(t) | Val::BigInt(t)) => Some(rec.text(t).trim()),
                Some(Val::U64(n)) => write!(self.number, "{n}").ok().map(|()| self.number.as_str()),
                Some(Val::I64(n)) => write!(self.number, "{n}").ok().map(|()| self.number.as_str()),
                Some(Val::Bool(b)) => write!(self.number, "{b}").ok().map(|()| self.number.as_str()),
                // A measurement is not a dimension.
                Some(Val::F64(_)) | None => None,
            };
            let range = value.filter(|v| !v.is_empty()).map(|v| {
                let kept = labels.operation_label(i, v);
                let start = self.label_text.len() as u32;
                self.label_text.push_str(kept);
                (start, self.label_text.len() as u32)
            });
            self.label_ranges.push(range);
        }
    }
}

/// The operation a captured span's record describes. `name` is the name it is sent under
/// (`http.request` for every HTTP span); `label_names` are the operation labels, whose
/// values [`Scratch::read_labels`] read.
pub(crate) fn read<'a>(
    name: &'a str,
    severity: Severity,
    rec: &'a FieldRecord,
    label_names: &'a [Box<str>],
    scratch: &'a mut Scratch,
) -> Operation<'a> {
    let kind = match name {
        crate::capture::span::HTTP_REQUEST => OpKind::Http,
        crate::handoff::packed::QUEUE_STATE_CHANGE => OpKind::QueueStateChange,
        _ => OpKind::Other,
    };
    let Scratch { route: template_text, error_type, label_text, label_ranges, .. } = scratch;
    let status = status(rec);
    let (route, method, server_address, server_port) = if kind == OpKind::Http {
        let path = match rec.get_str("route") {
            Some(route) if !route.is_empty() => route,
            _ => rec.get_str("path").unwrap_or(""),
        };
        template(path, template_text);
        (Some(template_text.as_str()), rec.get_str("method").map(method), rec.get_str("host"), port(rec))
    } else {
        (None, None, None, None)
    };
    Operation {
        kind,
        name,
        method,
        route,
        server_address,
        server_port,
        status,
        error_type: outcome(rec, severity, status, error_type),
        queue_to: if kind == OpKind::QueueStateChange { rec.get_str("to") } else { None },
        duration: duration(rec),
        labels: OpLabels { names: label_names, text: label_text, ranges: label_ranges },
    }
}

/// The span's `duration_ms`, zero when it has none that is a duration.
fn duration(rec: &FieldRecord) -> Duration {
    match rec.get("duration_ms") {
        Some(Val::F64(ms)) if ms.is_finite() && ms >= 0.0 => Duration::from_secs_f64(ms / 1000.0),
        _ => Duration::ZERO,
    }
}

/// The span's HTTP status. Only a status HTTP defines is one: a stray number never makes a
/// series.
fn status(rec: &FieldRecord) -> Option<u16> {
    match rec.get("status") {
        Some(Val::U64(code)) => u16::try_from(code).ok(),
        Some(Val::I64(code)) => u16::try_from(code).ok(),
        _ => None,
    }
    .filter(|code| (100..=599).contains(code))
}

/// Why the operation failed, `None` when it did not: its failed status, else the type it
/// names when that is a short name, else a word for its error's text, else `_OTHER` at
/// `ERROR`. A type written out is built in `out`.
fn outcome<'a>(
    rec: &'a FieldRecord,
    severity: Severity,
    status: Option<u16>,
    out: &'a mut String,
) -> Option<&'a str> {
    out.clear();
    let named_type = rec.get_str("error.type").or_else(|| rec.get_str("error_type"));
    if let Some(code) = status.filter(|s| *s >= 400) {
        let _ = write!(out, "{code}");
        Some(out.as_str())
    } else if let Some(t) = named_type.map(str::trim).filter(|t| !t.is_empty()) {
        // A type is a short name; anything else (a message, a URL) is not one.
        let name = t.len() <= MAX_ERROR_TYPE_BYTES
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if name {
            out.push_str(t);
            Some(out.as_str())
        } else {
            Some(OTHER_ERROR_TYPE)
        }
    } else if let Some(text) = rec.get_str("error").filter(|e| !e.trim().is_empty()) {
        Some(error_kind(text))
    } else {
        (severity >= Severity::Error).then_some(OTHER_ERROR_TYPE)
    }
}

/// The request's `port` (a number in the `http.request` shape, when it is a port).
fn port(rec: &FieldRecord) -> Option<u16> {
    match rec.get("port")? {
        Val::U64(n) => u16::try_from(n).ok(),
        _ => None,
    }
}

/// The method as the OpenTelemetry conventions name it: one of the standard methods in upper
/// case, else `_OTHER`, so that a stray value never makes a series of its own.
fn method(m: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|k| k.eq_ignore_ascii_case(m.trim())).unwrap_or(OTHER_METHOD)
}

/// A short, fixed error type for an error described only in words.
fn error_kind(text: &str) -> &'static str {
    let lower = text.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        "timeout"
    } else if lower.contains("connect") || lower.contains("refused") || lower.contains("reset") {
        "connect"
    } else if lower.contains("dns") || lower.contains("resolve") {
        "dns"
    } else if lower.contains("tls") || lower.contains("certificate") {
        "tls"
    } else {
        OTHER_ERROR_TYPE
    }
}

/// Writes the route template of `path` into `out`: the query and fragment left out, doubled
/// slashes made one, each segment that looks like an id replaced by `{id}`; [`UNKNOWN_ROUTE`] for no path, or one
/// too long or too deep to be a route.
pub(crate) fn template(path: &str, out: &mut String) {
    out.clear();
    let end = path.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(path.len());
    let path = &path[..end];
    // Segments with a name count towards the depth; empty ones (`/a/`, `//`) do not.
    let mut named = 0;
    for (i, segment) in path.split('/').enumerate() {
        named += usize::from(!segment.is_empty());
        if named > MAX_SEGMENTS || out.len() > MAX_ROUTE_BYTES {
            break;
        }
        // `/a//b` is `/a/b`: a separator is never doubled.
        if i > 0 && !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(if is_id(segment) { ID } else { segment });
    }
    if path.is_empty() || named > MAX_SEGMENTS || out.len() > MAX_ROUTE_BYTES {
        out.clear();
        out.push_str(UNKNOWN_ROUTE);
    }
}

/// Whether a path segment is an id rather than a name: anything with a digit (except a
/// version like `v1`), anything over 32 bytes, anything percent-encoded or holding `:`, `=`,
/// `@` or `.` after the first character (a file name, an address, a model path). One pass
/// over the bytes.
fn is_id(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    if bytes.len() > 32 {
        return true;
    }
    let mut digit = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => digit = true,
            b'%' | b':' | b'=' | b'@' | b'.' if i > 0 => return true,
            _ => {}
        }
    }
    let version = bytes.first() == Some(&b'v') && bytes[1..].iter().all(u8::is_ascii_digit);
    digit && !version
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::record::TextRange;

    fn templated(path: &str) -> String {
        let mut out = String::new();
        template(path, &mut out);
        out
    }

    #[test]
    fn ids_become_placeholders_and_queries_go() {
        assert_eq!(templated("/api/v1/futures/retrieve"), "/api/v1/futures/retrieve");
        assert_eq!(
            templated("/api/v1/futures/3f2a9c1e-5b4e-4d7a-9c1e-0b9f0c7d2e11?wait=1"),
            "/api/v1/futures/{id}"
        );
        assert_eq!(templated("/api/v1/sampling_sessions/42/sample"), "/api/v1/sampling_sessions/{id}/sample");
        assert_eq!(templated("/models/tinker%3A%2F%2Fabc/weights#x"), "/models/{id}/weights");
        assert_eq!(templated("/files/model.safetensors"), "/files/{id}");
        assert_eq!(templated("/api/v2beta/x"), "/api/{id}/x", "only plain versions are names");
        assert_eq!(templated("/api/v10/x"), "/api/v10/x");
        assert_eq!(templated("/a/{id}/b"), "/a/{id}/b", "a template stays one");
        assert_eq!(templated(""), UNKNOWN_ROUTE);
        assert_eq!(templated("?q=1"), UNKNOWN_ROUTE);
        assert_eq!(templated("/a/b/c/d/e/f/g/h/i/j"), UNKNOWN_ROUTE, "too deep to be a route");
        assert_eq!(templated("/a/b/c/d/e/f/g/h/"), "/a/b/c/d/e/f/g/h/", "a trailing slash adds no depth");
        assert_eq!(templated("/a//b/7"), "/a/b/{id}", "an empty segment is not a segment");
        assert_eq!(templated("//a/"), "/a/");
        assert_eq!(templated("/"), "/");
        assert_eq!(templated("/a/b/c/d/e/f/g/h/i"), UNKNOWN_ROUTE);
        assert_eq!(templated(&format!("/{}", "a".repeat(200))), "/{id}");
        assert_eq!(
            templated(&format!("/{}", ["abcdefghijklmnopqrstuvwxyzabcdef"; 5].join("/"))),
            UNKNOWN_ROUTE
        );
    }

    fn record(fields: &[(&'static str, Val)], text: &str) -> FieldRecord {
        FieldRecord { fields: fields.to_vec(), text: text.into(), ..FieldRecord::default() }
    }

    #[test]
    fn an_http_record_reads_as_an_operation_with_its_outcome() {
        let text = "POST/api/v1/sessions/77/heartbeathost.example";
        let rec = record(
            &[
                ("method", Val::Str(TextRange(0, 4))),
                ("path", Val::Str(TextRange(4, 33))),
                ("host", Val::Str(TextRange(33, 45))),
                ("port", Val::U64(8443)),
                ("status", Val::U64(503)),
                ("duration_ms", Val::F64(250.0)),
            ],
            text,
        );
        let mut scratch = Scratch::default();
        let op = read("http.request", Severity::Error, &rec, &[], &mut scratch);
        assert_eq!(op.kind, OpKind::Http);
        assert_eq!(op.method, Some("POST"));
        assert_eq!(op.route, Some("/api/v1/sessions/{id}/heartbeat"));
        assert_eq!(op.server_address, Some("host.example"));
        assert_eq!(op.server_port, Some(8443));
        assert_eq!(op.status, Some(503));
        assert_eq!(op.error_type, Some("503"));
        assert_eq!(op.duration, Duration::from_millis(250));
    }

    #[test]
    fn failures_without_a_status_get_a_short_type() {
        let text = "GETerror sending request: operation timed out";
        let rec =
            record(&[("method", Val::Str(TextRange(0, 3))), ("error", Val::Str(TextRange(3, 45)))], text);
        let mut scratch = Scratch::default();
        let op = read("http.request", Severity::Error, &rec, &[], &mut scratch);
        assert_eq!((op.status, op.error_type, op.route), (None, Some("timeout"), Some(UNKNOWN_ROUTE)));
        let ok = record(&[("status", Val::U64(200))], "");
        assert_eq!(read("http.request", Severity::Info, &ok, &[], &mut scratch).error_type, None);
        let queue = record(&[("to", Val::Str(TextRange(0, 17)))], "paused_rate_limit");
        let op = read("queue.state_change", Severity::Warning, &queue, &[], &mut scratch);
        assert_eq!(
            (op.kind, op.queue_to, op.error_type),
            (OpKind::QueueStateChange, Some("paused_rate_limit"), None)
        );
        let text = "patchhttps://u:pw@h.example/x?sig=SECRETtoken_expired";
        let odd = record(
            &[("method", Val::Str(TextRange(0, 5))), ("error.type", Val::Str(TextRange(5, 40)))],
            text,
        );
        let op = read("http.request", Severity::Error, &odd, &[], &mut scratch);
        assert_eq!(
            (op.method, op.error_type),
            (Some("PATCH"), Some(OTHER_ERROR_TYPE)),
            "a URL is no error type"
        );
        let typed = record(
            &[("method", Val::Str(TextRange(0, 4))), ("error.type", Val::Str(TextRange(40, 53)))],
            text,
        );
        let op = read("http.request", Severity::Error, &typed, &[], &mut scratch);
        assert_eq!((op.method, op.error_type), (Some(OTHER_METHOD), Some("token_expired")));
        let failed = record(&[], "");
        let op = read("train.step", Severity::Error, &failed, &[], &mut scratch);
        assert_eq!((op.kind, op.error_type, op.method), (OpKind::Other, Some(OTHER_ERROR_TYPE), None));
    }

    #[test]
    fn operation_labels_are_read_from_the_span_s_fields() {
        let rec = record(
            &[("loss_fn", Val::Str(TextRange(0, 13))), ("step", Val::U64(7)), ("lr", Val::F64(0.1))],
            "cross_entropy",
        );
        let names: Vec<Box<str>> = ["loss_fn", "step", "lr", "absent"].map(Box::from).into();
        let (mut scratch, mut labels) = (Scratch::default(), Labels::default());
        scratch.read_labels(&names, &rec, &mut labels);
        let op = read("train.step", Severity::Info, &rec, &names, &mut scratch);
        assert_eq!(op.labels.values().collect::<Vec<_>>(), [Some("cross_entropy"), Some("7"), None, None]);
        assert_eq!(op.labels.pairs().collect::<Vec<_>>(), [("loss_fn", "cross_entropy"), ("step", "7")]);
    }
}
