//! HTTP spans: recognising the ecosystem's HTTP instrumentation (reqwest-tracing, tower-http's
//! `TraceLayer`, anything that follows the OpenTelemetry HTTP conventions), and turning any
//! HTTP span into the crate's one `http.request` shape: `method`, `status`, `host`, `port`,
//! `path`, `route`, `error` and `duration_ms`, never a query string, none of the instrumentation's
//! bookkeeping.

use tracing::Metadata;

use crate::handoff::record::{FieldRecord, FieldSource, TextRange, Val};
use crate::severity::Severity;
use crate::urls::scrub_url;

/// The target prefix of tower-http's trace events (its response and failure events).
const TOWER_HTTP_TRACE: &str = "tower_http::trace";

/// Whether a span comes from HTTP instrumentation: a span with an HTTP method field and an
/// `otel.kind` (the OpenTelemetry conventions, reqwest-tracing 0.5 to 0.7), or tower-http's
/// `request` span (`method`, `uri`, `version`).
pub(crate) fn is_instrumentation(meta: &Metadata<'_>) -> bool {
    let fields = meta.fields();
    let has = |name: &str| fields.field(name).is_some();
    let otel = has("otel.kind") && (has("http.request.method") || has("http.method"));
    let tower = meta.name() == "request" && has("method") && has("uri") && has("version");
    otel || tower
}

/// Whether an event is tower-http's report on the request of its enclosing span: its
/// status and latency, or its failure.
#[inline]
pub(crate) fn is_tower_http_report(meta: &Metadata<'_>) -> bool {
    // Every event asks: the first byte turns almost all of them away without a call.
    let target = meta.target();
    target.as_bytes().first() == Some(&b't') && target.starts_with(TOWER_HTTP_TRACE)
}

/// What an HTTP span's field is, whichever convention named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpField {
    Method,
    Path,
    Route,
    Url,
    Host,
    /// The server's port (the client's view: `net.host.port` is a server's own).
    Port,
    Status,
    Error,
    UserAgent,
    /// The instrumentation's own bookkeeping: never sent.
    Bookkeeping,
    /// What follows a URL's path (its query, its fragment): it may carry tokens, never sent.
    Query,
    Other,
}

pub(crate) fn http_field(name: &str) -> HttpField {
    match name {
        "method" | "http.request.method" | "http.method" => HttpField::Method,
        "path" | "url.path" | "http.target" => HttpField::Path,
        "route" | "http.route" => HttpField::Route,
        "url" | "url.full" | "http.url" | "uri" => HttpField::Url,
        "host" | "server.address" | "http.host" | "net.peer.name" => HttpField::Host,
        "port" | "server.port" | "net.peer.port" => HttpField::Port,
        "status" | "http.response.status_code" | "http.status_code" | "status_code" => HttpField::Status,
        "error" | "error.message" | "exception.message" | "classification" => HttpField::Error,
        "user_agent.original" | "http.user_agent" => HttpField::UserAgent,
        "url.query" | "url.fragment" => HttpField::Query,
        "url.scheme"
        | "http.scheme"
        | "net.host.port"
        | "version"
        | "network.protocol.version"
        | "http.flavor"
        | "error.cause_chain"
        | "latency" => HttpField::Bookkeeping,
        other if other.starts_with("otel.") => HttpField::Bookkeeping,
        _ => HttpField::Other,
    }
}

/// The request's fields in the `http.request` shape: known names renamed (`method`, `path`,
/// `route`, `host`, `port` and `status` as numbers, `error`), `host`, `port` (the scheme's
/// default when the URL names none) and `path` taken from a URL when not given, a port that is
/// not one (0, text) left out, credentials and queries stripped, bookkeeping and empty user agents left out.
/// A span from instrumentation (`strict`) also loses its URL (host and path say it without
/// what a URL may carry) and its message; a span of the program's own keeps both, and every
/// field it added.
pub(crate) fn normalise(old: &FieldRecord, strict: bool) -> FieldRecord {
    let mut out = Normalised {
        text: String::with_capacity(old.text.len()),
        record: FieldRecord { message: None, fields_dropped: old.fields_dropped, ..FieldRecord::default() },
        from_url: None,
    };
    if let Some(m) = old.message.filter(|_| !strict) {
        out.record.message = Some(out.push(old.text(m)).into());
    }
    for &(key, val) in &old.fields {
        if let Some((key, val)) = out.field(old, key, val, strict) {
            out.record.fields.retain(|(k, _)| *k != key);
            out.record.fields.push((key, val));
        }
    }
    out.finish()
}

/// What a URL field says of the request: the parts a span did not give as fields of their
/// own are taken from it.
#[derive(Debug)]
struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    path: String,
}

impl UrlParts {
    /// The parts of `url` (already scrubbed); a request target without scheme and host
    /// (tower-http's `uri`) is all path.
    fn of(url: &str) -> UrlParts {
        match url::Url::parse(url) {
            Ok(parsed) => UrlParts {
                host: parsed.host_str().map(str::to_owned),
                port: parsed.port_or_known_default(),
                path: parsed.path().to_owned(),
            },
            Err(_) => UrlParts { host: None, port: None, path: url.to_owned() },
        }
    }
}

/// An `http.request` record being made from a span's fields.
struct Normalised {
    text: String,
    record: FieldRecord,
    /// The last URL field's parts.
    from_url: Option<UrlParts>,
}

impl Normalised {
    fn push(&mut self, s: &str) -> TextRange {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        TextRange(start, self.text.len() as u32)
    }

    /// The field `key` of `old` under its `http.request` name, or `None` when it is left out.
    fn field(
        &mut self,
        old: &FieldRecord,
        key: &'static str,
        val: Val,
        strict: bool,
    ) -> Option<(&'static str, Val)> {
        let text = &mut self.text;
        Some(match (http_field(key), val) {
            (HttpField::Bookkeeping | HttpField::Query, _) => return None,
            (HttpField::UserAgent, Val::Str(t)) if old.text(t).trim().is_empty() => return None,
            (HttpField::UserAgent, v) => ("user_agent", copy(text, old, v)),
            (HttpField::Method, v) => ("method", copy(text, old, v)),
            // A host never carries the credentials a URL's authority may (`user:pw@host`).
            (HttpField::Host, Val::Str(t)) => {
                let host = old.text(t);
                ("host", Val::Str(self.push(host.rsplit_once('@').map_or(host, |(_, h)| h))))
            }
            (HttpField::Host, v) => ("host", copy(text, old, v)),
            (HttpField::Error, v) => ("error", copy(text, old, v)),
            (HttpField::Path, Val::Str(t)) => ("path", Val::Str(self.push(&scrub_url(old.text(t))))),
            (HttpField::Route, Val::Str(t)) => ("route", Val::Str(self.push(&scrub_url(old.text(t))))),
            (HttpField::Url, Val::Str(t)) => {
                let url = scrub_url(old.text(t));
                self.from_url = Some(UrlParts::of(&url));
                if strict {
                    return None;
                }
                ("url", Val::Str(self.push(&url)))
            }
            (HttpField::Status, Val::Str(t)) => match old.text(t).trim().parse::<u64>() {
                Ok(code) => ("status", Val::U64(code)),
                Err(_) => ("status", Val::Str(self.push(old.text(t)))),
            },
            (HttpField::Status, v) => ("status", v),
            (HttpField::Port, v) => ("port", Val::U64(u64::from(port(old, v)?))),
            (HttpField::Path | HttpField::Route | HttpField::Url, v) => (key, v),
            (HttpField::Other, v) => (key, copy(text, old, v)),
        })
    }

    /// The record, with the host, port and path a URL gave where no field of their own did.
    fn finish(mut self) -> FieldRecord {
        if let Some(UrlParts { host, port, path }) = self.from_url.take() {
            let has = |out: &FieldRecord, key: &str| out.fields.iter().any(|(k, _)| *k == key);
            if let Some(host) = host.filter(|h| !h.is_empty() && !has(&self.record, "host")) {
                let t = self.push(&host);
                self.record.fields.push(("host", Val::Str(t)));
            }
            if let Some(p) = port.filter(|_| !has(&self.record, "port")) {
                self.record.fields.push(("port", Val::U64(u64::from(p))));
            }
            if !path.is_empty() && !has(&self.record, "path") {
                let t = self.push(&path);
                self.record.fields.push(("path", Val::Str(t)));
            }
        }
        self.record.text = self.text.into_boxed_str();
        self.record
    }
}

/// A port field's value as a port: a number from 1 to 65535, as a number or as text
/// (reqwest-tracing writes it with `%`, and 0 for none).
fn port(old: &FieldRecord, val: Val) -> Option<u16> {
    let n = match val {
        Val::U64(n) => n,
        Val::I64(n) => u64::try_from(n).ok()?,
        Val::Str(t) => old.text(t).trim().parse().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// `val`, its text copied from `old` into `text` when it has any.
fn copy(text: &mut String, old: &FieldRecord, val: Val) -> Val {
    let mut push = |t: TextRange| {
        let start = text.len() as u32;
        text.push_str(old.text(t));
        TextRange(start, text.len() as u32)
    };
    match val {
        Val::Str(t) => Val::Str(push(t)),
        Val::BigInt(t) => Val::BigInt(push(t)),
        other => other,
    }
}

/// The crate's rule, whatever the instrumentation says (`otel.status_code` is ignored): ERROR
/// for a 5xx, or for an `error` (a transport failure, or one the program recorded); WARNING
/// for another 4xx; else INFO.
pub(crate) fn severity(rec: &impl FieldSource) -> Severity {
    let failed = rec.pairs().any(|(k, _)| matches!(k, "error" | "exception" | "error.type"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(r: &FieldRecord) -> Vec<(String, String)> {
        r.fields
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Val::Str(t) => r.text(*t).to_owned(),
                    Val::U64(n) => n.to_string(),
                    other => format!("{other:?}"),
                };
                ((*k).to_owned(), v)
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_program_s_own_span_keeps_its_url_and_fields() {
        let r = normalise(
            &FieldRecord::of_strs(&[
                ("http.request.method", "POST"),
                ("url.full", "https://user:pw@api.example.com/v1/sample?token=abc"),
                ("http.response.status_code", "503"),
                ("peer", "api"),
            ]),
            false,
        );
        let want = [
            ("method", "POST"),
            ("url", "https://api.example.com/v1/sample"),
            ("status", "503"),
            ("peer", "api"),
            ("host", "api.example.com"),
            ("port", "443"),
            ("path", "/v1/sample"),
        ];
        assert_eq!(shape(&r), pairs(&want));
        assert_eq!(severity(&r), Severity::Error);
    }

    #[test]
    fn reqwest_tracing_spans_keep_only_the_request_s_shape() {
        let r = normalise(
            &FieldRecord::of_strs(&[
                ("http.request.method", "GET"),
                ("url.scheme", "http"),
                ("server.address", "user:SECRET@127.0.0.1"),
                ("server.port", "8080"),
                ("url.full", "http://127.0.0.1:8080/v1/models?key=SECRET"),
                ("user_agent.original", ""),
                ("otel.kind", "client"),
                ("otel.name", "GET"),
                ("otel.status_code", "ERROR"),
                ("http.response.status_code", "404"),
            ]),
            true,
        );
        let want = [
            ("method", "GET"),
            ("host", "127.0.0.1"),
            ("port", "8080"),
            ("status", "404"),
            ("path", "/v1/models"),
        ];
        assert_eq!(shape(&r), pairs(&want));
        assert_eq!(severity(&r), Severity::Warning, "a 404 is a warning whatever otel.status_code says");
    }

    #[test]
    fn tower_http_spans_take_host_and_path_from_the_uri() {
        let r = normalise(
            &FieldRecord::of_strs(&[
                ("method", "GET"),
                ("uri", "/v1/items/7?page=2"),
                ("version", "HTTP/1.1"),
                ("status", "200"),
            ]),
            true,
        );
        assert_eq!(shape(&r), pairs(&[("method", "GET"), ("status", "200"), ("path", "/v1/items/7")]));
        assert_eq!(severity(&r), Severity::Info);
    }

    #[test]
    fn a_port_is_a_number_or_nothing() {
        let port = |fields: &[(&'static str, &str)]| {
            let r = normalise(&FieldRecord::of_strs(fields), false);
            shape(&r).into_iter().find(|(k, _)| k == "port").map(|(_, v)| v)
        };
        assert_eq!(port(&[("method", "GET"), ("server.port", "0")]), None, "reqwest-tracing's 0 is no port");
        assert_eq!(port(&[("method", "GET"), ("port", "eighty")]), None);
        assert_eq!(port(&[("method", "GET"), ("net.peer.port", "70000")]), None);
        assert_eq!(port(&[("method", "GET"), ("port", " 8443 ")]).as_deref(), Some("8443"));
        assert_eq!(port(&[("method", "GET"), ("url", "http://h.example/x")]).as_deref(), Some("80"));
        assert_eq!(
            port(&[("method", "GET"), ("server.port", "9000"), ("url", "http://h.example:1234/x")])
                .as_deref(),
            Some("9000"),
            "a port given wins over the URL's"
        );
        assert_eq!(port(&[("method", "GET"), ("uri", "/x")]), None, "a request target names no port");
    }

    #[test]
    fn severity_follows_status_and_errors() {
        let with_status = |s: u64| {
            let mut r = FieldRecord::default();
            r.fields.push(("status", Val::U64(s)));
            r
        };
        assert_eq!(severity(&with_status(200)), Severity::Info);
        assert_eq!(severity(&with_status(404)), Severity::Warning);
        assert_eq!(severity(&with_status(500)), Severity::Error);
        let mut r = with_status(200);
        r.fields.push(("error", Val::Bool(true)));
        assert_eq!(severity(&r), Severity::Error);
        assert_eq!(severity(&FieldRecord::default()), Severity::Info);
    }
}
