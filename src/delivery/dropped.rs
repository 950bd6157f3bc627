//! `telemetry.dropped` reports: telling the server how many of the session's events were
//! lost, and why. A report goes out when the queue has room again after it overflowed, and
//! once more just before SESSION_END for whatever was lost since the last one, so a session
//! never ends without saying what it lost.

use serde_json::{Map, Value, json};

use crate::handoff::stats::Dropped;

/// The event name of a report.
pub(crate) const DROPPED_EVENT: &str = "telemetry.dropped";

/// The drops already reported to the server.
#[derive(Debug, Default)]
pub(crate) struct DropReports {
    reported: Dropped,
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
    /// The `event_data` of the report due now, given every drop counted so far, if one is:
    /// `{"count": <new drops>, "total": <all drops>, "by_reason": {<reason>: <new drops>}}`.
    /// While the session goes on, a report is due once the queue has overflowed and has room
    /// again; at SESSION_END, whenever anything was lost since the last report.
    pub(crate) fn due(&mut self, now: Dropped, moment: Moment) -> Option<Value> {
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
        let by_reason: Map<String, Value> =
            new.iter().filter(|(_, n)| *n > 0).map(|(r, n)| (r.name().to_owned(), n.into())).collect();
        Some(json!({ "count": count, "total": now.total(), "by_reason": by_reason }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(queue_full: u64, rejected: u64) -> Dropped {
        Dropped { queue_full, rejected, ..Dropped::default() }
    }

    #[test]
    fn an_overflow_is_reported_once_there_is_room_and_the_rest_at_session_end() {
        let mut reports = DropReports::default();
        assert_eq!(reports.due(dropped(0, 0), Moment::Room), None);
        assert_eq!(reports.due(dropped(0, 3), Moment::Room), None, "only an overflow reports early");
        let first = reports.due(dropped(41, 3), Moment::Room).unwrap();
        assert_eq!(first, json!({"count": 44, "total": 44, "by_reason": {"queue_full": 41, "rejected": 3}}));
        assert_eq!(reports.due(dropped(41, 3), Moment::Room), None, "nothing new");
        assert_eq!(reports.due(dropped(41, 3), Moment::SessionEnd), None, "nothing new at the end");
        let last = reports.due(dropped(45, 5), Moment::SessionEnd).unwrap();
        assert_eq!(last, json!({"count": 6, "total": 50, "by_reason": {"queue_full": 4, "rejected": 2}}));
    }
}
