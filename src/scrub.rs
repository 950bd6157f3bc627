//! Removing credentials and query strings from URLs before they are shown or sent.

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

#[cfg(test)]
mod tests {
    use super::scrub_url;

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
}
