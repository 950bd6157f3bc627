//! The collector most tests send to: wiremock on 127.0.0.1 answering
//! `POST /api/v1/telemetry` by a script of replies (then 200), recording every request and
//! checking every body against the official request schema; a reply can be held until the
//! test opens its gate.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tinker_telemetry::{Builder, TelemetryGuard, TelemetryHandle};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::requests::{Received, Requests, events_of};
use super::{PATIENCE, test_builder};

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
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

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
        events_of(&self.body)
    }
}

impl Received for Seen {
    fn body(&self) -> &Value {
        &self.body
    }

    fn accepted(&self) -> bool {
        self.accepted
    }
}

struct Script {
    plan: Mutex<VecDeque<Reply>>,
    requests: Requests<Seen>,
}

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let reply = self.plan.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        self.requests.check(&body);
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
        self.requests.push(Seen { at: Instant::now(), status, accepted, body, headers });
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
}

impl Collector {
    pub fn start() -> Self {
        Self::with_plan(Vec::new())
    }

    pub fn with_plan(plan: Vec<Reply>) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let script = Arc::new(Script { plan: Mutex::new(plan.into()), requests: Requests::new() });
        let server = runtime.block_on(async {
            let server = MockServer::builder().start().await;
            Mock::given(method("POST"))
                .and(path("/api/v1/telemetry"))
                .respond_with(SharedScript(Arc::clone(&script)))
                .mount(&server)
                .await;
            server
        });
        Collector { runtime, server, script }
    }

    /// A collector that accepts the first request (SESSION_START) and holds its answer to
    /// the second until the gate opens.
    pub fn holding_second() -> (Self, Gate) {
        let gate = Gate::default();
        (Self::with_plan(vec![Reply::Status(200), Reply::Held(gate.clone())]), gate)
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

    /// A reporter aimed at this collector, with test-friendly timings, for a test that logs
    /// through the handle (the layer is dropped).
    pub fn reporter(&self, session: &str) -> (TelemetryGuard, TelemetryHandle) {
        let (_layer, guard) = self.builder(session).build().unwrap();
        let handle = guard.handle();
        (guard, handle)
    }

    /// Every request so far. Panics if any body broke the schema.
    pub fn seen(&self) -> Vec<Seen> {
        self.script.requests.all()
    }

    /// Waits until at least `n` requests have arrived; returns them.
    pub fn wait_requests(&self, n: usize) -> Vec<Seen> {
        self.script.requests.wait(n)
    }

    /// Events of the requests the client got a 2xx for, in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.script.requests.accepted_events()
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

    /// GENERIC_EVENT names of the accepted events (the `event` type of the others), by
    /// index.
    pub fn names(&self) -> Vec<String> {
        super::names(&self.accepted_by_index())
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
