//! Capturing a span's fields into a [`FieldRecord`] with their JSON types, names kept. The
//! text it keeps of a value, within its budget, is `text.rs`'s, as an event's is.

use std::fmt;

use smallvec::SmallVec;
use tracing::field::{Field, Visit};

use crate::capture::roles::{Role, is_session, role};
use crate::capture::text::{budget, push_big, push_debug, push_display, push_str};
use crate::handoff::record::{FieldRecord, INLINE_FIELDS, Text, TextRange, Val};
use crate::limits::MAX_FIELDS;
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

/// A set of captured fields being filled; its text goes to a caller-supplied buffer.
#[derive(Debug, Default)]
pub(crate) struct Draft<S> {
    pub(crate) name: Option<Text>,
    pub(crate) message: Option<Text>,
    pub(crate) severity: Option<Severity>,
    pub(crate) fields: S,
    pub(crate) fields_dropped: u32,
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

/// Visits a span's fields into a [`Draft`].
pub(crate) struct FieldVisitor<'a, S> {
    pub(crate) draft: &'a mut Draft<S>,
    text: &'a mut String,
    /// Replace a field seen before (a span's `record`) instead of adding it again.
    replace: bool,
}

impl<'a, S: FieldStore> FieldVisitor<'a, S> {
    pub(crate) fn new(draft: &'a mut Draft<S>, text: &'a mut String, replace: bool) -> Self {
        FieldVisitor { draft, text, replace }
    }

    fn budget(&self) -> usize {
        budget(self.text.len())
    }

    fn push_str(&mut self, s: &str) -> TextRange {
        let budget = self.budget();
        push_str(self.text, s, budget)
    }

    fn push_debug(&mut self, value: &dyn fmt::Debug) -> TextRange {
        let budget = self.budget();
        push_debug(self.text, value, budget)
    }

    fn add(&mut self, field: &Field, val: Val) {
        if !self.draft.fields.add(field, val, self.replace) {
            self.draft.fields_dropped += 1;
        }
    }
}

impl<S: FieldStore> Visit for FieldVisitor<'_, S> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match role(field.name()) {
            // A span's session is told by `SessionProbe`; it is not a field.
            Role::Session => {}
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
        match role(field.name()) {
            Role::Session => {}
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
        if !is_session(field) {
            self.add(field, Val::I64(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !is_session(field) {
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
        if !is_session(field) {
            self.add(field, Val::F64(value));
        }
    }

    /// On a span an error is its text.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let budget = self.budget();
        let t = push_display(self.text, value, budget);
        self.add(field, Val::Str(t));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !is_session(field) {
            self.add(field, Val::Bool(value));
        }
    }
}

impl<S: FieldStore> FieldVisitor<'_, S> {
    fn record_big(&mut self, field: &Field, value: &dyn fmt::Display) {
        if !is_session(field) {
            let t = push_big(self.text, value);
            self.add(field, Val::BigInt(t));
        }
    }
}
