//! Per-thread lanes: where the threads that emit events leave them for the uploader.
//!
//! Each emitting thread gets a lane of its own per reporter, a `VecDeque` behind a mutex that
//! only that thread and the uploader ever lock. A push is an uncontended lock and a write into
//! memory the thread wrote before: no allocation once the lane has grown to its working size,
//! and no cache line that every emitting thread fights over.
//!
//! The uploader drains every lane whenever it takes events, so an event never waits on its
//! thread emitting another. A lane outlives its thread until it is drained: events left by a
//! thread that exits are still sent.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::record::Record;

/// Records moved out of a lane per lock, so that the emitting thread never waits long.
const DRAIN_CHUNK: usize = 256;
/// Room (in records) a lane always keeps once it has grown to it.
const KEEP_CAPACITY: usize = 256;
/// A lane gives back room beyond [`KEEP_CAPACITY`] once it has not needed it for this long.
const IDLE_BEFORE_SHRINK: Duration = Duration::from_secs(5);

/// Tells reporters apart in the threads' lists of lanes.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's lane for each reporter it has emitted to.
    static MINE: RefCell<Vec<(u64, Arc<Lane>)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, Default)]
struct Lane {
    records: Mutex<Queued>,
    /// The reporter is gone: threads drop the lane from their lists.
    retired: AtomicBool,
}

#[derive(Debug, Default)]
struct Queued {
    records: VecDeque<Record>,
    /// When a drain last found the lane using a good part of its room. Only the uploader
    /// touches it.
    busy_at: Option<Instant>,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        // A lane's lock guards no invariant a panic could break.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Queued {
    /// Moves up to `k` records into `out`. Once the lane is empty, gives back room it has not
    /// needed lately, so that a burst's memory is returned without a lane re-growing (and
    /// copying itself) under steady load.
    fn drain_into(&mut self, k: usize, out: &mut Vec<Record>) {
        let held = self.records.len();
        let capacity = self.records.capacity();
        if held > capacity / 4 {
            self.busy_at = Some(Instant::now());
        }
        out.extend(self.records.drain(..k.min(held)));
        if self.records.is_empty()
            && capacity > 2 * KEEP_CAPACITY
            && self.busy_at.is_none_or(|at| at.elapsed() >= IDLE_BEFORE_SHRINK)
        {
            self.records.shrink_to(KEEP_CAPACITY);
            self.busy_at = None;
        }
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

impl Lanes {
    /// Puts `record` in the calling thread's lane, or hands it to `elsewhere` when the thread
    /// can no longer have one (it is being torn down).
    pub(crate) fn push(&self, record: Record, elsewhere: impl FnOnce(Record)) {
        let mut record = Some(record);
        let _ = MINE.try_with(|mine| {
            let Ok(mut mine) = mine.try_borrow_mut() else { return };
            let lane = match mine.iter().find(|(id, _)| *id == self.id) {
                Some((_, lane)) => lane,
                None => {
                    mine.retain(|(_, lane)| !lane.retired.load(Relaxed));
                    let lane = Arc::new(Lane::default());
                    self.registry().push(Arc::clone(&lane));
                    mine.push((self.id, lane));
                    &mine[mine.len() - 1].1
                }
            };
            if let Some(record) = record.take() {
                lane.lock().records.push_back(record);
            }
        });
        if let Some(record) = record {
            elsewhere(record);
        }
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
                lane.lock().drain_into((max - n).min(DRAIN_CHUNK), &mut chunk);
                n += chunk.len();
                chunk.drain(..).for_each(&mut each);
            }
            if n == before || n >= max {
                break;
            }
        }
        drop(lanes);
        // A lane only the registry holds belongs to a thread that has exited.
        self.registry().retain(|lane| Arc::strong_count(lane) > 1 || !lane.lock().records.is_empty());
        n
    }

    /// Whether every lane is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.registry().iter().all(|lane| lane.lock().records.is_empty())
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
            lane.lock().records = VecDeque::new();
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
}
