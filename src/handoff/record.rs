//! The record handed from the emitting thread to the uploader: one event, its fields packed.
//!
//! An event's fields are packed as 10-byte entries (field index, kind, 8 bytes of payload),
//! followed by every piece of text the event carries (strings, `Debug` output, the message),
//! which entries point into by byte range. The emitting thread hands a captured event over as
//! a [`Captured`] (its [`Layout`] and time stamp, borrowing the entries and text) whose bytes
//! its lane copies, every field as it came; the uploader makes the [`Record`] from them
//! (`packed.rs`: which field names the event, its message, its severity), a [`PackedFields`]
//! holding up to [`INLINE_BYTES`] inline. Records of other kinds (spans, errors,
//! SESSION_START) are made where they happen. Serialization, redaction and size checks happen
//! on the uploader thread.

use std::time::Duration;

use smallvec::SmallVec;

use super::clock::Stamp;
use crate::severity::Severity;

/// Fields a [`Draft`](crate::capture::visit::Draft) holds on the stack before it spills to the heap.
pub(crate) const INLINE_FIELDS: usize = 16;

/// Bytes of fields and text a [`PackedFields`] holds without allocating.
pub(crate) const INLINE_BYTES: usize = 64;

/// Bytes per field in a [`PackedFields`] buffer: field index, kind, 8 bytes of payload.
pub(crate) const ENTRY: usize = 10;

/// One event waiting to be sent.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) time: Stamp,
    pub(crate) severity: Severity,
    pub(crate) body: Body,
}

impl Record {
    /// The heap memory the record holds beyond its own size: what it counts against the
    /// queue's byte bound while it waits. Zero for an event whose fields and text fit in the
    /// record.
    #[inline]
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.body {
            Body::SessionStart | Body::SessionEnd { .. } => 0,
            Body::Packed(p) => p.counted as usize,
            Body::Fields(f) => {
                size_of::<FieldRecord>() + f.text.len() + f.fields.capacity() * size_of::<(&str, Val)>()
            }
            Body::Json { name, data } => name.len() + json_heap_bytes(data),
            Body::Exception(e) => {
                size_of::<ExceptionRecord>()
                    + e.error_type.capacity()
                    + e.error_message.capacity()
                    + e.traceback.as_ref().map_or(0, String::capacity)
            }
        }
    }
}

/// About the heap a JSON value holds: its strings, keys and nodes. Walks the value without
/// recursion, however deep it is.
fn json_heap_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    const NODE: usize = size_of::<Value>();
    let mut total = 0;
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        match v {
            Value::String(s) => total += s.capacity(),
            Value::Array(items) => {
                total += items.capacity() * NODE;
                todo.extend(items);
            }
            Value::Object(map) => {
                for (k, v) in map {
                    // A map entry: its key, its value, and the map's own bookkeeping.
                    total += k.capacity() + NODE + 2 * size_of::<usize>();
                    todo.push(v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    total
}

/// What kind of event a record is, with its payload.
#[derive(Debug)]
pub(crate) enum Body {
    SessionStart,
    SessionEnd {
        duration: Duration,
    },
    /// A GENERIC_EVENT from an event's tracing fields, packed for the queue.
    Packed(PackedFields),
    /// A GENERIC_EVENT from a captured span's fields.
    Fields(Box<FieldRecord>),
    /// A GENERIC_EVENT from [`TelemetryHandle::log`](crate::TelemetryHandle::log).
    Json {
        name: Box<str>,
        data: serde_json::Value,
    },
    Exception(Box<ExceptionRecord>),
}

/// An UNHANDLED_EXCEPTION's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExceptionRecord {
    pub(crate) error_type: String,
    pub(crate) error_message: String,
    pub(crate) traceback: Option<String>,
}

/// A span of `FieldRecord::text`, or a static string from the callsite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Text {
    Static(&'static str),
    Range(u32, u32),
}

/// A byte range of `FieldRecord::text`: the compact form field values use, so that a field
/// takes 32 bytes inline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TextRange(pub(crate) u32, pub(crate) u32);

impl Text {
    /// The text this stands for, ranges resolved in `text`.
    pub(crate) fn of(self, text: &str) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Range(a, b) => text.get(a as usize..b as usize).unwrap_or(""),
        }
    }
}

impl From<TextRange> for Text {
    fn from(r: TextRange) -> Self {
        Text::Range(r.0, r.1)
    }
}

/// A field value with its JSON type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(TextRange),
    /// An integer too wide for 64 bits, as decimal digits in the text buffer.
    BigInt(TextRange),
}

/// What the serializer needs from a set of captured fields, packed or not.
pub(crate) trait FieldSource {
    fn name(&self) -> Option<Text>;
    fn message(&self) -> Option<Text>;
    fn fields_dropped(&self) -> u32;
    /// The text of a field value, name or message.
    fn text(&self, t: impl Into<Text>) -> &str;
    /// The fields, in order, with their names.
    fn pairs(&self) -> impl Iterator<Item = (&'static str, Val)> + '_;

    /// The event name: the `event_name` field, else the message, else `fallback`.
    fn event_name<'a>(&'a self, fallback: &'a str) -> &'a str {
        match (self.name(), self.message()) {
            (Some(n), _) | (None, Some(n)) => self.text(n),
            (None, None) => fallback,
        }
    }

    /// The value of the field called `key`.
    fn get(&self, key: &str) -> Option<Val> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The text of the string field called `key`.
    fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Val::Str(r) => Some(self.text(r)),
            _ => None,
        }
    }
}

/// A GENERIC_EVENT captured from a span's fields (built off the hot path, so plainly laid
/// out).
#[derive(Debug, Default)]
pub(crate) struct FieldRecord {
    pub(crate) name: Option<Text>,
    pub(crate) message: Option<Text>,
    pub(crate) fields: Vec<(&'static str, Val)>,
    /// Fields left out because the event had more than [`crate::limits::MAX_FIELDS`].
    pub(crate) fields_dropped: u32,
    pub(crate) text: Box<str>,
}

#[cfg(test)]
impl FieldRecord {
    /// A record of string fields, for tests.
    pub(crate) fn of_strs(fields: &[(&'static str, &str)]) -> FieldRecord {
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
}

impl FieldSource for FieldRecord {
    fn name(&self) -> Option<Text> {
        self.name
    }

    fn message(&self) -> Option<Text> {
        self.message
    }

    fn fields_dropped(&self) -> u32 {
        self.fields_dropped
    }

    fn text(&self, t: impl Into<Text>) -> &str {
        t.into().of(&self.text)
    }

    fn pairs(&self) -> impl Iterator<Item = (&'static str, Val)> + '_ {
        self.fields.iter().copied()
    }
}

/// A GENERIC_EVENT captured from an event's fields, as the uploader makes it from a lane:
/// its value fields and all the text in one buffer (inline up to [`INLINE_BYTES`]), field
/// names recovered from the callsite's metadata, its name and message pointing into the text.
/// 104 bytes plus that buffer's heap, whatever the number of fields.
#[derive(Debug)]
pub(crate) struct PackedFields {
    pub(super) meta: &'static tracing::Metadata<'static>,
    pub(super) name: Slot,
    pub(super) message: Slot,
    /// Entries at the start of `buf`.
    pub(super) count: u16,
    /// Fields the emitting thread left out: past [`crate::limits::MAX_FIELDS`], or at an
    /// index an entry cannot hold.
    pub(super) dropped: u16,
    /// The heap the event was counted for against the queue's byte bound when it was pushed
    /// ([`Captured::heap_bytes`]), given back when it is settled.
    pub(super) counted: u32,
    /// `count` entries of [`ENTRY`] bytes, then the text: inline up to [`INLINE_BYTES`].
    pub(super) buf: SmallVec<[u8; INLINE_BYTES]>,
}

/// What the emitting thread says of a captured event besides its bytes: the callsite (for
/// field names, level and name), the name it gave the event itself (only when the event has
/// neither an `event_name` nor a message and a name that says nothing: its span's, or the
/// callsite's), how many entries its bytes start with, and how many fields it left out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(super) meta: &'static tracing::Metadata<'static>,
    pub(super) name: Slot,
    pub(super) count: u16,
    pub(super) dropped: u16,
}

impl Layout {
    /// The layout of an event of `meta` with `count` entries, having left out `dropped`
    /// fields. A static `name` must be the callsite's (`meta.name()`).
    #[inline]
    pub(crate) fn new(
        meta: &'static tracing::Metadata<'static>,
        name: Option<Text>,
        count: usize,
        dropped: usize,
    ) -> Self {
        // At most `MAX_FIELDS` entries; a callsite's fields are far fewer than u16::MAX.
        Layout {
            meta,
            name: Slot::new(name, meta),
            count: count as u16,
            dropped: dropped.min(usize::from(u16::MAX)) as u16,
        }
    }
}

/// The fields held in `entries` of an event of `meta`, in order, with their names.
fn pairs<'a>(
    meta: &'static tracing::Metadata<'static>,
    entries: &'a [u8],
) -> impl Iterator<Item = (&'static str, Val)> + 'a {
    let names = meta.fields();
    entries.chunks_exact(ENTRY).map(move |e| {
        let (index, val) = decode_entry(e);
        (names.iter().nth(usize::from(index)).map_or("", |f| f.name()), val)
    })
}

/// A GENERIC_EVENT as the emitting thread hands it to its lane, borrowing the thread's
/// scratch: every field recorded but the `session_id` as an entry, in the callsite's order,
/// its text behind. The lane copies [`entries`](Self::entries) and [`text`](Self::text) back
/// to back, and the uploader makes the record, telling which field names the event, which is
/// its message and which its severity.
#[derive(Debug)]
pub(crate) struct Captured<'a> {
    pub(crate) layout: Layout,
    pub(crate) time: Stamp,
    pub(crate) entries: &'a [Entry],
    pub(crate) text: &'a [u8],
}

impl Captured<'_> {
    /// Bytes of entries and text.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len() * ENTRY + self.text.len()
    }

    /// What it counts against the queue's byte bound while it waits: the heap a buffer of
    /// its bytes would take. Its record gives the same back ([`Record::heap_bytes`]).
    #[inline]
    pub(crate) fn heap_bytes(&self) -> usize {
        heap_for(self.len())
    }
}

/// The heap a packed buffer of `len` bytes takes: none while it fits inline.
#[inline]
pub(super) fn heap_for(len: usize) -> usize {
    if len <= INLINE_BYTES { 0 } else { len }
}

/// An `Option<Text>` of a [`PackedFields`] in 8 bytes rather than 24 (which keeps a
/// [`Record`] within two cache lines): a range of its text, the callsite's name, or nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Slot(pub(super) u32, pub(super) u32);

impl Slot {
    pub(super) const NONE: Slot = Slot(u32::MAX, 0);
    pub(super) const CALLSITE_NAME: Slot = Slot(u32::MAX, 1);

    /// The slot for `text`, whose only static text can be the callsite's name.
    #[inline]
    fn new(text: Option<Text>, meta: &'static tracing::Metadata<'static>) -> Self {
        match text {
            None => Slot::NONE,
            Some(Text::Range(a, b)) => Slot(a, b),
            Some(Text::Static(s)) => {
                debug_assert_eq!(s, meta.name(), "an event's only static text is its name");
                Slot::CALLSITE_NAME
            }
        }
    }

    pub(super) fn get(self, meta: &'static tracing::Metadata<'static>) -> Option<Text> {
        match self {
            Slot::NONE => None,
            Slot::CALLSITE_NAME => Some(Text::Static(meta.name())),
            Slot(a, b) => Some(Text::Range(a, b)),
        }
    }
}

/// One field of a [`PackedFields`]: its index in the callsite's field set, its kind, and
/// 8 bytes of payload (the value, or the text range of a string).
pub(crate) type Entry = [u8; ENTRY];

/// The entry for the field at `index` in its callsite's field set, holding `val`.
#[inline(always)]
pub(crate) fn encode_entry(index: u8, val: Val) -> Entry {
    let (kind, payload) = match val {
        Val::I64(v) => (0, v.to_le_bytes()),
        Val::U64(v) => (1, v.to_le_bytes()),
        Val::F64(v) => (2, v.to_bits().to_le_bytes()),
        Val::Bool(v) => (3, u64::from(v).to_le_bytes()),
        Val::Str(range) => (4, range_payload(range)),
        Val::BigInt(range) => (5, range_payload(range)),
    };
    let mut entry = [index, kind, 0, 0, 0, 0, 0, 0, 0, 0];
    entry[2..].copy_from_slice(&payload);
    entry
}

/// A text range as an entry's payload: a little-endian `u64` whose high half is its start
/// and whose low half is its end, its halves written as the two `u32`s they are.
#[inline(always)]
fn range_payload(TextRange(a, b): TextRange) -> [u8; 8] {
    let mut payload = [0; 8];
    payload[..4].copy_from_slice(&b.to_le_bytes());
    payload[4..].copy_from_slice(&a.to_le_bytes());
    payload
}

/// The field index and value an entry holds.
pub(super) fn decode_entry(e: &[u8]) -> (u8, Val) {
    let mut payload = [0u8; 8];
    payload.copy_from_slice(&e[2..ENTRY]);
    let p = u64::from_le_bytes(payload);
    let range = TextRange((p >> 32) as u32, p as u32);
    let val = match e[1] {
        0 => Val::I64(p as i64),
        1 => Val::U64(p),
        2 => Val::F64(f64::from_bits(p)),
        3 => Val::Bool(p != 0),
        4 => Val::Str(range),
        _ => Val::BigInt(range),
    };
    (e[0], val)
}

/// The text `t` stands for, ranges resolved in `text`.
pub(super) fn text_in(text: &[u8], t: Text) -> &str {
    match t {
        Text::Static(s) => s,
        // The ranges were cut on character boundaries of valid UTF-8.
        Text::Range(a, b) => {
            text.get(a as usize..b as usize).and_then(|bytes| std::str::from_utf8(bytes).ok()).unwrap_or("")
        }
    }
}

impl PackedFields {
    /// Where its text starts in `buf`.
    fn text_start(&self) -> usize {
        usize::from(self.count) * ENTRY
    }
}

impl FieldSource for PackedFields {
    fn name(&self) -> Option<Text> {
        self.name.get(self.meta)
    }

    fn message(&self) -> Option<Text> {
        self.message.get(self.meta)
    }

    fn fields_dropped(&self) -> u32 {
        u32::from(self.dropped)
    }

    fn text(&self, t: impl Into<Text>) -> &str {
        text_in(self.buf.get(self.text_start()..).unwrap_or_default(), t.into())
    }

    fn pairs(&self) -> impl Iterator<Item = (&'static str, Val)> + '_ {
        pairs(self.meta, &self.buf[..self.text_start()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record is moved several times between capture and its lane; up to 128 bytes each
    /// move compiles to a few vector copies rather than a call to `memcpy`.
    #[test]
    fn records_stay_compact() {
        assert!(std::mem::size_of::<Record>() <= 128, "{}", std::mem::size_of::<Record>());
        assert!(std::mem::size_of::<PackedFields>() <= 104, "{}", std::mem::size_of::<PackedFields>());
    }

    #[test]
    fn an_entry_keeps_its_field_index_and_value_of_every_kind() {
        let range = TextRange(7, u32::MAX);
        let vals = [
            Val::I64(i64::MIN),
            Val::U64(u64::MAX),
            Val::F64(-0.5),
            Val::Bool(true),
            Val::Str(range),
            Val::BigInt(range),
        ];
        for index in [0, 1, 17, 31, 32, 100, u8::MAX] {
            for val in vals {
                let entry = encode_entry(index, val);
                assert_eq!(decode_entry(&entry), (index, val), "field {index}");
            }
        }
    }
}
