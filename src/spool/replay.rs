//! Replay: a task on the uploader thread that sends what earlier runs left in the spool,
//! oldest first, one file at a time, beside the reporter's own batches. Each batch goes out as
//! it was stored: its body (the original session, process and events, `event_id`s included)
//! and its idempotency key, through the same client, so the client-wide rate limit and
//! `Retry-After` hold for it too. Nothing is added: a replayed session that never ended gets
//! no SESSION_END.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::backlog::{Backlog, Settled};
use crate::handoff::SpoolCounters;

/// The pause after a batch could not be sent (its retries ran out), doubled after each
/// failure in a row, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// What sending one stored batch came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Settled: its file goes.
    Done(Settled),
    /// Not sent (out of retries, or the drain deadline came): its file stays, to be tried
    /// again after a pause, or by the next process.
    NotNow,
}

/// Sends the backlog with `send(body, key, events)`, and then, with `follow`, each file this
/// run leaves on disk, until a shutdown begins while the backlog is empty or a batch cannot be
/// sent (without `follow`, until the backlog is empty). Once the shutdown began this run's
/// files are left for the next process: their batches were just tried, and trying them again
/// would hold the drain until its deadline.
pub(crate) async fn replay<C, F, Fut>(
    backlog: Arc<Backlog>,
    counters: Arc<C>,
    mut shutdown: watch::Receiver<Option<Instant>>,
    follow: bool,
    mut send: F,
) where
    C: AsRef<SpoolCounters>,
    F: FnMut(Vec<u8>, String, u16) -> Fut,
    Fut: Future<Output = Sent>,
{
    let counters = (*counters).as_ref();
    let mut pause = FIRST_PAUSE;
    loop {
        let own = shutdown.borrow().is_none();
        let Some(loaded) = backlog.next(counters, own) else {
            if !follow || shutdown.borrow_and_update().is_some() {
                return;
            }
            tokio::select! {
                () = backlog.more() => {}
                changed = shutdown.changed() => if changed.is_err() { return },
            }
            continue;
        };
        let batch = &loaded.batch;
        let sending = send(batch.body.clone(), batch.key.clone(), batch.events);
        match sent_unless_shut_down(sending, loaded.is_own(), &shutdown).await {
            Sent::Done(settled) => {
                backlog.done(loaded, settled, counters);
                pause = FIRST_PAUSE;
            }
            Sent::NotNow => {
                backlog.put_back(loaded);
                if shutdown.borrow_and_update().is_some() {
                    return;
                }
                // The pause ends early when the server answers one of this run's batches.
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = backlog.answered() => {}
                    _ = shutdown.changed() => return,
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}

/// What `sending` came to; for one of this run's files (`own`), not sent once the shutdown
/// begins: the file is then the next process's, never a reason to hold the drain (nothing
/// of it is counted until it is settled).
async fn sent_unless_shut_down(
    sending: impl Future<Output = Sent>,
    own: bool,
    shutdown: &watch::Receiver<Option<Instant>>,
) -> Sent {
    if !own {
        return sending.await;
    }
    let mut began = shutdown.clone();
    tokio::select! {
        sent = sending => sent,
        _ = began.wait_for(Option::is_some) => Sent::NotNow,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::spool::backlog::counts;
    use crate::spool::format::{SpoolBatch, encode};
    use crate::spool::testing::{TempDir, config};
    use crate::spool::writer::Written;

    const HERE: &str = "http://127.0.0.1:1/api/v1/telemetry";

    struct Counters(SpoolCounters);

    impl AsRef<SpoolCounters> for Counters {
        fn as_ref(&self) -> &SpoolCounters {
            &self.0
        }
    }

    fn batch(key: &str, endpoint: &str) -> SpoolBatch {
        SpoolBatch { key: key.into(), endpoint: endpoint.into(), events: 1, body: key.as_bytes().to_vec() }
    }

    /// Leaves a dead run holding `batches` in `dir`; returns its directory.
    fn dead_run(dir: &std::path::Path, batches: &[SpoolBatch]) -> std::path::PathBuf {
        let mut spool = crate::spool::open(&config(dir), HERE).unwrap();
        let counters = SpoolCounters::default();
        for b in batches {
            assert!(matches!(spool.writer.write(None, b, &counters), Written::Done(_)));
        }
        let run_dir = spool.writer.run_dir().unwrap().to_owned();
        drop(spool);
        run_dir
    }

    /// Replays what `dir` holds, answering each body with `answer`; returns the keys sent.
    fn replay_all(dir: &std::path::Path, answer: impl Fn(&str) -> Sent) -> (Vec<String>, Counters) {
        let opened = crate::spool::open(&config(dir), HERE).unwrap();
        let counters = Arc::new(Counters(SpoolCounters::default()));
        let sent = Mutex::new(Vec::new());
        let (_tx, rx) = watch::channel(None);
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(replay(
            Arc::clone(&opened.backlog),
            Arc::clone(&counters),
            rx,
            false,
            |_body, key, _events| {
                let answer = answer(&key);
                sent.lock().unwrap().push(key);
                async move { answer }
            },
        ));
        drop(opened);
        (sent.into_inner().unwrap(), Arc::into_inner(counters).unwrap())
    }

    #[test]
    fn runs_are_sent_oldest_first_with_their_keys_and_removed() {
        let tmp = TempDir::new("replay");
        let first = dead_run(tmp.path(), &[batch("a", HERE), batch("b", HERE)]);
        std::thread::sleep(Duration::from_millis(2));
        dead_run(tmp.path(), &[batch("c", HERE)]);
        let (sent, counters) = replay_all(tmp.path(), |_| Sent::Done(Settled::delivered(1)));
        assert_eq!(sent, ["a", "b", "c"]);
        assert_eq!(counts(&counters.0)[1], 3);
        assert!(!first.exists(), "a replayed run is removed");
        let (again, _) = replay_all(tmp.path(), |_| Sent::Done(Settled::delivered(1)));
        assert!(again.is_empty(), "nothing is sent twice: {again:?}");
    }

    #[test]
    fn a_batch_that_cannot_be_sent_is_tried_again_after_a_pause_and_kept() {
        let tmp = TempDir::new("retry");
        dead_run(tmp.path(), &[batch("a", HERE), batch("b", HERE)]);
        let tries = Mutex::new(0);
        let (sent, counters) = replay_all(tmp.path(), |key| {
            let mut n = tries.lock().unwrap();
            *n += 1;
            if key == "a" && *n < 3 { Sent::NotNow } else { Sent::Done(Settled::delivered(1)) }
        });
        assert_eq!(sent, ["a", "a", "a", "b"], "the same batch, same key, until it goes");
        assert_eq!(counts(&counters.0)[1], 2);
    }

    #[test]
    fn a_batch_that_keeps_failing_lets_the_next_go_after_three_tries() {
        let tmp = TempDir::new("rotate");
        dead_run(tmp.path(), &[batch("a", HERE), batch("b", HERE), batch("c", HERE)]);
        let tries = Mutex::new(0);
        let (sent, counters) = replay_all(tmp.path(), |key| {
            let mut n = tries.lock().unwrap();
            *n += 1;
            if key == "a" && *n < 7 { Sent::NotNow } else { Sent::Done(Settled::delivered(1)) }
        });
        assert_eq!(sent, ["a", "a", "a", "b", "c", "a", "a"], "three tries, then the others first");
        assert_eq!(counts(&counters.0)[1], 3);
    }

    #[test]
    fn rejected_and_too_large_batches_leave_the_spool_counted() {
        let tmp = TempDir::new("rejected");
        dead_run(tmp.path(), &[batch("a", HERE), batch("b", HERE)]);
        let (_, counters) = replay_all(tmp.path(), |key| {
            Sent::Done(if key == "a" { Settled::rejected(1) } else { Settled::too_large(1) })
        });
        assert_eq!(counts(&counters.0)[4..6], [1, 1]);
        let (again, _) = replay_all(tmp.path(), |_| Sent::Done(Settled::delivered(1)));
        assert!(again.is_empty());
    }

    #[test]
    fn another_endpoints_run_waits_for_a_process_sending_there() {
        let tmp = TempDir::new("endpoint");
        let other = "https://staging.example/api/v1/telemetry";
        let run = dead_run(tmp.path(), &[batch("elsewhere", other)]);
        let (sent, _) = replay_all(tmp.path(), |_| Sent::Done(Settled::delivered(1)));
        assert!(sent.is_empty(), "never sent here: {sent:?}");
        assert!(run.exists(), "left for its endpoint");
        let opened = crate::spool::open(&config(tmp.path()), other).unwrap();
        let loaded = opened.backlog.next(&SpoolCounters::default(), true).expect("sent to its own endpoint");
        assert_eq!(loaded.batch.key, "elsewhere");
    }

    #[test]
    fn bad_files_are_skipped_counted_and_never_stop_the_good_ones() {
        let tmp = TempDir::new("bad");
        let run = dead_run(tmp.path(), &[batch("a", HERE), batch("b", HERE), batch("c", HERE)]);
        let name = |seq: u64| run.join(crate::spool::backlog::batch_name(seq));
        let good = std::fs::read(name(2)).unwrap();
        std::fs::write(name(2), &good[..good.len() / 2]).unwrap(); // truncated
        std::fs::write(name(4), b"").unwrap(); // empty
        std::fs::write(name(5), vec![0u8; 4096]).unwrap(); // NUL-filled
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(name(6), flipped).unwrap(); // bad checksum
        let mut newer = encode(&batch("n", HERE));
        newer[4] = 9;
        std::fs::write(name(7), newer).unwrap(); // newer format version
        std::fs::write(run.join("notes.txt"), b"x").unwrap(); // foreign name
        std::fs::write(run.join("00000000000000000009.tmp"), b"half").unwrap(); // cut while written
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", name(8)).unwrap(); // a symlink
        let big = std::fs::File::create(name(10)).unwrap();
        big.set_len(crate::spool::backlog::MAX_FILE_BYTES + 1).unwrap(); // past the size cap
        let old = std::fs::File::options().write(true).open(name(3)).unwrap();
        old.set_modified(std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600)).unwrap();
        drop(old);
        let (sent, counters) = replay_all(tmp.path(), |_| Sent::Done(Settled::delivered(1)));
        assert_eq!(sent, ["a"], "the good files, in order");
        assert_eq!(counts(&counters.0)[2], 1, "the file past spool_max_age, by its events");
        let bad = if cfg!(unix) { 9 } else { 8 };
        assert_eq!(counts(&counters.0)[6], bad, "every bad file counted");
        assert!(name(7).exists(), "a newer version's file is left for it");
        assert!(!name(5).exists() && !name(10).exists(), "the others are removed");
    }

    #[test]
    fn this_runs_files_left_on_disk_are_replayed_after_earlier_runs_until_the_shutdown() {
        let tmp = TempDir::new("follow");
        dead_run(tmp.path(), &[batch("earlier", HERE)]);
        let mut opened = crate::spool::open(&config(tmp.path()), HERE).unwrap();
        let counters = Arc::new(Counters(SpoolCounters::default()));
        let mut leave = |key: &str| {
            let Written::Done(slot) = opened.writer.write(None, &batch(key, HERE), &counters.0) else {
                panic!()
            };
            opened.writer.leave(slot);
        };
        leave("mine-1");
        let sent = Mutex::new(Vec::new());
        let (tx, rx) = watch::channel(None);
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let replaying =
                replay(Arc::clone(&opened.backlog), Arc::clone(&counters), rx, true, |_, key, _| {
                    sent.lock().unwrap().push(key);
                    async { Sent::Done(Settled::delivered(1)) }
                });
            let later = async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                assert_eq!(*sent.lock().unwrap(), ["earlier", "mine-1"], "then it waits for more");
                leave("mine-2");
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = tx.send(Some(Instant::now()));
            };
            tokio::join!(replaying, later);
        });
        assert_eq!(sent.into_inner().unwrap(), ["earlier", "mine-1", "mine-2"]);
        assert_eq!(counts(&counters.0)[1], 3, "replayed");
        assert!(opened.backlog.is_empty());
    }

    /// Replays an earlier run's batch, on a paused clock, whose first send fails after
    /// `first_send` and whose second is delivered, while the server answers one of this
    /// run's batches at `answer`: when each try began.
    fn tries_with_an_answer_at(name: &str, first_send: Duration, answer: Duration) -> Vec<Duration> {
        let tmp = TempDir::new(name);
        dead_run(tmp.path(), &[batch("a", HERE)]);
        let opened = crate::spool::open(&config(tmp.path()), HERE).unwrap();
        let counters = Arc::new(Counters(SpoolCounters::default()));
        let tries = Mutex::new(Vec::new());
        let (_tx, rx) = watch::channel(None);
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let start = Instant::now();
            let replaying = replay(Arc::clone(&opened.backlog), counters, rx, false, |_, _, _| {
                let mut tries = tries.lock().unwrap();
                tries.push(start.elapsed());
                let first = tries.len() == 1;
                async move {
                    if first {
                        tokio::time::sleep(first_send).await;
                        return Sent::NotNow;
                    }
                    Sent::Done(Settled::delivered(1))
                }
            });
            let answered = async {
                tokio::time::sleep(answer).await;
                opened.backlog.server_answered();
            };
            tokio::join!(replaying, answered);
        });
        tries.into_inner().unwrap()
    }

    #[test]
    fn the_server_answering_this_run_ends_the_pause_after_a_failure() {
        let tries = tries_with_an_answer_at("answered", Duration::ZERO, Duration::from_millis(100));
        assert_eq!(tries, [Duration::ZERO, Duration::from_millis(100)], "not after FIRST_PAUSE");
    }

    /// The server answers one of this run's batches while the replay's own send is failing:
    /// the pause that follows ends at once.
    #[test]
    fn an_answer_while_the_replay_is_sending_ends_its_next_pause() {
        let tries = tries_with_an_answer_at(
            "answered-while-sending",
            Duration::from_millis(50),
            Duration::from_millis(25),
        );
        assert_eq!(tries, [Duration::ZERO, Duration::from_millis(50)], "not after FIRST_PAUSE");
    }

    #[test]
    fn a_shutdown_while_a_batch_cannot_be_sent_ends_the_replay_and_keeps_it() {
        let tmp = TempDir::new("shutdown");
        let run = dead_run(tmp.path(), &[batch("a", HERE)]);
        let opened = crate::spool::open(&config(tmp.path()), HERE).unwrap();
        let counters = Arc::new(Counters(SpoolCounters::default()));
        let (tx, rx) = watch::channel(None);
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let replaying =
                replay(Arc::clone(&opened.backlog), counters, rx, false, |_, _, _| async { Sent::NotNow });
            let stop = async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = tx.send(Some(Instant::now()));
            };
            tokio::join!(replaying, stop);
        });
        drop(opened);
        assert!(run.join(crate::spool::backlog::batch_name(1)).exists(), "kept for the next process");
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Step {
        /// The live process writes a batch.
        Write,
        /// The live process's batch (picked by the number) is delivered: its file goes.
        Deliver(usize),
        /// The live process replays (and delivers) its oldest adopted batch.
        ReplayOne,
        /// The live process is killed; a new one starts on the same directory.
        Kill,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![3 => Just(Step::Write), 2 => any::<usize>().prop_map(Step::Deliver), 2 => Just(Step::ReplayOne), 1 => Just(Step::Kill)]
    }

    /// A batch the model says is pending: the run that wrote it, its key, and its file
    /// while that run is the live one.
    type Pending = Vec<(usize, String, Option<crate::spool::writer::Slot>)>;

    /// Applies a live process's step (not a kill) to the spool and to the model.
    fn live_step(
        step: &Step,
        spool: &mut crate::spool::Opened,
        pending: &mut Pending,
        run: usize,
        key: String,
    ) {
        let counters = SpoolCounters::default();
        match step {
            Step::Write => {
                let Written::Done(slot) = spool.writer.write(None, &batch(&key, HERE), &counters) else {
                    panic!()
                };
                pending.push((run, key, Some(slot)));
            }
            Step::Deliver(pick) => {
                let mine: Vec<usize> = (0..pending.len()).filter(|&i| pending[i].0 == run).collect();
                if let Some(&i) = mine.get(pick % mine.len().max(1)) {
                    let (_, _, slot) = pending.remove(i);
                    spool.writer.remove(slot.unwrap());
                }
            }
            Step::ReplayOne => {
                let expected = pending.iter().position(|p| p.0 < run);
                let loaded = spool.backlog.next(&counters, true);
                let sent = loaded.as_ref().map(|l| l.batch.key.clone());
                assert_eq!(sent, expected.map(|i| pending[i].1.clone()), "the oldest pending batch");
                if let (Some(loaded), Some(i)) = (loaded, expected) {
                    let events = u64::from(loaded.batch.events);
                    spool.backlog.done(loaded, Settled::delivered(events), &counters);
                    pending.remove(i);
                }
            }
            Step::Kill => unreachable!("a kill ends the live process"),
        }
    }

    /// The spool against a model: a list of batches not yet delivered, each with the run
    /// that wrote it. Whatever the steps, the next process sends exactly what the model
    /// says is pending, oldest run first, each run in the order it wrote.
    fn check_against_the_model(steps: &[Step]) {
        let tmp = TempDir::new("model");
        let mut config = config(tmp.path());
        config.sync = crate::spool::SpoolSync::Never;
        let open = || crate::spool::open(&config, HERE).unwrap();
        let mut pending = Pending::new();
        let (mut live, mut run) = (Some(open()), 0);
        for (n, step) in steps.iter().enumerate() {
            if let Step::Kill = step {
                drop(live.take());
                // Run names order by their start in milliseconds.
                std::thread::sleep(Duration::from_millis(2));
                live = Some(open());
                run += 1;
                pending.iter_mut().for_each(|p| p.2 = None);
            } else {
                live_step(step, live.as_mut().unwrap(), &mut pending, run, format!("k{n:04}"));
            }
        }
        drop(live);
        let (counters, last) = (SpoolCounters::default(), open());
        let mut sent = Vec::new();
        while let Some(loaded) = last.backlog.next(&counters, true) {
            sent.push(loaded.batch.key.clone());
            let events = u64::from(loaded.batch.events);
            last.backlog.done(loaded, Settled::delivered(events), &counters);
        }
        let expected: Vec<String> = pending.into_iter().map(|p| p.1).collect();
        assert_eq!(sent, expected);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        #[test]
        fn what_the_model_says_is_pending_is_what_the_next_process_sends(
            steps in proptest::collection::vec(step(), 0..40)
        ) {
            check_against_the_model(&steps);
        }
    }
}
