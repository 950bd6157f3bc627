//! The consumer's view of the hand-off: what only the uploader thread calls. It takes records
//! out of the lanes, books their fate and gives their room back, and moves the wake mark.

use std::sync::PoisonError;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

use super::Handoff;
use super::record::Record;

impl Handoff {
    /// Moves the wake mark to `flush_threshold` events past the `sealed` ones (in batches
    /// waiting or in flight, which `held` also counts), and re-arms the wake-up. Only the
    /// uploader calls this.
    ///
    /// Returns true when events pushed while the mark moved already reach it: the caller must
    /// take again, as their pushes may have checked the old mark. An event counted in `held`
    /// but not in the queue yet does not count: its push checks the new mark itself.
    pub(crate) fn rearm_wake(&self, sealed: usize) -> bool {
        let mark = &*self.wake_mark;
        let at = sealed + self.threshold;
        mark.pending.store(false, Release);
        mark.at.store(at, SeqCst);
        self.load.held.load(SeqCst) >= at && !(self.queue.is_empty() && self.lanes.is_empty())
    }

    /// Frees the queue room of `n` finished events. Only the uploader thread calls this, so
    /// its own count of events taken from the queue stays in step with `held`.
    pub(crate) fn release(&self, n: u64) {
        self.load.held.fetch_sub(n as usize, AcqRel);
    }

    /// Counts `bytes` more of payload waiting: a record's JSON, once serialized.
    pub(crate) fn add_bytes(&self, bytes: usize) {
        self.load.bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts `bytes` of payload as no longer waiting: a record's heap once it is
    /// serialized or dropped, a batch's JSON once it is settled.
    pub(crate) fn release_bytes(&self, bytes: usize) {
        self.load.bytes.fetch_sub(bytes, Relaxed);
    }

    pub(crate) fn max_queue(&self) -> usize {
        self.max_queue
    }

    /// Takes up to `max` records: SESSION_START first, then each thread's in the order it
    /// pushed them, then SESSION_END. They stay held until settled.
    pub(crate) fn take(&self, max: usize, mut each: impl FnMut(Record)) -> usize {
        let mut n = 0;
        let start =
            if max > 0 { self.start.lock().unwrap_or_else(PoisonError::into_inner).take() } else { None };
        if let Some(start) = start {
            each(start);
            n += 1;
        }
        n += self.lanes.drain(max - n, &mut each);
        while n < max {
            match self.queue.pop() {
                Some(r) => {
                    each(r);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Once closed, takes every record left, including those of pushes that passed the closed
    /// check just before the close and have not reached their lane yet: while `held` counts
    /// more than the `unsettled` records the uploader has and those taken here, it waits for
    /// them, up to `grace`. Returns how many it took; they are held until settled.
    pub(crate) fn take_last(&self, unsettled: usize, grace: Duration, mut each: impl FnMut(Record)) -> usize {
        let until = Instant::now() + grace;
        let mut n = self.take(usize::MAX, &mut each);
        // SeqCst: see `admit`.
        while self.load.held.load(SeqCst) > unsettled + n && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(50));
            n += self.take(usize::MAX, &mut each);
        }
        n
    }

    /// The uploader took a flush request: the next one needs a message again.
    pub(crate) fn flush_taken(&self) {
        self.flush_requested.store(false, Release);
    }
}
