//! Telling a span's session: a visitor that finds a `session_id` field, and the comparison of
//! a `Debug` value with the reporter's session id as it is formatted, without allocating
//! (events use it too). What a field is, told by its name, is [`role`] (`handoff/packed.rs`,
//! where the uploader reads events by it); an event's callsite is read once per thread
//! (`callsite.rs`).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

pub(crate) use crate::handoff::packed::{Role, SESSION_ID, role};

/// Whether `field` is the `session_id` field.
#[inline(always)]
pub(crate) fn is_session(field: &Field) -> bool {
    role(field.name()) == Role::Session
}

/// Looks for a `session_id` field and compares it with the reporter's.
#[derive(Debug)]
pub(crate) struct SessionProbe<'a> {
    want: &'a str,
    /// `None`: no `session_id` field; else whether it matched.
    pub(crate) found: Option<bool>,
}

impl<'a> SessionProbe<'a> {
    pub(crate) fn new(want: &'a str) -> Self {
        SessionProbe { want, found: None }
    }
}

impl Visit for SessionProbe<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == SESSION_ID {
            self.found = Some(same_id(value, self.want));
        }
    }

    // Numbers and bools are never the session's id: skip the Debug path for them.
    fn record_i64(&mut self, _: &Field, _: i64) {}

    fn record_u64(&mut self, _: &Field, _: u64) {}

    fn record_f64(&mut self, _: &Field, _: f64) {}

    fn record_bool(&mut self, _: &Field, _: bool) {}

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == SESSION_ID {
            self.found = Some(debug_matches(self.want, value));
        }
    }
}

/// Whether `value` is the session id `want`. Ids of different sessions (random UUIDs,
/// mostly) differ in their first eight bytes, which one comparison of two words tells,
/// without a call to `memcmp`; ids of one session are compared whole.
#[inline(always)]
pub(crate) fn same_id(value: &str, want: &str) -> bool {
    let (a, b) = (value.as_bytes(), want.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    match (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        (Some(x), Some(y)) if u64::from_ne_bytes(*x) != u64::from_ne_bytes(*y) => false,
        _ => a == b,
    }
}

/// Whether `value` formats as `want`: `%id` formats as the id, `?id` of a string as the id
/// in quotes; both are accepted. Allocates nothing.
pub(crate) fn debug_matches(want: &str, value: &dyn fmt::Debug) -> bool {
    let mut plain = Matcher::new(want, false);
    let mut quoted = Matcher::new(want, true);
    let _ = write!(Tee(&mut plain, &mut quoted), "{value:?}");
    plain.matched() || quoted.matched()
}

/// Checks, as text streams in, whether it equals `want` (or `"want"`).
struct Matcher<'a> {
    want: &'a [u8],
    quoted: bool,
    pos: usize,
    ok: bool,
}

impl<'a> Matcher<'a> {
    fn new(want: &'a str, quoted: bool) -> Self {
        Matcher { want: want.as_bytes(), quoted, pos: 0, ok: true }
    }

    fn expected(&self, i: usize) -> Option<u8> {
        if !self.quoted {
            return self.want.get(i).copied();
        }
        let n = self.want.len();
        match i {
            0 => Some(b'"'),
            i if i <= n => Some(self.want[i - 1]),
            i if i == n + 1 => Some(b'"'),
            _ => None,
        }
    }

    fn matched(&self) -> bool {
        self.ok && self.pos == self.want.len() + if self.quoted { 2 } else { 0 }
    }
}

impl fmt::Write for Matcher<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if !self.ok {
                break;
            }
            self.ok = self.expected(self.pos) == Some(b);
            self.pos += 1;
        }
        Ok(())
    }
}

struct Tee<'a, 'b>(&'a mut Matcher<'b>, &'a mut Matcher<'b>);

impl fmt::Write for Tee<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)?;
        self.1.write_str(s)?;
        if self.0.ok || self.1.ok { Ok(()) } else { Err(fmt::Error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_is_the_same_only_when_every_byte_is() {
        let id = "5f0c1e7a-9b2d-4c3e-8f10-2a3b4c5d6e7f";
        assert!(same_id(id, String::from(id).as_str()));
        // Differs in the first word, after it, in the last byte, in length.
        assert!(!same_id("6f0c1e7a-9b2d-4c3e-8f10-2a3b4c5d6e7f", id));
        assert!(!same_id("5f0c1e7a-9b2d-4c3e-8f10-2a3b4c5d6e70", id));
        assert!(!same_id("5f0c1e7a-9b2d-4c3e-8f10-2a3b4c5d6e7", id));
        // Ids shorter than a word are compared whole.
        for (a, b, same) in [("s", "s", true), ("s", "t", false), ("", "", true), ("abc", "abd", false)] {
            assert_eq!(same_id(a, b), same, "{a} {b}");
        }
    }
}
