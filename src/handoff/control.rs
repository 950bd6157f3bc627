//! Control between the threads, apart from the records: the messages that must not wait
//! behind queued events, the drain watermark the waiting threads watch, and deadlines.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::Handoff;
use super::stats::Stats;

/// A message to the uploader that must not wait behind queued events.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send everything queued now. With a reply: the index the uploader will have reached
    /// once everything queued before this message is delivered or dropped.
    Flush(Option<std::sync::mpsc::SyncSender<u64>>),
    /// Send what is left, stop by `deadline`, answer with the final stats.
    Shutdown { deadline: Instant, reply: std::sync::mpsc::SyncSender<Stats> },
}

impl Handoff {
    pub(crate) fn set_watermark(&self, index: u64) {
        let mut w = self.watermark.lock().unwrap_or_else(PoisonError::into_inner);
        if *w != index {
            *w = index;
            self.watermark_changed.notify_all();
        }
    }

    /// Waits until the watermark reaches `target` or `deadline` passes.
    pub(crate) fn wait_watermark(&self, target: u64, deadline: Instant) -> bool {
        let mut w = self.watermark.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *w >= target {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            w = self
                .watermark_changed
                .wait_timeout(w, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// `timeout` from now, or a far-off instant when that is past what `Instant` can hold (so
/// `Duration::MAX` means "wait as long as it takes" instead of overflowing).
pub(crate) fn deadline_in(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// How long until `deadline`, zero once it has passed.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
