//! This run's side of the spool, on the uploader thread: writes a batch's file (under a
//! temporary name, fsynced as [`SpoolSync`] says, then renamed), removes it once the batch
//! is settled, and turns the spool off for the rest of the run at the first fault (a full
//! disk, a read-only directory, a permission or fsync error), with one line saying why.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use super::backlog::{Backlog, TEMP_SUFFIX, batch_name};
use super::format::{self, SpoolBatch};
use super::run::Run;
use super::{SpoolConfig, SpoolSync};
use crate::handoff::SpoolCounters;

/// A batch's file in this run: its sequence number and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// The file holds the batch.
    Done(Slot),
    /// Not written: the spool is full (`spool_max_bytes`) or off. The batch stays in memory.
    Skipped,
    /// Not written, and the spool is off from now on, for this reason (one line).
    TurnedOff(String),
}

/// This run's directory and what is written in it.
#[derive(Debug)]
pub(crate) struct Writer {
    run: Option<Run>,
    sync: SpoolSync,
    fail_fsync: bool,
    backlog: Arc<Backlog>,
    next_seq: u64,
    off: bool,
}

impl Writer {
    pub(crate) fn new(run: Run, config: &SpoolConfig, backlog: Arc<Backlog>) -> Self {
        Writer {
            run: Some(run),
            sync: config.sync,
            fail_fsync: config.fail_fsync,
            backlog,
            next_seq: 0,
            off: false,
        }
    }

    /// This run's directory, while it is open.
    #[cfg(test)]
    pub(crate) fn run_dir(&self) -> Option<&Path> {
        self.run.as_ref().map(|r| r.dir.as_path())
    }

    /// Whether files are still written.
    #[cfg(test)]
    pub(crate) fn is_on(&self) -> bool {
        !self.off && self.run.is_some()
    }

    /// Writes `batch`, replacing the file at `previous` (a batch being filled, written
    /// again as it grows) or in a new file. When it is not written, the file at `previous`
    /// stays as it was, with fewer events than the batch: it is the caller's to keep or
    /// remove.
    pub(crate) fn write(
        &mut self,
        previous: Option<Slot>,
        batch: &SpoolBatch,
        counters: &SpoolCounters,
    ) -> Written {
        let Some(run) = self.run.as_ref().filter(|_| !self.off) else { return Written::Skipped };
        let bytes = format::encode(batch);
        let len = bytes.len() as u64;
        let before = previous.map_or(0, |p| p.bytes);
        if len > before && !self.backlog.reserve(len - before, counters) {
            return Written::Skipped;
        }
        self.backlog.release(before.saturating_sub(len));
        let seq = previous.map_or_else(
            || {
                self.next_seq += 1;
                self.next_seq
            },
            |p| p.seq,
        );
        match write_file(&run.dir, seq, &bytes, self.sync, self.fail_fsync) {
            Ok(()) => Written::Done(Slot { seq, bytes: len }),
            Err(e) => {
                self.backlog.release(len.saturating_sub(before));
                self.off = true;
                Written::TurnedOff(format!(
                    "spool off for this run: writing to {} failed: {e}; events stay in memory",
                    run.dir.display()
                ))
            }
        }
    }

    /// Keeps a settled batch's file for the replay (this process's, or the next one's): its
    /// batch is no longer in memory.
    pub(crate) fn leave(&mut self, slot: Slot) {
        if let Some(run) = &self.run {
            self.backlog.left_on_disk(run.dir.join(batch_name(slot.seq)), slot.bytes);
        }
    }

    /// Removes a settled batch's file.
    pub(crate) fn remove(&mut self, slot: Slot) {
        if let Some(run) = &self.run {
            let _ = fs::remove_file(run.dir.join(batch_name(slot.seq)));
            self.backlog.release(slot.bytes);
        }
    }

    /// Ends the run: removes its directory when no batch is left in it, else releases its
    /// lock, so that the next process adopts it.
    pub(crate) fn finish(&mut self) {
        let Some(run) = self.run.take() else { return };
        let left = fs::read_dir(&run.dir)
            .map(|entries| entries.flatten().any(|e| e.file_name() != super::run::LOCK_FILE))
            .unwrap_or(false);
        if left { drop(run) } else { run.remove() }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Writes `bytes` as batch `seq` in `dir`: a temporary file, fsynced with
/// [`SpoolSync::Always`], renamed into place, then the directory fsynced.
fn write_file(dir: &Path, seq: u64, bytes: &[u8], sync: SpoolSync, fail_fsync: bool) -> io::Result<()> {
    let name = batch_name(seq);
    let temp = dir.join(format!("{}{TEMP_SUFFIX}", name.trim_end_matches(super::backlog::BATCH_SUFFIX)));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        if sync == SpoolSync::Always {
            fsync(&file, fail_fsync)?;
        }
        fs::rename(&temp, dir.join(&name))?;
        if sync == SpoolSync::Always {
            // The rename itself survives a power cut once the directory is synced.
            #[cfg(unix)]
            fsync(&fs::File::open(dir)?, fail_fsync)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn fsync(file: &fs::File, fail: bool) -> io::Result<()> {
    if fail {
        return Err(io::Error::other("fsync failed (injected)"));
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::backlog::counts;
    use crate::spool::testing::{TempDir, config};

    fn batch(n: u16) -> SpoolBatch {
        SpoolBatch {
            key: format!("key-{n}"),
            endpoint: "http://127.0.0.1:1/api/v1/telemetry".into(),
            events: n,
            body: vec![b'x'; 100 * usize::from(n)],
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn open(dir: &Path, tweak: impl FnOnce(&mut SpoolConfig)) -> crate::spool::Opened {
        let mut config = config(dir);
        tweak(&mut config);
        crate::spool::open(&config, "http://127.0.0.1:1/api/v1/telemetry").unwrap()
    }

    #[test]
    fn a_batch_is_written_rewritten_in_place_and_removed() {
        let tmp = TempDir::new("write");
        let counters = SpoolCounters::default();
        let mut spool = open(tmp.path(), |_| {});
        let run_dir = spool.writer.run_dir().unwrap().to_owned();
        let Written::Done(first) = spool.writer.write(None, &batch(1), &counters) else { panic!() };
        let Written::Done(grown) = spool.writer.write(Some(first), &batch(3), &counters) else { panic!() };
        assert_eq!(grown.seq, first.seq, "a batch being filled keeps its file");
        let Written::Done(second) = spool.writer.write(None, &batch(2), &counters) else { panic!() };
        assert_eq!(files(&run_dir), [batch_name(1), batch_name(2), "lock".into()]);
        let read = fs::read(run_dir.join(batch_name(1))).unwrap();
        assert_eq!(format::decode(&read).unwrap(), batch(3));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(run_dir.join(batch_name(1))).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        spool.writer.remove(grown);
        spool.writer.remove(second);
        spool.writer.finish();
        assert!(!run_dir.exists(), "an empty run leaves nothing behind");
    }

    #[test]
    fn past_the_bound_this_runs_oldest_left_file_makes_room_for_a_newer_batch() {
        let tmp = TempDir::new("evict-own");
        let counters = SpoolCounters::default();
        let one = format::encode(&batch(2)).len() as u64;
        let mut spool = open(tmp.path(), |c| c.max_bytes = 2 * one + one / 2);
        let run_dir = spool.writer.run_dir().unwrap().to_owned();
        let mut slots = Vec::new();
        for _ in 0..2 {
            let Written::Done(slot) = spool.writer.write(None, &batch(2), &counters) else { panic!() };
            slots.push(slot);
        }
        // A batch still in memory keeps its file: with no file left for the next process,
        // a third batch finds no room and stays in memory only.
        assert_eq!(spool.writer.write(None, &batch(2), &counters), Written::Skipped);
        assert_eq!(counts(&counters)[3], 0);
        // Both left the memory (out of retries): the oldest goes for the newer batch.
        spool.writer.leave(slots[0]);
        spool.writer.leave(slots[1]);
        let Written::Done(third) = spool.writer.write(None, &batch(2), &counters) else { panic!() };
        assert_eq!(counts(&counters)[3], 2, "the oldest file's two events, as over_size");
        assert_eq!(files(&run_dir), [batch_name(2), batch_name(third.seq), "lock".into()]);
    }

    #[test]
    fn eviction_makes_room_with_the_fewest_oldest_files_or_evicts_nothing() {
        let tmp = TempDir::new("evict-enough");
        let counters = SpoolCounters::default();
        let size = |n: u16| format::encode(&batch(n)).len() as u64;
        let one = size(1);
        let mut spool = open(tmp.path(), |c| c.max_bytes = 3 * one + one / 2);
        let run_dir = spool.writer.run_dir().unwrap().to_owned();
        for _ in 0..3 {
            let Written::Done(slot) = spool.writer.write(None, &batch(1), &counters) else { panic!() };
            spool.writer.leave(slot);
        }
        // Larger than the bound: evicting every file would not make room, so none goes.
        assert!(size(6) > 3 * one + one / 2);
        assert_eq!(spool.writer.write(None, &batch(6), &counters), Written::Skipped);
        assert_eq!(counts(&counters)[3], 0, "nothing evicted");
        assert_eq!(files(&run_dir), [batch_name(1), batch_name(2), batch_name(3), "lock".into()]);
        // Room for two events takes the two oldest files, not the third.
        let over = 3 * one + size(2) - (3 * one + one / 2);
        assert!(over > one && over <= 2 * one);
        let Written::Done(two) = spool.writer.write(None, &batch(2), &counters) else { panic!() };
        assert_eq!(counts(&counters)[3], 2, "the two oldest files' events, as over_size");
        assert_eq!(files(&run_dir), [batch_name(3), batch_name(two.seq), "lock".into()]);
    }

    #[test]
    fn a_run_with_batches_left_is_adopted_by_the_next_process() {
        let tmp = TempDir::new("left");
        let counters = SpoolCounters::default();
        let mut spool = open(tmp.path(), |_| {});
        assert!(matches!(spool.writer.write(None, &batch(2), &counters), Written::Done(_)));
        drop(spool);
        let next = open(tmp.path(), |_| {});
        let loaded = next.backlog.next(&counters, true).expect("the batch left behind");
        assert_eq!(loaded.batch, batch(2));
        next.backlog.done(loaded, crate::spool::backlog::Settled::delivered(2), &counters);
        assert!(next.backlog.next(&counters, true).is_none());
        assert_eq!(counts(&counters)[1], 2, "two events replayed");
    }

    #[test]
    fn an_fsync_error_turns_the_spool_off_with_one_line_and_leaves_no_file() {
        let tmp = TempDir::new("fsync");
        let counters = SpoolCounters::default();
        let mut spool = open(tmp.path(), |c| c.fail_fsync = true);
        let run_dir = spool.writer.run_dir().unwrap().to_owned();
        let Written::TurnedOff(line) = spool.writer.write(None, &batch(1), &counters) else { panic!() };
        assert!(line.starts_with("spool off for this run") && line.contains("fsync failed"), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(files(&run_dir), ["lock"], "no half file under any name");
        assert_eq!(spool.writer.write(None, &batch(1), &counters), Written::Skipped, "off for good");
        assert!(!spool.writer.is_on());
        // Without fsync the same spool works.
        let mut never = open(tmp.path(), |c| {
            c.fail_fsync = true;
            c.sync = SpoolSync::Never;
        });
        assert!(matches!(never.writer.write(None, &batch(1), &counters), Written::Done(_)));
    }

    #[test]
    fn a_write_error_turns_the_spool_off_and_settled_files_still_go() {
        let tmp = TempDir::new("gone");
        let counters = SpoolCounters::default();
        let mut spool = open(tmp.path(), |_| {});
        let run_dir = spool.writer.run_dir().unwrap().to_owned();
        let Written::Done(first) = spool.writer.write(None, &batch(1), &counters) else { panic!() };
        // The directory turns into something no file can be written in (as root, where
        // permissions do not stop a write: a file in its place).
        fs::rename(&run_dir, tmp.path().join("moved")).unwrap();
        fs::write(&run_dir, b"not a directory").unwrap();
        let Written::TurnedOff(line) = spool.writer.write(None, &batch(2), &counters) else { panic!() };
        assert!(line.starts_with("spool off for this run: writing to ") && !line.contains('\n'), "{line}");
        assert_eq!(spool.writer.write(None, &batch(3), &counters), Written::Skipped, "off for the run");
        fs::remove_file(&run_dir).unwrap();
        fs::rename(tmp.path().join("moved"), &run_dir).unwrap();
        spool.writer.remove(first);
        assert!(!run_dir.join(batch_name(first.seq)).exists(), "a settled batch's file still goes");
    }

    #[test]
    fn past_max_bytes_the_oldest_adopted_files_go_first_and_are_counted() {
        let tmp = TempDir::new("bounds");
        let counters = SpoolCounters::default();
        let mut old = open(tmp.path(), |_| {});
        for n in [1, 2, 3] {
            assert!(matches!(old.writer.write(None, &batch(n), &counters), Written::Done(_)));
        }
        drop(old);
        let size = |n: u16| format::encode(&batch(n)).len() as u64;
        let max = size(1) + size(2) + size(3) + size(4) - 1;
        let mut next = open(tmp.path(), |c| c.max_bytes = max);
        assert!(matches!(next.writer.write(None, &batch(4), &counters), Written::Done(_)));
        assert_eq!(counts(&counters)[3], 1, "the oldest file's one event");
        let loaded = next.backlog.next(&counters, true).unwrap();
        assert_eq!(loaded.batch.events, 2, "the second oldest is next");
        // A file larger than the whole bound is not written.
        let mut tiny = open(tmp.path(), |c| c.max_bytes = 10);
        assert_eq!(tiny.writer.write(None, &batch(1), &counters), Written::Skipped);
    }
}
