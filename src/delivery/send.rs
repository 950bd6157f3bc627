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
    pub(super) transport: Transport,
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
