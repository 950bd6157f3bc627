//! Redaction of secret-looking field names, on the uploader thread: every event's field
//! names and JSON keys pass through it before they are encoded.

use smallvec::SmallVec;

use crate::limits::DEFAULT_REDACTED_FIELDS;

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
}
