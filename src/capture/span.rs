//! Captured spans: what the layer keeps while a captured span is open, and how it becomes an
//! event when the span closes, with the `http.request` and `queue.state_change` conventions.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};
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

/// A captured span's fields as the threads that record it share them: a record waits for
/// another thread's record to finish; no thread holds the lock while it holds the span's
/// extensions, so a value's `Debug` impl may log.
#[derive(Debug)]
pub(crate) struct SharedCapture(Mutex<Option<Box<SpanCapture>>>);

thread_local! {
    /// The captures this thread is recording into: a value's `Debug` impl that records into
    /// the same span again (or logs a report into it) is skipped, as it cannot wait for
    /// itself.
    static RECORDING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Takes a capture off this thread's list when its record ends, a panicking `Debug` impl
/// included.
struct Recorded(usize);

impl Drop for Recorded {
    fn drop(&mut self) {
        let _ = RECORDING.try_with(|r| r.borrow_mut().retain(|&k| k != self.0));
    }
}

impl SharedCapture {
    pub(crate) fn new(capture: Box<SpanCapture>) -> Arc<Self> {
        Arc::new(SharedCapture(Mutex::new(Some(capture))))
    }

    /// Runs `visit` on the capture's fields and text, once another thread's record is done,
    /// then gives back the text of values recorded over. Skipped when this thread is
    /// recording into it already, and once the span closed.
    pub(crate) fn record(&self, visit: impl FnOnce(&mut Draft<NamedFields>, &mut String)) {
        let key = std::ptr::from_ref(self) as usize;
        let first = RECORDING.try_with(|r| {
            let mut recording = r.borrow_mut();
            let first = !recording.contains(&key);
            if first {
                recording.push(key);
            }
            first
        });
        let mut capture = match first {
            Ok(false) => return,
            Ok(true) => self.0.lock().unwrap_or_else(PoisonError::into_inner),
            // The thread is being torn down: no list to tell a record into the same span by.
            Err(_) => match self.0.try_lock() {
                Ok(capture) => capture,
                Err(_) => return,
            },
        };
        let _recorded = Recorded(key);
        if let Some(capture) = capture.as_mut() {
            let SpanCapture { draft, text, .. } = &mut **capture;
            visit(draft, text);
            capture.compact();
        }
    }

    /// The capture, once its span closed.
    pub(crate) fn take(&self) -> Option<Box<SpanCapture>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

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
