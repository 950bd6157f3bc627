//! A server for the faults an HTTP library will not make: an HTTP/1.1 server on 127.0.0.1
//! built on `std::net` that answers at the TCP level, so it can cut a response short, reset
//! the connection or stall, and records what it read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tinker_telemetry::Builder;

use super::requests::{Received, Requests, events_of};
use super::test_builder;

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

impl Received for RawSeen {
    fn body(&self) -> &Value {
        &self.body
    }

    fn accepted(&self) -> bool {
        self.accepted
    }
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
        events_of(&self.body)
    }
}

type RawPlan = dyn Fn(usize) -> Raw + Send + Sync;
type HeadPlan = dyn Fn(&str) -> Option<Raw> + Send + Sync;

pub(super) struct RawState {
    plan: Box<RawPlan>,
    /// Bodies longer than this are answered 413, whatever the plan says.
    body_limit: std::sync::atomic::AtomicUsize,
    /// An answer chosen from the request's head, before the plan's.
    by_head: std::sync::Mutex<Option<Box<HeadPlan>>>,
    requests: Requests<RawSeen>,
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
    /// Answers every body longer than `bytes` with 413 (Payload Too Large), as a server
    /// with a smaller request limit than the client's batches.
    pub fn limit_body(&self, bytes: usize) {
        self.state.body_limit.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Answers a request with what `f` says of its head (request line and headers), when it
    /// says something; otherwise as planned.
    pub fn answer_by_head(&self, f: impl Fn(&str) -> Option<Raw> + Send + Sync + 'static) {
        *self.state.by_head.lock().unwrap() = Some(Box::new(f));
    }

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
    pub(super) fn serving(
        listener: std::net::TcpListener,
        scheme: &'static str,
        plan: impl Fn(usize) -> Raw + Send + Sync + 'static,
        serve: impl Fn(std::net::TcpStream, &RawState) + Send + Sync + 'static,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(RawState {
            plan: Box::new(plan),
            body_limit: std::sync::atomic::AtomicUsize::new(usize::MAX),
            by_head: std::sync::Mutex::new(None),
            requests: Requests::new(),
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

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
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
        self.state.requests.all()
    }

    /// Waits until at least `n` requests have arrived; returns them.
    pub fn wait_requests(&self, n: usize) -> Vec<RawSeen> {
        self.state.requests.wait(n)
    }

    /// Events of the requests the client got a 2xx for, in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.state.requests.accepted_events()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.state.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

pub(super) fn raw_serve(
    mut stream: impl std::io::Read + std::io::Write,
    state: &RawState,
) -> std::io::Result<()> {
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
        let limit = state.body_limit.load(std::sync::atomic::Ordering::Relaxed);
        let by_head = state.by_head.lock().unwrap().as_ref().and_then(|f| f(&head));
        let reply =
            if length > limit { Raw::Status(413) } else { by_head.unwrap_or_else(|| (state.plan)(n)) };
        let mut raw = Vec::new();
        if matches!(reply, Raw::Reset) {
            stream.read_exact(&mut byte)?;
        } else {
            raw = vec![0; length];
            stream.read_exact(&mut raw)?;
        }
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        if !matches!(reply, Raw::Reset) {
            state.requests.check(&body);
        }
        let accepted = reply.accepted();
        state.requests.push(RawSeen { at: Instant::now(), head, raw, body, reply: reply.clone(), accepted });
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
