//! The runs adopted from earlier processes, walked oldest first one file at a time, and the
//! spool's bounds: `spool_max_age` (a file older is removed unread) and `spool_max_bytes`
//! (the oldest adopted files, then this run's oldest files whose batches left memory, make
//! room for this run's writes). Only the uploader thread uses
//! it: the writer and the replay task share it through a mutex never held across an await.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::format::{self, Bad, HEADER_LEN, SpoolBatch};
use super::run::Run;
use crate::handoff::SpoolCounters;
use crate::handoff::stats::SpoolDropReason;
use crate::limits::MAX_EVENT_BYTES;

/// The largest spool file read: a full batch of the largest events and its envelope. A file
/// past it is not read at all.
pub(crate) const MAX_FILE_BYTES: u64 = 100 * MAX_EVENT_BYTES as u64 + 64 * 1024;
/// The suffix of a batch file's name; the stem is its sequence number, 20 digits.
pub(crate) const BATCH_SUFFIX: &str = ".batch";
/// The suffix of a file being written.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// Failures in a row after which a batch is tried again after the others of its list.
const TRIES_IN_FRONT: u32 = 3;

/// A batch file's name.
pub(crate) fn batch_name(seq: u64) -> String {
    format!("{seq:020}{BATCH_SUFFIX}")
}

/// The sequence number in a batch file's name.
fn batch_seq(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(BATCH_SUFFIX)?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

/// The adopted runs and the bytes the spool holds.
#[derive(Debug)]
pub(crate) struct Backlog {
    inner: Mutex<Inner>,
    /// Told when this run leaves a file for the replay.
    more: tokio::sync::Notify,
    /// Told when the server answered one of this run's batches: a replay pausing after a
    /// failure tries again at once. An answer while the replay is not pausing (while its own
    /// send was failing) is kept for its next pause.
    answered: tokio::sync::Notify,
    endpoint: String,
    max_bytes: u64,
    max_age: Duration,
}

#[derive(Debug)]
struct Inner {
    runs: VecDeque<Adopted>,
    /// Whether the adopted runs were listed and measured.
    scanned: bool,
    /// Bytes of the adopted files not yet settled and of this run's files.
    used: u64,
    /// Entries of the spool directory that are not runs, counted at the first scan.
    foreign: u64,
    /// The sequence number of the file being sent (out of its run's list meanwhile).
    current: Option<u64>,
    /// The file that could not be sent the last time, and how many times in a row.
    failing: Option<(PathBuf, u32)>,
    /// This run's files whose batches left memory (out of retries or time), oldest first:
    /// (path, bytes). Replayed after the adopted runs; evicted after the adopted runs' files,
    /// before a newer batch is refused.
    left: VecDeque<(PathBuf, u64)>,
}

#[derive(Debug)]
struct Adopted {
    run: Run,
    /// Batch files not yet sent, oldest first: (sequence number, bytes).
    files: VecDeque<(u64, u64)>,
    /// Leave the run's files (another endpoint's, or a newer format's) for another process.
    keep: bool,
}

/// One batch read from the spool, to be sent.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) batch: SpoolBatch,
    path: PathBuf,
    bytes: u64,
    /// One of this run's files (from `left`), not an adopted run's.
    own: bool,
}

/// What became of a replayed batch's events: delivered, or answered with a 4xx or a 413 (a
/// batch split after a 413 can have some of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) delivered: u64,
    pub(crate) rejected: u64,
    pub(crate) too_large: u64,
}

impl Settled {
    /// All `events` of a batch delivered.
    #[cfg(test)]
    pub(crate) fn delivered(events: u64) -> Self {
        Settled { delivered: events, ..Settled::default() }
    }

    /// All `events` of a batch answered 4xx.
    #[cfg(test)]
    pub(crate) fn rejected(events: u64) -> Self {
        Settled { rejected: events, ..Settled::default() }
    }

    /// All `events` of a batch answered 413.
    #[cfg(test)]
    pub(crate) fn too_large(events: u64) -> Self {
        Settled { too_large: events, ..Settled::default() }
    }
}

impl Loaded {
    /// Whether the batch is one of this run's files, not an adopted run's.
    pub(crate) fn is_own(&self) -> bool {
        self.own
    }
}

impl Backlog {
    pub(crate) fn new(
        runs: Vec<Run>,
        endpoint: &str,
        max_bytes: u64,
        max_age: Duration,
        foreign: u64,
    ) -> Self {
        let runs = runs.into_iter().map(|run| Adopted { run, files: VecDeque::new(), keep: false }).collect();
        let inner = Inner {
            runs,
            scanned: false,
            used: 0,
            foreign,
            current: None,
            failing: None,
            left: VecDeque::new(),
        };
        let (more, answered) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        Backlog {
            inner: Mutex::new(inner),
            more,
            answered,
            endpoint: endpoint.to_owned(),
            max_bytes,
            max_age,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists and measures the adopted runs now, if not yet done (see `scan`).
    pub(crate) fn prepare(&self, counters: &SpoolCounters) {
        let mut inner = self.lock();
        self.scan(&mut inner, counters);
    }

    /// Lists and measures the adopted runs once: removes what is too old or is no batch file,
    /// then the oldest files past `max_bytes`.
    fn scan(&self, inner: &mut Inner, counters: &SpoolCounters) {
        if inner.scanned {
            return;
        }
        inner.scanned = true;
        counters.bad_files(inner.foreign);
        let now = SystemTime::now();
        for adopted in &mut inner.runs {
            let (files, bytes) = self.list(&adopted.run, now, counters);
            adopted.files = files;
            inner.used += bytes;
        }
        while inner.used > self.max_bytes && evict_oldest(inner, counters) {}
    }

    /// A run's batch files, oldest first, and their bytes; removes what does not belong.
    fn list(&self, run: &Run, now: SystemTime, counters: &SpoolCounters) -> (VecDeque<(u64, u64)>, u64) {
        let mut files = Vec::new();
        let mut bytes = 0;
        let Ok(entries) = fs::read_dir(&run.dir) else { return (VecDeque::new(), 0) };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_str().unwrap_or("");
            if name == super::run::LOCK_FILE {
                continue;
            }
            // Does not follow a symlink: a link is never read, whatever its name.
            let meta = entry.metadata();
            let file = meta.as_ref().is_ok_and(|m| m.file_type().is_file());
            let seq = batch_seq(name).filter(|_| file);
            let Some(seq) = seq else {
                // A file cut short while being written, a foreign name, a link, a directory.
                counters.bad_files(1);
                let _ = fs::remove_file(entry.path());
                continue;
            };
            let meta = meta.ok();
            let age = meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| now.duration_since(t).ok());
            let size = meta.map_or(0, |m| m.len());
            if age.is_some_and(|a| a > self.max_age) {
                let path = entry.path();
                counters.dropped(SpoolDropReason::TooOld, events_in(&path));
                let _ = fs::remove_file(path);
                continue;
            }
            files.push((seq, size));
            bytes += size;
        }
        files.sort_unstable();
        (files.into(), bytes)
    }

    /// The next batch to send, oldest first (the adopted runs', then, with `own`, this run's
    /// files left on disk): reads one file (at most [`MAX_FILE_BYTES`]), skipping and counting
    /// what cannot be sent, releasing each run once it is done.
    pub(crate) fn next(&self, counters: &SpoolCounters, own: bool) -> Option<Loaded> {
        let mut inner = self.lock();
        self.scan(&mut inner, counters);
        loop {
            let Some(adopted) = inner.runs.front_mut() else {
                return if own { next_left(&mut inner, counters) } else { None };
            };
            let Some((seq, bytes)) = adopted.files.pop_front() else {
                if let Some(done) = inner.runs.pop_front() {
                    if done.keep { drop(done.run) } else { done.run.remove() }
                }
                continue;
            };
            let path = adopted.run.dir.join(batch_name(seq));
            let read = read_capped(&path, bytes);
            match read.map(|b| format::decode(&b)) {
                Some(Ok(batch)) if batch.endpoint == self.endpoint => {
                    inner.current = Some(seq);
                    return Some(Loaded { batch, path, bytes, own: false });
                }
                Some(Ok(_)) => {
                    // Another endpoint's run: it waits, whole, for a process sending there.
                    let freed: u64 = bytes + adopted.files.drain(..).map(|(_, b)| b).sum::<u64>();
                    adopted.keep = true;
                    inner.used = inner.used.saturating_sub(freed);
                }
                Some(Err(Bad::NewerVersion)) => {
                    counters.bad_files(1);
                    adopted.keep = true;
                    inner.used = inner.used.saturating_sub(bytes);
                }
                Some(Err(_)) | None => {
                    counters.bad_files(1);
                    let _ = fs::remove_file(&path);
                    inner.used = inner.used.saturating_sub(bytes);
                }
            }
        }
    }

    /// Books what became of a replayed batch's events and removes its file.
    pub(crate) fn done(&self, loaded: Loaded, settled: Settled, counters: &SpoolCounters) {
        let mut inner = self.lock();
        inner.current = None;
        inner.used = inner.used.saturating_sub(loaded.bytes);
        let _ = fs::remove_file(&loaded.path);
        counters.replayed(settled.delivered);
        counters.dropped(SpoolDropReason::Rejected, settled.rejected);
        counters.dropped(SpoolDropReason::TooLarge, settled.too_large);
    }

    /// Puts a batch that could not be sent back at the front, to be tried again; after
    /// [`TRIES_IN_FRONT`] failures in a row, at the back of its list, so that a batch the server
    /// keeps refusing does not hold back the others.
    pub(crate) fn put_back(&self, loaded: Loaded) {
        let mut inner = self.lock();
        let failures = match inner.failing.take() {
            Some((path, n)) if path == loaded.path => n + 1,
            _ => 1,
        };
        let to_back = failures >= TRIES_IN_FRONT;
        if !to_back {
            inner.failing = Some((loaded.path.clone(), failures));
        }
        if loaded.own {
            let file = (loaded.path, loaded.bytes);
            if to_back {
                inner.left.push_back(file)
            } else {
                inner.left.push_front(file)
            }
            return;
        }
        let current = inner.current.take();
        if let (Some(front), Some(seq)) = (inner.runs.front_mut(), current) {
            let file = (seq, loaded.bytes);
            if to_back { front.files.push_back(file) } else { front.files.push_front(file) }
        }
    }

    /// Makes room for `bytes` more of this run's files, evicting as few of the oldest files
    /// as it takes (adopted ones first, then this run's left on disk). False, with nothing
    /// evicted, when even evicting them all cannot make room: the file is not written.
    pub(crate) fn reserve(&self, bytes: u64, counters: &SpoolCounters) -> bool {
        let mut inner = self.lock();
        self.scan(&mut inner, counters);
        let over = (inner.used + bytes).saturating_sub(self.max_bytes);
        if over > evictable(&inner) {
            return false;
        }
        while inner.used + bytes > self.max_bytes {
            if !evict_oldest(&mut inner, counters) {
                return false;
            }
        }
        inner.used += bytes;
        true
    }

    /// Records that this run's file at `path` (`bytes`) holds a batch no longer in memory: it
    /// stays for the next process, and is evicted, oldest first, when a newer batch needs the
    /// room and no adopted file is left to make it.
    pub(crate) fn left_on_disk(&self, path: PathBuf, bytes: u64) {
        self.lock().left.push_back((path, bytes));
        self.more.notify_one();
    }

    /// Waits until this run leaves a file on disk (at once if it did since the last wait).
    pub(crate) async fn more(&self) {
        self.more.notified().await;
    }

    /// Says that the server answered (took or refused) one of this run's batches.
    pub(crate) fn server_answered(&self) {
        self.answered.notify_one();
    }

    /// Waits until the server answers one of this run's batches.
    pub(crate) async fn answered(&self) {
        self.answered.notified().await;
    }

    /// Gives back the room of `bytes` of this run's files, once removed.
    pub(crate) fn release(&self, bytes: u64) {
        let mut inner = self.lock();
        inner.used = inner.used.saturating_sub(bytes);
    }

    /// Whether nothing is left to replay.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.runs.is_empty() && inner.left.is_empty()
    }
}

/// Removes the oldest adopted file (not the one being sent), else the oldest of this run's
/// files left on disk, counting its events as `over_size`. False when there is none.
fn evict_oldest(inner: &mut Inner, counters: &SpoolCounters) -> bool {
    // The file being sent is out of the lists until it is done or put back.
    for adopted in &mut inner.runs {
        if adopted.keep {
            continue;
        }
        if let Some((seq, bytes)) = adopted.files.pop_front() {
            let path = adopted.run.dir.join(batch_name(seq));
            counters.dropped(SpoolDropReason::OverSize, events_in(&path));
            let _ = fs::remove_file(path);
            inner.used = inner.used.saturating_sub(bytes);
            return true;
        }
    }
    let Some((path, bytes)) = inner.left.pop_front() else { return false };
    counters.dropped(SpoolDropReason::OverSize, events_in(&path));
    let _ = fs::remove_file(path);
    inner.used = inner.used.saturating_sub(bytes);
    true
}

/// The bytes [`evict_oldest`] can free: the adopted files not kept for another process (the
/// one being sent is out of the lists) and this run's files left on disk.
fn evictable(inner: &Inner) -> u64 {
    let adopted = inner.runs.iter().filter(|a| !a.keep).flat_map(|a| &a.files).map(|(_, b)| b);
    adopted.chain(inner.left.iter().map(|(_, b)| b)).sum()
}

/// The oldest of this run's files left on disk, read; one that cannot be read is counted
/// and removed.
fn next_left(inner: &mut Inner, counters: &SpoolCounters) -> Option<Loaded> {
    loop {
        let (path, bytes) = inner.left.pop_front()?;
        match read_capped(&path, bytes).map(|b| format::decode(&b)) {
            Some(Ok(batch)) => return Some(Loaded { batch, path, bytes, own: true }),
            _ => {
                counters.bad_files(1);
                let _ = fs::remove_file(&path);
                inner.used = inner.used.saturating_sub(bytes);
            }
        }
    }
}

/// How many events a file holds, from its header (0 when it cannot be read).
fn events_in(path: &std::path::Path) -> u64 {
    let mut header = [0u8; HEADER_LEN];
    let read = fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    read.ok().and_then(|()| format::header(&header).ok()).map_or(0, |(_, events, _)| u64::from(events))
}

/// A file's bytes, when it is still a regular file of at most [`MAX_FILE_BYTES`] (and no
/// more than its listed size, which a file replaced since could exceed).
fn read_capped(path: &std::path::Path, listed: u64) -> Option<Vec<u8>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let cap = meta.len().min(MAX_FILE_BYTES).max(listed.min(MAX_FILE_BYTES));
    let mut bytes = Vec::with_capacity(cap as usize);
    fs::File::open(path).ok()?.take(cap + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= cap).then_some(bytes)
}

/// Counters for the tests of this room.
#[cfg(test)]
pub(crate) fn counts(c: &SpoolCounters) -> [u64; 7] {
    let s = c.stats();
    let d = s.dropped;
    [s.spooled, s.replayed, d.too_old, d.over_size, d.rejected, d.too_large, s.bad_files]
}
