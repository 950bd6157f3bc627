//! An event's fields as the emitting thread captures them: each written as it comes into the
//! thread's scratch, as an entry (its index in the callsite's field set, its kind, its value
//! or the range of its text) and its text behind. The `session_id` is compared and left out;
//! once it is another session's, the other fields are skipped. Which field names the event,
//! which is its message and which its severity is the uploader's to tell
//! (`handoff/packed.rs`); here only whether any could name it, so that an unnamed event can
//! take its span's name while the span is at hand.

use std::fmt;

use tracing::field::{Field, Visit};

use crate::capture::callsite::Fields;
use crate::capture::roles::{Role, debug_matches, role, same_id};
use crate::capture::text::{TextBuf, TextOut, budget, push_big, push_debug, push_display, push_str};
use crate::errors::classify::Classifier;
use crate::errors::report::{dyn_type_name, error_record};
use crate::handoff::clock::Stamp;
use crate::handoff::lanes::LastLane;
use crate::handoff::record::{Captured, ENTRY, Entry, Layout, Record, Text, TextRange, Val, encode_entry};
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_FIELDS, TRUNCATION_MARKER, floor_char_boundary};
use crate::severity::Severity;

/// A thread's room for the event it is capturing, reused from one event to the next: once it
/// has grown to the thread's largest event, capturing allocates nothing.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// Room for as many fields as an event keeps.
    entries: [Entry; MAX_FIELDS],
    /// Fields added: those past [`MAX_FIELDS`] have no entry, and are counted as dropped.
    count: usize,
    text: TextBuf,
    /// Bytes of `text` that do not count against the event's text budget: a `severity` that
    /// parses, which the record leaves out of its fields.
    uncounted: usize,
    /// Fields of a wide callsite's event at an index no entry holds, counted as dropped; only
    /// [`WideVisitor`] counts them.
    unheld: usize,
    /// The lane this thread last handed a captured event to.
    lane: LastLane,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch { text: TextBuf::with_room(), ..Scratch::new() }
    }
}

impl Scratch {
    /// An empty one, whose text takes room as its thread's first events need it.
    pub(crate) const fn new() -> Self {
        Scratch {
            entries: [[0; ENTRY]; MAX_FIELDS],
            count: 0,
            text: TextBuf::new(),
            uncounted: 0,
            unheld: 0,
            lane: LastLane::new(),
        }
    }

    /// Empties it for the next event, keeping its room.
    #[inline(always)]
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.text.clear();
        self.uncounted = 0;
    }

    /// Appends `name` to the text: the name the event takes from its span.
    pub(crate) fn push_name(&mut self, name: &str) -> Text {
        let start = self.text.len() as u32;
        self.text.push(name);
        Text::Range(start, self.text.len() as u32)
    }

    /// The captured event of `meta`, stamped now, borrowing the scratch, for reading its
    /// fields. `name` is the name the emitting thread gave it, if it did.
    #[inline(always)]
    pub(crate) fn captured(
        &self,
        meta: &'static tracing::Metadata<'static>,
        name: Option<Text>,
    ) -> Captured<'_> {
        captured_parts(&self.entries, self.count, 0, &self.text, meta, name)
    }

    /// [`captured`](Self::captured), with the lane this thread last handed an event to;
    /// `unheld` more fields were dropped (a wide callsite's, past an entry's index byte).
    #[inline(always)]
    pub(crate) fn captured_for_lane(
        &mut self,
        meta: &'static tracing::Metadata<'static>,
        name: Option<Text>,
        unheld: usize,
    ) -> (Captured<'_>, &mut LastLane) {
        let Scratch { entries, count, text, lane, .. } = self;
        (captured_parts(entries, *count, unheld, text, meta, name), lane)
    }

    /// How many fields of the wide callsite's event just visited no entry could hold.
    pub(crate) fn unheld(&self) -> usize {
        self.unheld
    }

    #[inline(always)]
    fn budget(&self) -> usize {
        budget(self.text.len() - self.uncounted)
    }
}

/// The captured event of `meta` whose `count` fields (an entry each, up to the room for them)
/// and text are these, stamped now; `unheld` more fields were dropped.
#[inline(always)]
fn captured_parts<'a>(
    entries: &'a [Entry],
    count: usize,
    unheld: usize,
    text: &'a TextBuf,
    meta: &'static tracing::Metadata<'static>,
    name: Option<Text>,
) -> Captured<'a> {
    let entries = entries.get(..count).unwrap_or(entries);
    let layout = Layout::new(meta, name, entries.len(), count - entries.len() + unheld);
    Captured { layout, time: Stamp::now(), entries, text: text.as_bytes() }
}

/// Visits an event's fields into a [`Scratch`].
pub(crate) struct EventVisitor<'a> {
    scratch: &'a mut Scratch,
    /// What the callsite's fields are: which is the `session_id`, never a field of the event.
    fields: Fields,
    /// The session to compare the `session_id` field with, when that field decides.
    want: Option<&'a str>,
    classifier: &'a Classifier,
    /// Whether the `session_id` field matched, once compared; after a mismatch the remaining
    /// fields are skipped.
    pub(crate) session: Option<bool>,
    /// Whether a string field is called `event_name` or `message`: the event is named.
    pub(crate) named: bool,
    /// The message so far: an error value's context.
    message: Option<TextRange>,
    /// The first error value recorded, already turned into the record the event becomes.
    pub(crate) error: Option<Box<Record>>,
}

impl<'a> EventVisitor<'a> {
    /// A visitor writing into `scratch` (emptied first) an event of a callsite with
    /// `fields`, leaving out its `session_id` field and, with `want`, comparing it with that
    /// session.
    #[inline(always)]
    pub(crate) fn new(
        scratch: &'a mut Scratch,
        fields: Fields,
        want: Option<&'a str>,
        classifier: &'a Classifier,
    ) -> Self {
        scratch.clear();
        EventVisitor {
            scratch,
            fields,
            want,
            classifier,
            session: None,
            named: false,
            message: None,
            error: None,
        }
    }

    /// Whether the rest of the fields can be skipped: the event is another session's.
    #[inline(always)]
    fn skipping(&self) -> bool {
        self.session == Some(false)
    }

    #[inline(always)]
    fn is_session(&self, field: &Field) -> bool {
        self.fields.is_session(field.index())
    }

    #[inline(always)]
    fn add(&mut self, field: &Field, val: Val) {
        let scratch = &mut *self.scratch;
        // A field past the room has no entry: it is counted in the event's
        // `_fields_dropped`, as a span's are. The field's index fits its byte: a callsite
        // with more fields is wide, and its events go through `WideVisitor`, which holds
        // back the fields past the byte.
        match scratch.entries.get_mut(scratch.count) {
            Some(entry) => {
                *entry = encode_entry(field.index() as u8, val);
                scratch.count += 1;
            }
            None => scratch.count += 1,
        }
    }

    /// Adds a number or a bool, unless the event is another session's or the field is its
    /// `session_id`.
    #[inline(always)]
    fn add_value(&mut self, field: &Field, val: Val) {
        if !self.skipping() && !self.is_session(field) {
            self.add(field, val);
        }
    }

    /// Adds a string field whose text is at `t`, noting whether it could name the event.
    #[inline(always)]
    fn add_text(&mut self, field: &Field, t: TextRange) {
        let i = field.index();
        if self.fields.names(i) {
            self.note_name(i, t);
        } else if self.fields.is_severity(i) {
            self.severity_text(t);
        }
        self.add(field, Val::Str(t));
    }

    /// Notes that string field `i`, called `event_name` or `message`, names the event, and
    /// where the message is.
    #[inline(always)]
    fn note_name(&mut self, i: usize, t: TextRange) {
        self.named = true;
        if self.fields.is_message(i) {
            self.message = Some(t);
        }
    }

    /// A `severity` that parses is not a field: its text does not count against the budget,
    /// as it never did.
    #[cold]
    fn severity_text(&mut self, t: TextRange) {
        let text = self.scratch.text.get(t);
        if Severity::parse(text).is_some() {
            self.scratch.uncounted += text.len();
        }
    }

    /// The record the event becomes for the error `value`.
    #[cold]
    #[inline(never)]
    fn error_event(&self, value: &(dyn std::error::Error + 'static)) -> Box<Record> {
        let context = self.message.map(|m| self.scratch.text.get(m));
        let error_type = dyn_type_name(value);
        Box::new(error_record(self.classifier, value, error_type, Severity::Error, context))
    }

    /// [`Visit::record_str`] of a field of an event not known to be another session's. A short
    /// value within its budget is copied in a few instructions and its entry written, and
    /// nothing is called; any other value, or a `severity`, is [`add_str_apart`]'s.
    ///
    /// [`add_str_apart`]: Self::add_str_apart
    #[inline(never)]
    fn add_str(&mut self, field: &Field, value: &str) {
        let i = field.index();
        let start = self.scratch.text.len();
        let end = start + value.len();
        if end > MAX_EVENT_TEXT_BYTES + self.scratch.uncounted
            || self.fields.is_severity(i)
            || !self.scratch.text.push_short(value)
        {
            return self.add_str_apart(field, value);
        }
        let t = TextRange(start as u32, end as u32);
        if self.fields.names(i) {
            self.note_name(i, t);
        }
        self.add(field, Val::Str(t));
    }

    /// [`add_str`](Self::add_str) of a long value, a `severity`, or a value past its budget,
    /// which is cut to it.
    #[cold]
    #[inline(never)]
    fn add_str_apart(&mut self, field: &Field, value: &str) {
        let severity = self.fields.is_severity(field.index());
        let t = self.push_str_for(value, severity);
        self.add_text(field, t);
    }

    /// Appends `value` within the event's budget, but whole when it is a `severity` that
    /// parses: that text does not count against the budget, so none it used up may cut it.
    fn push_str_for(&mut self, value: &str, severity: bool) -> TextRange {
        let budget = match severity && Severity::parse(value).is_some() {
            true => value.len(),
            false => self.scratch.budget(),
        };
        push_str(&mut self.scratch.text, value, budget)
    }

    /// Appends a `severity`'s `Debug` output: whole when it parses, within the event's budget
    /// otherwise, as any value.
    #[cold]
    fn push_severity_debug(&mut self, value: &dyn fmt::Debug) -> TextRange {
        let budget = self.scratch.budget();
        let t = push_debug(&mut self.scratch.text, value, budget.max(SEVERITY_ROOM));
        let text = self.scratch.text.get(t);
        if text.len() <= budget || Severity::parse(text).is_some() {
            return t;
        }
        let keep = floor_char_boundary(text, budget).len();
        self.scratch.text.truncate(t.0 as usize + keep);
        self.scratch.text.push(TRUNCATION_MARKER);
        TextRange(t.0, self.scratch.text.len() as u32)
    }

    /// Adds a wide callsite's string field at `t` whose name gives it `role`.
    #[cold]
    fn add_with_role(&mut self, field: &Field, role: Role, t: TextRange) {
        match role {
            Role::Name => self.named = true,
            Role::Message => {
                self.named = true;
                self.message = Some(t);
            }
            Role::Severity => self.severity_text(t),
            Role::Session | Role::Value => {}
        }
        self.add(field, Val::Str(t));
    }

    /// [`Visit::record_debug`] of an event not known to be another session's.
    #[inline(never)]
    fn add_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.is_session(field) {
            if let Some(want) = self.want {
                self.session = Some(debug_matches(want, value));
            }
            return;
        }
        let budget = self.scratch.budget();
        let t = push_debug(&mut self.scratch.text, value, budget);
        let i = field.index();
        if self.fields.names(i) {
            self.note_name(i, t);
        } else if self.fields.is_severity(i) {
            return self.add_severity_debug(field, t, value);
        }
        self.add(field, Val::Str(t));
    }

    /// [`add_debug`](Self::add_debug) of a `severity` whose output went to `t`: written again
    /// whole when the budget cut it and it would parse.
    #[cold]
    #[inline(never)]
    fn add_severity_debug(&mut self, field: &Field, t: TextRange, value: &dyn fmt::Debug) {
        let cut = self.scratch.text.get(t).ends_with(TRUNCATION_MARKER);
        let t = match cut {
            true => {
                self.scratch.text.truncate(t.0 as usize);
                self.push_severity_debug(value)
            }
            false => t,
        };
        self.add_text(field, t);
    }

    fn record_big(&mut self, field: &Field, value: &dyn fmt::Display) {
        if !self.skipping() && !self.is_session(field) {
            let t = push_big(&mut self.scratch.text, value);
            self.add(field, Val::BigInt(t));
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.skipping() {
            return;
        }
        if self.is_session(field) {
            if let Some(want) = self.want {
                self.session = Some(same_id(value, want));
            }
            return;
        }
        self.add_str(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.skipping() {
            self.add_debug(field, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add_value(field, Val::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.add_value(field, Val::U64(value));
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
        self.add_value(field, Val::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.add_value(field, Val::Bool(value));
    }

    /// The first error value makes the event an exception or `user_error` event; later ones
    /// are text.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.skipping() {
            return;
        }
        if self.error.is_none() {
            self.error = Some(self.error_event(value));
        } else {
            let budget = self.scratch.budget();
            let t = push_display(&mut self.scratch.text, value, budget);
            self.add(field, Val::Str(t));
        }
    }
}

/// Room a `severity` given through `Debug` or `Display` has past a spent budget: enough for
/// any name [`Severity::parse`] takes, with some space around it.
const SEVERITY_ROOM: usize = 64;

/// Visits a wide callsite's event (see [`Fields`]): tells each field by its name, and hands
/// it to an [`EventVisitor`] over the callsite's [`plain`](Fields::plain) fields, which
/// takes it for a value. A field at an index an entry's byte does not hold is counted as
/// dropped.
pub(crate) struct WideVisitor<'v, 'a>(&'v mut EventVisitor<'a>);

impl<'v, 'a> WideVisitor<'v, 'a> {
    /// Visits through `inner`, which was made over the callsite's plain fields.
    pub(crate) fn new(inner: &'v mut EventVisitor<'a>) -> Self {
        inner.scratch.unheld = 0;
        WideVisitor(inner)
    }

    /// What `field` is, told by its name; `None` once the event is another session's, and
    /// for a field at an index no entry holds (counted as dropped; the plain fields'
    /// `session_id` byte is not one either).
    fn role(&mut self, field: &Field) -> Option<Role> {
        if self.0.skipping() {
            return None;
        }
        let role = role(field.name());
        if role != Role::Session && field.index() >= usize::from(u8::MAX) {
            self.0.scratch.unheld += 1;
            return None;
        }
        Some(role)
    }

    /// Whether `field` is a value the inner visitor takes: a number, a bool or an error is
    /// never the session's id.
    fn value(&mut self, field: &Field) -> bool {
        self.role(field).is_some_and(|role| role != Role::Session)
    }
}

impl Visit for WideVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.role(field) {
            None => {}
            Some(Role::Session) => {
                if let Some(want) = self.0.want {
                    self.0.session = Some(same_id(value, want));
                }
            }
            Some(Role::Value) => self.0.record_str(field, value),
            Some(role) => {
                let t = self.0.push_str_for(value, role == Role::Severity);
                self.0.add_with_role(field, role, t);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match self.role(field) {
            None => {}
            Some(Role::Session) => {
                if let Some(want) = self.0.want {
                    self.0.session = Some(debug_matches(want, value));
                }
            }
            Some(Role::Value) => self.0.record_debug(field, value),
            Some(Role::Severity) => {
                let t = self.0.push_severity_debug(value);
                self.0.add_with_role(field, Role::Severity, t);
            }
            Some(role) => {
                let budget = self.0.scratch.budget();
                let t = push_debug(&mut self.0.scratch.text, value, budget);
                self.0.add_with_role(field, role, t);
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.value(field) {
            self.0.record_i64(field, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.value(field) {
            self.0.record_u64(field, value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if self.value(field) {
            self.0.record_i128(field, value);
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if self.value(field) {
            self.0.record_u128(field, value);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.value(field) {
            self.0.record_f64(field, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.value(field) {
            self.0.record_bool(field, value);
        }
    }

    /// The first error value makes the event what it becomes, wherever it stands; a later one
    /// is a field like any other.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.0.error.is_none() && !self.0.skipping() || self.role(field).is_some() {
            self.0.record_error(field, value);
        }
    }
}
