//! The counters behind [`Stats`]: what the uploader books as it settles events, written only
//! through methods named for what happened, and the snapshot users read.

use std::sync::atomic::{AtomicU64, Ordering::*};

use super::Handoff;
use super::stats::{
    DropReason, Dropped, Retried, RetryCause, SpoolDropReason, SpoolDropped, SpoolStats, Stats,
};

/// The uploader's counters. The drops the emitting threads count themselves (a full queue, a
/// push after the close) are the hand-off's own, as they are never taken.
#[derive(Debug, Default)]
pub(crate) struct UploadCounters {
    delivered: AtomicU64,
    summarized: AtomicU64,
    batches_sent: AtomicU64,
    /// By [`DropReason`], in [`DropReason::ALL`] order.
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// By [`RetryCause`], in [`RetryCause::ALL`] order; their sum is [`Stats::retries`].
    retried: [AtomicU64; RetryCause::ALL.len()],
    /// The spool's counters: what it kept, replayed and lost.
    spool: SpoolCounters,
}

/// The spool's counters, written by the uploader thread (`spool/`) through methods named
/// for what happened. Its own events' fate (`spooled`) is booked through the hand-off,
/// which settles them; these count events of earlier runs, which this reporter never held.
#[derive(Debug, Default)]
pub(crate) struct SpoolCounters {
    spooled: AtomicU64,
    replayed: AtomicU64,
    /// By [`SpoolDropReason`], in [`SpoolDropReason::ALL`] order.
    dropped: [AtomicU64; SpoolDropReason::ALL.len()],
    bad_files: AtomicU64,
}

impl SpoolCounters {
    /// A snapshot.
    pub(crate) fn stats(&self) -> SpoolStats {
        let n = |c: &AtomicU64| c.load(Relaxed);
        SpoolStats {
            spooled: n(&self.spooled),
            replayed: n(&self.replayed),
            dropped: SpoolDropped::from_fn(|reason| n(&self.dropped[reason as usize])),
            bad_files: n(&self.bad_files),
        }
    }

    /// Counts `n` events of earlier runs as delivered from the spool.
    pub(crate) fn replayed(&self, n: u64) {
        self.replayed.fetch_add(n, Relaxed);
    }

    /// Counts `n` events of earlier runs as removed from the spool unsent, for `reason`.
    pub(crate) fn dropped(&self, reason: SpoolDropReason, n: u64) {
        self.dropped[reason as usize].fetch_add(n, Relaxed);
    }

    /// Counts `n` spool files skipped as unreadable.
    pub(crate) fn bad_files(&self, n: u64) {
        self.bad_files.fetch_add(n, Relaxed);
    }
}

impl AsRef<SpoolCounters> for Handoff {
    fn as_ref(&self) -> &SpoolCounters {
        &self.counters.spool
    }
}

impl Handoff {
    /// Books `n` events as delivered. Like every booking, it settles them; they stay held
    /// until the uploader [`release`](Handoff::release)s them.
    pub(crate) fn delivered(&self, n: u64) {
        self.book(&self.counters.delivered, n);
    }

    /// Books `n` events as given up on for `reason`.
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        self.book(&self.counters.dropped[reason as usize], n);
    }

    /// Books `n` events as left in the spool (for the replay, in this process or the next).
    pub(crate) fn spooled(&self, n: u64) {
        self.book(&self.counters.spool.spooled, n);
    }

    /// Books `n` events of a summary-only span name as counted in the summaries.
    pub(crate) fn summarized(&self, n: u64) {
        self.book(&self.counters.summarized, n);
    }

    /// Counts one request the server answered with a 2xx status.
    pub(crate) fn batch_sent(&self) {
        self.counters.batches_sent.fetch_add(1, Relaxed);
    }

    /// Counts one request sent again after a failure of `cause`.
    pub(crate) fn retried(&self, cause: RetryCause) {
        self.counters.retried[cause as usize].fetch_add(1, Relaxed);
    }

    fn book(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
        self.settled.fetch_add(n, Relaxed);
    }

    /// A consistent-enough snapshot of the counters: exact once the reporter is quiet.
    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let held = self.load.held.load(Acquire) as u64;
        let (full, closed) = (self.dropped_full.load(Relaxed), self.dropped_closed.load(Relaxed));
        let dropped = Dropped::from_fn(|reason| {
            let own = match reason {
                DropReason::QueueFull => full,
                DropReason::AfterShutdown => closed,
                _ => 0,
            };
            own + c.dropped[reason as usize].load(Relaxed)
        });
        let retried = Retried::from_fn(|cause| c.retried[cause as usize].load(Relaxed));
        Stats {
            accepted: self.settled.load(Relaxed) + held + full + closed,
            delivered: c.delivered.load(Relaxed),
            dropped,
            summarized: c.summarized.load(Relaxed),
            retries: retried.total(),
            retried,
            batches_sent: c.batches_sent.load(Relaxed),
            queued: held,
            queued_bytes: self.load.bytes.load(Relaxed) as u64,
            spool: c.spool.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_booking_lands_in_its_own_counter_and_settles_its_events() {
        let (handoff, _control) = Handoff::new(100, usize::MAX, 10, "s".into(), true);
        handoff.delivered(5);
        handoff.batch_sent();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            handoff.dropped(reason, i as u64 + 1);
        }
        handoff.summarized(2);
        handoff.retried(RetryCause::RateLimited);
        handoff.retried(RetryCause::RateLimited);
        handoff.retried(RetryCause::Dns);
        let stats = handoff.stats();
        assert_eq!((stats.delivered, stats.batches_sent, stats.summarized), (5, 1, 2));
        let dropped: Vec<_> = stats.dropped.iter().collect();
        let want: Vec<_> = DropReason::ALL.into_iter().zip(1..).collect();
        assert_eq!(dropped, want);
        assert_eq!((stats.dropped.queue_full, stats.dropped.unsent_at_shutdown), (1, 6));
        assert_eq!((stats.retried.rate_limited, stats.retried.dns, stats.retries), (2, 1, 3));
        assert_eq!(stats.accepted, 5 + 21 + 2, "every booking is settled");
    }
}
