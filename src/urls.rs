//! URL helpers: removing credentials and query strings before a URL is shown or sent (on
//! its own, or wherever one appears in a text), and telling loopback endpoints apart.

use std::borrow::Cow;
use std::net::IpAddr;

/// `url` without user name, password, query or fragment. Text that does not parse as a URL
/// keeps only what comes before the first `?` or `#`, with any `user:pass@` removed.
pub(crate) fn scrub_url(url: &str) -> String {
    if let Some(mut parsed) = url::Url::parse(url).ok().filter(url::Url::has_host) {
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_query(None);
        parsed.set_fragment(None);
        return parsed.into();
    }
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    // A relative or malformed URL: drop anything that looks like `user:pass@` in its authority.
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// `text` with every URL in it (`scheme://…`) stripped of its user name, password, query
/// and fragment: error messages quote request URLs whole (reqwest's do), tokens included.
/// Borrows when there is nothing to remove.
pub(crate) fn scrub_urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        out.push_str(&rest[..at + 3]);
        let after = &rest[at + 3..];
        let end = after.find(url_ends).unwrap_or(after.len());
        let url = &after[..end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let host_start = url[..authority_end].rfind('@').map_or(0, |i| i + 1);
        let path_end = url.find(['?', '#']).unwrap_or(url.len());
        changed |= host_start > 0 || path_end < url.len();
        out.push_str(&url[host_start..path_end]);
        rest = &after[end..];
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

/// Where a URL quoted in text ends: white space, quotes and brackets.
fn url_ends(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | '\\')
}

/// How `Debug` shows a base URL: without credentials or query, and not at all when it is
/// not a URL (it might be a key pasted into the wrong option).
pub(crate) fn shown_base_url(base: &str) -> String {
    match reqwest::Url::parse(base.trim()) {
        Ok(url) if url.has_host() => scrub_url(url.as_str()),
        _ => "<not a URL>".to_owned(),
    }
}

/// Whether `url` points at this machine: `localhost` (and `*.localhost`), 127.0.0.0/8 or
/// `::1`. Plain `http://` is allowed only there, and no proxy is ever used to reach it.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{is_loopback, scrub_url, scrub_urls_in};

    #[test]
    fn credentials_query_and_fragment_are_removed() {
        assert_eq!(
            scrub_url("https://user:pw@api.example.com/v1/x?token=abc#frag"),
            "https://api.example.com/v1/x"
        );
        assert_eq!(scrub_url("/v1/models?key=1"), "/v1/models");
        assert_eq!(scrub_url("u:p@host/path?q"), "host/path");
        assert_eq!(scrub_url("http://[::1]:80/a"), "http://[::1]/a");
    }

    #[test]
    fn urls_inside_text_lose_credentials_query_and_fragment() {
        let cases = [
            (
                "error sending request for url (http://127.0.0.1:9/v1/x?token=SECRET&a=b)",
                "error sending request for url (http://127.0.0.1:9/v1/x)",
            ),
            ("see https://u:SECRET@host.example/p#frag, then retry", "see https://host.example/p then retry"),
            ("\"postgres://admin:SECRET@db:5432/app?sslmode=require\"", "\"postgres://db:5432/app\""),
            ("two: a://x?k=SECRET b://y/?k=SECRET", "two: a://x b://y/"),
            ("query with a comma http://h/p?t=SE,CRET end", "query with a comma http://h/p end"),
        ];
        for (text, want) in cases {
            assert_eq!(scrub_urls_in(text), want, "{text}");
        }
        assert!(matches!(scrub_urls_in("no url here"), Cow::Borrowed(_)));
        assert!(matches!(scrub_urls_in("https://clean.example/a/b"), Cow::Borrowed(_)));
    }

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:1",
            "http://127.9.9.9",
            "http://localhost:8080/x/",
            "http://[::1]:9",
            "http://api.localhost",
        ] {
            assert!(is_loopback(&url::Url::parse(url).unwrap()), "{url}");
        }
        for url in ["http://example.com", "https://10.0.0.1", "http://localhost.example.com", "http://[::2]"]
        {
            assert!(!is_loopback(&url::Url::parse(url).unwrap()), "{url}");
        }
    }
}
