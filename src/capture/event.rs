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
use crate::capture::roles::{debug_matches, same_id};
use crate::capture::text::{TextBuf, TextOut, budget, push_big, push_debug, push_display, push_str};
use crate::errors::classify::Classifier;
use crate::errors::report::{dyn_type_name, error_record};
use crate::handoff::clock::Stamp;
use crate::handoff::lanes::LastLane;
use crate::handoff::record::{Captured, ENTRY, Entry, Layout, Record, Text, TextRange, Val, encode_entry};
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_FIELDS};
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

    /// The captured event of `meta`, stamped now, borrowing the scratch. `name` is the name
    /// the emitting thread gave it, if it did.
    #[inline(always)]
    pub(crate) fn captured(
        &self,
        meta: &'static tracing::Metadata<'static>,
        name: Option<Text>,
    ) -> Captured<'_> {
        captured_parts(&self.entries, self.count, &self.text, meta, name)
    }

    /// [`captured`](Self::captured), with the lane this thread last handed an event to.
    #[inline(always)]
    pub(crate) fn captured_for_lane(
        &mut self,
        meta: &'static tracing::Metadata<'static>,
        name: Option<Text>,
    ) -> (Captured<'_>, &mut LastLane) {
        let Scratch { entries, count, text, lane, .. } = self;
        (captured_parts(entries, *count, text, meta, name), lane)
    }

    #[inline(always)]
    fn budget(&self) -> usize {
        budget(self.text.len() - self.uncounted)
    }
}

/// The captured event of `meta` whose `count` fields (an entry each, up to the room for them)
/// and text are these, stamped now.
#[inline(always)]
fn captured_parts<'a>(
    entries: &'a [Entry],
    count: usize,
    text: &'a TextBuf,
    meta: &'static tracing::Metadata<'static>,
    name: Option<Text>,
) -> Captured<'a> {
    let entries = entries.get(..count).unwrap_or(entries);
    let layout = Layout::new(meta, name, entries.len(), count - entries.len());
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
        // `_fields_dropped`, as a span's are. A field index fits its byte unless the callsite
        // has more than 256 fields and left the first of them empty.
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
        let budget = self.scratch.budget();
        let t = push_str(&mut self.scratch.text, value, budget);
        self.add_text(field, t);
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
