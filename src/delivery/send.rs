//! Sending one batch: retries with backoff, `Retry-After` and the client's rate limit, 413
//! splitting, and the drain deadline.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::batch::{Envelope, EventJson, body_parts, join_body, part_key};
use super::diagnose::status_words;
use super::ratelimit::RateLimit;
use super::retry::{Verdict, backoff, classify, retry_cause};
use super::transport::{Answer, Transport};
use crate::handoff::Handoff;
use crate::handoff::stats::{DeliveryError, DeliveryErrorKind, DropReason, RetryCause};
use crate::spool::backlog::Settled;
use crate::spool::replay::Sent;
use crate::status_class::StatusClass;

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
    /// The pause a server's 429 or 503 asked of every request.
    pub(super) rate_limit: RateLimit,
    /// Print one line per payload on stderr ([`Builder::debug`](crate::Builder::debug)).
    pub(super) debug: bool,
}

/// The most time a last attempt before the drain deadline is given (less when `http_timeout`
/// is shorter).
const LAST_ATTEMPT_WINDOW: Duration = Duration::from_secs(1);

/// Events of a batch in flight whose fate can wait on disk, booked by its send task.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Out of retries.
    pub(crate) exhausted: AtomicU64,
    /// Unsent when the drain deadline passed.
    pub(crate) unsent: AtomicU64,
    /// The parts of a batch split after a 413 whose fate is settled (delivered, or dropped
    /// for good). Empty for a batch sent whole.
    pub(crate) settled_parts: Mutex<Vec<Range<usize>>>,
    /// The parts of the batch (the whole included) answered 413 and sent again as their
    /// two halves.
    pub(crate) split_parts: Mutex<Vec<Range<usize>>>,
}

impl Held {
    /// The parts of a batch of `n` events that still wait, in order, each as the split sends
    /// it (so under the key it is sent with): all of it when it was not split.
    pub(crate) fn waiting_parts(&self, n: usize) -> Vec<Range<usize>> {
        let lock = |m: &Mutex<Vec<Range<usize>>>| m.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (settled, split) = (lock(&self.settled_parts), lock(&self.split_parts));
        let mut waiting = Vec::new();
        // The parts as the split makes them, in order: halves replace a part split.
        let mut parts = Vec::with_capacity(4);
        parts.push(0..n);
        while let Some(part) = parts.pop() {
            if part.is_empty() || settled.contains(&part) {
                continue;
            }
            if part.len() > 1 && split.contains(&part) {
                let (first, second) = halves(&part);
                parts.push(second);
                parts.push(first);
            } else {
                waiting.push(part);
            }
        }
        waiting
    }
}

/// The two halves a part answered 413 is sent again as.
fn halves(part: &Range<usize>) -> (Range<usize>, Range<usize>) {
    let mid = part.start + part.len() / 2;
    (part.start..mid, mid..part.end)
}

/// Where a send task books the fate of its events.
#[derive(Debug)]
pub(super) struct Settle {
    pub(super) handoff: Arc<Handoff>,
    /// Events of this batch already booked, so an abort books only the rest.
    pub(super) settled: Arc<AtomicU64>,
    /// With a spool: the events whose fate can wait on disk (out of retries, unsent at the
    /// deadline), which the uploader books once it knows whether their batch is on disk.
    pub(super) held: Option<Arc<Held>>,
}

/// Where a payload's events end: delivered, or given up on for a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delivered,
    Dropped(DropReason),
}

impl Settle {
    /// Records that `part` was answered 413 and is sent again as its two halves.
    fn split(&self, part: &Range<usize>) {
        if let Some(held) = &self.held {
            held.split_parts.lock().unwrap_or_else(PoisonError::into_inner).push(part.clone());
        }
    }

    /// Books the fate of the events at `part` of the batch (of `whole` events).
    fn book(&self, fate: Fate, part: Range<usize>, whole: usize) {
        let n = part.len();
        if let Some(held) = &self.held {
            let waits = match fate {
                Fate::Dropped(DropReason::RetriesExhausted) => Some(&held.exhausted),
                Fate::Dropped(DropReason::UnsentAtShutdown) => Some(&held.unsent),
                _ => None,
            };
            if let Some(counter) = waits {
                counter.fetch_add(n as u64, Relaxed);
                self.settled.fetch_add(n as u64, Relaxed);
                return;
            }
            if n < whole {
                held.settled_parts.lock().unwrap_or_else(PoisonError::into_inner).push(part);
            }
        }
        match fate {
            Fate::Delivered => {
                self.handoff.batch_sent();
                self.handoff.delivered(n as u64);
            }
            Fate::Dropped(reason) => self.handoff.dropped(reason, n as u64),
        }
        self.settled.fetch_add(n as u64, Relaxed);
    }
}

impl Deliverer {
    /// Sends `events`, splitting on 413, until every event is delivered or booked as dropped.
    /// The whole batch goes with `key`; each part of a split with its part's key.
    pub(super) async fn deliver(&self, events: &[EventJson], key: &str, settle: &Settle) {
        let body = |part: Range<usize>| Some(self.envelope.body(&events[part]));
        let book = |part: Range<usize>, result: Result<(), DropReason>| {
            settle.book(result.map_or_else(Fate::Dropped, |()| Fate::Delivered), part, events.len());
            true
        };
        self.send_split(events.len(), key, body, settle, book).await;
    }

    /// Sends the `n` events whose payload `body(part)` makes, halving a part the server
    /// answers 413 until it is one event; `book(part, result)` is told how each part ended,
    /// and stops the sending when it returns false. A part whose payload cannot be made is too
    /// large. The whole goes with `key`, a part with [`part_key`].
    async fn send_split(
        &self,
        n: usize,
        key: &str,
        body: impl Fn(Range<usize>) -> Option<Vec<u8>>,
        settle: &Settle,
        mut book: impl FnMut(Range<usize>, Result<(), DropReason>) -> bool,
    ) {
        let mut shutdown = self.shutdown.clone();
        // Parts still to send, in order; a 413 replaces a part by its two halves.
        let mut parts: Vec<Range<usize>> = Vec::with_capacity(4);
        parts.push(0..n);
        while let Some(part) = parts.pop() {
            let result = match body(part.clone()) {
                Some(body) => {
                    let part_key = if part.len() == n { key.to_owned() } else { part_key(key, &part) };
                    let mut trace = Trace::default();
                    let result = self.send_part(&body, &part_key, settle, &mut shutdown, &mut trace).await;
                    if self.debug {
                        trace.print(part.len(), &result);
                    }
                    result
                }
                None => Err(DropReason::TooLarge),
            };
            match result {
                Err(DropReason::TooLarge) if part.len() > 1 => {
                    settle.split(&part);
                    let (first, second) = halves(&part);
                    parts.push(second);
                    parts.push(first);
                }
                result if !book(part, result) => return,
                _ => {}
            }
        }
    }

    /// One request payload through its retries.
    ///
    /// A shutdown changes nothing but the deadline: attempts go on with their normal backoff
    /// and retry budget while one can start before it. A backoff that would end past the
    /// deadline is shortened to one last attempt just before it; a server's `Retry-After`
    /// (the batch's own, or the client's rate limit) is never shortened: when it ends past
    /// the deadline the batch is left unsent.
    async fn send_part(
        &self,
        body: &[u8],
        key: &str,
        settle: &Settle,
        shutdown: &mut watch::Receiver<Option<Instant>>,
        trace: &mut Trace,
    ) -> Result<(), DropReason> {
        trace.bytes = body.len();
        let mut retries = 0;
        let mut last_chance = false;
        loop {
            if let Some(until) = self.rate_limit.paused_until(Instant::now()) {
                self.wait(until, Wait::ServerAsked, shutdown).await?;
            }
            let timeout = self.attempt_timeout(shutdown)?;
            trace.attempts += 1;
            let answer = self.transport.post(body.to_vec(), key, timeout).await;
            let (cause, retry_after) = match self.judge(answer, settle, trace) {
                Next::Done(outcome) => return outcome,
                Next::Retry { cause, retry_after } => (cause, retry_after),
            };
            if last_chance {
                return Err(DropReason::UnsentAtShutdown);
            }
            if retries >= self.max_retries {
                return Err(DropReason::RetriesExhausted);
            }
            retries += 1;
            settle.handoff.retried(cause);
            let (delay, kind) = match retry_after {
                Some(delay) => (delay, Wait::ServerAsked),
                None => (backoff(self.retry_base_delay, retries, fastrand::f64()), Wait::Backoff),
            };
            last_chance = self.wait(Instant::now() + delay, kind, shutdown).await?;
        }
    }

    /// Sends a batch read from the spool as it was stored (its body and idempotency key),
    /// through the same retries, rate limit and drain deadline as the reporter's own. On a
    /// 413 its events are split as the reporter's own are, each part with its part's key;
    /// when a part cannot be sent now, the whole batch is tried again later, its parts
    /// with the same keys, so that the server can drop the parts it already took.
    pub(super) async fn send_stored(
        &self,
        body: Vec<u8>,
        key: &str,
        events: u16,
        handoff: Arc<Handoff>,
    ) -> Sent {
        let settle = Settle { handoff, settled: Arc::default(), held: None };
        let n = usize::from(events);
        let split = std::sync::OnceLock::new();
        let part_body = |part: Range<usize>| {
            if part.len() == n {
                return Some(body.clone());
            }
            let (events, suffix) = split.get_or_init(|| body_parts(&body)).as_ref()?;
            (events.len() == n).then(|| join_body(&events[part], suffix))
        };
        let mut settled = Settled::default();
        let mut now = true;
        let book = |part: Range<usize>, result: Result<(), DropReason>| {
            let count = part.len() as u64;
            match result {
                Ok(()) => settled.delivered += count,
                Err(DropReason::Rejected) => settled.rejected += count,
                Err(DropReason::TooLarge) => settled.too_large += count,
                Err(_) => now = false,
            }
            now
        };
        self.send_split(n, key, part_body, &settle, book).await;
        if now { Sent::Done(settled) } else { Sent::NotNow }
    }

    /// The time the next attempt gets: `http_timeout`, or less once the drain deadline is
    /// nearer; none once it passed.
    fn attempt_timeout(
        &self,
        shutdown: &mut watch::Receiver<Option<Instant>>,
    ) -> Result<Duration, DropReason> {
        match *shutdown.borrow_and_update() {
            Some(d) if d <= Instant::now() => Err(DropReason::UnsentAtShutdown),
            Some(d) => Ok(self.http_timeout.min(d - Instant::now())),
            None => Ok(self.http_timeout),
        }
    }

    /// What an answer means for its payload. A failure is recorded as the last delivery
    /// error; a `Retry-After` on a status that pauses the client pauses every request.
    fn judge(&self, answer: Answer, settle: &Settle, trace: &mut Trace) -> Next {
        let Some(error) = failure(&answer) else { return Next::Done(Ok(())) };
        trace.last_error = Some(error.message.clone());
        let cause = retry_cause(error.kind);
        settle.handoff.set_last_error(error);
        let Answer::Status { status, retry_after } = answer else {
            return Next::Retry { cause, retry_after: None };
        };
        match classify(status) {
            Verdict::Delivered => Next::Done(Ok(())),
            Verdict::Split => Next::Done(Err(DropReason::TooLarge)),
            Verdict::Reject => Next::Done(Err(DropReason::Rejected)),
            Verdict::Retry => {
                if let Some(delay) = retry_after.filter(|_| StatusClass::of(status).pauses_the_client()) {
                    self.rate_limit.pause(Instant::now(), delay);
                }
                Next::Retry { cause, retry_after }
            }
        }
    }

    /// Waits until `until`, minding the drain deadline, which may be set while waiting.
    /// Returns whether the wait was shortened, making the next attempt the last; fails when a
    /// wait the server asked for ends past the deadline.
    async fn wait(
        &self,
        until: Instant,
        kind: Wait,
        shutdown: &mut watch::Receiver<Option<Instant>>,
    ) -> Result<bool, DropReason> {
        loop {
            let deadline = *shutdown.borrow_and_update();
            let (wake, shortened) = match (deadline, kind) {
                (Some(d), Wait::ServerAsked) if until > d => return Err(DropReason::UnsentAtShutdown),
                (Some(d), Wait::Backoff) => {
                    let last_start = d.checked_sub(self.last_attempt_window()).unwrap_or(d);
                    if until > last_start { (last_start.max(Instant::now()), true) } else { (until, false) }
                }
                _ => (until, false),
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => return Ok(shortened),
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        // The uploader is gone: nobody waits for this batch any more.
                        tokio::time::sleep_until(wake).await;
                        return Ok(shortened);
                    }
                }
            }
        }
    }

    /// How long before the drain deadline a shortened backoff's last attempt starts: the
    /// time that attempt gets.
    fn last_attempt_window(&self) -> Duration {
        self.http_timeout.min(LAST_ATTEMPT_WINDOW)
    }
}

/// A failed answer as the user reads it; `None` for a success.
fn failure(answer: &Answer) -> Option<DeliveryError> {
    let (kind, message) = match answer {
        Answer::Status { status, .. } if classify(*status) == Verdict::Delivered => return None,
        Answer::Status { status, .. } => (DeliveryErrorKind::Status(*status), status_words(*status)),
        Answer::Failed(f) => (f.kind, f.words.clone()),
    };
    Some(DeliveryError { kind, message, at: std::time::SystemTime::now() })
}

/// What one payload went through, for the debug output.
#[derive(Debug, Default)]
struct Trace {
    bytes: usize,
    attempts: u32,
    last_error: Option<String>,
}

impl Trace {
    /// One line on stderr: never through tracing, which could feed the events back.
    fn print(&self, events: usize, result: &Result<(), DropReason>) {
        let outcome = match result {
            Ok(()) => "delivered".to_owned(),
            Err(reason) => format!("dropped ({reason:?})"),
        };
        let retries = self.attempts.saturating_sub(1);
        let last = self.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default();
        eprintln!(
            "tinker-telemetry: {events} events, {} bytes: {outcome} after {retries} retries{last}",
            self.bytes
        );
    }
}

/// What comes after an answer.
#[derive(Debug)]
enum Next {
    /// The payload's end: delivered, or given up on.
    Done(Result<(), DropReason>),
    /// Another attempt, after a failure of `cause`; at the server's `Retry-After` when it
    /// gave one, else after the backoff.
    Retry { cause: RetryCause, retry_after: Option<Duration> },
}

/// What a wait between attempts is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Our own backoff: may be shortened to fit the drain deadline.
    Backoff,
    /// A server's `Retry-After`: never shortened.
    ServerAsked,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::transport::testing::{Call, Scripted, failed, status};

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
            rate_limit: RateLimit::default(),
            debug: false,
        };
        let handoff = Arc::new(Handoff::new(100, usize::MAX, 10, "s".into(), true).0);
        let settle = Settle { handoff, settled: Arc::new(AtomicU64::new(0)), held: None };
        Rig { deliverer, settle, calls, shutdown }
    }

    fn events(n: usize) -> Vec<EventJson> {
        (0..n).map(|i| EventJson { json: format!("{{\"n\":{i}}}").into_bytes().into() }).collect()
    }

    impl Rig {
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        /// Delivered, rejected, retries exhausted, too large, unsent at shutdown.
        fn counted(&self) -> [u64; 5] {
            let s = self.settle.handoff.stats();
            let d = s.dropped;
            [s.delivered, d.rejected, d.retries_exhausted, d.too_large, d.unsent_at_shutdown]
        }

        /// Gaps between consecutive calls.
        fn gaps(&self) -> Vec<Duration> {
            self.calls().windows(2).map(|w| w[1].at - w[0].at).collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_answers_are_retried_after_a_doubling_backoff_with_one_key() {
        let rig = rig([status(500), failed(), status(503)], 3);
        rig.deliverer.deliver(&events(3), "key", &rig.settle).await;
        assert_eq!(rig.counted(), [3, 0, 0, 0, 0]);
        let stats = rig.settle.handoff.stats();
        assert_eq!(stats.retries, 3);
        let r = stats.retried;
        assert_eq!((r.server_error, r.connect, r.total()), (2, 1, 3), "by cause: {r:?}");
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
        rig.deliverer.deliver(&events(1), "key", &rig.settle).await;
        assert_eq!(rig.counted(), [1, 0, 0, 0, 0]);
        assert_eq!(rig.gaps(), [Duration::from_secs(7)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_413_splits_the_batch_down_to_single_events() {
        let rig = rig([status(413), status(413), status(200), status(413)], 3);
        rig.deliverer.deliver(&events(4), "key", &rig.settle).await;
        let sizes: Vec<usize> = rig.calls().iter().map(|c| c.events).collect();
        // 4 → 413; first half 2 → 413; its halves 1 (200) and 1 (413, alone: too large);
        // second half 2 → 200.
        assert_eq!(sizes, [4, 2, 1, 1, 2]);
        assert_eq!(rig.counted(), [3, 0, 0, 1, 0]);
        let keys: Vec<String> = rig.calls().into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["key", "key.0-2", "key.0-1", "key.1-2", "key.2-4"], "a part's key is its range's");
    }

    #[test]
    fn what_waits_of_a_split_batch_is_each_part_not_settled_as_it_was_split() {
        let held = Held::default();
        let whole: Vec<Range<usize>> = std::iter::once(0..4).collect();
        assert_eq!(held.waiting_parts(4), whole, "a batch sent whole waits whole");
        held.split_parts.lock().unwrap().extend([0..4, 0..2, 2..4]);
        held.settled_parts.lock().unwrap().extend([2..3, 0..1]);
        assert_eq!(held.waiting_parts(4), [1..2, 3..4]);
        held.settled_parts.lock().unwrap().extend([1..2, 3..4]);
        assert!(held.waiting_parts(4).is_empty());
        // Neighbouring parts that wait stay apart: each is sent under its own range's key.
        let held = Held::default();
        held.split_parts.lock().unwrap().extend([0..8, 0..4]);
        held.settled_parts.lock().unwrap().push(0..2);
        assert_eq!(held.waiting_parts(8), [2..4, 4..8]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_parts_of_a_split_batch_that_wait_are_the_parts_sent_with_their_keys() {
        // 8 → 413; 0..4 → 413; 0..2 → 200; 2..4 and 4..8 → 500, out of retries.
        let answers = [status(413), status(413), status(200), status(500), status(500)];
        let mut rig = rig(answers, 0);
        let held = Arc::new(Held::default());
        rig.settle.held = Some(Arc::clone(&held));
        rig.deliverer.deliver(&events(8), "key", &rig.settle).await;
        let keys: Vec<String> = rig.calls().into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["key", "key.0-4", "key.0-2", "key.2-4", "key.4-8"]);
        let waiting = held.waiting_parts(8);
        assert_eq!(waiting, [2..4, 4..8]);
        let waiting_keys: Vec<String> = waiting.iter().map(|p| part_key("key", p)).collect();
        assert!(waiting_keys.iter().all(|k| keys.contains(k)), "each waits under a key it was sent with");
        assert_eq!(held.exhausted.load(Relaxed), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn other_4xx_are_rejected_without_a_retry() {
        let rig = rig([status(401)], 3);
        rig.deliverer.deliver(&events(3), "key", &rig.settle).await;
        assert_eq!(rig.calls().len(), 1);
        assert_eq!(rig.counted(), [0, 3, 0, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_run_out() {
        let rig = rig(std::iter::repeat_n(status(500), 4), 3);
        rig.deliverer.deliver(&events(2), "key", &rig.settle).await;
        assert_eq!(rig.calls().len(), 4);
        assert_eq!(rig.counted(), [0, 0, 2, 0, 0]);
    }

    impl Rig {
        /// Starts the drain `after` from now, with `deadline` from now.
        async fn shut_down(&self, after: Duration, deadline: Duration) {
            tokio::time::sleep(after).await;
            let _ = self.shutdown.send(Some(Instant::now() + deadline));
        }

        /// When each call was made, from `start`.
        fn call_times(&self, start: Instant) -> Vec<Duration> {
            self.calls().iter().map(|c| c.at - start).collect()
        }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_keeps_the_normal_backoff_inside_the_deadline() {
        let rig = rig([status(500), status(500)], 3);
        let start = Instant::now();
        let batch = events(1);
        tokio::join!(rig.deliverer.deliver(&batch, "key", &rig.settle), rig.shut_down(ms(100), ms(10_000)));
        assert_eq!(rig.counted(), [1, 0, 0, 0, 0]);
        let at = rig.call_times(start);
        assert_eq!(at.len(), 3);
        assert!(at[1] >= ms(1000) && at[2] >= at[1] + ms(2000), "the backoff was kept: {at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_backoff_past_the_deadline_becomes_one_last_attempt_just_before_it() {
        let rig = rig(std::iter::repeat_n(status(500), 10), 5);
        let start = Instant::now();
        let batch = events(2);
        tokio::join!(rig.deliverer.deliver(&batch, "key", &rig.settle), rig.shut_down(ms(100), ms(2_400)));
        // Attempts at 0 and ~1 s; the 2 s backoff would end past the deadline (2.5 s): one
        // last attempt at the deadline less the last attempt's window (1 s), with 1 s to go.
        let at = rig.call_times(start);
        assert_eq!(at.len(), 3, "{at:?}");
        assert_eq!(at[2], ms(1_500), "{at:?}");
        assert_eq!(rig.calls()[2].timeout, ms(1_000));
        assert_eq!(rig.counted(), [0, 0, 0, 0, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_out_inside_the_deadline_and_never_shortened() {
        let asked = |secs| Answer::Status { status: 429, retry_after: Some(Duration::from_secs(secs)) };
        let rig = rig([asked(2)], 3);
        let _ = rig.shutdown.send(Some(Instant::now() + ms(10_000)));
        let start = Instant::now();
        rig.deliverer.deliver(&events(1), "key", &rig.settle).await;
        assert_eq!(rig.call_times(start), [ms(0), ms(2_000)]);
        assert_eq!(rig.counted(), [1, 0, 0, 0, 0]);

        let rig = rig_with_deadline([asked(60)], ms(2_000));
        let start = Instant::now();
        rig.deliverer.deliver(&events(1), "key", &rig.settle).await;
        assert_eq!(rig.call_times(start), [ms(0)], "nothing resent");
        assert_eq!(Instant::now() - start, ms(0), "left unsent at once");
        assert_eq!(rig.counted(), [0, 0, 0, 0, 1]);
    }

    fn rig_with_deadline(answers: impl IntoIterator<Item = Answer>, deadline: Duration) -> Rig {
        let rig = rig(answers, 3);
        let _ = rig.shutdown.send(Some(Instant::now() + deadline));
        rig
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_pauses_every_batch_until_it_ends() {
        let asked = Answer::Status { status: 503, retry_after: Some(Duration::from_secs(2)) };
        let rig = rig([asked], 3);
        let start = Instant::now();
        let later = async {
            tokio::time::sleep(ms(500)).await;
            rig.deliverer.deliver(&events(3), "key", &rig.settle).await;
        };
        let batch = events(1);
        tokio::join!(rig.deliverer.deliver(&batch, "key", &rig.settle), later);
        let at = rig.call_times(start);
        assert_eq!(at, [ms(0), ms(2_000), ms(2_000)], "no request while paused");
        assert_eq!(rig.counted(), [4, 0, 0, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stored_batch_waits_out_the_client_wide_pause_and_keeps_its_key() {
        let asked = Answer::Status { status: 429, retry_after: Some(Duration::from_secs(2)) };
        let rig = rig([asked], 3);
        let start = Instant::now();
        let stored = rig.deliverer.envelope.body(&events(2));
        let handoff = Arc::clone(&rig.settle.handoff);
        let replayed = async {
            tokio::time::sleep(ms(500)).await;
            rig.deliverer.send_stored(stored, "stored-key", 2, handoff).await
        };
        let batch = events(1);
        let ((), sent) = tokio::join!(rig.deliverer.deliver(&batch, "own-key", &rig.settle), replayed);
        assert_eq!(sent, Sent::Done(Settled::delivered(2)));
        assert_eq!(rig.call_times(start), [ms(0), ms(2_000), ms(2_000)], "the replay waited for the pause");
        let keys: Vec<String> = rig.calls().into_iter().map(|c| c.key).collect();
        assert!(keys.contains(&"stored-key".to_owned()), "sent with its stored key: {keys:?}");
        for (answers, expected) in [
            (vec![status(400)], Sent::Done(Settled::rejected(1))),
            (vec![status(413)], Sent::Done(Settled::too_large(1))),
            (vec![status(503); 4], Sent::NotNow),
        ] {
            let fresh = super::tests::rig(answers, 3);
            let body = fresh.deliverer.envelope.body(&events(1));
            let sent = fresh.deliverer.send_stored(body, "k", 1, Arc::clone(&fresh.settle.handoff)).await;
            assert_eq!(sent, expected, "settled as one; out of retries it is kept");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stored_batch_answered_413_is_split_with_keys_the_same_on_every_try() {
        // 4 → 413; 0..2 → 413; 0..1 → 200; 1..2 → 413 (alone: too large); 2..4 → 400.
        let answers = [status(413), status(413), status(200), status(413), status(400)];
        let rig = rig(answers, 3);
        let stored = rig.deliverer.envelope.body(&events(4));
        let handoff = Arc::clone(&rig.settle.handoff);
        let sent = rig.deliverer.send_stored(stored.clone(), "stored", 4, handoff).await;
        assert_eq!(sent, Sent::Done(Settled { delivered: 1, rejected: 2, too_large: 1 }));
        let calls = rig.calls();
        let sizes: Vec<usize> = calls.iter().map(|c| c.events).collect();
        assert_eq!(sizes, [4, 2, 1, 1, 2]);
        let keys: Vec<&str> = calls.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["stored", "stored.0-2", "stored.0-1", "stored.1-2", "stored.2-4"]);
        // A part that cannot be sent now leaves the batch whole for later, and the next try
        // sends the same parts under the same keys.
        let answers = [status(413), status(200)].into_iter().chain(std::iter::repeat_n(status(503), 4));
        let again = super::tests::rig(answers, 3);
        let handoff = Arc::clone(&again.settle.handoff);
        assert_eq!(again.deliverer.send_stored(stored, "stored", 4, handoff).await, Sent::NotNow);
        let keys: Vec<String> = again.calls().into_iter().map(|c| c.key).collect();
        assert_eq!(keys[..3], ["stored", "stored.0-2", "stored.2-4"]);
    }
}
