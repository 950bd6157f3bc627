//! The retry policy as pure functions: what a response means, and how long to wait.

use std::time::{Duration, SystemTime};

use crate::handoff::stats::{DeliveryErrorKind, RetryCause};
use crate::status_class::StatusClass;

/// Longest wait a `Retry-After` header can ask for; longer values are capped to it.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// Most jitter added to a backoff delay, as a fraction of it.
pub(crate) const JITTER: f64 = 0.10;

/// What to do with a batch after the server answered with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx, whatever the body says.
    Delivered,
    /// 408, 429, 5xx.
    Retry,
    /// 413: the batch is too large; send it in halves.
    Split,
    /// Other 4xx, 3xx, 1xx: retrying cannot help.
    Reject,
}

pub(crate) fn classify(status: u16) -> Verdict {
    match StatusClass::of(status) {
        StatusClass::Success => Verdict::Delivered,
        StatusClass::TooLarge => Verdict::Split,
        class if class.is_transient() => Verdict::Retry,
        _ => Verdict::Reject,
    }
}

/// The cause a retry after a failure of `kind` is counted under.
pub(crate) fn retry_cause(kind: DeliveryErrorKind) -> RetryCause {
    match kind {
        DeliveryErrorKind::Status(status) => match StatusClass::of(status) {
            StatusClass::RateLimited => RetryCause::RateLimited,
            StatusClass::RequestTimeout => RetryCause::RequestTimeout,
            _ => RetryCause::ServerError,
        },
        DeliveryErrorKind::Timeout => RetryCause::Timeout,
        DeliveryErrorKind::Connect => RetryCause::Connect,
        DeliveryErrorKind::Tls => RetryCause::Tls,
        DeliveryErrorKind::Dns => RetryCause::Dns,
        DeliveryErrorKind::Other | DeliveryErrorKind::Spool => RetryCause::Other,
    }
}

/// The delay before retry number `retry` (1 for the first retry): `base × 2^(retry-1)`, plus
/// `jitter × 10 %` of that, with `jitter` in `[0, 1)`. Saturates instead of overflowing.
pub(crate) fn backoff(base: Duration, retry: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let delay = base.saturating_mul(factor);
    delay.saturating_add(delay.mul_f64(JITTER * jitter.clamp(0.0, 1.0)))
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date, relative to `now`. A date in
/// the past means "now". The result is capped at [`RETRY_AFTER_CAP`].
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(secs).unwrap_or(RETRY_AFTER_CAP)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verdicts() {
        for s in [200, 202, 204, 299] {
            assert_eq!(classify(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify(s), Verdict::Retry, "{s}");
        }
        assert_eq!(classify(413), Verdict::Split);
        for s in [100, 301, 400, 401, 403, 404, 409, 422, 499] {
            assert_eq!(classify(s), Verdict::Reject, "{s}");
        }
    }

    #[test]
    fn each_failure_is_counted_under_its_cause() {
        use DeliveryErrorKind as K;
        let table = [
            (K::Status(500), RetryCause::ServerError),
            (K::Status(503), RetryCause::ServerError),
            (K::Status(599), RetryCause::ServerError),
            (K::Status(429), RetryCause::RateLimited),
            (K::Status(408), RetryCause::RequestTimeout),
            (K::Timeout, RetryCause::Timeout),
            (K::Connect, RetryCause::Connect),
            (K::Tls, RetryCause::Tls),
            (K::Dns, RetryCause::Dns),
            (K::Other, RetryCause::Other),
        ];
        for (kind, cause) in table {
            assert_eq!(retry_cause(kind), cause, "{kind:?}");
        }
    }

    #[test]
    fn backoff_doubles_from_base_with_bounded_jitter() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(base, 2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(base, 3, 0.0), Duration::from_secs(4));
        let jittered = backoff(base, 3, 0.999_999);
        assert!(jittered > Duration::from_secs(4) && jittered < Duration::from_millis(4_400));
        // Absurd retry counts saturate instead of panicking.
        assert!(backoff(base, u32::MAX, 0.5) >= Duration::from_secs(1 << 31));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 ", now), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("0.0", now), Some(Duration::ZERO), "zero is a valid delay");
        assert_eq!(parse_retry_after("inf", now), None);
        assert_eq!(parse_retry_after("3600", now), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:03 GMT", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
