//! Per-thread lanes: where the threads that emit events leave them for the uploader.
//!
//! Each emitting thread gets a lane of its own per reporter, behind a mutex that only that
//! thread and the uploader ever lock. A captured event goes in as a fixed-size [`Head`] and
//! its packed bytes (entries, then text) appended to the lane's byte buffer: no allocation
//! once the lane has grown to its working size, whatever the event's size, and no cache line
//! that two emitting threads write. The thread keeps the lane it last pushed a captured
//! event into beside its scratch ([`LastLane`]), so that the next event of the same reporter
//! goes straight in; records of other kinds find the lane in the thread's list of lanes.
//!
//! The uploader takes a lane's whole contents at once, swapping in the buffers it emptied the
//! time before (so the thread writes into memory that already has room), and makes each
//! event's [`Record`] on its own thread, in push order. It drains every lane whenever it
//! takes events, so an event never waits on its thread emitting another. A lane outlives its
//! thread until it is drained: events left by a thread that exits are still sent.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::clock::Stamp;
use super::record::{Captured, Layout, PackedFields, Record};

/// Records moved out of a lane per turn, so that one busy lane cannot keep another's waiting.
const DRAIN_CHUNK: usize = 256;
/// Room (in events) a lane always keeps once it has grown to it.
const KEEP_CAPACITY: usize = 256;
/// Room (in bytes of entries and text) a lane always keeps once it has grown to it.
const KEEP_BYTES: usize = KEEP_CAPACITY * 64;
/// A lane gives back room beyond what it keeps once it has not needed it for this long.
const IDLE_BEFORE_SHRINK: Duration = Duration::from_secs(5);

/// Tells reporters apart in the threads' lists of lanes.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's lane for each reporter it has emitted to.
    static MINE: RefCell<Vec<(u64, Arc<Lane>)>> = const { RefCell::new(Vec::new()) };
}

/// One thread's lane. Its parts sit on cache lines of their own: the emitting thread writes
/// `open`, the uploader `taken`, and no other thread's lane shares a line with either.
#[derive(Debug, Default)]
struct Lane {
    /// What the thread pushes into; the uploader swaps it out.
    open: CachePadded<Mutex<Pending>>,
    /// What the uploader took and has not made records of yet. Only the uploader locks it.
    taken: CachePadded<Mutex<Taken>>,
    /// The reporter is gone: threads drop the lane from their lists.
    retired: AtomicBool,
}

/// A captured event in a lane, but for its bytes.
#[derive(Debug, Clone, Copy)]
struct Head {
    layout: Layout,
    time: Stamp,
    /// Bytes of entries and text it takes in [`Pending::bytes`].
    len: u32,
}

/// One item of a lane, in push order.
#[derive(Debug)]
enum Item {
    /// A captured event; its bytes follow the previous event's.
    Event(Head),
    /// The next of [`Pending::records`]: an event made some other way (a span, an error).
    Record,
}

/// Events waiting in a lane, in the order they were pushed.
#[derive(Debug, Default)]
struct Pending {
    items: Vec<Item>,
    /// The captured events' entries and text, back to back.
    bytes: Vec<u8>,
    records: VecDeque<Record>,
}

impl Pending {
    /// Empties it, keeping its room unless it has been idle a while.
    fn reset(&mut self, idle: bool) {
        self.items.clear();
        self.bytes.clear();
        self.records.clear();
        if idle {
            self.items.shrink_to(KEEP_CAPACITY);
            self.bytes.shrink_to(KEEP_BYTES);
            self.records.shrink_to(KEEP_CAPACITY);
        }
    }

    /// Grows this (empty) one's room to `other`'s.
    fn match_room(&mut self, other: &Pending) {
        self.items.reserve(other.items.capacity());
        self.bytes.reserve(other.bytes.capacity());
        self.records.reserve(other.records.capacity());
    }

    fn is_large(&self) -> bool {
        self.items.capacity() > 2 * KEEP_CAPACITY
            || self.bytes.capacity() > 2 * KEEP_BYTES
            || self.records.capacity() > 2 * KEEP_CAPACITY
    }
}

/// The uploader's side of a lane: a [`Pending`] taken whole, and how far it has read it.
#[derive(Debug, Default)]
struct Taken {
    pending: Pending,
    next_item: usize,
    next_byte: usize,
    /// When a take last found the lane using a good part of its room.
    busy_at: Option<Instant>,
}

impl Taken {
    fn is_done(&self) -> bool {
        self.next_item >= self.pending.items.len()
    }

    /// Moves up to `k` of the taken events, as records, into `out`.
    fn read_into(&mut self, k: usize, out: &mut Vec<Record>) {
        let end = self.pending.items.len().min(self.next_item + k);
        for item in &self.pending.items[self.next_item..end] {
            let record = match item {
                Item::Event(head) => {
                    let from = self.next_byte;
                    self.next_byte += head.len as usize;
                    let bytes = self.pending.bytes.get(from..self.next_byte).unwrap_or_default();
                    PackedFields::record(head.layout, head.time, bytes)
                }
                Item::Record => match self.pending.records.pop_front() {
                    Some(record) => record,
                    None => continue,
                },
            };
            out.push(record);
        }
        self.next_item = end;
    }

    /// Once read to the end, swaps the lane's open events in (giving it this empty room to
    /// fill), so that the next read continues with them.
    fn refill(&mut self, lane: &Lane) {
        let held = self.pending.items.len();
        if held > self.pending.items.capacity() / 4 {
            self.busy_at = Some(Instant::now());
        }
        let idle =
            self.pending.is_large() && self.busy_at.is_none_or(|at| at.elapsed() >= IDLE_BEFORE_SHRINK);
        self.pending.reset(idle);
        if idle {
            self.busy_at = None;
        }
        (self.next_item, self.next_byte) = (0, 0);
        let mut open = lane.lock_open();
        if !idle {
            // The thread gets room for as many events as it needed the last time: once the
            // lane has grown to its working size, pushes never allocate.
            self.pending.match_room(&open);
        }
        std::mem::swap(&mut *open, &mut self.pending);
    }
}

impl Lane {
    /// The events the thread pushes into. A poisoned lock guards no invariant a panic could
    /// break.
    #[inline(always)]
    fn lock_open(&self) -> MutexGuard<'_, Pending> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_taken(&self) -> MutexGuard<'_, Taken> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_empty(&self) -> bool {
        self.lock_taken().is_done() && self.lock_open().items.is_empty()
    }

    /// Moves up to `k` events out of the lane, as records, into `out`.
    fn drain_into(&self, k: usize, out: &mut Vec<Record>) {
        let mut taken = self.lock_taken();
        if taken.is_done() {
            taken.refill(self);
        }
        taken.read_into(k, out);
    }
}

/// One reporter's lanes.
#[derive(Debug)]
pub(crate) struct Lanes {
    id: u64,
    all: Mutex<Vec<Arc<Lane>>>,
    /// Where the next drain starts.
    next: AtomicUsize,
}

impl Default for Lanes {
    fn default() -> Self {
        Lanes { id: NEXT_ID.fetch_add(1, Relaxed), all: Mutex::new(Vec::new()), next: AtomicUsize::new(0) }
    }
}

/// The lane an emitting thread last pushed a captured event into, kept beside its scratch so
/// that the next event of the same reporter goes straight in, without looking the lane up
/// among the thread's lanes.
#[derive(Debug, Default)]
pub(crate) struct LastLane(Option<(u64, Arc<Lane>)>);

impl LastLane {
    /// None yet.
    pub(crate) const fn new() -> Self {
        LastLane(None)
    }
}

impl Lane {
    /// Appends a captured event: its head, then its bytes.
    #[inline(always)]
    fn push_captured(&self, event: &Captured<'_>) {
        let mut pending = self.lock_open();
        let len = event.len();
        pending.bytes.extend_from_slice(event.entries.as_flattened());
        pending.bytes.extend_from_slice(event.text);
        // An event's text is bounded far below u32::MAX.
        let head = Head { layout: event.layout, time: event.time, len: len as u32 };
        pending.items.push(Item::Event(head));
    }
}

impl Lanes {
    /// Puts a captured event in the calling thread's lane, the one in `last` when it is this
    /// reporter's; false when the thread can no longer have one (it is being torn down).
    #[inline(always)]
    pub(crate) fn push_captured(&self, last: &mut LastLane, event: &Captured<'_>) -> bool {
        match &last.0 {
            // A reporter's id is never reused, and its lanes are retired only once it is gone.
            Some((id, lane)) if *id == self.id => {
                lane.push_captured(event);
                true
            }
            _ => self.push_captured_anew(last, event),
        }
    }

    /// [`push_captured`](Self::push_captured) into the lane found among the thread's lanes
    /// (or made), which `last` then keeps.
    #[cold]
    #[inline(never)]
    fn push_captured_anew(&self, last: &mut LastLane, event: &Captured<'_>) -> bool {
        let Some(lane) = self.mine() else { return false };
        lane.push_captured(event);
        last.0 = Some((self.id, lane));
        true
    }

    /// The calling thread's lane for this reporter; `None` when the thread can no longer
    /// have one.
    fn mine(&self) -> Option<Arc<Lane>> {
        self.with_mine(Arc::clone)
    }

    /// Runs `f` on the calling thread's lane for this reporter, found among the thread's
    /// lanes or made; `None` when the thread can no longer have one (it is being torn down).
    #[inline]
    fn with_mine<R>(&self, f: impl FnOnce(&Arc<Lane>) -> R) -> Option<R> {
        MINE.try_with(|mine| {
            let mut mine = mine.try_borrow_mut().ok()?;
            let lane = match mine.iter().find(|(id, _)| *id == self.id) {
                Some((_, lane)) => lane,
                None => self.register(&mut mine),
            };
            Some(f(lane))
        })
        .ok()
        .flatten()
    }

    /// Puts `record` in the calling thread's lane, or hands it to `elsewhere` when the thread
    /// can no longer have one (it is being torn down).
    pub(crate) fn push(&self, record: Record, elsewhere: impl FnOnce(Record)) {
        let mut record = Some(record);
        self.with_lane(|pending| {
            if let Some(record) = record.take() {
                pending.records.push_back(record);
                pending.items.push(Item::Record);
            }
        });
        if let Some(record) = record {
            elsewhere(record);
        }
    }

    /// Runs `put` on the calling thread's lane, under its lock; false when the thread has no
    /// lane and can no longer have one.
    #[inline]
    fn with_lane(&self, put: impl FnOnce(&mut Pending)) -> bool {
        self.with_mine(|lane| put(&mut lane.lock_open())).is_some()
    }

    /// Makes the calling thread's lane for this reporter.
    #[cold]
    fn register<'m>(&self, mine: &'m mut Vec<(u64, Arc<Lane>)>) -> &'m Arc<Lane> {
        mine.retain(|(_, lane)| !lane.retired.load(Relaxed));
        let lane = Arc::new(Lane::default());
        self.registry().push(Arc::clone(&lane));
        mine.push((self.id, lane));
        &mine[mine.len() - 1].1
    }

    /// Moves up to `max` records out of the lanes, each lane's in the order its thread pushed
    /// them, into `each`; returns how many. Lanes of threads that have exited are dropped once
    /// empty.
    pub(crate) fn drain(&self, max: usize, mut each: impl FnMut(Record)) -> usize {
        let mut lanes: Vec<Arc<Lane>> = self.registry().clone();
        // A chunk from each lane in turn, starting one further on at each call: a busy thread
        // cannot keep another's events waiting.
        if !lanes.is_empty() {
            let start = self.next.fetch_add(1, Relaxed) % lanes.len();
            lanes.rotate_left(start);
        }
        let mut chunk = Vec::new();
        let mut n = 0;
        loop {
            let before = n;
            for lane in &lanes {
                if n >= max {
                    break;
                }
                lane.drain_into((max - n).min(DRAIN_CHUNK), &mut chunk);
                n += chunk.len();
                chunk.drain(..).for_each(&mut each);
            }
            if n == before || n >= max {
                break;
            }
        }
        drop(lanes);
        // A lane only the registry holds belongs to a thread that has exited.
        self.registry().retain(|lane| Arc::strong_count(lane) > 1 || !lane.is_empty());
        n
    }

    /// Whether every lane is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.registry().iter().all(|lane| lane.is_empty())
    }

    fn registry(&self) -> MutexGuard<'_, Vec<Arc<Lane>>> {
        self.all.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for lane in self.registry().iter() {
            lane.retired.store(true, Relaxed);
            // The thread may keep the lane a long while: give its room back too.
            *lane.lock_open() = Pending::default();
            *lane.lock_taken() = Taken::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::record::Body;
    use crate::severity::Severity;

    fn record(n: u64) -> Record {
        let data = serde_json::json!(n);
        Record {
            time: crate::handoff::clock::Stamp::now(),
            severity: Severity::Info,
            body: Body::Json { name: "n".into(), data },
        }
    }

    fn number(r: &Record) -> u64 {
        match &r.body {
            Body::Json { data, .. } => data.as_u64().unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn each_threads_records_come_out_in_order_and_once() {
        let lanes = Arc::new(Lanes::default());
        // Joined, not scoped: `join` returns once the thread's lane list is gone too.
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lanes = Arc::clone(&lanes);
                std::thread::spawn(move || {
                    (0..1000).for_each(|i| lanes.push(record(t * 1000 + i), |_| unreachable!()));
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut seen = Vec::new();
        // In small takes, as the uploader does.
        while lanes.drain(7, |r| seen.push(number(&r))) > 0 {}
        assert_eq!(seen.len(), 4000);
        for t in 0..4 {
            let mine: Vec<u64> = seen.iter().copied().filter(|n| n / 1000 == t).collect();
            assert_eq!(mine, (t * 1000..t * 1000 + 1000).collect::<Vec<_>>());
        }
        assert!(lanes.registry().is_empty(), "the exited threads' lanes are dropped once drained");
    }

    #[test]
    fn a_busy_lane_does_not_starve_the_others() {
        let lanes = Lanes::default();
        std::thread::scope(|s| {
            s.spawn(|| (0..2000).for_each(|i| lanes.push(record(i), |_| unreachable!())));
        });
        std::thread::scope(|s| {
            s.spawn(|| lanes.push(record(5000), |_| unreachable!()));
        });
        for _ in 0..2 {
            let mut seen = Vec::new();
            lanes.drain(DRAIN_CHUNK + 1, |r| seen.push(number(&r)));
            if seen.contains(&5000) {
                return;
            }
        }
        panic!("the quiet thread's event waited behind the busy one's");
    }

    #[test]
    fn a_lane_outlives_its_thread_until_drained() {
        let lanes = Lanes::default();
        std::thread::scope(|s| {
            s.spawn(|| lanes.push(record(7), |_| unreachable!()));
        });
        assert_eq!(lanes.registry().len(), 1);
        let mut seen = Vec::new();
        assert_eq!(lanes.drain(usize::MAX, |r| seen.push(number(&r))), 1);
        assert_eq!(seen, [7]);
    }

    #[test]
    fn reporters_have_separate_lanes_on_one_thread() {
        let (a, b) = (Lanes::default(), Lanes::default());
        a.push(record(1), |_| unreachable!());
        b.push(record(2), |_| unreachable!());
        let mut seen = Vec::new();
        a.drain(usize::MAX, |r| seen.push(number(&r)));
        assert_eq!(seen, [1]);
        drop(a);
        // The dropped reporter's lane leaves this thread's list when it next registers one.
        let c = Lanes::default();
        c.push(record(3), |_| unreachable!());
        assert_eq!(MINE.with(|m| m.borrow().len()), 2);
        seen.clear();
        b.drain(usize::MAX, |r| seen.push(number(&r)));
        assert_eq!(seen, [2]);
    }

    /// The callsite of an event with fields `a` (a number) and `b` (a string).
    fn callsite() -> &'static tracing::Metadata<'static> {
        use std::sync::OnceLock;
        use tracing_subscriber::layer::{Context, SubscriberExt};
        static META: OnceLock<&'static tracing::Metadata<'static>> = OnceLock::new();
        struct Keep;
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Keep {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                let _ = META.set(event.metadata());
            }
        }
        let subscriber = tracing_subscriber::registry().with(Keep);
        tracing::subscriber::with_default(subscriber, || tracing::info!(a = 1u64, b = "x"));
        META.get().copied().unwrap()
    }

    /// Pushes a captured event of [`callsite`] with `a = n` and `b` `n` bytes long.
    fn push_captured(lanes: &Lanes, n: u64) {
        push_captured_via(lanes, &mut LastLane::new(), n);
    }

    /// [`push_captured`], through the thread's last lane `last`.
    fn push_captured_via(lanes: &Lanes, last: &mut LastLane, n: u64) {
        use crate::handoff::record::{Captured, Layout, TextRange, Val, encode_entry};
        let meta = callsite();
        let text = "b".repeat(n as usize);
        let entries = [encode_entry(0, Val::U64(n)), encode_entry(1, Val::Str(TextRange(0, n as u32)))];
        let layout = Layout::new(meta, None, entries.len(), 0);
        let event = Captured { layout, time: Stamp::now(), entries: &entries, text: text.as_bytes() };
        assert!(lanes.push_captured(last, &event));
    }

    /// A captured event's `a` and the length of its `b`, or a pushed record's number.
    fn seen(r: &Record) -> (u64, usize) {
        use crate::handoff::record::{FieldSource, Val};
        match &r.body {
            Body::Packed(p) => match (p.get("a"), p.get_str("b")) {
                (Some(Val::U64(a)), Some(b)) => (a, b.len()),
                other => panic!("{other:?}"),
            },
            _ => (number(r), usize::MAX),
        }
    }

    #[test]
    fn captured_events_and_records_come_out_in_push_order() {
        let lanes = Lanes::default();
        let mut want = Vec::new();
        for n in 0..600u64 {
            if n % 7 == 0 {
                lanes.push(record(n), |_| unreachable!());
                want.push((n, usize::MAX));
            } else {
                // From 0 to 99 bytes of text: inline records and heap ones.
                push_captured(&lanes, n % 100);
                want.push((n % 100, (n % 100) as usize));
            }
        }
        let mut got = Vec::new();
        while lanes.drain(13, |r| got.push(seen(&r))) > 0 {}
        assert_eq!(got, want);
    }

    /// A thread that emits to two reporters in turn keeps one lane of each, whichever its last
    /// lane was: every event lands in its own reporter's lane, in order.
    #[test]
    fn a_thread_emitting_to_two_reporters_in_turn_fills_each_ones_lane() {
        let (a, b) = (Lanes::default(), Lanes::default());
        let mut last = LastLane::new();
        for n in 0..40u64 {
            let lanes = if n % 3 == 0 { &b } else { &a };
            push_captured_via(lanes, &mut last, n);
            push_captured(lanes, n);
        }
        let drained = |lanes: &Lanes| {
            let mut got = Vec::new();
            while lanes.drain(7, |r| got.push(seen(&r).0)) > 0 {}
            got
        };
        let (of_a, of_b): (Vec<u64>, Vec<u64>) = (0..40).partition(|n| n % 3 != 0);
        let twice = |v: Vec<u64>| v.into_iter().flat_map(|n| [n, n]).collect::<Vec<_>>();
        assert_eq!(drained(&a), twice(of_a));
        assert_eq!(drained(&b), twice(of_b));
        assert_eq!((a.registry().len(), b.registry().len()), (1, 1));
    }

    #[test]
    fn after_a_take_the_thread_has_the_room_it_needed() {
        let lanes = Lanes::default();
        (0..500).for_each(|n| push_captured(&lanes, n % 50));
        let lane = Arc::clone(&lanes.registry()[0]);
        let (items, bytes) = {
            let open = lane.lock_open();
            (open.items.len(), open.bytes.len())
        };
        assert_eq!(lanes.drain(usize::MAX, drop), 500);
        let open = lane.lock_open();
        assert!(open.items.is_empty());
        assert!(open.items.capacity() >= items && open.bytes.capacity() >= bytes, "{items} {bytes}");
    }

    /// Two threads' lanes, and a lane's halves (one thread writes each), share no cache line.
    #[test]
    fn lanes_and_their_halves_sit_on_lines_of_their_own() {
        assert!(std::mem::align_of::<Lane>() >= 128);
        let lane = Lane::default();
        let open = std::ptr::from_ref(&lane.open) as usize;
        let taken = std::ptr::from_ref(&lane.taken) as usize;
        assert!(open.abs_diff(taken) >= 128 && open % 128 == 0 && taken % 128 == 0);
    }
}
