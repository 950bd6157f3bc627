//! The spool's disk: what its files may hold and their modes, its bounds, bad files left in
//! it, and a disk that fails. Child programs (`tests/programs/src/bin/spool.rs`) and real HTTP
//! on 127.0.0.1.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::spool::{
    SpoolDir, by_session, events_on_disk, files_under, numbers, refused_port, report, report_and_stderr,
    spool_program,
};
use support::{API_KEY, Collector, Raw, RawServer, eventually};
use tinker_telemetry::{DeliveryErrorKind, Severity, TelemetryGuard, TinkerTelemetryLayer};

/// Runs the program for `session` against a refused `port` until its drain deadline passes:
/// its `events` events (and SESSION_START and SESSION_END) end in the spool.
fn leave_in_spool(dir: &Path, port: u16, session: &str, events: u64) -> u64 {
    let mut cmd = spool_program("exit", dir, port, session, events);
    cmd.env("SPOOL_FLUSH_TIMEOUT_MS", "1000").env("SPOOL_MAX_RETRIES", "100000");
    let gone = report(&mut cmd);
    assert_eq!(gone["spooled"], events + 2, "{gone}");
    events + 2
}

fn serve_on(port: u16) -> RawServer {
    RawServer::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_disk_holds_only_what_would_be_sent_owner_only_and_for_its_endpoint_only() {
    let dir = SpoolDir::new("holds");
    let port = refused_port();
    leave_in_spool(&dir.0, port, "session-disk", 20);
    let files = files_under(&dir.0);
    let batches: Vec<_> = files.iter().filter(|p| p.extension().is_some_and(|e| e == "batch")).collect();
    assert!(!batches.is_empty());
    let mut all = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [API_KEY, "hunter2-not-on-disk", "URLTOKEN-not-on-disk", "x-api-key", "X-API-Key"] {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
        all.extend_from_slice(&bytes);
    }
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("spool.test") && all.contains("[REDACTED]"), "the grep saw the events");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.0), 0o700, "the spool directory");
        for entry in std::fs::read_dir(&dir.0).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o700, "a run directory");
        }
        for file in &files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }
    // A process sending elsewhere leaves the run for its endpoint.
    let elsewhere = RawServer::with_fn(|_| Raw::Accept);
    let port2 = elsewhere.port();
    let other = report(&mut spool_program("exit", &dir.0, port2, "session-elsewhere", 0));
    assert_eq!(other["replayed"], 0, "{other}");
    assert!(!by_session(&elsewhere).contains_key("session-disk"), "never sent to another endpoint");
    assert_eq!(files_under(&dir.0).len(), files.len(), "the run waits, whole");
    // Its own endpoint gets it.
    let home = serve_on(port);
    let back = report(&mut spool_program("exit", &dir.0, port, "session-home", 0));
    assert_eq!(back["replayed"], 22, "{back}");
    assert_eq!(numbers(&by_session(&home)["session-disk"]), (0..20).collect());
}

#[test]
fn past_spool_max_bytes_the_oldest_go_first_and_the_server_is_told() {
    let dir = SpoolDir::new("bytes");
    let port = refused_port();
    leave_in_spool(&dir.0, port, "older", 300);
    let older_bytes: u64 = files_under(&dir.0).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    leave_in_spool(&dir.0, port, "newer", 100);
    let all_bytes: u64 = files_under(&dir.0).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    let server = serve_on(port);
    // Room for the newer run and part of the older one.
    let max = all_bytes - older_bytes / 2;
    let mut next = spool_program("exit", &dir.0, port, "teller", 0);
    let teller = report(next.env("SPOOL_MAX_BYTES", max.to_string()));
    let lost = teller["over_size"].as_u64().unwrap();
    assert!(lost > 0 && lost < 302, "{teller}");
    let sessions = by_session(&server);
    assert_eq!(sessions["newer"].len(), 102, "the newer run whole");
    assert_eq!(sessions["older"].len() as u64, 302 - lost, "the older run less what was dropped");
    let report_event =
        sessions["teller"].iter().find(|e| e["event_name"] == "telemetry.dropped").expect("told");
    assert_eq!(report_event["event_data"]["by_reason"]["spool_over_size"], lost);
}

#[test]
fn files_past_spool_max_age_are_removed_unsent_and_the_server_is_told() {
    let dir = SpoolDir::new("age");
    let port = refused_port();
    let left = leave_in_spool(&dir.0, port, "ancient", 10);
    let week_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 24 * 3600);
    for file in files_under(&dir.0).iter().filter(|p| p.extension().is_some_and(|e| e == "batch")) {
        std::fs::File::options().write(true).open(file).unwrap().set_modified(week_ago).unwrap();
    }
    let server = serve_on(port);
    let teller = report(&mut spool_program("exit", &dir.0, port, "teller", 0));
    assert_eq!(teller["too_old"], left, "{teller}");
    let sessions = by_session(&server);
    assert!(!sessions.contains_key("ancient"));
    let told = sessions["teller"].iter().find(|e| e["event_name"] == "telemetry.dropped").expect("told");
    assert_eq!(told["event_data"]["by_reason"]["spool_too_old"], left);
}

#[test]
fn bad_files_alone_or_among_good_ones_are_skipped_and_counted_and_the_good_ones_arrive() {
    let dir = SpoolDir::new("corrupt");
    let port = refused_port();
    leave_in_spool(&dir.0, port, "damaged", 300);
    let run = std::fs::read_dir(&dir.0).unwrap().next().unwrap().unwrap().path();
    let mut batches: Vec<_> =
        files_under(&run).into_iter().filter(|p| p.extension().is_some_and(|e| e == "batch")).collect();
    batches.sort();
    assert!(batches.len() >= 3, "{batches:?}");
    // One good file cut short; the rest of the table added beside the good ones.
    let cut = std::fs::read(&batches[1]).unwrap();
    let cut_events = u64::from(u16::from_le_bytes([cut[6], cut[7]]));
    std::fs::write(&batches[1], &cut[..cut.len() - 7]).unwrap();
    let named = |seq: u64| run.join(format!("{seq:020}.batch"));
    std::fs::write(named(900), b"").unwrap();
    std::fs::write(named(901), vec![0u8; 1 << 16]).unwrap();
    let mut flipped = std::fs::read(&batches[0]).unwrap();
    *flipped.last_mut().unwrap() ^= 0x01;
    std::fs::write(named(902), flipped).unwrap();
    let mut newer = std::fs::read(&batches[0]).unwrap();
    newer[4] = 0x7f;
    std::fs::write(named(903), newer).unwrap();
    std::fs::write(run.join("README.txt"), b"not a batch").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&batches[0], named(904)).unwrap();
    let server = serve_on(port);
    let next = report(&mut spool_program("exit", &dir.0, port, "after", 0));
    let bad = if cfg!(unix) { 7 } else { 6 };
    assert_eq!(next["bad_files"], bad, "{next}");
    assert_eq!(next["replayed"], 302 - cut_events, "every good file: {next}");
    let events = &by_session(&server)["damaged"];
    assert_eq!(events.len() as u64, 302 - cut_events, "each good event once, the symlink not followed");
    assert!(named(903).exists(), "a newer version's file is left for it");
}

#[test]
fn a_full_disk_turns_the_spool_off_with_one_line_and_delivery_goes_on() {
    let dir = SpoolDir::new("full");
    // Refuse the first requests, so that batches wait and the uploader writes them.
    let refusals = AtomicUsize::new(0);
    let server = RawServer::with_fn(move |_| {
        if refusals.fetch_add(1, Ordering::SeqCst) < 6 { Raw::Status(503) } else { Raw::Accept }
    });
    let port = server.port();
    let mut cmd = spool_program("exit", &dir.0, port, "session-full", 50);
    // Files of at most 200 bytes: every batch's write fails (EFBIG), as on a full disk.
    cmd.env("SPOOL_FSIZE_LIMIT", "200").env("SPOOL_MAX_RETRIES", "20").env("SPOOL_DEBUG", "1");
    let (full, stderr) = report_and_stderr(&mut cmd);
    let off: Vec<&str> = stderr.lines().filter(|l| l.contains("spool off")).collect();
    assert_eq!(off.len(), 1, "one line: {stderr}");
    assert!(off[0].starts_with("tinker-telemetry: spool off for this run: writing to "), "{}", off[0]);
    assert_eq!(full["delivered"], full["accepted"], "every event delivered from memory: {full}");
    assert_eq!(full["spooled"], 0);
    assert_eq!(numbers(&by_session(&server)["session-full"]), (0..50).collect());
}

#[test]
fn a_spool_that_cannot_be_used_is_off_with_one_line_and_build_succeeds() {
    let collector = Collector::start();
    let dir = SpoolDir::new("unusable");
    std::fs::write(&dir.0, b"a file where a directory should be").unwrap();
    let mut cases = vec![(dir.0.join("spool"), "cannot create")];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open = std::env::temp_dir().join(format!("tt-spool-open-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        cases.push((open, "can be written by other users"));
    }
    for (i, (path, words)) in cases.iter().enumerate() {
        let session = format!("unusable-{i}");
        let (_layer, guard) =
            collector.builder(&session).spool_dir(path).build().expect("build does not fail");
        let handle = guard.handle();
        handle.log("still.sent", json!({}), Severity::Info);
        let error = handle.last_delivery_error().expect("one line");
        assert_eq!(error.kind, DeliveryErrorKind::Spool);
        assert!(error.message.contains(words) && !error.message.contains('\n'), "{error}");
        let report = guard.shutdown();
        assert!(report.drained && report.stats.delivered == 3, "{report:?}");
        if path.is_dir() {
            assert_eq!(
                std::fs::read_dir(path).unwrap().count(),
                0,
                "nothing written into a refused directory"
            );
            std::fs::remove_dir(path).unwrap();
        }
    }
}

/// A spool directory the program may not write in: read-only for its own user, or below a
/// directory only another user may enter. The program runs as an unprivileged user (it gives
/// up root itself when the tests run as root), so that permissions apply to it.
#[cfg(target_os = "linux")]
#[test]
fn a_read_only_or_forbidden_spool_directory_is_off_with_one_line_and_delivery_goes_on() {
    use std::os::unix::fs::{PermissionsExt, chown};
    const NOBODY: u32 = 65534;
    // `/proc/self` belongs to the process's effective user.
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let read_only = SpoolDir::new("read-only");
    std::fs::create_dir(&read_only.0).unwrap();
    if as_root {
        chown(&read_only.0, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::set_permissions(&read_only.0, std::fs::Permissions::from_mode(0o500)).unwrap();
    let mut cases = vec![(read_only.0.clone(), "cannot make a run directory in")];
    // Only root can make a directory that belongs to another user.
    let forbidden = SpoolDir::new("forbidden");
    if as_root {
        std::fs::create_dir(&forbidden.0).unwrap();
        std::fs::set_permissions(&forbidden.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        cases.push((forbidden.0.join("spool"), "cannot create"));
    }
    let server = RawServer::with_fn(|_| Raw::Accept);
    let port = server.port();
    for (i, (dir, words)) in cases.iter().enumerate() {
        let session = format!("session-forbidden-{i}");
        let mut cmd = spool_program("exit", dir, port, &session, 20);
        cmd.env("SPOOL_AS_UID", NOBODY.to_string()).env("SPOOL_DEBUG", "1");
        let (run, stderr) = report_and_stderr(&mut cmd);
        let off: Vec<&str> = stderr.lines().filter(|l| l.contains("spool off")).collect();
        assert_eq!(off.len(), 1, "one line: {stderr}");
        let error = run["last_error"].as_str().expect("the last delivery error");
        assert!(error.contains(words) && error.contains("ermission denied"), "{error}");
        assert_eq!(run["delivered"], run["accepted"], "every event delivered from memory: {run}");
        assert_eq!(run["spooled"], 0);
        assert_eq!(numbers(&by_session(&server)[&session]), (0..20).collect());
    }
    assert_eq!(std::fs::read_dir(&read_only.0).unwrap().count(), 0, "nothing written in it");
    std::fs::set_permissions(&read_only.0, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// A long outage in one process: each batch runs out of retries and stays on disk, until
/// `spool_max_bytes` is reached; then this run's oldest files make room for newer ones.
#[test]
fn past_spool_max_bytes_within_one_run_its_oldest_files_go_first() {
    let dir = SpoolDir::new("own-bytes");
    let port = refused_port();
    let mut first = spool_program("exit", &dir.0, port, "outage", 1000);
    first.env("SPOOL_MAX_RETRIES", "0").env("SPOOL_FLUSH_TIMEOUT_MS", "1000").env("SPOOL_MAX_BYTES", "60000");
    let outage = report(&mut first);
    let lost = outage["over_size"].as_u64().unwrap();
    assert!(lost > 0, "the bound was reached: {outage}");
    assert_eq!(outage["dropped"], 0, "nothing dropped in memory for want of room: {outage}");
    let on_disk: u64 = files_under(&dir.0).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(on_disk <= 60_000, "the bound holds: {on_disk} bytes");
    let server = serve_on(port);
    let next = report(&mut spool_program("exit", &dir.0, port, "after", 0));
    let sent = numbers(&by_session(&server)["outage"]);
    assert_eq!(next["replayed"].as_u64().unwrap() + lost, 1002, "{next}");
    assert!(sent.contains(&999) && !sent.contains(&0), "the newest kept, the oldest gone: {sent:?}");
    let oldest_kept = sent.iter().min().unwrap();
    assert!(sent.iter().all(|n| n >= oldest_kept) && sent.len() as u64 == 1000 - oldest_kept, "{sent:?}");
}

/// A reporter for `session` at the refused or serving `port`, spooling to `dir` within
/// `max_bytes`, with no retries and a short drain.
fn spooling(dir: &Path, port: u16, session: &str, max_bytes: u64) -> (TinkerTelemetryLayer, TelemetryGuard) {
    support::test_builder(&support::spool::url(port), session)
        .spool_dir(dir)
        .spool_interval(Duration::from_millis(100))
        .spool_max_bytes(max_bytes)
        .max_retries(0)
        .flush_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// About 1 KB of event data.
fn pad() -> String {
    "x".repeat(1000)
}

/// A batch written while it was being filled, whose rewrite as it grew does not fit
/// `spool_max_bytes`, then runs out of retries: its events are counted dropped, and the file
/// with its first event goes too, so that no later process sends them.
#[test]
fn a_batch_counted_dropped_leaves_no_file_for_a_later_process_to_send() {
    let dir = SpoolDir::new("dropped-file");
    let port = refused_port();
    let (_layer, guard) = spooling(&dir.0, port, "dropped-first", 8_000);
    let handle = guard.handle();
    // Past the flush timer's first tick, which seals what it takes: the next batch stays open.
    std::thread::sleep(Duration::from_millis(300));
    let log = |n: u64| handle.log("dropped.test", json!({"n": n, "pad": pad()}), Severity::Info);
    assert!(log(0));
    eventually("SESSION_START and the open batch's first event on disk", || events_on_disk(&dir.0) >= 2);
    // The batch grows past the bound: the ticks meanwhile cannot write it again, and its file
    // keeps its first event.
    for n in 1..30 {
        assert!(log(n));
    }
    std::thread::sleep(Duration::from_millis(400));
    handle.flush();
    eventually("the 30 events out of retries", || handle.stats().dropped.retries_exhausted >= 30);
    let first = guard.shutdown().stats;
    assert!(first.dropped.retries_exhausted >= 30, "{:?}", first.dropped);
    let spool = first.spool;
    let left = spool.spooled - spool.replayed - spool.dropped.total();
    assert_eq!(events_on_disk(&dir.0), left, "the disk holds what is counted spooled, no more: {spool:?}");
    let server = serve_on(port);
    let (_layer, guard) = spooling(&dir.0, port, "dropped-next", 64 << 20);
    let ended = |s: &RawServer| {
        by_session(s).get("dropped-first").is_some_and(|e| e.iter().any(|e| e["event"] == "SESSION_END"))
    };
    eventually("the first process's SESSION_END, its newest file, sent", || ended(&server));
    let next = guard.shutdown().stats;
    assert_eq!(next.spool.replayed, left, "{:?}", next.spool);
    let sent = &by_session(&server)["dropped-first"];
    assert!(
        !sent.iter().any(|e| e["event_name"] == "dropped.test"),
        "an event counted dropped was sent: {sent:?}"
    );
}

/// A batch larger than `spool_max_bytes` runs out of retries while this run's SESSION_START
/// waits on disk: evicting that file could not make room, so it stays, and only the batch is
/// lost (counted dropped).
#[test]
fn a_batch_that_eviction_cannot_make_room_for_evicts_nothing() {
    let dir = SpoolDir::new("evict-nothing");
    let port = refused_port();
    let (_layer, guard) = spooling(&dir.0, port, "evict-nothing", 8_000);
    let handle = guard.handle();
    eventually("SESSION_START out of retries, on disk", || {
        handle.stats().spool.spooled == 1 && events_on_disk(&dir.0) == 1
    });
    // About 33 KB in one batch: more than the whole bound.
    for n in 0..30 {
        assert!(handle.log("evict.test", json!({"n": n, "pad": pad()}), Severity::Info));
    }
    handle.flush();
    eventually("the batch out of retries", || handle.stats().dropped.retries_exhausted >= 30);
    let stats = handle.stats();
    assert_eq!(stats.spool.dropped.over_size, 0, "nothing evicted for room that was not used: {stats:?}");
    assert_eq!(events_on_disk(&dir.0), 1, "SESSION_START's file stays");
    assert_eq!(stats.spool.spooled, 1, "{stats:?}");
}

/// A server whose request limit is below the stored batches' size: each is split as the
/// reporter's own batches are, down to what the server takes, and every event arrives.
#[test]
fn stored_batches_too_large_for_the_server_are_split_and_every_event_arrives() {
    let dir = SpoolDir::new("split");
    let port = refused_port();
    let left = leave_in_spool(&dir.0, port, "large", 300);
    let largest = files_under(&dir.0).iter().map(|p| std::fs::metadata(p).unwrap().len()).max().unwrap();
    let server = serve_on(port);
    server.limit_body(largest as usize / 3);
    let next = report(&mut spool_program("exit", &dir.0, port, "after", 0));
    assert_eq!(next["replayed"], left, "{next}");
    assert_eq!(next["spool_dropped"], 0, "{next}");
    assert_eq!(numbers(&by_session(&server)["large"]), (0..300).collect());
    let refused = server.seen().iter().filter(|s| !s.accepted).count();
    assert!(refused >= 3, "the stored batches were answered 413 first: {refused}");
}
