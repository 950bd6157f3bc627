//! Size limits that keep one bad value from making a batch unsendable, and the redaction of
//! secret-looking field names.

use smallvec::SmallVec;

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

/// Decides which field names are secret.
#[derive(Debug, Clone)]
pub(crate) struct Redactor {
    patterns: Vec<Vec<String>>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_REDACTED_FIELDS.iter().map(|s| (*s).to_owned()))
    }
}

impl Redactor {
    pub(crate) fn new(patterns: impl IntoIterator<Item = String>) -> Self {
        let patterns = patterns
            .into_iter()
            .map(|p| words(&p).iter().map(|w| w.to_lowercase()).collect::<Vec<_>>())
            .filter(|p| !p.is_empty())
            .collect();
        Redactor { patterns }
    }

    /// Whether a field called `name` holds a secret. Allocates nothing for names of up to
    /// eight words: it runs for every field of every event on the uploader thread.
    pub(crate) fn is_secret(&self, name: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let words = words(name);
        self.patterns.iter().any(|p| {
            words
                .windows(p.len())
                .any(|w| w.iter().zip(p).all(|(w, p)| w.chars().flat_map(char::to_lowercase).eq(p.chars())))
        })
    }
}

/// The words of a field name, as slices of it: split at characters that are not
/// alphanumeric and where a lower-case letter or digit is followed by an upper-case one.
fn words(name: &str) -> SmallVec<[&str; 8]> {
    let mut out = SmallVec::new();
    let mut start = None;
    let mut prev_lower = false;
    for (i, c) in name.char_indices() {
        let boundary = !c.is_alphanumeric() || (c.is_uppercase() && prev_lower);
        if boundary {
            if let Some(s) = start.take() {
                out.push(&name[s..i]);
            }
        }
        if c.is_alphanumeric() && start.is_none() {
            start = Some(i);
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    if let Some(s) = start {
        out.push(&name[s..]);
    }
    out
}

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
    fn secret_names_match_by_words_in_any_case() {
        let r = Redactor::default();
        for name in [
            "api_key",
            "X-Api-Key",
            "apiKey",
            "APIKEY",
            "access_token",
            "ACCESS_TOKEN",
            "db_password",
            "Set-Cookie",
            "authorization",
            "client.secret",
            "token",
        ] {
            assert!(r.is_secret(name), "{name}");
        }
        for name in
            ["key", "user", "status", "path", "max_tokens", "num_tokens", "prompt_tokens", "tokenizer"]
        {
            assert!(!r.is_secret(name), "{name}");
        }
        let custom = Redactor::new(["Session-Cookie".to_owned()]);
        assert!(custom.is_secret("my_session_cookie"));
        assert!(!custom.is_secret("password"));
        assert!(!Redactor::new(Vec::new()).is_secret("password"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(10); // 20 bytes
        let t = truncate_owned(s, 5);
        assert_eq!(t, format!("éé{TRUNCATION_MARKER}"));
        assert_eq!(truncate_owned("short".into(), 5), "short");
        assert_eq!(floor_char_boundary("aé", 2), "a");
    }
}
