//! Field visitors: finding an event's `session_id` without allocating, and capturing its
//! fields into a [`FieldRecord`] with their JSON types.

use std::fmt::{self, Write as _};

use smallvec::SmallVec;
use tracing::field::{Field, Visit};

use crate::capture::roles::{Role, debug_matches, is_session, role};
use crate::errors::classify::Classifier;
use crate::errors::report::{dyn_type_name, error_record};
use crate::handoff::clock::Stamp;
use crate::handoff::record::{
    Captured, Entry, FieldRecord, INLINE_FIELDS, Layout, Record, Text, TextRange, Val, encode_entry,
};
use crate::limits::{
    MAX_EVENT_TEXT_BYTES, MAX_FIELDS, MAX_VALUE_BYTES, TRUNCATION_MARKER, floor_char_boundary,
};
use crate::severity::Severity;

/// Where a [`FieldVisitor`] puts field values.
pub(crate) trait FieldStore: Default {
    /// Adds `field`'s value, or with `replace` overwrites the value it had; false when the
    /// store is full and the value was left out.
    fn add(&mut self, field: &Field, val: Val, replace: bool) -> bool;
}

/// A captured span's fields: names kept, so that `http.request` normalisation can rename them.
pub(crate) type NamedFields = SmallVec<[(&'static str, Val); INLINE_FIELDS]>;

impl FieldStore for NamedFields {
    fn add(&mut self, field: &Field, val: Val, replace: bool) -> bool {
        let name = field.name();
        if replace {
            if let Some(slot) = self.iter_mut().find(|(k, _)| *k == name) {
                slot.1 = val;
                return true;
            }
        }
        if self.len() >= MAX_FIELDS {
            return false;
        }
        self.push((name, val));
        true
    }
}

/// An event's fields as packed entries: a callsite has at most 32 fields, so they
/// always fit on the stack.
pub(crate) type EventFields = SmallVec<[Entry; 32]>;

impl FieldStore for EventFields {
    #[inline(always)]
    fn add(&mut self, field: &Field, val: Val, _replace: bool) -> bool {
        // Events are recorded once: nothing to replace. A callsite's field index fits a byte.
        self.push(encode_entry(field.index() as u8, val));
        true
    }
}

/// A set of captured fields being filled; its text goes to a caller-supplied buffer.
#[derive(Debug, Default)]
pub(crate) struct Draft<S> {
    pub(crate) name: Option<Text>,
    pub(crate) message: Option<Text>,
    pub(crate) severity: Option<Severity>,
    pub(crate) fields: S,
    pub(crate) fields_dropped: u32,
    /// The first error value recorded, already turned into its event.
    pub(crate) error: Option<Box<ErrorField>>,
    /// Whether the `session_id` field matched, when the visitor was asked to check it; after
    /// a mismatch the remaining fields are skipped.
    pub(crate) session: Option<bool>,
}

/// An error recorded through `Visit::record_error`, as the event it becomes.
#[derive(Debug)]
pub(crate) struct ErrorField {
    pub(crate) record: Record,
}

impl<S> Draft<S> {
    /// The event name so far: the `event_name` field, else the message, else `""`.
    pub(crate) fn event_name<'t>(&self, text: &'t str) -> &'t str {
        self.name.or(self.message).map_or("", |t| t.of(text))
    }

    /// Whether the event name so far is `name`; compares lengths before any text.
    #[inline(always)]
    pub(crate) fn is_named(&self, text: &str, name: &str) -> bool {
        let len = match self.name.or(self.message) {
            Some(Text::Static(s)) => s.len(),
            Some(Text::Range(a, b)) => b.wrapping_sub(a) as usize,
            None => 0,
        };
        len == name.len() && self.event_name(text) == name
    }
}

impl Draft<NamedFields> {
    /// The finished span record.
    pub(crate) fn finish(self, text: &str) -> FieldRecord {
        FieldRecord {
            name: self.name,
            message: self.message,
            fields: self.fields.into_vec(),
            fields_dropped: self.fields_dropped,
            text: text.into(),
        }
    }
}

impl Draft<EventFields> {
    /// Leaves out the `log.*` fields tracing-log adds to a bridged `log` record (target,
    /// module path, file, line). Only bridged records pay for it.
    pub(crate) fn drop_log_fields(&mut self, meta: &tracing::Metadata<'_>) {
        let names = meta.fields();
        self.fields
            .retain(|e| names.iter().nth(usize::from(e[0])).is_none_or(|f| !f.name().starts_with("log.")));
    }

    /// The finished event, stamped now, borrowing its fields and `text`.
    #[inline(always)]
    pub(crate) fn captured<'a>(
        &'a self,
        meta: &'static tracing::Metadata<'static>,
        text: &'a str,
        severity: Severity,
    ) -> Captured<'a> {
        let layout = Layout::new(meta, self.name, self.message, self.fields.len(), self.fields_dropped);
        Captured { layout, time: Stamp::now(), severity, entries: &self.fields, text }
    }
}

/// Visits fields into a [`Draft`].
pub(crate) struct FieldVisitor<'a, S> {
    pub(crate) draft: &'a mut Draft<S>,
    text: &'a mut String,
    /// Text already in the buffer before this event (a span's earlier fields).
    base: usize,
    /// Replace a field seen before (a span's `record`) instead of adding it again.
    replace: bool,
    /// Turn error values into exception events (events only; on spans they are text).
    errors: Option<&'a Classifier>,
    /// The session to compare a `session_id` field with.
    session: Option<&'a str>,
}

impl<'a, S: FieldStore> FieldVisitor<'a, S> {
    pub(crate) fn new(draft: &'a mut Draft<S>, text: &'a mut String, replace: bool) -> Self {
        let base = if replace { 0 } else { text.len() };
        FieldVisitor { draft, text, base, replace, errors: None, session: None }
    }

    /// Compares a `session_id` field with `session` while capturing (into
    /// [`Draft::session`]), so an event is visited once whether it is kept or not.
    pub(crate) fn checking_session(mut self, session: &'a str) -> Self {
        self.session = Some(session);
        self
    }

    /// Whether the rest of the fields can be skipped: the event is another session's.
    fn skipping(&self) -> bool {
        self.draft.session == Some(false)
    }

    fn check_session_str(&mut self, value: &str) {
        if let Some(want) = self.session {
            self.draft.session = Some(value == want);
        }
    }

    fn check_session_debug(&mut self, value: &dyn fmt::Debug) {
        if let Some(want) = self.session {
            self.draft.session = Some(debug_matches(want, value));
        }
    }

    /// Makes error values ([`Visit::record_error`]) become exception or `user_error` events.
    pub(crate) fn with_errors(mut self, classifier: &'a Classifier) -> Self {
        self.errors = Some(classifier);
        self
    }

    fn budget(&self) -> usize {
        let used = self.text.len() - self.base;
        MAX_VALUE_BYTES.min(MAX_EVENT_TEXT_BYTES.saturating_sub(used))
    }

    #[inline(always)]
    fn push_str(&mut self, s: &str) -> TextRange {
        let start = self.text.len();
        let budget = self.budget();
        if s.len() <= budget {
            self.text.push_str(s);
        } else {
            self.text.push_str(floor_char_boundary(s, budget));
            self.text.push_str(TRUNCATION_MARKER);
        }
        range(start, self.text.len())
    }

    fn push_display(&mut self, value: &dyn fmt::Display) -> TextRange {
        struct AsDebug<'a>(&'a dyn fmt::Display);
        impl fmt::Debug for AsDebug<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.0, f)
            }
        }
        self.push_debug(&AsDebug(value))
    }

    fn push_debug(&mut self, value: &dyn fmt::Debug) -> TextRange {
        let start = self.text.len();
        let budget = self.budget();
        let mut w = Limited { out: self.text, left: budget, cut: false };
        // A Debug impl that fails leaves what it wrote so far.
        let _ = write!(w, "{value:?}");
        if w.cut {
            self.text.push_str(TRUNCATION_MARKER);
        }
        range(start, self.text.len())
    }

    #[inline(always)]
    fn add(&mut self, field: &Field, val: Val) {
        if !self.draft.fields.add(field, val, self.replace) {
            self.draft.fields_dropped += 1;
        }
    }
}

fn range(start: usize, end: usize) -> TextRange {
    // Text is bounded by MAX_EVENT_TEXT_BYTES per event, far below u32::MAX.
    TextRange(start as u32, end as u32)
}

/// Writes up to `left` bytes (on a character boundary), then refuses.
struct Limited<'a> {
    out: &'a mut String,
    left: usize,
    cut: bool,
}

impl fmt::Write for Limited<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.left {
            self.out.push_str(s);
            self.left -= s.len();
            return Ok(());
        }
        let keep = floor_char_boundary(s, self.left);
        self.out.push_str(keep);
        self.left = 0;
        self.cut = true;
        Err(fmt::Error)
    }
}

impl<S: FieldStore> Visit for FieldVisitor<'_, S> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.skipping() {
            return;
        }
        match role(field.name()) {
            Role::Session => self.check_session_str(value),
            Role::Name => self.draft.name = Some(self.push_str(value).into()),
            Role::Message => self.draft.message = Some(self.push_str(value).into()),
            Role::Severity if Severity::parse(value).is_some() => {
                self.draft.severity = Severity::parse(value)
            }
            Role::Severity | Role::Value => {
                let t = self.push_str(value);
                self.add(field, Val::Str(t));
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skipping() {
            return;
        }
        match role(field.name()) {
            Role::Session => self.check_session_debug(value),
            Role::Name => self.draft.name = Some(self.push_debug(value).into()),
            Role::Message => self.draft.message = Some(self.push_debug(value).into()),
            role => {
                let t = self.push_debug(value);
                if role == Role::Severity {
                    if let Some(s) = Severity::parse(&self.text[t.0 as usize..t.1 as usize]) {
                        self.draft.severity = Some(s);
                        self.text.truncate(t.0 as usize);
                        return;
                    }
                }
                self.add(field, Val::Str(t));
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.skipping() && !is_session(field) {
            self.add(field, Val::I64(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.skipping() && !is_session(field) {
            self.add(field, Val::U64(value));
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.record_big(field, &value),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.record_u64(field, v),
            Err(_) => self.record_big(field, &value),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.skipping() && !is_session(field) {
            self.add(field, Val::F64(value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.skipping() {
            return;
        }
        match self.errors {
            Some(classifier) if self.draft.error.is_none() => {
                let context = self.draft.message.map(|m| m.of(self.text).to_owned());
                let error_type = dyn_type_name(value);
                let severity = Severity::Error;
                let record = error_record(classifier, value, error_type, severity, context.as_deref());
                self.draft.error = Some(Box::new(ErrorField { record }));
            }
            _ => {
                let t = self.push_display(value);
                self.add(field, Val::Str(t));
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !self.skipping() && !is_session(field) {
            self.add(field, Val::Bool(value));
        }
    }
}

impl<S: FieldStore> FieldVisitor<'_, S> {
    fn record_big(&mut self, field: &Field, value: &dyn fmt::Display) {
        if self.skipping() || is_session(field) {
            return;
        }
        let start = self.text.len();
        let _ = write!(self.text, "{value}");
        let t = range(start, self.text.len());
        self.add(field, Val::BigInt(t));
    }
}
