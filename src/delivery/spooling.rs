//! The uploader's use of the spool ([`crate::spool`]), on the uploader thread: twice every
//! `spool_interval` it writes each batch it has held since the tick before and that is not
//! on disk yet (the one being filled, rewritten as it grows); a settled batch's file is removed; a batch that runs out of
//! retries or time stays on disk and is counted as spooled rather than dropped; and the
//! replay task sends what earlier runs left.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use std::collections::VecDeque;

use super::batch::{Batch, EventJson, part_key};
use super::dropped::DropReport;
use super::send::{Deliverer, Held};
use crate::handoff::Handoff;
use crate::handoff::stats::{DeliveryError, DeliveryErrorKind, DropReason, SpoolDropped, Stats};
use crate::spool::backlog::Backlog;
use crate::spool::format::SpoolBatch;
use crate::spool::writer::{Slot, Writer, Written};
use crate::spool::{Opened, replay};

/// The spool as the uploader drives it.
#[derive(Debug)]
pub(super) struct Spooling {
    writer: Writer,
    deliverer: Arc<Deliverer>,
    handoff: Arc<Handoff>,
    backlog: Arc<Backlog>,
    endpoint: String,
    pub(super) interval: Duration,
    debug: bool,
}

/// Says why the spool is off: on stderr with `debug`, and as the last delivery error. Called
/// by `build()` when the spool cannot be opened, by the uploader at a fault.
pub(crate) fn report_off(handoff: &Handoff, line: String, debug: bool) {
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
    /// Measures the adopted runs (and applies the bounds to them) before anything is sent,
    /// so that what they lose is counted from the start.
    pub(super) fn start(
        opened: Opened,
        endpoint: &str,
        debug: bool,
        deliverer: &Arc<Deliverer>,
        handoff: &Arc<Handoff>,
    ) -> Self {
        opened.backlog.prepare((**handoff).as_ref());
        Spooling {
            writer: opened.writer,
            deliverer: Arc::clone(deliverer),
            handoff: Arc::clone(handoff),
            backlog: opened.backlog,
            endpoint: endpoint.to_owned(),
            interval: opened.interval,
            debug,
        }
    }

    /// What a spool tick (every half `spool_interval`) does with a batch held: the first
    /// tick that sees it lets it be, the next writes it. A batch the server takes within half
    /// an interval never touches the disk; any event is on disk within one interval of its
    /// capture (taken into a batch by the next tick, written by the one after).
    pub(super) fn tick(
        &mut self,
        seen: &mut bool,
        spooled: &mut Option<(Slot, usize)>,
        key: &str,
        events: &[EventJson],
    ) {
        if std::mem::replace(seen, true) {
            self.write(spooled, key, events);
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
    ) -> bool {
        let (envelope, handoff) = (&self.deliverer.envelope, &*self.handoff);
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
        match self.writer.write(previous.map(|(slot, _)| slot), &batch, handoff.as_ref()) {
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

    /// Books a finished batch's events that waited (`held`, and the `aborted` ones its task
    /// did not settle): as spooled once the batch is on disk (written now if it is not), else
    /// as the drops they would be, its file removed. Removes the batch's file when nothing
    /// waited.
    pub(super) fn settle(
        &mut self,
        spooled: &mut Option<(Slot, usize)>,
        key: &str,
        events: &[EventJson],
        held: &Held,
        aborted: u64,
    ) {
        let waiting = held.exhausted.load(Relaxed) + held.unsent.load(Relaxed) + aborted;
        if waiting == 0 {
            // The server answered: what waits on disk can go now.
            self.backlog.server_answered();
            self.remove(spooled.take());
            return;
        }
        let parts = held.waiting_parts(events.len());
        let on_disk = if parts.len() == 1 && parts[0].len() == events.len() {
            self.leave_on_disk(spooled, key, events)
        } else {
            // The batch was split after a 413: its own file would send the settled parts again,
            // and the waiting ones under a key they were not sent with. Each part that waits
            // gets a file of its own, under the key it is sent with.
            self.remove(spooled.take());
            self.leave_parts(key, events, parts)
        };
        book_held(&self.handoff, held, aborted, on_disk);
    }

    /// Writes `events` (keyed `key`) unless its file holds them already, and leaves the file
    /// for the replay. Returns whether it is on disk. When it is not, its events count as
    /// dropped, so the file an earlier write left (with only its first events) is removed: no
    /// process sends them.
    fn leave_on_disk(
        &mut self,
        spooled: &mut Option<(Slot, usize)>,
        key: &str,
        events: &[EventJson],
    ) -> bool {
        let on_disk = self.write(spooled, key, events);
        match spooled.take() {
            Some((slot, _)) if on_disk => self.writer.leave(slot),
            earlier => self.remove(earlier),
        }
        on_disk
    }

    /// Leaves each of `parts` of a split batch on disk, under its part's key; all of them or,
    /// when one cannot be written, none (the files written are removed).
    fn leave_parts(&mut self, key: &str, events: &[EventJson], parts: Vec<std::ops::Range<usize>>) -> bool {
        let mut written = Vec::with_capacity(parts.len());
        for part in parts {
            let mut spooled = None;
            if !self.write(&mut spooled, &part_key(key, &part), &events[part]) {
                written.into_iter().for_each(|slot| self.writer.remove(slot));
                return false;
            }
            written.extend(spooled.map(|(slot, _)| slot));
        }
        written.into_iter().for_each(|slot| self.writer.leave(slot));
        true
    }

    /// At the drain deadline: writes the batches not sent yet, booking their events as
    /// spooled, or as unsent when they cannot be written (their files removed). Returns their
    /// events (still held: the caller releases them) and bytes.
    pub(super) fn leave(
        spooling: Option<&mut Self>,
        batches: VecDeque<Batch>,
        handoff: &Handoff,
    ) -> (u64, usize) {
        let (mut unsent, mut spooled, mut bytes) = (0, 0, 0);
        let mut spooling = spooling;
        for mut batch in batches {
            let on_disk = spooling
                .as_mut()
                .is_some_and(|s| s.leave_on_disk(&mut batch.spooled, &batch.key, &batch.events));
            *(if on_disk { &mut spooled } else { &mut unsent }) += batch.len() as u64;
            bytes += batch.bytes;
        }
        handoff.dropped(DropReason::UnsentAtShutdown, unsent);
        handoff.spooled(spooled);
        (unsent + spooled, bytes)
    }

    /// Removes a settled batch's file.
    pub(super) fn remove(&mut self, spooled: Option<(Slot, usize)>) {
        if let Some((slot, _)) = spooled {
            self.writer.remove(slot);
        }
    }

    /// The task that sends what earlier runs left, then what this run leaves on disk (a
    /// batch out of retries), while the process lives.
    pub(super) fn replay(
        &self,
        deliverer: &Arc<Deliverer>,
        handoff: &Arc<Handoff>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (deliverer, handoff) = (Arc::clone(deliverer), Arc::clone(handoff));
        let shutdown = deliverer.shutdown.clone();
        let counters = Arc::clone(&handoff);
        replay::replay(Arc::clone(&self.backlog), counters, shutdown, true, move |body, key, events| {
            let (deliverer, handoff) = (Arc::clone(&deliverer), Arc::clone(&handoff));
            async move { deliverer.send_stored(body, &key, events, handoff).await }
        })
    }

    /// Ends this run: removes its directory when nothing is left in it, else releases it for
    /// the next process.
    pub(super) fn finish(&mut self) {
        self.writer.finish();
    }
}

/// Opens the spool, if one is set: lists its directory and takes locks, reads no file. One
/// that cannot be opened is off, said in one line; the reporter goes on without it.
pub(crate) fn open_or_off(
    config: Option<&crate::spool::SpoolConfig>,
    endpoint: &reqwest::Url,
    handoff: &Handoff,
    debug: bool,
) -> Option<crate::spool::Opened> {
    let opened = crate::spool::open(config?, endpoint.as_str());
    opened.map_err(|line| report_off(handoff, line, debug)).ok()
}

/// Fires every half `spool_interval` (see [`Spooling::tick`]); without a spool, never in
/// practice (once a year).
pub(super) fn timer(spooling: Option<&Spooling>) -> tokio::time::Interval {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let every = spooling.map_or(YEAR, |s| (s.interval / 2).max(Duration::from_millis(1))).min(YEAR);
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// Books the events of a finished batch that waited: see [`Spooling::settle`].
fn book_held(handoff: &Handoff, held: &Held, aborted: u64, on_disk: bool) -> u64 {
    let exhausted = held.exhausted.swap(0, Relaxed);
    let unsent = held.unsent.swap(0, Relaxed) + aborted;
    if on_disk {
        handoff.spooled(exhausted + unsent);
    } else {
        handoff.dropped(DropReason::RetriesExhausted, exhausted);
        handoff.dropped(DropReason::UnsentAtShutdown, unsent);
    }
    exhausted + unsent
}

/// Adds to a `telemetry.dropped` report (`report`, if one is due) the events the spool lost
/// since the last report (`reported`), as `spool_too_old`, `spool_over_size`,
/// `spool_rejected` and `spool_too_large`; makes a report of them alone when none was due.
/// `total` counts every drop, the spool's included.
pub(super) fn with_spool_drops(
    report: Option<DropReport>,
    reported: &mut SpoolDropped,
    stats: &Stats,
) -> Option<DropReport> {
    let now = stats.spool.dropped;
    let new = now.since(reported);
    let count = new.total();
    if count == 0 {
        return report;
    }
    *reported = now;
    let mut report = report.unwrap_or_else(|| DropReport {
        by_reason: std::collections::BTreeMap::new(),
        count: 0,
        total: stats.dropped.total(),
    });
    report.count += count;
    report.total += now.total();
    report.by_reason.extend(new.iter().filter(|(_, n)| *n > 0).map(|(reason, n)| (reason.name(), n)));
    Some(report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn spool_drops_join_the_report_due_or_make_one() {
        let mut stats = Stats::default();
        let mut reported = SpoolDropped::default();
        let json = |r: Option<DropReport>| serde_json::to_value(r).unwrap();
        assert_eq!(with_spool_drops(None, &mut reported, &stats), None, "nothing lost");
        stats.spool.dropped.over_size = 7;
        let alone = json(with_spool_drops(None, &mut reported, &stats));
        assert_eq!(alone, json!({"count": 7, "total": 7, "by_reason": {"spool_over_size": 7}}));
        assert_eq!(with_spool_drops(None, &mut reported, &stats), None, "reported once");
        stats.spool.dropped.too_old = 2;
        let due = DropReport { by_reason: [("queue_full", 3)].into(), count: 3, total: 3 };
        let joined = json(with_spool_drops(Some(due), &mut reported, &stats));
        let want = json!({"count": 5, "total": 12, "by_reason": {"queue_full": 3, "spool_too_old": 2}});
        assert_eq!(joined, want);
    }
}
