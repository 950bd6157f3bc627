//! Delivery failures in words: what a failed attempt says to the person reading it, naming
//! the cause ("401 from the server: the API key was rejected", "TLS: invalid peer
//! certificate: UnknownIssuer", "connect: connection refused"), never the key, and with URLs
//! stripped of their queries.

use std::error::Error;
use std::io::ErrorKind;

use crate::errors::classify::chain;
use crate::handoff::stats::DeliveryErrorKind;
use crate::status_class::StatusClass;
use crate::urls::scrub_urls_in;

/// A failed attempt that got no status: its kind and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: DeliveryErrorKind,
    pub(crate) words: String,
}

/// Describes a request that got no status, from its error and cause chain.
pub(crate) fn failure(err: &(dyn Error + 'static), timed_out: bool) -> Failure {
    let chain: Vec<&(dyn Error + 'static)> = chain(err).collect();
    let innermost = chain.last().map(|e| e.to_string()).unwrap_or_default();
    let text = |s: &str| scrub_urls_in(s).into_owned();
    if timed_out {
        return Failure {
            kind: DeliveryErrorKind::Timeout,
            words: "timeout: no answer within http_timeout".into(),
        };
    }
    for e in &chain {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let what = match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused",
                ErrorKind::ConnectionReset => "connection reset",
                ErrorKind::ConnectionAborted => "connection aborted",
                ErrorKind::TimedOut => "timed out",
                _ => continue,
            };
            return Failure { kind: DeliveryErrorKind::Connect, words: format!("connect: {what}") };
        }
    }
    let lower = chain.iter().map(|e| e.to_string().to_ascii_lowercase()).collect::<Vec<_>>().join(" | ");
    let (kind, prefix) = if ["certificate", "tls", "handshake", "ssl"].iter().any(|w| lower.contains(w)) {
        (DeliveryErrorKind::Tls, "TLS")
    } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        (DeliveryErrorKind::Dns, "DNS")
    } else if lower.contains("connect") {
        (DeliveryErrorKind::Connect, "connect")
    } else {
        (DeliveryErrorKind::Other, "request")
    };
    Failure { kind, words: format!("{prefix}: {}", text(&innermost)) }
}

/// Describes a status the server answered with, when it is not a success.
pub(crate) fn status_words(status: u16) -> String {
    let why = match (status, StatusClass::of(status)) {
        (401, _) => "the API key was rejected",
        (403, _) => "the API key may not send telemetry",
        (404, _) => "no telemetry endpoint at this base_url",
        (400 | 422, _) => "the server refused the request body",
        (_, StatusClass::RequestTimeout) => "the server timed out reading the request",
        (_, StatusClass::TooLarge) => "the batch was too large; it is split",
        (_, StatusClass::RateLimited) => "rate limited",
        (_, StatusClass::Unavailable | StatusClass::ServerError) => "the server failed",
        (_, StatusClass::Redirect) => "a redirect, which is never followed",
        _ => "refused",
    };
    format!("{status} from the server: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<std::io::Error>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_are_named() {
        let refused =
            Wrapped("error sending request", Some(std::io::Error::from(ErrorKind::ConnectionRefused)));
        assert_eq!(failure(&refused, false).words, "connect: connection refused");
        let tls = Wrapped(
            "error sending request",
            Some(std::io::Error::other("invalid peer certificate: UnknownIssuer")),
        );
        assert_eq!(
            failure(&tls, false),
            Failure {
                kind: DeliveryErrorKind::Tls,
                words: "TLS: invalid peer certificate: UnknownIssuer".into()
            }
        );
        let dns = Wrapped("dns error: failed to lookup address http://h.example/?token=SECRET", None);
        let words = failure(&dns, false).words;
        assert!(words.starts_with("DNS: ") && !words.contains("SECRET"), "{words}");
        assert_eq!(failure(&refused, true).kind, DeliveryErrorKind::Timeout);
        assert_eq!(status_words(401), "401 from the server: the API key was rejected");
        assert!(status_words(503).starts_with("503 from the server"));
    }
}
