//! The durable spool with real processes: a child program (`tests/programs/src/bin/spool.rs`)
//! killed with SIGKILL or ending during an outage, the next process delivering what it left,
//! over real HTTP on 127.0.0.1.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use support::programs::program;
use support::{API_KEY, Raw, RawServer, eventually};

/// A spool directory of the test's own (0700), removed at the end.
struct SpoolDir(PathBuf);

impl SpoolDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tt-spool-it-{tag}-{}", uuid::Uuid::new_v4().simple()));
        SpoolDir(dir)
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port with nothing listening on it (yet): connections are refused.
fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The spool program, `mode`, for `session` at `port` with `events` events.
fn spool_program(mode: &str, dir: &Path, port: u16, session: &str, events: u64) -> Command {
    let mut cmd = program("spool");
    cmd.arg(mode)
        .env("TINKER_BASE_URL", url(port))
        .env("TINKER_API_KEY", API_KEY)
        .env("TINKER_TELEMETRY_SPOOL_DIR", dir)
        .env("SPOOL_SESSION", session)
        .env("SPOOL_EVENTS", events.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// Starts `cmd` and waits for its `EMITTED` line.
fn start(cmd: &mut Command) -> Child {
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "EMITTED");
    child
}

/// Runs `cmd` to its end; returns its `REPORT`.
fn report(cmd: &mut Command) -> Value {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| l.strip_prefix("REPORT ")).expect("a REPORT line");
    serde_json::from_str(line).unwrap()
}

/// Kills `child` with SIGKILL and reaps it.
fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = entry.file_type().unwrap();
            if t.is_dir() {
                todo.push(entry.path());
            } else if t.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Events in the spool's batch files, from their headers (bytes 6..8).
fn events_on_disk(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "batch"))
        .filter_map(|p| std::fs::File::open(p).ok())
        .map(|mut f| {
            let mut header = [0u8; 16];
            if f.read_exact(&mut header).is_ok() {
                u64::from(u16::from_le_bytes([header[6], header[7]]))
            } else {
                0
            }
        })
        .sum()
}

/// Waits until the spool holds at least `n` events.
fn wait_on_disk(dir: &Path, n: u64) {
    eventually(&format!("{n} events on disk"), || events_on_disk(dir) >= n);
}

/// Accepted events by session id.
fn by_session(server: &RawServer) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for seen in server.seen().iter().filter(|s| s.accepted) {
        let session = seen.body["session_id"].as_str().unwrap().to_owned();
        out.entry(session).or_default().extend(seen.events().iter().cloned());
    }
    out
}

/// Distinct `event_id`s among `events`.
fn distinct_ids(events: &[Value]) -> HashSet<String> {
    events.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect()
}

/// The `spool.test` numbers of a session's events.
fn numbers(events: &[Value]) -> HashSet<u64> {
    events
        .iter()
        .filter(|e| e["event_name"] == "spool.test")
        .map(|e| e["event_data"]["n"].as_u64().unwrap())
        .collect()
}

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
    first.env("SPOOL_FLUSH_TIMEOUT_MS", "300").env("SPOOL_MAX_RETRIES", "1000");
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
    let up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&up);
    let server =
        RawServer::with_fn(move |_| if flag.load(Ordering::SeqCst) { Raw::Accept } else { Raw::Status(503) });
    let port: u16 = server.uri().rsplit(':').next().unwrap().parse().unwrap();
    let mut a = spool_program("hang", &dir.0, port, "live-a", 300);
    let a = start(a.env("SPOOL_MAX_RETRIES", "100000"));
    let mut b = spool_program("stdin", &dir.0, port, "live-b", 300);
    let mut b = start(b.env("SPOOL_MAX_RETRIES", "100000"));
    wait_on_disk(&dir.0, 602);
    kill9(a);
    up.store(true, Ordering::SeqCst);
    // A third process adopts the killed one's run, never the live one's.
    let c = report(&mut spool_program("exit", &dir.0, port, "third", 0));
    assert_eq!(c["replayed"], 301, "{c}");
    drop(b.stdin.take());
    let mut out = String::new();
    b.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(b.wait().unwrap().success(), "{out}");
    let sessions = by_session(&server);
    for (session, expected) in [("live-a", 301), ("live-b", 302)] {
        let events = &sessions[session];
        assert_eq!(numbers(events), (0..300).collect(), "{session}");
        assert_eq!(events.len(), expected, "{session}: each event once, so no run was sent twice");
    }
}
