//! The client's rate limit: a `Retry-After` on a 429 or 503 pauses every request to the
//! endpoint until it passes, not only the batch that received it (as sentry's transport keeps
//! its rate limits). Shared by the send tasks on the uploader thread.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

/// Until when the server asked the client to send nothing.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    until: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// Pauses every request until `delay` from `now`; an earlier pause that ends later stays.
    pub(crate) fn pause(&self, now: Instant, delay: Duration) {
        let mut until = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        let end = now + delay;
        if until.is_none_or(|u| u < end) {
            *until = Some(end);
        }
    }

    /// When the pause in force ends, if one is in force at `now`.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        let until = *self.until.lock().unwrap_or_else(PoisonError::into_inner);
        until.filter(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_pause_wins_and_ends() {
        let limit = RateLimit::default();
        let now = Instant::now();
        assert_eq!(limit.paused_until(now), None);
        limit.pause(now, Duration::from_secs(5));
        limit.pause(now, Duration::from_secs(2));
        assert_eq!(limit.paused_until(now), Some(now + Duration::from_secs(5)));
        assert_eq!(limit.paused_until(now + Duration::from_secs(5)), None, "over once it ends");
        // A later pause that ends later extends the one in force.
        limit.pause(now, Duration::from_secs(7));
        assert_eq!(limit.paused_until(now), Some(now + Duration::from_secs(7)));
        limit.pause(now + Duration::from_secs(1), Duration::from_secs(6));
        assert_eq!(limit.paused_until(now), Some(now + Duration::from_secs(7)), "ends at the same time");
    }
}
