//! How the uploader reads a captured event's packed bytes: what each field is to the event,
//! told by its name (the session it was scoped to, the event's name, its message, its
//! severity, or a value), then the event's name and severity, and the record it becomes.
//!
//! The emitting thread decides none of this: it writes each field as it comes, by its index
//! in the callsite's field set, and the callsite's field names are `&'static`, so the uploader
//! finds them again. What it drops (the name, the message, a severity that parses, tracing-log's
//! `log.*` fields of an unnamed bridged record) it leaves out of the record's buffer.

use smallvec::SmallVec;

use super::clock::Stamp;
use super::record::{
    Body, Captured, ENTRY, FieldSource, INLINE_BYTES, Layout, PackedFields, Record, Slot, TextRange, Val,
    decode_entry, heap_for, text_in,
};
use crate::severity::Severity;

/// The field that scopes events to a session.
pub(crate) const SESSION_ID: &str = "session_id";
/// The field that names an event.
pub(crate) const EVENT_NAME: &str = "event_name";
/// The field that overrides the level-derived severity.
pub(crate) const SEVERITY: &str = "severity";
/// tracing's name for the format-string message.
pub(crate) const MESSAGE: &str = "message";

/// The span or event name for a queue state change.
pub(crate) const QUEUE_STATE_CHANGE: &str = "queue.state_change";

/// Queue states in which the queue is paused; a change into one is a warning.
const PAUSED_STATES: &[&str] = &["paused_rate_limit", "paused_capacity"];

/// tracing-log's name for a bridged `log` record.
pub(crate) const LOG_EVENT: &str = "log event";

/// What a field is to the capture, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Session,
    Name,
    Message,
    Severity,
    Value,
}

/// The role of the field called `name`. Compares fixed-size arrays, which compiles to a few
/// loads instead of calls to `memcmp`.
#[inline(always)]
pub(crate) fn role(name: &str) -> Role {
    const fn bytes<const N: usize>(s: &str) -> &[u8; N] {
        match s.as_bytes().first_chunk() {
            Some(b) => b,
            None => panic!("a field name of another length"),
        }
    }
    const SESSION: &[u8; 10] = bytes(SESSION_ID);
    const NAME: &[u8; 10] = bytes(EVENT_NAME);
    const MSG: &[u8; 7] = bytes(MESSAGE);
    const SEV: &[u8; 8] = bytes(SEVERITY);
    let b = name.as_bytes();
    match b.len() {
        7 if b.first_chunk() == Some(MSG) => Role::Message,
        8 if b.first_chunk() == Some(SEV) => Role::Severity,
        10 => match b.first_chunk::<10>() {
            Some(x) if x == SESSION => Role::Session,
            Some(x) if x == NAME => Role::Name,
            _ => Role::Value,
        },
        _ => Role::Value,
    }
}

/// tracing names events `event <file>:<line>` unless the macro was given `name:`, and
/// tracing-log names every bridged record `log event`: names that say nothing.
pub(crate) fn is_default_event_name(name: &str) -> bool {
    name.starts_with("event ") || name == LOG_EVENT
}

/// WARNING when the queue moves into a paused state, else INFO.
pub(crate) fn queue_severity(rec: &impl FieldSource) -> Severity {
    match rec.get_str("to") {
        Some(to) if PAUSED_STATES.contains(&to.trim()) => Severity::Warning,
        _ => Severity::Info,
    }
}

impl PackedFields {
    /// The record of a captured event of `layout` stamped `time`, whose entries and text are
    /// `bytes`: its severity is its `severity` field's, else a queue state change's, else its
    /// level's.
    pub(crate) fn record(layout: Layout, time: Stamp, bytes: &[u8]) -> Record {
        let (fields, explicit) = PackedFields::read(layout, bytes);
        let severity = explicit.unwrap_or_else(|| match fields.event_name("") {
            QUEUE_STATE_CHANGE => queue_severity(&fields),
            _ => Severity::from(fields.meta.level()),
        });
        Record { time, severity, body: Body::Packed(fields) }
    }

    /// The event of `layout` whose entries and text are `bytes`, with the severity its
    /// `severity` field gives it, if any.
    ///
    /// Its name is its `event_name` field, else the one the emitting thread gave it, else
    /// none when it has a message and a name that says nothing (the message names it), else
    /// the callsite's. A string field that names the event, is its message or is a severity
    /// that parses is not a field of its own; neither are a bridged `log` record's `log.*`
    /// fields when it has no `event_name`.
    pub(crate) fn read(layout: Layout, bytes: &[u8]) -> (PackedFields, Option<Severity>) {
        let meta = layout.meta;
        let (entries, text) = bytes.split_at((usize::from(layout.count) * ENTRY).min(bytes.len()));
        let told = Told::of(meta, entries, text);
        let (count, buf) = told.buf(entries, text);
        let name = match (layout.name, told.name) {
            (_, Some(r)) => slot(r),
            (given, None) if given != Slot::NONE => given,
            (_, None) if told.message.is_none() || !is_default_event_name(meta.name()) => Slot::CALLSITE_NAME,
            (_, None) => Slot::NONE,
        };
        let fields = PackedFields {
            meta,
            name,
            message: told.message.map_or(Slot::NONE, slot),
            // At most `MAX_FIELDS` entries; the text is bounded far below u32::MAX.
            count: count as u16,
            dropped: layout.dropped,
            counted: heap_for(bytes.len()) as u32,
            buf,
        };
        (fields, told.severity)
    }
}

/// What a captured event's fields are to it, told from their names.
#[derive(Debug)]
struct Told {
    name: Option<TextRange>,
    message: Option<TextRange>,
    severity: Option<Severity>,
    /// Per entry, in order.
    fates: SmallVec<[Fate; 32]>,
}

impl Told {
    /// Reads the `entries` of an event of `meta` whose text is `text`.
    fn of(meta: &'static tracing::Metadata<'static>, entries: &[u8], text: &[u8]) -> Told {
        let names: SmallVec<[&'static str; 32]> = meta.fields().iter().map(|f| f.name()).collect();
        let bridged = meta.name() == LOG_EVENT;
        let mut told = Told { name: None, message: None, severity: None, fates: SmallVec::new() };
        for e in entries.chunks_exact(ENTRY) {
            let (index, val) = decode_entry(e);
            let field = names.get(usize::from(index)).copied().unwrap_or("");
            let fate = match (val, role(field)) {
                (Val::Str(r), Role::Name) => {
                    told.name = Some(r);
                    Fate::Taken
                }
                (Val::Str(r), Role::Message) => {
                    told.message = Some(r);
                    Fate::Taken
                }
                (Val::Str(r), Role::Severity) => match Severity::parse(text_in(text, r.into())) {
                    Some(s) => {
                        told.severity = Some(s);
                        Fate::Taken
                    }
                    None => Fate::Field,
                },
                (_, Role::Session) => Fate::Taken,
                _ if bridged && field.starts_with("log.") => Fate::Log,
                _ => Fate::Field,
            };
            told.fates.push(fate);
        }
        told
    }

    /// The record's buffer: the entries that stay fields, then the text; and their count.
    fn buf(&self, entries: &[u8], text: &[u8]) -> (usize, SmallVec<[u8; INLINE_BYTES]>) {
        let named = self.name.is_some();
        let kept = |f: &Fate| *f == Fate::Field || (*f == Fate::Log && named);
        let count = self.fates.iter().filter(|f| kept(f)).count();
        let mut buf = SmallVec::with_capacity(count * ENTRY + text.len());
        for (e, f) in entries.chunks_exact(ENTRY).zip(&self.fates) {
            if kept(f) {
                buf.extend_from_slice(e);
            }
        }
        buf.extend_from_slice(text);
        (count, buf)
    }
}

/// What becomes of a field of a captured event in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// A field of the record.
    Field,
    /// The event's name, message or severity, or its session: not a field.
    Taken,
    /// One of tracing-log's `log.*` fields: a field only when the event has an `event_name`.
    Log,
}

impl Captured<'_> {
    /// Its bytes: entries, then text.
    fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len());
        bytes.extend_from_slice(self.entries.as_flattened());
        bytes.extend_from_slice(self.text);
        bytes
    }

    /// The record, for a thread that has no lane (it is being torn down).
    pub(crate) fn to_record(&self) -> Record {
        PackedFields::record(self.layout, self.time, &self.bytes())
    }

    /// The event as its record would hold it, with its `severity` field's severity, for the
    /// rare event the emitting thread makes another record of.
    pub(crate) fn read(&self) -> (PackedFields, Option<Severity>) {
        PackedFields::read(self.layout, &self.bytes())
    }
}

/// The slot of a range of the event's text.
fn slot(r: TextRange) -> Slot {
    Slot(r.0, r.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::record::FieldRecord;

    #[test]
    fn paused_queues_warn() {
        assert_eq!(queue_severity(&FieldRecord::of_strs(&[("to", "paused_rate_limit")])), Severity::Warning);
        assert_eq!(queue_severity(&FieldRecord::of_strs(&[("to", "paused_capacity")])), Severity::Warning);
        assert_eq!(queue_severity(&FieldRecord::of_strs(&[("to", "active")])), Severity::Info);
        assert_eq!(queue_severity(&FieldRecord::of_strs(&[])), Severity::Info);
    }
}
