//! Sending one batch: retries with backoff, `Retry-After`, 413 splitting, and the last
//! attempt when a shutdown cuts a backoff short.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::batch::{Envelope, EventJson, idempotency_key};
use super::retry::{Verdict, backoff, classify};
use super::transport::{Answer, Transport};
use crate::handoff::Handoff;
use crate::handoff::control::remaining;

/// Everything a send task needs; shared by all of them.
#[derive(Debug)]
pub(super) struct Deliverer {
    pub(super) transport: Box<dyn Transport>,
    pub(super) envelope: Envelope,
    pub(super) http_timeout: Duration,
    pub(super) max_retries: u32,
    pub(super) retry_base_delay: Duration,
    /// The drain deadline, once a shutdown began.
    pub(super) shutdown: watch::Receiver<Option<Instant>>,
}

/// Where a send task books the fate of its events.
#[derive(Debug)]
pub(super) struct Settle {
    pub(super) handoff: Arc<Handoff>,
    /// Events of this batch already booked, so an abort books only the rest.
    pub(super) settled: Arc<AtomicU64>,
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Delivered,
    Rejected,
    RetriesExhausted,
    TooLarge,
    UnsentAtShutdown,
}

impl Settle {
    fn book(&self, fate: Fate, n: usize) {
        let c = &self.handoff.counters;
        let counter = match fate {
            Fate::Delivered => {
                c.batches_sent.fetch_add(1, Relaxed);
                &c.delivered
            }
            Fate::Rejected => &c.rejected,
            Fate::RetriesExhausted => &c.retries_exhausted,
            Fate::TooLarge => &c.too_large,
            Fate::UnsentAtShutdown => &c.unsent_at_shutdown,
        };
        self.handoff.count(counter, n as u64);
        self.settled.fetch_add(n as u64, Relaxed);
    }
}

impl Deliverer {
    /// Sends `events`, splitting on 413, until every event is delivered or booked as dropped.
    pub(super) async fn deliver(&self, events: Vec<EventJson>, settle: &Settle) {
        let mut shutdown = self.shutdown.clone();
        // Parts still to send, in order; a 413 replaces a part by its two halves.
        let mut parts: Vec<Range<usize>> = Vec::with_capacity(4);
        parts.push(0..events.len());
        while let Some(part) = parts.pop() {
            let slice = &events[part.clone()];
            match self.send_part(slice, settle, &mut shutdown).await {
                Ok(()) => settle.book(Fate::Delivered, slice.len()),
                Err(Fate::TooLarge) if slice.len() > 1 => {
                    let mid = part.start + slice.len() / 2;
                    parts.push(mid..part.end);
                    parts.push(part.start..mid);
                }
                Err(fate) => settle.book(fate, slice.len()),
            }
        }
    }

    /// One request payload through its retries.
    async fn send_part(
        &self,
        events: &[EventJson],
        settle: &Settle,
        shutdown: &mut watch::Receiver<Option<Instant>>,
    ) -> Result<(), Fate> {
        let body = self.envelope.body(events);
        let key = idempotency_key();
        let mut retries = 0;
        let mut last_chance = false;
        loop {
            let deadline = *shutdown.borrow_and_update();
            let timeout = match deadline {
                Some(d) if remaining(d).is_zero() => return Err(Fate::UnsentAtShutdown),
                Some(d) => self.http_timeout.min(remaining(d)),
                None => self.http_timeout,
            };
            let retry_after = match self.transport.post(body.clone(), &key, timeout).await {
                Answer::Status { status, retry_after } => match classify(status) {
                    Verdict::Delivered => return Ok(()),
                    Verdict::Split => return Err(Fate::TooLarge),
                    Verdict::Reject => return Err(Fate::Rejected),
                    Verdict::Retry => retry_after,
                },
                Answer::Failed => None,
            };
            if last_chance {
                return Err(Fate::UnsentAtShutdown);
            }
            if retries >= self.max_retries {
                return Err(if shutdown.borrow().is_some() {
                    Fate::UnsentAtShutdown
                } else {
                    Fate::RetriesExhausted
                });
            }
            retries += 1;
            settle.handoff.counters.retries.fetch_add(1, Relaxed);
            if shutdown.borrow().is_some() {
                // Shutting down: no more waiting, one last attempt.
                last_chance = true;
                continue;
            }
            let delay =
                retry_after.unwrap_or_else(|| backoff(self.retry_base_delay, retries, fastrand::f64()));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => last_chance = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant as TokioInstant;

    use super::*;
    use crate::delivery::transport::testing::{Call, Scripted, status};

    const BASE: Duration = Duration::from_secs(1);

    struct Rig {
        deliverer: Deliverer,
        settle: Settle,
        calls: Arc<Mutex<Vec<Call>>>,
        shutdown: watch::Sender<Option<Instant>>,
    }

    fn rig(answers: impl IntoIterator<Item = Answer>, max_retries: u32) -> Rig {
        let transport = Scripted::new(answers);
        let calls = transport.recorder();
        let (shutdown, shutdown_rx) = watch::channel(None);
        let deliverer = Deliverer {
            transport: Box::new(transport),
            envelope: Envelope::new("s", "Linux", "p", "0"),
            http_timeout: Duration::from_secs(5),
            max_retries,
            retry_base_delay: BASE,
            shutdown: shutdown_rx,
        };
        let handoff = Arc::new(Handoff::new(100, 10, "s".into(), true).0);
        let settle = Settle { handoff, settled: Arc::new(AtomicU64::new(0)) };
        Rig { deliverer, settle, calls, shutdown }
    }

    fn events(n: usize) -> Vec<EventJson> {
        (0..n).map(|i| EventJson { json: format!("{{\"n\":{i}}}").into_bytes().into() }).collect()
    }

    impl Rig {
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        fn counted(&self) -> [u64; 5] {
            let c = &self.settle.handoff.counters;
            [&c.delivered, &c.rejected, &c.retries_exhausted, &c.too_large, &c.unsent_at_shutdown]
                .map(|n| n.load(Relaxed))
        }

        /// Gaps between consecutive calls.
        fn gaps(&self) -> Vec<Duration> {
            self.calls().windows(2).map(|w| w[1].at - w[0].at).collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_answers_are_retried_after_a_doubling_backoff_with_one_key() {
        let rig = rig([status(500), Answer::Failed, status(503)], 3);
        rig.deliverer.deliver(events(3), &rig.settle).await;
        assert_eq!(rig.counted(), [3, 0, 0, 0, 0]);
        assert_eq!(rig.settle.handoff.counters.retries.load(Relaxed), 3);
        let gaps = rig.gaps();
        for (gap, base) in gaps.iter().zip([1, 2, 4]) {
            let base = BASE * base;
            assert!(*gap >= base && *gap <= base.mul_f64(1.1), "{gap:?} for a {base:?} backoff");
        }
        let calls = rig.calls();
        assert!(calls.iter().all(|c| c.key == calls[0].key), "one idempotency key per payload");
        assert!(calls.iter().all(|c| c.timeout == Duration::from_secs(5)), "http_timeout per attempt");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_replaces_the_backoff() {
        let rig = rig([Answer::Status { status: 429, retry_after: Some(Duration::from_secs(7)) }], 3);
        rig.deliverer.deliver(events(1), &rig.settle).await;
        assert_eq!(rig.counted(), [1, 0, 0, 0, 0]);
        assert_eq!(rig.gaps(), [Duration::from_secs(7)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_413_splits_the_batch_down_to_single_events() {
        let rig = rig([status(413), status(413), status(200), status(413)], 3);
        rig.deliverer.deliver(events(4), &rig.settle).await;
        let sizes: Vec<usize> = rig.calls().iter().map(|c| c.events).collect();
        // 4 → 413; first half 2 → 413; its halves 1 (200) and 1 (413, alone: too large);
        // second half 2 → 200.
        assert_eq!(sizes, [4, 2, 1, 1, 2]);
        assert_eq!(rig.counted(), [3, 0, 0, 1, 0]);
        let keys: std::collections::HashSet<String> = rig.calls().into_iter().map(|c| c.key).collect();
        assert_eq!(keys.len(), 5, "each payload has a key of its own");
    }

    #[tokio::test(start_paused = true)]
    async fn other_4xx_are_rejected_without_a_retry() {
        let rig = rig([status(401)], 3);
        rig.deliverer.deliver(events(3), &rig.settle).await;
        assert_eq!(rig.calls().len(), 1);
        assert_eq!(rig.counted(), [0, 3, 0, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_run_out() {
        let rig = rig([status(500); 4], 3);
        rig.deliverer.deliver(events(2), &rig.settle).await;
        assert_eq!(rig.calls().len(), 4);
        assert_eq!(rig.counted(), [0, 0, 2, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_during_a_backoff_makes_one_last_attempt() {
        let rig = rig([status(500)], 3);
        let started = TokioInstant::now();
        let deliver = rig.deliverer.deliver(events(1), &rig.settle);
        let shut = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = rig.shutdown.send(Some(Instant::now() + Duration::from_secs(10)));
        };
        tokio::join!(deliver, shut);
        assert_eq!(rig.counted(), [1, 0, 0, 0, 0]);
        let calls = rig.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].at - started, Duration::from_millis(100), "the backoff was cut short");
    }
}
