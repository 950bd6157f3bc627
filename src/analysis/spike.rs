//! Error spikes: an operation that fails `threshold` times within a sliding `window` raises
//! one alert, and no other for that operation until a window has passed since it.
//!
//! Times are the events' own (when each span closed on its thread), passed in by the caller,
//! so the detector is a pure function of what it is shown and tests drive it with any clock.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// The errors of one operation within the window, and its last alert.
#[derive(Debug, Default)]
pub(crate) struct SpikeState {
    /// When each error in the window happened, and its type, oldest first.
    errors: VecDeque<(SystemTime, Box<str>)>,
    last_alert: Option<SystemTime>,
}

/// What an alert says: the errors in the window when it fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spike {
    pub(crate) errors: usize,
    pub(crate) first_error_at: SystemTime,
    /// Each error type with its count in the window, in order of first appearance.
    pub(crate) error_types: Vec<(Box<str>, usize)>,
}

/// The alert rule: `threshold` errors within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpikeRule {
    pub(crate) threshold: usize,
    pub(crate) window: Duration,
}

impl SpikeState {
    /// Counts an error of `error_type` at `at`; returns the alert if this error makes a
    /// spike and the operation has not alerted within the last window.
    pub(crate) fn error(&mut self, rule: SpikeRule, at: SystemTime, error_type: &str) -> Option<Spike> {
        // Out-of-order times (threads close spans concurrently) are kept in order.
        let pos = self.errors.iter().rposition(|(t, _)| *t <= at).map_or(0, |p| p + 1);
        self.errors.insert(pos, (at, error_type.into()));
        let newest = self.errors.back().map_or(at, |(t, _)| *t);
        while let Some((t, _)) = self.errors.front() {
            if newest.duration_since(*t).unwrap_or_default() >= rule.window {
                self.errors.pop_front();
            } else {
                break;
            }
        }
        // Never more than a threshold's worth is needed to decide.
        while self.errors.len() > rule.threshold {
            self.errors.pop_front();
        }
        if self.errors.len() < rule.threshold {
            return None;
        }
        let quiet =
            self.last_alert.is_none_or(|last| newest.duration_since(last).unwrap_or_default() >= rule.window);
        if !quiet {
            return None;
        }
        self.last_alert = Some(newest);
        let mut error_types: Vec<(Box<str>, usize)> = Vec::new();
        for (_, t) in &self.errors {
            match error_types.iter_mut().find(|(name, _)| name == t) {
                Some((_, n)) => *n += 1,
                None => error_types.push((t.clone(), 1)),
            }
        }
        let first_error_at = self.errors.front().map_or(at, |(t, _)| *t);
        Some(Spike { errors: self.errors.len(), first_error_at, error_types })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: SpikeRule = SpikeRule { threshold: 5, window: Duration::from_secs(10) };

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
    }

    #[test]
    fn five_errors_in_ten_seconds_alert_once_per_window() {
        let mut s = SpikeState::default();
        for t in [0, 1000, 2000, 3000] {
            assert_eq!(s.error(RULE, at(t), "500"), None, "four errors: nothing");
        }
        let spike = s.error(RULE, at(4000), "timeout").expect("the fifth raises one alert");
        assert_eq!(spike.errors, 5);
        assert_eq!(spike.first_error_at, at(0));
        assert_eq!(spike.error_types, vec![("500".into(), 4), ("timeout".into(), 1)]);
        for t in [4500, 6000, 9000, 13_999] {
            assert_eq!(s.error(RULE, at(t), "500"), None, "more in the same window: none");
        }
        let again = s.error(RULE, at(14_000), "500").expect("a window after the alert: a new one");
        assert_eq!(again.first_error_at, at(4500), "the last five: 4.5 s to 14.0 s");
    }

    #[test]
    fn errors_spread_wider_than_the_window_never_alert() {
        let mut s = SpikeState::default();
        for i in 0..100 {
            assert_eq!(s.error(RULE, at(i * 2500), "500"), None, "four per window at most");
        }
        assert!(s.errors.len() <= RULE.threshold);
    }

    #[test]
    fn late_arrivals_count_at_their_own_time() {
        let mut s = SpikeState::default();
        for t in [5000, 6000, 7000, 8000] {
            assert_eq!(s.error(RULE, at(t), "500"), None);
        }
        // A span that closed earlier on another thread, taken later.
        let spike = s.error(RULE, at(1000), "503").expect("five within 7 s");
        assert_eq!(spike.first_error_at, at(1000));
        let mut old = SpikeState::default();
        for t in [0, 1000, 2000, 3000] {
            old.error(RULE, at(t), "500");
        }
        assert_eq!(old.error(RULE, at(30_000), "500"), None, "the old ones left the window");
    }
}
