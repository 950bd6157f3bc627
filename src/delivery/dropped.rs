//! `telemetry.dropped` reports: telling the server how many of the session's events were
//! lost, and why. A report goes out when the queue has room again after it overflowed, and
//! once more just before SESSION_END for whatever was lost since the last one, so a session
//! never ends without saying what it lost.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::handoff::stats::Dropped;

/// The event name of a report.
pub(crate) const DROPPED_EVENT: &str = "telemetry.dropped";

/// The drops already reported to the server.
#[derive(Debug, Default)]
pub(crate) struct DropReports {
    reported: Dropped,
}

/// A report's `event_data`: the drops since the last report, every drop so far, and the
/// new drops by [`DropReason::name`](crate::DropReason::name) (reasons with none left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DropReport {
    pub(crate) by_reason: BTreeMap<&'static str, u64>,
    pub(crate) count: u64,
    pub(crate) total: u64,
}

/// When a report is being considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// The uploader takes events and the queue has room.
    Room,
    /// SESSION_END is about to be sent.
    SessionEnd,
}

impl DropReports {
    /// The report due now, given every drop counted so far, if one is. While the session
    /// goes on, a report is due once the queue has overflowed and has room again; at
    /// SESSION_END, whenever anything was lost since the last report.
    pub(crate) fn due(&mut self, now: Dropped, moment: Moment) -> Option<DropReport> {
        let new = now.since(&self.reported);
        let count = new.total();
        let due = match moment {
            Moment::Room => now.queue_full > self.reported.queue_full,
            Moment::SessionEnd => count > 0,
        };
        if !due {
            return None;
        }
        self.reported = now;
        let by_reason = new.iter().filter(|(_, n)| *n > 0).map(|(r, n)| (r.name(), n)).collect();
        Some(DropReport { by_reason, count, total: now.total() })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dropped(queue_full: u64, rejected: u64) -> Dropped {
        Dropped { queue_full, rejected, ..Dropped::default() }
    }

    #[test]
    fn an_overflow_is_reported_once_there_is_room_and_the_rest_at_session_end() {
        let mut reports = DropReports::default();
        assert_eq!(reports.due(dropped(0, 0), Moment::Room), None);
        assert_eq!(reports.due(dropped(0, 3), Moment::Room), None, "only an overflow reports early");
        let first = serde_json::to_value(reports.due(dropped(41, 3), Moment::Room).unwrap()).unwrap();
        assert_eq!(first, json!({"count": 44, "total": 44, "by_reason": {"queue_full": 41, "rejected": 3}}));
        assert_eq!(reports.due(dropped(41, 3), Moment::Room), None, "nothing new");
        assert_eq!(reports.due(dropped(41, 3), Moment::SessionEnd), None, "nothing new at the end");
        let last = serde_json::to_value(reports.due(dropped(45, 5), Moment::SessionEnd).unwrap()).unwrap();
        assert_eq!(last, json!({"count": 6, "total": 50, "by_reason": {"queue_full": 4, "rejected": 2}}));
    }

    /// The shape WIRE.md and the README promise: `count`, `total` and `by_reason`, nothing
    /// else, the reasons by their names, and the same bytes as the object written by hand.
    #[test]
    fn the_report_has_the_documented_shape() {
        let report =
            DropReport { by_reason: [("queue_full", 2), ("too_large", 1)].into(), count: 3, total: 7 };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(text, r#"{"by_reason":{"queue_full":2,"too_large":1},"count":3,"total":7}"#);
        let by_hand = json!({"count": 3, "total": 7, "by_reason": {"queue_full": 2, "too_large": 1}});
        assert_eq!(text, by_hand.to_string(), "the same bytes as before it was typed");
        for reason in crate::DropReason::ALL {
            let mut all = Dropped::default();
            all = Dropped::from_fn(|r| u64::from(r == reason) + all.get(r));
            let report = DropReports::default().due(all, Moment::SessionEnd).unwrap();
            assert_eq!(report.by_reason.keys().copied().collect::<Vec<_>>(), [reason.name()]);
        }
    }
}
