//! Size limits that keep one bad value from making a batch unsendable, the redaction marker
//! and the list of secret-looking field names, and the text helpers that enforce them.

/// Longest string value, in bytes, kept in a field; longer ones are cut at a character
/// boundary and end with [`TRUNCATION_MARKER`].
pub const MAX_VALUE_BYTES: usize = 4 * 1024;

/// Most text, in bytes, one event keeps across all its fields; values past it are cut to
/// [`TRUNCATION_MARKER`] alone.
pub const MAX_EVENT_TEXT_BYTES: usize = 16 * 1024;

/// Most fields one event keeps; further fields are counted in `event_data._fields_dropped`.
pub const MAX_FIELDS: usize = 64;

/// Largest serialized event, in bytes. An event that would be larger (after JSON escaping)
/// is sent with its payload replaced by an `_elided` marker, so a request body never exceeds
/// `max_batch_size × MAX_EVENT_BYTES` plus a few hundred bytes of envelope.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// What a truncated string ends with.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// What the value of a secret-looking field is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Field names redacted by default. A field is redacted when the words of its name contain
/// the words of one of these, in order, ignoring case: names split into words at `_`, `-`,
/// `.`, spaces and lower-to-upper case changes, so `api_key`, `X-Api-Key`, `apiKey`,
/// `access_token`, `db_password` and `Set-Cookie` are redacted while `max_tokens` and
/// `num_tokens` are not.
pub const DEFAULT_REDACTED_FIELDS: &[&str] =
    &["api_key", "apikey", "token", "password", "passwd", "secret", "authorization", "cookie"];

/// The longest prefix of `s` that is at most `max` bytes and ends on a character boundary.
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to [`MAX_VALUE_BYTES`] with the marker appended, or unchanged when short enough.
pub(crate) fn truncate_owned(mut s: String, max: usize) -> String {
    if s.len() > max {
        let keep = floor_char_boundary(&s, max).len();
        s.truncate(keep);
        s.push_str(TRUNCATION_MARKER);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(10); // 20 bytes
        let t = truncate_owned(s, 5);
        assert_eq!(t, format!("éé{TRUNCATION_MARKER}"));
        assert_eq!(truncate_owned("short".into(), 5), "short");
        assert_eq!(floor_char_boundary("aé", 2), "a");
    }
}
