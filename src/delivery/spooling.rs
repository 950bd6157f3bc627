//! The uploader's use of the spool ([`crate::spool`]), on the uploader thread: every
//! `spool_interval` it writes each batch it holds that is not on disk yet (the one being
//! filled, rewritten as it grows); a settled batch's file is removed; a batch that runs out of
//! retries or time stays on disk and is counted as spooled rather than dropped; and the
//! replay task sends what earlier runs left.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::batch::{Envelope, EventJson};
use super::send::{Deliverer, Held};
use crate::handoff::Handoff;
use crate::handoff::stats::{DeliveryError, DeliveryErrorKind};
use crate::spool::backlog::Backlog;
use crate::spool::format::SpoolBatch;
use crate::spool::writer::{Slot, Writer, Written};
use crate::spool::{Opened, replay};

/// The spool as the uploader drives it.
#[derive(Debug)]
pub(super) struct Spooling {
    writer: Writer,
    backlog: Arc<Backlog>,
    endpoint: String,
    pub(super) interval: Duration,
    debug: bool,
}

/// Says why the spool is off: on stderr with `debug`, and as the last delivery error.
pub(super) fn report_off(handoff: &Handoff, line: String, debug: bool) {
    if debug {
        eprintln!("tinker-telemetry: {line}");
    }
    handoff.set_last_error(DeliveryError {
        kind: DeliveryErrorKind::Spool,
        message: line,
        at: std::time::SystemTime::now(),
    });
}

impl Spooling {
    /// The spool `build()` opened, or `None` (with the line saying why) when it could not.
    pub(super) fn start(
        opened: Result<Opened, String>,
        endpoint: &str,
        debug: bool,
        handoff: &Handoff,
    ) -> Option<Self> {
        match opened {
            Ok(opened) => Some(Spooling {
                writer: opened.writer,
                backlog: opened.backlog,
                endpoint: endpoint.to_owned(),
                interval: opened.interval,
                debug,
            }),
            Err(line) => {
                report_off(handoff, line, debug);
                None
            }
        }
    }

    /// Writes `events` (a batch keyed `key`) unless its file already holds them all; the
    /// file of a batch still being filled is written again as it grows. Returns whether the
    /// batch is on disk.
    pub(super) fn write(
        &mut self,
        spooled: &mut Option<(Slot, usize)>,
        key: &str,
        events: &[EventJson],
        envelope: &Envelope,
        handoff: &Handoff,
    ) -> bool {
        let previous = *spooled;
        if previous.is_some_and(|(_, n)| n == events.len()) || events.is_empty() {
            return previous.is_some();
        }
        let batch = SpoolBatch {
            key: key.to_owned(),
            endpoint: self.endpoint.clone(),
            events: events.len() as u16,
            body: envelope.body(events),
        };
        match self.writer.write(previous.map(|(slot, _)| slot), &batch, &handoff.counters.spool) {
            Written::Done(slot) => {
                *spooled = Some((slot, events.len()));
                true
            }
            Written::Skipped => false,
            Written::TurnedOff(line) => {
                report_off(handoff, line, self.debug);
                false
            }
        }
    }

    /// Removes a settled batch's file.
    pub(super) fn remove(&mut self, spooled: Option<(Slot, usize)>) {
        if let Some((slot, _)) = spooled {
            self.writer.remove(slot);
        }
    }

    /// The task that sends what earlier runs left, if they left anything.
    pub(super) fn replay(
        &self,
        deliverer: &Arc<Deliverer>,
        handoff: &Arc<Handoff>,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        if self.backlog.is_empty() {
            return None;
        }
        let (deliverer, handoff) = (Arc::clone(deliverer), Arc::clone(handoff));
        let shutdown = deliverer.shutdown.clone();
        let counters = Arc::clone(&handoff);
        Some(replay::replay(Arc::clone(&self.backlog), counters, shutdown, move |body, key, events| {
            let (deliverer, handoff) = (Arc::clone(&deliverer), Arc::clone(&handoff));
            async move { deliverer.send_stored(body, &key, events, handoff).await }
        }))
    }

    /// Ends this run: removes its directory when nothing is left in it, else releases it for
    /// the next process.
    pub(super) fn finish(&mut self) {
        self.writer.finish();
    }
}

/// Books the events of a finished batch that waited (`held`, and `aborted` ones its task did
/// not settle): as spooled when the batch is on disk, else as the drops they would be.
pub(super) fn book_held(handoff: &Handoff, held: &Held, aborted: u64, on_disk: bool) -> u64 {
    let exhausted = held.exhausted.swap(0, Relaxed);
    let unsent = held.unsent.swap(0, Relaxed) + aborted;
    let c = &handoff.counters;
    if on_disk {
        handoff.count(&c.spool.spooled, exhausted + unsent);
    } else {
        handoff.count(&c.retries_exhausted, exhausted);
        handoff.count(&c.unsent_at_shutdown, unsent);
    }
    exhausted + unsent
}
