//! What an event's callsite says of it, read once per thread and callsite: which field is
//! the `session_id` (compared, never sent), which could name the event, be its message or
//! its severity, whether its name says nothing and whether it is tower-http's report. An
//! event then tells a field by its index, not by its name; an event of a wide callsite (see
//! [`Fields`]) tells each by its name (`event.rs`, `WideVisitor`).

use std::cell::Cell;

use tracing::Metadata;

use crate::capture::http;
use crate::capture::roles::{Role, role};
use crate::handoff::packed::is_default_event_name;

/// Callsites each thread remembers: most programs emit from a few callsites at a time, and a
/// slot that two share only costs a look at the names again.
const REMEMBERED: usize = 64;

/// A callsite's first 32 fields, by their index in its field set, in two words, so that it is
/// passed in registers. A callsite is wide when that cannot tell every field: a
/// `session_id`, `event_name`, `message` or `severity` past its 32nd field, or more fields
/// than an entry's index byte holds. Its events go apart, their fields told by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// Bit `i`: field `i` is called `event_name` or `message`; bit `32 + i`: it is called
    /// `severity`.
    masks: u64,
    /// The low byte: the index of the `session_id` field, or [`NO_SESSION`] (of a wide
    /// callsite, 0 when it has one); then the [`DEFAULT_NAME`], [`TOWER_HTTP`] and [`WIDE`]
    /// bits; the high 32 bits: bit `32 + i`, field `i` is called `message`.
    info: u64,
}

/// The low byte of [`Fields::info`] when the callsite declares no `session_id`.
const NO_SESSION: u64 = 0xff;
/// The callsite's name says nothing ([`is_default_event_name`]).
const DEFAULT_NAME: u64 = 1 << 8;
/// The callsite is tower-http's report of a response ([`http::is_tower_http_report`]).
const TOWER_HTTP: u64 = 1 << 9;
/// The callsite is wide: its fields are told by name.
const WIDE: u64 = 1 << 10;
/// Fields whose roles are told by index; an entry's index byte holds below [`NO_SESSION`].
const BY_INDEX: usize = 32;

impl Fields {
    const UNKNOWN: Fields = Fields { masks: 0, info: NO_SESSION };

    /// The callsite's fields, from their names.
    #[cold]
    fn read(meta: &Metadata<'_>) -> Fields {
        let mut info = NO_SESSION;
        if is_default_event_name(meta.name()) {
            info |= DEFAULT_NAME;
        }
        if http::is_tower_http_report(meta) {
            info |= TOWER_HTTP;
        }
        let mut masks = 0;
        let mut wide = meta.fields().len() >= NO_SESSION as usize;
        for (i, field) in meta.fields().iter().enumerate() {
            let role = role(field.name());
            if i >= BY_INDEX {
                wide |= role != Role::Value;
                continue;
            }
            let bit = 1u64 << i;
            match role {
                Role::Session if info & NO_SESSION == NO_SESSION => info = info & !NO_SESSION | i as u64,
                Role::Session | Role::Value => {}
                Role::Name => masks |= bit,
                Role::Message => {
                    masks |= bit;
                    info |= bit << 32;
                }
                Role::Severity => masks |= bit << 32,
            }
        }
        if wide {
            let session = meta.fields().iter().any(|f| role(f.name()) == Role::Session);
            info = info & (DEFAULT_NAME | TOWER_HTTP) | WIDE | if session { 0 } else { NO_SESSION };
            masks = 0;
        }
        Fields { masks, info }
    }

    /// The index of the `session_id` field, if the callsite declares one.
    #[inline(always)]
    pub(crate) fn session(self) -> Option<usize> {
        let at = self.info & NO_SESSION;
        (at != NO_SESSION).then_some(at as usize)
    }

    /// Whether field `i` of an event says it is the session's.
    #[inline(always)]
    pub(crate) fn is_session(self, i: usize) -> bool {
        i as u64 == self.info & NO_SESSION
    }

    /// Whether field `i` is called `event_name` or `message`.
    #[inline(always)]
    pub(crate) fn names(self, i: usize) -> bool {
        i < 32 && self.masks >> i & 1 != 0
    }

    /// Whether field `i` is called `message`.
    #[inline(always)]
    pub(crate) fn is_message(self, i: usize) -> bool {
        i < 32 && self.info >> (32 + i) & 1 != 0
    }

    /// Whether field `i` is called `severity`.
    #[inline(always)]
    pub(crate) fn is_severity(self, i: usize) -> bool {
        i < 32 && self.masks >> (32 + i) & 1 != 0
    }

    /// Whether the callsite's name says nothing: `event <file>:<line>`, or tracing-log's.
    #[inline(always)]
    pub(crate) fn default_name(self) -> bool {
        self.info & DEFAULT_NAME != 0
    }

    /// Whether the callsite is tower-http's report of a response.
    #[inline(always)]
    pub(crate) fn tower_http(self) -> bool {
        self.info & TOWER_HTTP != 0
    }

    /// The callsite's fields with no roles told by index, for a wide callsite's event whose
    /// fields are told by name: none is the `session_id`, none names the event.
    pub(crate) fn plain(self) -> Fields {
        Fields { masks: 0, info: self.info & DEFAULT_NAME | NO_SESSION }
    }

    /// Whether the callsite's events go apart: tower-http's reports, and wide callsites'.
    #[inline(always)]
    pub(crate) fn apart(self) -> bool {
        self.info & (TOWER_HTTP | WIDE) != 0
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
        for (name, names, message, severity) in [
            ("a", false, false, false),
            ("event_name", true, false, false),
            ("severity", false, false, true),
            ("message", true, true, false),
            ("b", false, false, false),
        ] {
            let i = at(name);
            assert_eq!((f.names(i), f.is_message(i), f.is_severity(i)), (names, message, severity), "{name}");
        }
        assert!(!f.names(40) && !f.is_session(40) && !f.is_session(usize::from(u8::MAX)));
        assert!(f.default_name() && !f.tower_http() && !f.apart());
    }
}
