//! Captured spans: what the layer keeps while a captured span is open, and how it becomes an
//! event when the span closes, with the `http.request` and `queue.state_change` conventions.

use std::time::Instant;

use tracing::Level;

use crate::capture::http::{self, HttpField, http_field};
use crate::capture::visit::{Draft, NamedFields};
use crate::handoff::clock::Stamp;
use crate::handoff::packed::{QUEUE_STATE_CHANGE, queue_severity};
use crate::handoff::record::{Body, Record, Text, Val};
use crate::severity::Severity;

/// The span names captured by default.
pub const DEFAULT_CAPTURED_SPANS: &[&str] = &[HTTP_REQUEST, QUEUE_STATE_CHANGE];

/// The span (or event) name for an HTTP request.
pub(crate) const HTTP_REQUEST: &str = "http.request";

/// A captured span's fields, from creation to close.
#[derive(Debug)]
pub(crate) struct SpanCapture {
    started: Instant,
    time: Stamp,
    level: Level,
    /// The span comes from HTTP instrumentation ([`http::is_instrumentation`]).
    instrumentation: bool,
    pub(crate) draft: Draft<NamedFields>,
    pub(crate) text: String,
}

impl SpanCapture {
    pub(crate) fn new(level: Level, instrumentation: bool) -> Self {
        SpanCapture {
            started: Instant::now(),
            time: Stamp::now(),
            level,
            instrumentation,
            draft: Draft::default(),
            text: String::new(),
        }
    }

    /// Drops the text of values recorded over since: what the span keeps, and what counts
    /// against its text budget, is its fields' current values.
    pub(crate) fn compact(&mut self) {
        let draft = &mut self.draft;
        let ranges = draft.name.iter_mut().chain(draft.message.iter_mut()).filter_map(|t| match t {
            Text::Range(start, end) => Some((start, end)),
            Text::Static(_) => None,
        });
        let values = draft.fields.iter_mut().filter_map(|(_, v)| match v {
            Val::Str(t) | Val::BigInt(t) => Some((&mut t.0, &mut t.1)),
            _ => None,
        });
        let mut ranges: Vec<(&mut u32, &mut u32)> = ranges.chain(values).collect();
        let live: u32 = ranges.iter().map(|(start, end)| **end - **start).sum();
        if live as usize == self.text.len() {
            return;
        }
        let mut text = String::with_capacity(live as usize);
        for (start, end) in &mut ranges {
            let at = text.len() as u32;
            text.push_str(self.text.get(**start as usize..**end as usize).unwrap_or_default());
            (**start, **end) = (at, text.len() as u32);
        }
        self.text = text;
    }

    /// The event for the closed span `name`: its fields plus `duration_ms`.
    ///
    /// A span named `http.request`, a span from HTTP instrumentation, or any captured span
    /// with an HTTP method field, is sent as `http.request` in its one shape.
    pub(crate) fn finish(self, name: &'static str) -> Record {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let explicit = self.draft.severity;
        let mut fields = self.draft.finish(&self.text);
        let is_http = self.instrumentation
            || name == HTTP_REQUEST
            || fields.fields.iter().any(|(k, _)| http_field(k) == HttpField::Method);
        let name = if is_http {
            fields = http::normalise(&fields, self.instrumentation);
            HTTP_REQUEST
        } else {
            name
        };
        fields.name = Some(Text::Static(name));
        fields.fields.retain(|(k, _)| *k != "duration_ms");
        fields.fields.push(("duration_ms", Val::F64(duration_ms)));
        let severity = explicit.unwrap_or_else(|| match name {
            HTTP_REQUEST => http::severity(&fields),
            QUEUE_STATE_CHANGE => queue_severity(&fields),
            _ => Severity::from(&self.level),
        });
        Record { time: self.time, severity, body: Body::Fields(Box::new(fields)) }
    }
}
