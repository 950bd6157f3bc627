//! Helpers for the spool's tests: a spool directory of the test's own, the `spool` child
//! program (`tests/programs/src/bin/spool.rs`) and what the spool and the server hold.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::programs::program;
use super::{API_KEY, Raw, RawServer, eventually};

/// A spool directory of the test's own (0700), removed at the end.
pub struct SpoolDir(pub PathBuf);

impl SpoolDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tt-spool-it-{tag}-{}", uuid::Uuid::new_v4().simple()));
        SpoolDir(dir)
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        // A test may have put a file in its place.
        if std::fs::remove_dir_all(&self.0).is_err() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A port with nothing listening on it (yet): connections are refused.
pub fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The spool program, `mode`, for `session` at `port` with `events` events.
pub fn spool_program(mode: &str, dir: &Path, port: u16, session: &str, events: u64) -> Command {
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
pub fn start(cmd: &mut Command) -> Child {
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "EMITTED");
    child
}

/// A server that answers 503 until the flag returned is set, then accepts; and its port.
pub fn down_until_up() -> (RawServer, u16, Arc<AtomicBool>) {
    let up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&up);
    let server =
        RawServer::with_fn(move |_| if flag.load(Ordering::SeqCst) { Raw::Accept } else { Raw::Status(503) });
    let port = server.port();
    (server, port, up)
}

/// Ends a child started in `stdin` mode (closes its stdin) and returns its `REPORT`.
pub fn finish(mut child: Child) -> Value {
    drop(child.stdin.take());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    report_in(&out)
}

/// Runs `cmd` to its end; returns its `REPORT`.
pub fn report(cmd: &mut Command) -> Value {
    report_and_stderr(cmd).0
}

/// Runs `cmd` to its end; returns its `REPORT` and what it wrote on stderr.
pub fn report_and_stderr(cmd: &mut Command) -> (Value, String) {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: {stdout}\n{stderr}", out.status);
    (report_in(&stdout), stderr)
}

/// The `REPORT` line a program printed on `stdout`.
fn report_in(stdout: &str) -> Value {
    let line = stdout.lines().find_map(|l| l.strip_prefix("REPORT ")).expect("a REPORT line");
    serde_json::from_str(line).unwrap()
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
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
pub fn events_on_disk(dir: &Path) -> u64 {
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
pub fn wait_on_disk(dir: &Path, n: u64) {
    eventually(&format!("{n} events on disk"), || events_on_disk(dir) >= n);
}

/// Accepted events by session id.
pub fn by_session(server: &RawServer) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for seen in server.seen().iter().filter(|s| s.accepted) {
        let session = seen.body["session_id"].as_str().unwrap().to_owned();
        out.entry(session).or_default().extend(seen.events().iter().cloned());
    }
    out
}

/// Distinct `event_id`s among `events`.
pub fn distinct_ids(events: &[Value]) -> HashSet<String> {
    events.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect()
}

/// The `spool.test` numbers of a session's events.
pub fn numbers(events: &[Value]) -> HashSet<u64> {
    events
        .iter()
        .filter(|e| e["event_name"] == "spool.test")
        .map(|e| e["event_data"]["n"].as_u64().unwrap())
        .collect()
}
