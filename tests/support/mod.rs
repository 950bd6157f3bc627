//! A local Tinker telemetry collector for the integration tests: wiremock on 127.0.0.1 with a
//! scripted responder that records every request, validates every body against the official
//! request schema, and can hold a response until the test releases it.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a part of it")]

pub mod child;
pub mod programs;
pub mod proxy;
pub mod spool;
pub mod tls;

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tinker_telemetry::{Builder, TinkerTelemetryLayer};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Generous bound for anything a test waits on; a healthy run takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const API_KEY: &str = "tml-test-KEY-0123456789";

/// How the collector answers one request.
#[derive(Clone)]
pub enum Reply {
    /// This response, whose status is the number given.
    With(u16, ResponseTemplate),
    /// `{"status":"accepted"}` with this status.
    Status(u16),
    /// 200, but only once the test opens the gate.
    Held(Gate),
    /// Accept the request and never answer (within any test's timeout).
    Hang,
}

impl Reply {
    /// `status` with the usual body, changed by `f` (add headers, replace the body).
    pub fn with(status: u16, f: impl FnOnce(ResponseTemplate) -> ResponseTemplate) -> Reply {
        Reply::With(status, f(accepted_body(status)))
    }
}

/// A one-way gate: responses held on it wait until it opens.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        let until = Instant::now() + PATIENCE;
        while !*open && Instant::now() < until {
            open = self.0.1.wait_timeout(open, Duration::from_millis(100)).unwrap().0;
        }
    }
}

/// One request as the collector saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub status: u16,
    /// Whether the client got a 2xx answer (not a hung or dropped one).
    pub accepted: bool,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn events(&self) -> &[Value] {
        self.body["events"].as_array().map(Vec::as_slice).unwrap_or(&[])
    }
}

struct Script {
    plan: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    notify: Mutex<Sender<()>>,
    schema: jsonschema::Validator,
    invalid: Mutex<Vec<String>>,
}

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let reply = self.plan.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let errors: Vec<String> = self.schema.iter_errors(&body).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            self.invalid.lock().unwrap().push(format!("{errors:?} in {body}"));
        }
        let (status, accepted) = match &reply {
            Reply::With(status, _) => (*status, (200..300).contains(status)),
            Reply::Status(s) => (*s, (200..300).contains(s)),
            Reply::Held(_) => (200, true),
            Reply::Hang => (200, false),
        };
        let headers = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        self.seen.lock().unwrap().push(Seen { at: Instant::now(), status, accepted, body, headers });
        let _ = self.notify.lock().unwrap().send(());
        match reply {
            Reply::With(_, t) => t,
            Reply::Status(s) => accepted_body(s),
            Reply::Held(gate) => {
                gate.wait();
                accepted_body(200)
            }
            Reply::Hang => accepted_body(200).set_delay(Duration::from_secs(3600)),
        }
    }
}

pub fn accepted_body(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({"status": "accepted"}))
}

/// A builder aimed at `uri`, with test-friendly timings: no interval flush within a test,
/// 5 ms retry backoff, 5 s requests, 10 s drain.
pub fn test_builder(uri: &str, session: &str) -> Builder {
    TinkerTelemetryLayer::builder()
        .session_id(session)
        .api_key(API_KEY)
        .base_url(uri)
        .enabled(true)
        .flush_interval(Duration::from_secs(3600))
        .retry_base_delay(Duration::from_millis(5))
        .http_timeout(Duration::from_secs(5))
        .flush_timeout(Duration::from_secs(10))
}

/// A wiremock server on 127.0.0.1 answering `POST /api/v1/telemetry` by script (then 200).
pub struct Collector {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
    script: Arc<Script>,
    arrivals: Mutex<Receiver<()>>,
}

impl Collector {
    pub fn start() -> Self {
        Self::with_plan(Vec::new())
    }

    pub fn with_plan(plan: Vec<Reply>) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let schema: Value =
            serde_json::from_str(include_str!("../fixtures/telemetry_send_request.schema.json")).unwrap();
        let (tx, rx) = channel();
        let script = Arc::new(Script {
            plan: Mutex::new(plan.into()),
            seen: Mutex::new(Vec::new()),
            notify: Mutex::new(tx),
            schema: jsonschema::options().should_validate_formats(true).build(&schema).unwrap(),
            invalid: Mutex::new(Vec::new()),
        });
        let server = runtime.block_on(async {
            let server = MockServer::builder().start().await;
            Mock::given(method("POST"))
                .and(path("/api/v1/telemetry"))
                .respond_with(SharedScript(Arc::clone(&script)))
                .mount(&server)
                .await;
            server
        });
        Collector { runtime, server, script, arrivals: Mutex::new(rx) }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Adds replies to the end of the plan.
    pub fn plan(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.plan.lock().unwrap().extend(replies);
    }

    /// A builder aimed at this collector, with test-friendly timings.
    pub fn builder(&self, session: &str) -> Builder {
        test_builder(&self.uri(), session)
    }

    /// Every request so far. Panics if any body broke the schema.
    pub fn seen(&self) -> Vec<Seen> {
        let invalid = self.script.invalid.lock().unwrap();
        assert!(invalid.is_empty(), "bodies that break the schema: {invalid:#?}");
        self.script.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived; returns them.
    pub fn wait_requests(&self, n: usize) -> Vec<Seen> {
        let until = Instant::now() + PATIENCE;
        let rx = self.arrivals.lock().unwrap();
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("waited {PATIENCE:?} for {n} requests, got {}", seen.len())
                }
                Err(RecvTimeoutError::Disconnected) => unreachable!(),
            }
        }
    }

    /// Events of the requests the client got a 2xx for, in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.seen().iter().filter(|s| s.accepted).flat_map(|s| s.events().to_vec()).collect()
    }

    /// Accepted events sorted by `event_session_index`.
    pub fn accepted_by_index(&self) -> Vec<Value> {
        let mut events = self.accepted_events();
        events.sort_by_key(|e| e["event_session_index"].as_u64());
        events
    }

    /// Accepted events of one session (the body's `session_id`), by index.
    pub fn session_events(&self, session: &str) -> Vec<Value> {
        let mut events: Vec<Value> = self
            .seen()
            .iter()
            .filter(|s| s.accepted && s.body["session_id"] == session)
            .flat_map(|s| s.events().to_vec())
            .collect();
        events.sort_by_key(|e| e["event_session_index"].as_u64());
        events
    }

    /// GENERIC_EVENT names of the accepted events, by index.
    pub fn names(&self) -> Vec<String> {
        self.accepted_by_index()
            .iter()
            .map(|e| e["event_name"].as_str().unwrap_or(e["event"].as_str().unwrap()).to_owned())
            .collect()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

struct SharedScript(Arc<Script>);

impl Respond for SharedScript {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// Checks what every session's accepted events must satisfy: indices unique and contiguous
/// from 0, SESSION_START at 0, SESSION_END last (if present), event ids unique UUID v4s.
pub fn assert_well_formed(events: &[Value]) {
    let mut indices: Vec<u64> = events.iter().map(|e| e["event_session_index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    let expected: Vec<u64> = (0..events.len() as u64).collect();
    assert_eq!(indices, expected, "indices must be unique and contiguous from 0");
    let mut ids = std::collections::HashSet::new();
    for e in events {
        let id = uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert!(ids.insert(id), "duplicate event_id {id}");
        let ts = e["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27, "timestamp {ts} must have six fraction digits");
        assert!(ts.ends_with('Z'));
    }
    let by_index = |i: u64| events.iter().find(|e| e["event_session_index"] == i).unwrap();
    if let Some(start) = events.iter().find(|e| e["event"] == "SESSION_START") {
        assert_eq!(start["event_session_index"], 0);
    }
    if let Some(end) = events.iter().find(|e| e["event"] == "SESSION_END") {
        assert_eq!(end["event_session_index"], events.len() as u64 - 1, "SESSION_END must be last");
        assert_eq!(events.iter().filter(|e| e["event"] == "SESSION_END").count(), 1);
        let _ = by_index(0);
    }
}

// ---- Helpers for the reliability suites (faults, load, bad input, secrets). ----

/// The official request schema, compiled.
pub fn schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/telemetry_send_request.schema.json")).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

/// Polls `done` every millisecond until it holds; panics naming `what` after [`PATIENCE`].
/// For state the uploader publishes only through its counters (a retry being scheduled).
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < until, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// This process's resident set size, in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// How a [`RawServer`] treats one request. It answers at the TCP level, so it can do what an
/// HTTP server library will not: cut a response short, reset the connection, stall.
#[derive(Debug, Clone)]
pub enum Raw {
    /// `200 {"status":"accepted"}`, connection kept open.
    Accept,
    /// This status with a small JSON body, connection kept open.
    Status(u16),
    /// Write these bytes (a response, or part of one), then close the connection.
    WriteClose(Vec<u8>),
    /// Write these bytes, then write nothing more until the client gives up.
    WriteStall(Vec<u8>),
    /// Read the request head and one byte of its body, then close: the unread rest makes the
    /// kernel answer with a TCP reset.
    Reset,
    /// Read the request and never answer.
    Hang,
}

impl Raw {
    /// The first `n` bytes of a complete `200 {"status":"accepted"}` response.
    pub fn accept_cut_at(n: usize) -> Vec<u8> {
        let mut full = raw_response(200, br#"{"status":"accepted"}"#);
        full.truncate(n);
        full
    }

    /// Whether the client can have learnt that the server took the request: a complete
    /// response head with a 2xx status was written.
    fn accepted(&self) -> bool {
        let head_2xx = |b: &[u8]| b.starts_with(b"HTTP/1.1 2") && b.windows(4).any(|w| w == b"\r\n\r\n");
        match self {
            Raw::Accept => true,
            Raw::Status(s) => (200..300).contains(s),
            Raw::WriteClose(b) | Raw::WriteStall(b) => head_2xx(b),
            Raw::Reset | Raw::Hang => false,
        }
    }
}

/// A complete HTTP/1.1 response with a JSON body.
pub fn raw_response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A complete HTTP/1.1 response with extra header lines (`name: value`) and an empty body,
/// for [`Raw::WriteClose`].
pub fn raw_response_with(status: u16, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n").into_bytes();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// One request as the [`RawServer`] saw it.
#[derive(Debug, Clone)]
pub struct RawSeen {
    pub at: Instant,
    /// The request line and headers, as sent.
    pub head: String,
    /// The body exactly as sent (empty for [`Raw::Reset`], which does not read it).
    pub raw: Vec<u8>,
    pub body: Value,
    pub reply: Raw,
    /// Whether the client got a complete 2xx response head.
    pub accepted: bool,
}

impl RawSeen {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    pub fn events(&self) -> &[Value] {
        self.body["events"].as_array().map(Vec::as_slice).unwrap_or(&[])
    }
}

type RawPlan = dyn Fn(usize) -> Raw + Send + Sync;

struct RawState {
    plan: Box<RawPlan>,
    seen: Mutex<Vec<RawSeen>>,
    arrived: std::sync::Condvar,
    invalid: Mutex<Vec<String>>,
    schema: jsonschema::Validator,
    stop: std::sync::atomic::AtomicBool,
    next: std::sync::atomic::AtomicUsize,
    connections: std::sync::atomic::AtomicUsize,
}

/// An HTTP/1.1 server on 127.0.0.1 built on `std::net` (a thread per connection, keep-alive)
/// whose answer to the n-th request (from 0) is `plan(n)`. Validates every body it reads
/// against the request schema. [`RawServer::tls`] serves the same behind TLS.
pub struct RawServer {
    addr: std::net::SocketAddr,
    scheme: &'static str,
    state: Arc<RawState>,
}

impl RawServer {
    /// Answers request n with `plan[n]`, then with [`Raw::Accept`].
    pub fn with_plan(plan: Vec<Raw>) -> Self {
        Self::with_fn(move |n| plan.get(n).cloned().unwrap_or(Raw::Accept))
    }

    /// Listens on a fresh port.
    pub fn with_fn(plan: impl Fn(usize) -> Raw + Send + Sync + 'static) -> Self {
        Self::on(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), plan)
    }

    /// Listens with `listener` (to come up on a port chosen earlier).
    pub fn on(listener: std::net::TcpListener, plan: impl Fn(usize) -> Raw + Send + Sync + 'static) -> Self {
        Self::serving(listener, "http", plan, |stream, state| {
            let _ = raw_serve(stream, state);
        })
    }

    /// Listens with `listener`; `serve` runs each connection on a thread of its own.
    fn serving(
        listener: std::net::TcpListener,
        scheme: &'static str,
        plan: impl Fn(usize) -> Raw + Send + Sync + 'static,
        serve: impl Fn(std::net::TcpStream, &RawState) + Send + Sync + 'static,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(RawState {
            plan: Box::new(plan),
            seen: Mutex::new(Vec::new()),
            arrived: std::sync::Condvar::new(),
            invalid: Mutex::new(Vec::new()),
            schema: schema(),
            stop: std::sync::atomic::AtomicBool::new(false),
            next: std::sync::atomic::AtomicUsize::new(0),
            connections: std::sync::atomic::AtomicUsize::new(0),
        });
        let accepting = Arc::clone(&state);
        let serve = Arc::new(serve);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                accepting.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let state = Arc::clone(&accepting);
                let serve = Arc::clone(&serve);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        RawServer { addr, scheme, state }
    }

    /// `http://127.0.0.1:PORT`, or `https://` for [`RawServer::tls`].
    pub fn uri(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// TCP connections accepted so far (a refused TLS handshake makes one, and no request).
    pub fn connections(&self) -> usize {
        self.state.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A builder aimed at this server, with the same test-friendly timings as
    /// [`Collector::builder`].
    pub fn builder(&self, session: &str) -> Builder {
        test_builder(&self.uri(), session)
    }

    /// Every request so far. Panics if any body broke the schema.
    pub fn seen(&self) -> Vec<RawSeen> {
        let invalid = self.state.invalid.lock().unwrap();
        assert!(invalid.is_empty(), "bodies that break the schema: {invalid:#?}");
        self.state.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived; returns them.
    pub fn wait_requests(&self, n: usize) -> Vec<RawSeen> {
        let until = Instant::now() + PATIENCE;
        let mut seen = self.state.seen.lock().unwrap();
        while seen.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let got = seen.len();
                drop(seen);
                panic!("waited {PATIENCE:?} for {n} requests, got {got}");
            }
            seen = self.state.arrived.wait_timeout(seen, left).unwrap().0;
        }
        drop(seen);
        self.seen()
    }

    /// Events of the requests the client got a 2xx for, in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.seen().iter().filter(|s| s.accepted).flat_map(|s| s.events().to_vec()).collect()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.state.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn raw_serve(mut stream: impl std::io::Read + std::io::Write, state: &RawState) -> std::io::Result<()> {
    // Unbuffered on purpose: a reset must leave the rest of the request unread in the kernel.
    loop {
        let mut head = Vec::with_capacity(512);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let n = state.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = (state.plan)(n);
        let mut raw = Vec::new();
        if matches!(reply, Raw::Reset) {
            stream.read_exact(&mut byte)?;
        } else {
            raw = vec![0; length];
            stream.read_exact(&mut raw)?;
        }
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        if !matches!(reply, Raw::Reset) {
            let errors: Vec<String> = state.schema.iter_errors(&body).map(|e| e.to_string()).collect();
            if !errors.is_empty() {
                state.invalid.lock().unwrap().push(format!("{errors:?} in {body}"));
            }
        }
        let accepted = reply.accepted();
        let seen = RawSeen { at: Instant::now(), head, raw, body, reply: reply.clone(), accepted };
        state.seen.lock().unwrap().push(seen);
        state.arrived.notify_all();
        match reply {
            Raw::Accept => stream.write_all(&raw_response(200, br#"{"status":"accepted"}"#))?,
            Raw::Status(s) => stream.write_all(&raw_response(s, br#"{"detail":"scripted"}"#))?,
            Raw::WriteClose(bytes) => {
                stream.write_all(&bytes)?;
                return Ok(());
            }
            Raw::Reset => return Ok(()),
            Raw::WriteStall(bytes) => {
                stream.write_all(&bytes)?;
                // Wait for the client to hang up.
                while stream.read(&mut [0u8; 256])? > 0 {}
                return Ok(());
            }
            Raw::Hang => {
                while stream.read(&mut [0u8; 256])? > 0 {}
                return Ok(());
            }
        }
        stream.flush()?;
    }
}
