//! What an HTTP status means to the crate: the one reading of a status code, which the
//! retry policy, the client-wide rate limit, the retry causes, failures in words and the
//! user-error classification all ask.

/// A status code's class, as the crate acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusClass {
    /// 2xx.
    Success,
    /// 408: the server timed out reading the request; the moment's fault.
    RequestTimeout,
    /// 413: the request was too large.
    TooLarge,
    /// 429: too many requests; pauses every request for its `Retry-After`.
    RateLimited,
    /// 503: the server is unavailable; pauses every request for its `Retry-After`.
    Unavailable,
    /// Any other 5xx.
    ServerError,
    /// Any other 4xx: the caller's mistake.
    ClientError,
    /// 3xx: a redirect, never followed.
    Redirect,
    /// 1xx, or no valid status at all.
    Unexpected,
}

impl StatusClass {
    /// The class of `status`.
    pub(crate) fn of(status: u16) -> Self {
        match status {
            200..=299 => StatusClass::Success,
            408 => StatusClass::RequestTimeout,
            413 => StatusClass::TooLarge,
            429 => StatusClass::RateLimited,
            503 => StatusClass::Unavailable,
            500..=599 => StatusClass::ServerError,
            400..=499 => StatusClass::ClientError,
            300..=399 => StatusClass::Redirect,
            _ => StatusClass::Unexpected,
        }
    }

    /// Whether sending the same request again can succeed: the moment's or the server's
    /// fault (408, 429, 5xx).
    pub(crate) fn is_transient(self) -> bool {
        matches!(
            self,
            StatusClass::RequestTimeout
                | StatusClass::RateLimited
                | StatusClass::Unavailable
                | StatusClass::ServerError
        )
    }

    /// Whether the server asks every request of the client to wait (its `Retry-After`).
    pub(crate) fn pauses_the_client(self) -> bool {
        matches!(self, StatusClass::RateLimited | StatusClass::Unavailable)
    }

    /// Whether the status marks the caller's mistake: a 4xx that is not transient.
    pub(crate) fn is_callers_mistake(self) -> bool {
        matches!(self, StatusClass::ClientError | StatusClass::TooLarge)
    }
}

#[cfg(test)]
mod tests {
    use super::StatusClass::{self, *};

    #[test]
    fn every_status_has_one_class() {
        let table: [(&[u16], StatusClass); 9] = [
            (&[200, 201, 204, 299], Success),
            (&[408], RequestTimeout),
            (&[413], TooLarge),
            (&[429], RateLimited),
            (&[503], Unavailable),
            (&[500, 502, 504, 599], ServerError),
            (&[400, 401, 403, 404, 409, 422, 499], ClientError),
            (&[300, 301, 308, 399], Redirect),
            (&[0, 100, 199, 600, 999], Unexpected),
        ];
        for (codes, class) in table {
            for &code in codes {
                assert_eq!(StatusClass::of(code), class, "{code}");
            }
        }
    }

    #[test]
    fn transient_pausing_and_callers_statuses() {
        let transient: Vec<u16> = (100..=600).filter(|&s| StatusClass::of(s).is_transient()).collect();
        let want: Vec<u16> = [408, 429].into_iter().chain(500..=599).collect();
        assert_eq!(transient, want);
        let pausing: Vec<u16> = (100..=600).filter(|&s| StatusClass::of(s).pauses_the_client()).collect();
        assert_eq!(pausing, [429, 503]);
        let callers: Vec<u16> = (100..=600).filter(|&s| StatusClass::of(s).is_callers_mistake()).collect();
        let want: Vec<u16> = (400..=499).filter(|&s| s != 408 && s != 429).collect();
        assert_eq!(callers, want);
    }
}
