//! The durable spool with real processes: a child program (`tests/programs/src/bin/spool.rs`)
//! killed with SIGKILL or ending during an outage, the next process (or the same one, once the
//! server returns) delivering what it left, over real HTTP on 127.0.0.1.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::spool::{
    SpoolDir, by_session, distinct_ids, down_until_up, finish, kill9, numbers, refused_port, report,
    spool_program, start, wait_on_disk,
};
use support::{Raw, RawServer, eventually};
use tinker_telemetry::Severity;

#[test]
fn kill_9_loses_nothing_the_next_process_delivers_every_event_with_its_session() {
    let dir = SpoolDir::new("kill9");
    let port = refused_port();
    let first = start(&mut spool_program("hang", &dir.0, port, "session-killed", 1000));
    // SESSION_START and the 1,000 events are on disk: kill it.
    wait_on_disk(&dir.0, 1001);
    kill9(first);
    let server = RawServer::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    let next = report(&mut spool_program("exit", &dir.0, port, "session-next", 3));
    assert_eq!(next["replayed"], 1001, "{next}");
    let sessions = by_session(&server);
    let killed = &sessions["session-killed"];
    assert_eq!(numbers(killed), (0..1000).collect(), "every event of the killed process");
    assert_eq!(distinct_ids(killed).len(), 1001, "SESSION_START and the 1,000, by event_id");
    assert!(killed.iter().all(|e| e["event"] != "SESSION_END"), "no SESSION_END is invented");
    let own = &sessions["session-next"];
    support::assert_well_formed(own);
    assert_eq!(numbers(own), (0..3).collect());
    assert!(own.iter().any(|e| e["event"] == "SESSION_END"), "its own session, start to end");
    assert!(!dir.0.read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".run")));
}

#[test]
fn an_outage_past_flush_timeout_leaves_the_events_spooled_not_dropped() {
    let dir = SpoolDir::new("outage");
    let port = refused_port();
    let mut first = spool_program("exit", &dir.0, port, "session-outage", 50);
    first.env("SPOOL_FLUSH_TIMEOUT_MS", "1000").env("SPOOL_MAX_RETRIES", "1000");
    let gone = report(&mut first);
    assert_eq!(gone["spooled"], 52, "SESSION_START, 50 events, SESSION_END: {gone}");
    assert_eq!((gone["dropped"].as_u64(), gone["delivered"].as_u64()), (Some(0), Some(0)), "{gone}");
    assert_eq!(gone["accepted"], gone["spooled"], "accepted = spooled once nothing else happened");
    let server = RawServer::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    let next = report(&mut spool_program("exit", &dir.0, port, "session-after", 0));
    assert_eq!(next["replayed"], 52, "{next}");
    let events = &by_session(&server)["session-outage"];
    support::assert_well_formed(events);
    assert_eq!(numbers(events), (0..50).collect());
    assert_eq!(events.iter().filter(|e| e["event"] == "SESSION_END").count(), 1, "its own SESSION_END, once");
}

#[test]
fn a_crash_loop_of_five_runs_is_delivered_by_the_first_healthy_one() {
    let dir = SpoolDir::new("crashloop");
    let port = refused_port();
    for run in 1..=5u64 {
        let child = start(&mut spool_program("hang", &dir.0, port, &format!("crash-{run}"), 20));
        wait_on_disk(&dir.0, 21 * run);
        kill9(child);
    }
    let server = RawServer::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    let healthy = report(&mut spool_program("exit", &dir.0, port, "healthy", 0));
    assert_eq!(healthy["replayed"], 105, "{healthy}");
    let sessions = by_session(&server);
    // At the server's idempotency level: an event_id seen twice came with the same key.
    let mut first_key: HashMap<String, String> = HashMap::new();
    for seen in server.seen().iter().filter(|s| s.accepted) {
        let key = seen.header("x-idempotency-key").unwrap().to_owned();
        for e in seen.events() {
            let id = e["event_id"].as_str().unwrap().to_owned();
            assert_eq!(
                first_key.entry(id).or_insert_with(|| key.clone()),
                &key,
                "a duplicate under a new key"
            );
        }
    }
    for run in 1..=5 {
        let events = &sessions[&format!("crash-{run}")];
        assert_eq!(numbers(events), (0..20).collect(), "run {run}");
        assert_eq!(distinct_ids(events).len(), 21, "run {run}");
    }
}

#[test]
fn two_live_processes_never_send_one_run_and_a_killed_ones_run_is_sent_once() {
    let dir = SpoolDir::new("two");
    let (server, port, up) = down_until_up();
    let mut a = spool_program("hang", &dir.0, port, "live-a", 300);
    let a = start(a.env("SPOOL_MAX_RETRIES", "100000"));
    let mut b = spool_program("stdin", &dir.0, port, "live-b", 300);
    let b = start(b.env("SPOOL_MAX_RETRIES", "100000"));
    wait_on_disk(&dir.0, 602);
    // ... and the killed one has tried a batch (its SESSION_START's) before it dies.
    eventually("a request of live-a", || server.seen().iter().any(|s| s.body["session_id"] == "live-a"));
    kill9(a);
    up.store(true, Ordering::SeqCst);
    // A third process adopts the killed one's run, never the live one's.
    let c = report(&mut spool_program("exit", &dir.0, port, "third", 0));
    assert_eq!(c["replayed"], 301, "{c}");
    finish(b);
    // A batch tried before the kill is sent by the next process under the same key.
    let mut tried: HashMap<String, String> = HashMap::new();
    for seen in server
        .seen()
        .iter()
        .filter(|s| matches!(s.reply, Raw::Status(503)) && s.body["session_id"] == "live-a")
    {
        for e in seen.events() {
            tried.insert(
                e["event_id"].as_str().unwrap().to_owned(),
                seen.header("x-idempotency-key").unwrap().to_owned(),
            );
        }
    }
    let mut same_key = 0;
    for seen in server.seen().iter().filter(|s| s.accepted && s.body["session_id"] == "live-a") {
        for e in seen.events() {
            if let Some(key) = tried.get(e["event_id"].as_str().unwrap()) {
                assert_eq!(key, seen.header("x-idempotency-key").unwrap(), "the key a batch was tried with");
                same_key += 1;
            }
        }
    }
    assert!(same_key > 0, "the killed process's SESSION_START had been tried");
    let sessions = by_session(&server);
    for (session, expected) in [("live-a", 301), ("live-b", 302)] {
        let events = &sessions[session];
        assert_eq!(numbers(events), (0..300).collect(), "{session}");
        assert_eq!(events.len(), expected, "{session}: each event once, so no run was sent twice");
    }
}

#[test]
fn a_process_killed_during_its_drain_loses_nothing() {
    let dir = SpoolDir::new("drain");
    let port = refused_port();
    let mut first = spool_program("exit", &dir.0, port, "session-draining", 200);
    first.env("SPOOL_FLUSH_TIMEOUT_MS", "60000").env("SPOOL_MAX_RETRIES", "100000");
    let draining = first.spawn().unwrap();
    // SESSION_START, the 200 events and SESSION_END, written while the drain waits.
    wait_on_disk(&dir.0, 202);
    kill9(draining);
    let server = RawServer::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_| Raw::Accept);
    let next = report(&mut spool_program("exit", &dir.0, port, "session-next", 0));
    assert_eq!(next["replayed"], 202, "{next}");
    let events = &by_session(&server)["session-draining"];
    support::assert_well_formed(events);
    assert_eq!(numbers(events), (0..200).collect());
}

/// An outage inside one process's life: each batch runs out of retries and goes to disk; when
/// the server returns, the same process sends them, and leaves nothing for the next one.
#[test]
fn batches_out_of_retries_are_sent_by_the_same_process_once_the_server_returns() {
    let dir = SpoolDir::new("comeback");
    let (server, port, up) = down_until_up();
    let mut cmd = spool_program("stdin", &dir.0, port, "comeback", 300);
    let mut child = start(cmd.env("SPOOL_MAX_RETRIES", "0"));
    all_refused(&mut child, &server, 302);
    up.store(true, Ordering::SeqCst);
    // The program goes on working: its next event, taken by the server, ends the replay's
    // pause (up to 60 s after failures in a row) at once.
    let stdin = child.stdin.as_mut().unwrap();
    let mut nudged = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let arrived = || by_session(&server).get("comeback").map_or(0, |e| numbers(e).len());
    // Sent, and booked: a file is removed once its batch is settled.
    eventually("the 300 events, sent by the process that left them", || {
        if nudged.elapsed() > std::time::Duration::from_millis(500) {
            writeln!(stdin, "nudge").unwrap();
            nudged = std::time::Instant::now();
        }
        arrived() == 300 && support::spool::events_on_disk(&dir.0) == 0
    });
    let gone = finish(child);
    assert_eq!(gone["spooled"], 302, "SESSION_START, the 300 and a nudge went to disk: {gone}");
    assert_eq!(gone["replayed"], 302, "and were sent from there: {gone}");
    assert_eq!(gone["spool_dropped"], 0, "{gone}");
    let events = &by_session(&server)["comeback"];
    support::assert_well_formed(events);
    assert_eq!(distinct_ids(events).len(), events.len(), "each event once");
    assert!(
        events.iter().any(|e| e["event"] == "SESSION_START")
            && events.iter().any(|e| e["event"] == "SESSION_END")
    );
    assert!(support::spool::files_under(&dir.0).is_empty(), "nothing left for the next process");
}

/// A batch split after a 413, one part delivered and the other out of retries: only that
/// part goes to disk, under its part's key, and the same process sends it once the server
/// takes it; no event is sent twice, and what was spooled is what was replayed.
#[test]
fn of_a_split_batch_only_the_part_that_waits_is_spooled_and_sent_once() {
    // The size of the 100 events' request, to set a server limit below it.
    let probe_dir = SpoolDir::new("probe");
    let probe = RawServer::with_fn(|_| Raw::Accept);
    let probe_port = probe.port();
    report(&mut spool_program("exit", &probe_dir.0, probe_port, "probe", 100));
    let whole = probe.seen().iter().map(|s| s.raw.len()).max().unwrap();
    let dir = SpoolDir::new("split-live");
    let server = RawServer::with_fn(|_| Raw::Accept);
    server.limit_body(whole * 3 / 4);
    // The first second half of a split batch (its key ends with a range not from 0) is
    // refused once: out of retries.
    let refused = AtomicBool::new(false);
    server.answer_by_head(move |head| {
        let key = head.lines().find_map(|l| l.strip_prefix("x-idempotency-key: "))?;
        let (_, range) = key.rsplit_once('.')?;
        (!range.starts_with("0-") && !refused.swap(true, Ordering::SeqCst)).then_some(Raw::Status(503))
    });
    let port = server.port();
    let mut cmd = spool_program("stdin", &dir.0, port, "split-live", 100);
    let mut child = start(cmd.env("SPOOL_MAX_RETRIES", "0"));
    // The events still in the batch being filled go too.
    writeln!(child.stdin.as_mut().unwrap(), "nudge").unwrap();
    let arrived = || by_session(&server).get("split-live").map_or(0, |e| numbers(e).len());
    // Sent, and booked: a file is removed once its batch is settled.
    eventually("the 100 events", || arrived() == 100 && support::spool::events_on_disk(&dir.0) == 0);
    let gone = finish(child);
    let seen = server.seen();
    assert!(seen.iter().any(|s| matches!(s.reply, Raw::Status(413))), "the batch was split");
    assert!(seen.iter().any(|s| matches!(s.reply, Raw::Status(503))), "a part ran out of retries");
    let events = &by_session(&server)["split-live"];
    assert_eq!(distinct_ids(events).len(), events.len(), "no event accepted twice");
    assert!(gone["spooled"].as_u64().unwrap() > 0, "{gone}");
    assert_eq!(
        gone["replayed"], gone["spooled"],
        "what was spooled, and only that, was sent from disk: {gone}"
    );
    let key_of = |reply: fn(&Raw) -> bool| -> Vec<&str> {
        seen.iter().filter(|s| reply(&s.reply)).filter_map(|s| s.header("x-idempotency-key")).collect()
    };
    let refused_part = key_of(|r| matches!(r, Raw::Status(503)))[0];
    assert!(
        key_of(|r| matches!(r, Raw::Accept)).contains(&refused_part),
        "the part kept its key: {refused_part}"
    );
}

/// A batch split after a 413 whose neighbouring parts (2-4 and 4-8) both run out of retries:
/// each goes to disk under its own key, and is sent from there under the key it was tried
/// with, so that a server can match the resend to the try.
#[test]
fn neighbouring_parts_of_a_split_batch_that_wait_are_resent_each_under_its_own_key() {
    let dir = SpoolDir::new("parts");
    let server = RawServer::with_fn(|_| Raw::Accept);
    // The whole batch of 8 and its first half are too large; parts 2-4 and 4-8 are refused
    // the first time (out of retries: none allowed), taken after.
    let refused = Mutex::new(HashSet::new());
    server.answer_by_head(move |head| {
        let key = head.lines().find_map(|l| l.strip_prefix("x-idempotency-key: "))?;
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length: "))?.trim().parse().ok()?;
        match key.rsplit_once('.').map(|(_, range)| range) {
            None if len > 6000 => Some(Raw::Status(413)),
            Some("0-4") => Some(Raw::Status(413)),
            Some(range @ ("2-4" | "4-8")) if refused.lock().unwrap().insert(range.to_owned()) => {
                Some(Raw::Status(503))
            }
            _ => None,
        }
    });
    let (_layer, guard) = server
        .builder("parts")
        .spool_dir(&dir.0)
        .spool_interval(Duration::from_millis(100))
        .max_retries(0)
        .max_batch_size(8)
        .flush_threshold(8)
        .build()
        .unwrap();
    let handle = guard.handle();
    for n in 0..8 {
        assert!(handle.log("parts.test", json!({"n": n, "pad": "x".repeat(1000)}), Severity::Info));
    }
    let accepted = || {
        let events = server.accepted_events();
        events.iter().filter(|e| e["event_name"] == "parts.test").count()
    };
    eventually("the 8 events, 2 to 7 from the spool", || accepted() >= 8);
    let stats = guard.shutdown().stats;
    assert_eq!(accepted(), 8, "each event accepted once");
    assert_eq!((stats.spool.spooled, stats.spool.replayed), (6, 6), "{:?}", stats.spool);
    // Each request that carried event n, past the whole batch and its first half: its key's
    // range, and whether it was accepted.
    let mut sent: HashMap<u64, Vec<(String, bool)>> = HashMap::new();
    for seen in server.seen() {
        let key = seen.header("x-idempotency-key").unwrap();
        let Some((_, range)) = key.rsplit_once('.').filter(|(_, r)| *r != "0-4") else { continue };
        for e in seen.events().iter().filter(|e| e["event_name"] == "parts.test") {
            let n = e["event_data"]["n"].as_u64().unwrap();
            sent.entry(n).or_default().push((range.to_owned(), seen.accepted));
        }
    }
    for n in 2..8 {
        let part = if n < 4 { "2-4" } else { "4-8" };
        let tries = &sent[&n];
        assert_eq!(
            tries,
            &[(part.to_owned(), false), (part.to_owned(), true)],
            "event {n}: refused, then sent from the spool, under its part's key"
        );
    }
}

/// A shutdown while this run's own file is being sent again: the send is given up at once,
/// the file stays for the next process, and the drain does not wait for the request.
#[test]
fn a_shutdown_does_not_wait_for_this_runs_file_being_sent_again() {
    let dir = SpoolDir::new("own-in-flight");
    let (up, hung) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (flag, hang) = (Arc::clone(&up), Arc::clone(&hung));
    // 503 until raised; then the first request hangs, the rest are accepted.
    let server =
        RawServer::with_fn(move |_| match (flag.load(Ordering::SeqCst), hang.swap(true, Ordering::SeqCst)) {
            (false, _) => {
                hang.store(false, Ordering::SeqCst);
                Raw::Status(503)
            }
            (true, false) => Raw::Hang,
            (true, true) => Raw::Accept,
        });
    let port = server.port();
    let mut cmd = spool_program("stdin", &dir.0, port, "own-in-flight", 100);
    cmd.env("SPOOL_MAX_RETRIES", "0").env("SPOOL_HTTP_TIMEOUT_MS", "30000");
    let mut child = start(&mut cmd);
    all_refused(&mut child, &server, 102);
    up.store(true, Ordering::SeqCst);
    eventually("a replayed request that hangs", || {
        server.seen().iter().any(|s| matches!(s.reply, Raw::Hang))
    });
    let began = std::time::Instant::now();
    let gone = finish(child);
    // Waiting for the hung request would take the 10 s drain deadline.
    assert!(began.elapsed() < std::time::Duration::from_secs(5), "{:?}", began.elapsed());
    assert_eq!(gone["replayed"], 0, "{gone}");
    assert_eq!(gone["spooled"], 102, "{gone}");
    assert_eq!(support::spool::events_on_disk(&dir.0), 102, "left for the next process");
}

/// Has the `stdin`-mode `child` send what it holds (a `nudge` event and a flush), then waits
/// until `server` has refused `events` distinct events, SESSION_START and the nudge among
/// them: with no retries, each of its batches is then out of retries (a batch in flight is
/// on disk too, but could still be taken).
fn all_refused(child: &mut std::process::Child, server: &RawServer, events: usize) {
    writeln!(child.stdin.as_mut().unwrap(), "nudge").unwrap();
    eventually(&format!("{events} events refused"), || refused_events(server) == events);
}

/// Distinct events in the requests `server` answered 503.
fn refused_events(server: &RawServer) -> usize {
    let seen = server.seen();
    let refused: Vec<serde_json::Value> = seen
        .iter()
        .filter(|s| matches!(s.reply, Raw::Status(503)))
        .flat_map(|s| s.events().iter().cloned())
        .collect();
    distinct_ids(&refused).len()
}
