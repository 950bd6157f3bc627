//! The uploader: takes records from the hand-off, serializes them into batches, sends up to
//! `max_in_flight` batches at once, and books every event's fate. Runs on the uploader
//! thread ([`super::thread`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::batch::{Batch, Envelope, EventJson};
use super::dropped::{DROPPED_EVENT, DropReports, Moment};
use super::ratelimit::RateLimit;
use super::redact::Redactor;
use super::send::{Deliverer, Held, Settle};
use super::spooling::{self, Spooling, with_spool_drops};
use super::transport::Transport;
use super::wire::{platform, process_uuid, to_wire_json};
use crate::analysis::analyzer::{Analyzer, SPIKE_EVENT, SUMMARY_EVENT};
use crate::handoff::Handoff;
use crate::handoff::clock::{Anchor, Stamp};
use crate::handoff::control::Control;
use crate::handoff::record::{Body, Record};
use crate::handoff::stats::{DropReason, SpoolDropped, Stats};
use crate::severity::Severity;
use crate::spool::writer::Slot;

/// How long shutdown's last take waits for pushes that passed the closed check just before
/// the close: a push takes well under a microsecond unless its thread is preempted.
const STRAGGLER_GRACE: Duration = Duration::from_millis(20);
/// ... and how long it waits for them once the deadline has passed (the guard allows for it).
const STRAGGLER_FLOOR: Duration = Duration::from_millis(2);

/// What the uploader needs from the builder.
pub(crate) struct UploadConfig {
    pub(crate) endpoint: reqwest::Url,
    pub(crate) api_key: String,
    pub(crate) flush_interval: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) retry_base_delay: Duration,
    pub(crate) max_batch_size: usize,
    pub(crate) flush_threshold: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) redactor: Redactor,
    /// One line per payload on stderr.
    pub(crate) debug: bool,
    /// The spool `build()` opened, when one is set and could be opened.
    pub(crate) spool: Option<crate::spool::Opened>,
}

/// Summaries wait this long when they are off: a timer that never fires in practice.
const NO_SUMMARIES: Duration = Duration::from_secs(365 * 24 * 3600);

impl std::fmt::Debug for UploadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadConfig")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &"[REDACTED]")
            .field("flush_interval", &self.flush_interval)
            .field("http_timeout", &self.http_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_batch_size", &self.max_batch_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

/// A batch being sent, as the uploader tracks it.
#[derive(Debug)]
struct InFlight {
    first_index: u64,
    len: u64,
    bytes: usize,
    has_start: bool,
    settled: Arc<AtomicU64>,
    /// The batch, its key and its spool file, to write it while it is in flight.
    events: Arc<[EventJson]>,
    key: Box<str>,
    spooled: Option<(Slot, usize)>,
    seen: bool,
    /// With a spool: its events whose fate waits on whether the batch is on disk.
    held: Option<Arc<Held>>,
}

pub(super) struct Uploader {
    handoff: Arc<Handoff>,
    config: UploadConfig,
    deliverer: Arc<Deliverer>,
    shutdown_tx: watch::Sender<Option<tokio::time::Instant>>,
    /// The next `event_session_index` to give out.
    next_index: u64,
    /// SESSION_END has been taken: what follows it is not sent.
    ended: bool,
    /// A batch being filled.
    filling: Option<Batch>,
    /// Sealed batches waiting for a free request slot.
    pending: VecDeque<Batch>,
    tasks: JoinSet<()>,
    in_flight: HashMap<tokio::task::Id, InFlight>,
    /// First index of every pending or in-flight batch, with multiplicity.
    outstanding: BTreeMap<u64, usize>,
    /// Events taken from the queue (or made here) and not yet settled; the rest of the
    /// shared `held` count is still in the queue.
    unsettled: usize,
    /// Whether the SESSION_START batch is in flight (nothing else goes with it).
    start_in_flight: bool,
    /// What `telemetry.dropped` events have reported so far.
    drop_reports: DropReports,
    /// What event timestamps are converted against; taken anew at each take.
    anchor: Anchor,
    /// Operations, summaries, alerts and the metrics sinks.
    analyzer: Analyzer,
    /// The spool, when one is on.
    spooling: Option<Spooling>,
    /// The task sending what earlier runs left in the spool.
    replaying: JoinSet<()>,
    /// The spool's drops already reported in `telemetry.dropped` events.
    spool_reported: SpoolDropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Everything once `flush_threshold` events wait, else nothing (a wake-up, or a request
    /// finished).
    AtThreshold,
    /// Everything queued (timer, flush, shutdown).
    All,
    /// Everything queued, into batches that stay open (the spool's timer).
    Spool,
}

impl Uploader {
    pub(super) fn new(
        mut config: UploadConfig,
        handoff: Arc<Handoff>,
        transport: Box<dyn Transport>,
        analyzer: Analyzer,
    ) -> Self {
        let envelope =
            Envelope::new(&handoff.session_id, platform(), process_uuid(), env!("CARGO_PKG_VERSION"));
        let (shutdown_tx, shutdown_rx) = watch::channel(None);
        let deliverer = Arc::new(Deliverer {
            transport,
            envelope,
            http_timeout: config.http_timeout,
            max_retries: config.max_retries,
            retry_base_delay: config.retry_base_delay,
            shutdown: shutdown_rx,
            rate_limit: RateLimit::default(),
            debug: config.debug,
        });
        let spooling = config.spool.take().map(|opened| {
            Spooling::start(opened, config.endpoint.as_str(), config.debug, &deliverer, &handoff)
        });
        Uploader {
            handoff,
            config,
            deliverer,
            shutdown_tx,
            next_index: 0,
            ended: false,
            filling: None,
            pending: VecDeque::new(),
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            outstanding: BTreeMap::new(),
            unsettled: 0,
            start_in_flight: false,
            drop_reports: DropReports::default(),
            anchor: Anchor::now(),
            analyzer,
            spooling,
            replaying: JoinSet::new(),
            spool_reported: SpoolDropped::default(),
        }
    }

    pub(super) async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut timer = tokio::time::interval(self.config.flush_interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // An interval past a year is as good as none, and cannot overflow the clock.
        let every = self.analyzer.summary_interval().unwrap_or(NO_SUMMARIES).min(NO_SUMMARIES);
        let mut summaries = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        summaries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut spool_timer = spooling::timer(self.spooling.as_ref());
        self.start_replay();
        let handoff = Arc::clone(&self.handoff);
        loop {
            self.dispatch();
            tokio::select! {
                biased;
                command = control.recv() => {
                    if self.obey(command).await {
                        return;
                    }
                }
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(done);
                    // What finished no longer counts towards the wake mark: move it.
                    self.take(Take::AtThreshold);
                }
                () = handoff.wake.notified() => self.take(Take::AtThreshold),
                _ = timer.tick() => self.take(Take::All),
                _ = spool_timer.tick() => self.spool_now(),
                _ = summaries.tick() => {
                    // The window's last operations count in its summary.
                    self.take(Take::All);
                    self.summarize();
                }
            }
        }
    }

    /// Acts on a control message; returns whether the uploader is done.
    async fn obey(&mut self, command: Option<Control>) -> bool {
        match command {
            Some(Control::Flush(reply)) => {
                if reply.is_none() {
                    self.handoff.flush_taken();
                }
                self.take(Take::All);
                self.dispatch();
                if let Some(reply) = reply {
                    let _ = reply.try_send(self.next_index);
                }
                false
            }
            Some(Control::Shutdown { deadline, reply }) => {
                let stats = self.shutdown(deadline).await;
                let _ = reply.try_send(stats);
                true
            }
            None => {
                // Cannot happen while `Handoff` holds the sender (a leaked guard keeps the
                // uploader running until the process ends); if it ever does, send what is
                // queued and stop.
                let deadline = crate::handoff::control::deadline_in(self.config.http_timeout);
                self.shutdown(deadline).await;
                true
            }
        }
    }

    /// Events still in the queue: held, but not yet taken.
    fn in_queue(&self) -> usize {
        self.handoff.held().saturating_sub(self.unsettled)
    }

    /// Events being filled into a batch, not sealed yet.
    fn filling_len(&self) -> usize {
        self.filling.as_ref().map_or(0, Batch::len)
    }

    /// Moves records from the queue into batches, then moves the wake mark.
    fn take(&mut self, how: Take) {
        let threshold = self.config.flush_threshold;
        let available = self.in_queue();
        let want = match how {
            Take::All => available,
            // Everything once the threshold is reached (counting what is being filled; the
            // batches seal at the threshold or the batch size); below it, nothing: events
            // wait for the threshold or the interval, as `flush_threshold` says.
            Take::AtThreshold if available + self.filling_len() >= threshold => available,
            Take::AtThreshold => 0,
            Take::Spool => available,
        };
        self.anchor = Anchor::now();
        self.report_drops(Moment::Room);
        if want > 0 {
            let handoff = Arc::clone(&self.handoff);
            handoff.take(want, |record| {
                handoff.release_bytes(record.heap_bytes());
                self.add(record);
            });
        }
        if how == Take::All {
            self.seal();
        }
        let handoff = &self.handoff;
        self.analyzer.delivery(|| handoff.stats());
        let sealed = self.unsettled - self.filling_len();
        if self.handoff.rearm_wake(sealed) {
            // Events crossed the new mark while it moved: come back for them.
            self.handoff.wake.notify_one();
        }
        self.publish_watermark();
    }

    /// Adds a `telemetry.dropped` event when one is due at `moment`; see [`DropReports`].
    /// Returns whether it made one.
    fn report_drops(&mut self, moment: Moment) -> bool {
        let full = self.handoff.held() >= self.handoff.max_queue();
        if self.ended || (moment == Moment::Room && full) {
            return false;
        }
        let stats = self.handoff.stats();
        let data = self.drop_reports.due(stats.dropped, moment);
        let Some(data) = with_spool_drops(data, &mut self.spool_reported, &stats) else {
            return false;
        };
        self.add_own(DROPPED_EVENT, Severity::Warning, data);
        true
    }

    /// Adds a `performance.summary` event if operations were counted since the last one.
    fn summarize(&mut self) {
        if self.ended {
            return;
        }
        if let Some(data) = self.analyzer.summary(Instant::now()) {
            self.add_own(SUMMARY_EVENT, Severity::Info, data);
        }
    }

    /// Adds an event the uploader makes itself, counted past the queue's bound.
    fn add_own(&mut self, name: &str, severity: Severity, data: impl serde::Serialize) {
        // The crate's own shapes have string keys and finite numbers: they always convert.
        let data = serde_json::to_value(data).unwrap_or_default();
        let record = Record { time: Stamp::now(), severity, body: Body::Json { name: name.into(), data } };
        self.handoff.hold_past_bound();
        self.add(record);
    }

    /// Serializes one record into the batch being filled.
    fn add(&mut self, record: Record) {
        if self.ended {
            self.handoff.dropped(DropReason::AfterShutdown, 1);
            self.handoff.release(1);
            return;
        }
        let time = self.anchor.wall(record.time);
        let observed = self.analyzer.observe(&record, time);
        if observed.summarized {
            self.handoff.summarized(1);
            self.handoff.release(1);
        } else {
            self.serialize(record, time);
        }
        if let Some(alert) = observed.alert {
            self.add_own(SPIKE_EVENT, Severity::Error, alert);
        }
    }

    /// Serializes one record, stamped `time`, into the batch being filled.
    fn serialize(&mut self, record: Record, time: std::time::SystemTime) {
        let is_start = matches!(record.body, Body::SessionStart);
        let is_end = matches!(record.body, Body::SessionEnd { .. });
        if is_end {
            // The last window's numbers, then whatever was lost, go out before the session
            // ends.
            self.summarize();
            self.report_drops(Moment::SessionEnd);
        }
        self.unsettled += 1;
        // SESSION_START goes alone, so that it can be sent before anything else.
        if is_start {
            self.seal();
        }
        let index = self.next_index;
        self.next_index += 1;
        let id = uuid::Uuid::new_v4();
        let json = to_wire_json(&record, time, &id, index, &self.config.redactor).into_boxed_slice();
        let capacity = self.config.max_batch_size;
        let batch = self.filling.get_or_insert_with(|| Batch::new(index, capacity));
        self.handoff.add_bytes(json.len());
        batch.bytes += json.len();
        batch.events.push(EventJson { json });
        batch.has_start |= is_start;
        batch.has_end |= is_end;
        if is_end {
            self.ended = true;
        }
        let due = batch.len() >= capacity || batch.len() >= self.config.flush_threshold;
        if is_start || is_end || due {
            self.seal();
        }
    }

    /// Starts sending what earlier runs left in the spool, and what this run leaves there.
    fn start_replay(&mut self) {
        if let Some(task) = self.spooling.as_ref().map(|s| s.replay(&self.deliverer, &self.handoff)) {
            self.replaying.spawn(task);
        }
    }

    /// Takes what is queued and writes every batch held that is not on disk yet.
    fn spool_now(&mut self) {
        if self.spooling.is_none() {
            return;
        }
        self.take(Take::Spool);
        self.spool_write();
    }

    /// Writes every batch held that is not on disk yet.
    fn spool_write(&mut self) {
        let Some(spooling) = self.spooling.as_mut() else { return };
        for b in self.pending.iter_mut().chain(self.filling.as_mut()) {
            spooling.tick(&mut b.seen, &mut b.spooled, &b.key, &b.events);
        }
        for b in self.in_flight.values_mut() {
            spooling.tick(&mut b.seen, &mut b.spooled, &b.key, &b.events);
        }
    }

    fn seal(&mut self) {
        if let Some(batch) = self.filling.take() {
            *self.outstanding.entry(batch.first_index).or_default() += 1;
            self.pending.push_back(batch);
        }
    }

    /// Starts sending pending batches, up to `max_in_flight` at once. SESSION_START's batch
    /// goes alone and first; SESSION_END's goes once nothing else is in flight.
    fn dispatch(&mut self) {
        while let Some(front) = self.pending.front() {
            let busy = self.tasks.len();
            if busy >= self.config.max_in_flight || self.start_in_flight {
                return;
            }
            if (front.has_start || front.has_end) && busy > 0 {
                return;
            }
            let Some(batch) = self.pending.pop_front() else { return };
            let settled = Arc::new(AtomicU64::new(0));
            let events: Arc<[EventJson]> = batch.events.into();
            let held = self.spooling.as_ref().map(|_| Arc::new(Held::default()));
            let info = InFlight {
                first_index: batch.first_index,
                len: events.len() as u64,
                bytes: batch.bytes,
                has_start: batch.has_start,
                settled: Arc::clone(&settled),
                events: Arc::clone(&events),
                key: batch.key.clone(),
                spooled: batch.spooled,
                seen: batch.seen,
                held: held.clone(),
            };
            self.start_in_flight = batch.has_start;
            let deliverer = Arc::clone(&self.deliverer);
            let settle = Settle { handoff: Arc::clone(&self.handoff), settled, held };
            let key = batch.key;
            let handle = self.tasks.spawn(async move { deliverer.deliver(&events, &key, &settle).await });
            self.in_flight.insert(handle.id(), info);
        }
    }

    /// Books a finished (or aborted) send.
    fn finished(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match &done {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let Some(mut info) = self.in_flight.remove(&id) else { return };
        let mut unsettled = info.len.saturating_sub(info.settled.load(Relaxed));
        if let (Some(held), Some(spooling)) = (info.held.take(), self.spooling.as_mut()) {
            spooling.settle(&mut info.spooled, &info.key, &info.events, &held, unsettled);
            unsettled = 0;
        }
        if unsettled > 0 {
            // Aborted at the drain deadline, or the send task failed: what it had not settled
            // could not be sent.
            self.handoff.dropped(DropReason::UnsentAtShutdown, unsettled);
        }
        self.handoff.release(info.len);
        self.handoff.release_bytes(info.bytes);
        self.unsettled -= info.len as usize;
        // Room came back: say how much was lost while there was none.
        if self.report_drops(Moment::Room) {
            self.seal();
        }
        if info.has_start {
            self.start_in_flight = false;
        }
        if let Some(n) = self.outstanding.get_mut(&info.first_index) {
            *n -= 1;
            if *n == 0 {
                self.outstanding.remove(&info.first_index);
            }
        }
        self.publish_watermark();
    }

    fn publish_watermark(&self) {
        let filling = self.filling.as_ref().map(|b| b.first_index);
        let oldest = self.outstanding.keys().next().copied();
        let mark = [filling, oldest].into_iter().flatten().min().unwrap_or(self.next_index);
        self.handoff.set_watermark(mark);
    }

    /// At the drain deadline: stops every request in flight and books what was not sent.
    /// With a spool, what was not sent is written there and counted as spooled.
    async fn abandon(&mut self) {
        self.tasks.abort_all();
        self.replaying.abort_all();
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.finished(done);
        }
        while self.replaying.join_next().await.is_some() {}
        let pending = std::mem::take(&mut self.pending);
        let (unsent, bytes) = Spooling::leave(self.spooling.as_mut(), pending, &self.handoff);
        self.handoff.release(unsent);
        self.handoff.release_bytes(bytes);
        self.unsettled -= unsent as usize;
        self.outstanding.clear();
    }

    /// Sends everything left, stopping at `deadline`.
    async fn shutdown(&mut self, deadline: Instant) -> Stats {
        let _ = self.shutdown_tx.send(Some(deadline.into()));
        self.take(Take::All);
        if !self.ended {
            // No SESSION_END (a sessionless reporter): the last window's summary goes now.
            self.summarize();
            self.seal();
        }
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::pin!(sleep);
        // The drain goes on writing to the spool: the process may be killed before it ends.
        let mut spool_timer = spooling::timer(self.spooling.as_ref());
        loop {
            self.dispatch();
            if self.tasks.is_empty() && self.pending.is_empty() && self.replaying.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.finished(done),
                Some(_) = self.replaying.join_next() => {}
                _ = spool_timer.tick() => self.spool_write(),
                () = &mut sleep => {
                    self.abandon().await;
                    break;
                }
            }
        }
        // Whatever reached the queue after SESSION_END (or after close) is not sent.
        self.ended = true;
        let handoff = Arc::clone(&self.handoff);
        let grace =
            STRAGGLER_GRACE.min(deadline.saturating_duration_since(Instant::now())).max(STRAGGLER_FLOOR);
        let late =
            handoff.take_last(self.unsettled, grace, |record| handoff.release_bytes(record.heap_bytes()));
        handoff.dropped(DropReason::AfterShutdown, late as u64);
        handoff.release(late as u64);
        if let Some(spooling) = &mut self.spooling {
            spooling.finish();
        }
        handoff.set_watermark(u64::MAX);
        let stats = handoff.stats();
        // The exporters end with every event's fate.
        self.analyzer.delivery(|| stats);
        stats
    }
}
