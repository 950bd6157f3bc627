//! A local Tinker telemetry collector for the integration tests: wiremock on 127.0.0.1 with a
//! scripted responder that records every request, validates every body against the official
//! request schema, and can hold a response until the test releases it.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a part of it")]

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
        TinkerTelemetryLayer::builder()
            .session_id(session)
            .api_key(API_KEY)
            .base_url(self.uri())
            .enabled(true)
            .flush_interval(Duration::from_secs(3600))
            .retry_base_delay(Duration::from_millis(5))
            .http_timeout(Duration::from_secs(5))
            .flush_timeout(Duration::from_secs(10))
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
