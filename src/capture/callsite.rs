//! What an event's callsite says of its fields, read once per thread and callsite: which
//! field is the `session_id` (compared, never sent), and which could name the event, be its
//! message or its severity. An event then tells a field by its index, not by its name.

use std::cell::Cell;

use tracing::Metadata;

use crate::capture::roles::{Role, role};

/// Callsites each thread remembers: most programs emit from a few callsites at a time, and a
/// slot that two share only costs a look at the names again.
const REMEMBERED: usize = 64;

/// A callsite's fields, by their index in its field set (a callsite has at most 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// The index of the `session_id` field, or [`Fields::NO_SESSION`].
    session: u8,
    /// Bit `i`: field `i` is called `event_name`, `message` or `severity`.
    special: u32,
    /// Bit `i`: field `i` is called `message`.
    message: u32,
    /// Bit `i`: field `i` is called `severity`.
    severity: u32,
}

impl Fields {
    const NO_SESSION: u8 = u8::MAX;
    const UNKNOWN: Fields = Fields { session: Fields::NO_SESSION, special: 0, message: 0, severity: 0 };

    /// The callsite's fields, from their names.
    #[cold]
    fn read(meta: &Metadata<'_>) -> Fields {
        let mut fields = Fields::UNKNOWN;
        for (i, field) in meta.fields().iter().enumerate().take(32) {
            let bit = 1u32 << i;
            match role(field.name()) {
                Role::Session if fields.session == Fields::NO_SESSION => fields.session = i as u8,
                Role::Session | Role::Value => {}
                Role::Name => fields.special |= bit,
                Role::Message => {
                    fields.special |= bit;
                    fields.message |= bit;
                }
                Role::Severity => {
                    fields.special |= bit;
                    fields.severity |= bit;
                }
            }
        }
        fields
    }

    /// The index of the `session_id` field, if the callsite declares one.
    #[inline(always)]
    pub(crate) fn session(self) -> Option<usize> {
        (self.session != Fields::NO_SESSION).then_some(usize::from(self.session))
    }

    /// Whether field `i` is called `event_name`, `message` or `severity`.
    #[inline(always)]
    pub(crate) fn is_special(self, i: usize) -> bool {
        i < 32 && self.special >> i & 1 != 0
    }

    /// Whether field `i` is called `message`.
    #[inline(always)]
    pub(crate) fn is_message(self, i: usize) -> bool {
        i < 32 && self.message >> i & 1 != 0
    }

    /// Whether field `i` is called `severity`.
    #[inline(always)]
    pub(crate) fn is_severity(self, i: usize) -> bool {
        i < 32 && self.severity >> i & 1 != 0
    }
}

thread_local! {
    /// By the address of a callsite's metadata: that address, and its fields.
    static REMEMBERED_FIELDS: [Cell<(usize, Fields)>; REMEMBERED] =
        const { [const { Cell::new((0, Fields::UNKNOWN)) }; REMEMBERED] };
}

/// The fields of `meta`'s callsite: remembered per thread, so that an event looks at one
/// slot, not at every field name.
#[inline(always)]
pub(crate) fn fields(meta: &'static Metadata<'static>) -> Fields {
    let key = std::ptr::from_ref(meta) as usize;
    // Metadata are statics of some hundred bytes: the bits above the lowest few tell them apart.
    let slot = (key >> 6 ^ key >> 12) % REMEMBERED;
    REMEMBERED_FIELDS
        .try_with(|remembered| {
            let (at, fields) = remembered[slot].get();
            if at == key {
                return fields;
            }
            let fields = Fields::read(meta);
            remembered[slot].set((key, fields));
            fields
        })
        .unwrap_or_else(|_| Fields::read(meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callsites_fields_are_told_by_index_and_remembered() {
        use std::sync::OnceLock;
        use tracing_subscriber::layer::{Context, SubscriberExt};
        static META: OnceLock<&'static Metadata<'static>> = OnceLock::new();
        struct Keep;
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Keep {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                let _ = META.set(event.metadata());
            }
        }
        let subscriber = tracing_subscriber::registry().with(Keep);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(a = 1, session_id = "s", event_name = "e", severity = "warn", b = 2, "m")
        });
        let meta = META.get().copied().unwrap();
        let f = fields(meta);
        assert_eq!(f, fields(meta));
        let names: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
        let at = |name| names.iter().position(|n| *n == name).unwrap();
        assert_eq!(f.session(), Some(at("session_id")));
        for (name, special, message, severity) in [
            ("a", false, false, false),
            ("event_name", true, false, false),
            ("severity", true, false, true),
            ("message", true, true, false),
            ("b", false, false, false),
        ] {
            let i = at(name);
            assert_eq!(
                (f.is_special(i), f.is_message(i), f.is_severity(i)),
                (special, message, severity),
                "{name}"
            );
        }
        assert!(!f.is_special(40));
    }
}
