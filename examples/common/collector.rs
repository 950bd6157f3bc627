//! A small Tinker telemetry collector for the examples and benchmarks: an HTTP/1.1 server on
//! 127.0.0.1 (std only, a thread per connection, keep-alive) that accepts
//! `POST /api/v1/telemetry`, keeps every body, and can be told to fail, delay or ignore some
//! requests.
#![allow(dead_code, reason = "each example uses a part of it")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the collector answers a request, chosen per request by the fault function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `200 {"status":"accepted"}`.
    Accept,
    /// This status with an empty JSON object (503, 429 …).
    Status(u16),
    /// Close the connection without answering.
    Reset,
    /// This status with a `Retry-After` header of this many seconds (429, 503).
    RetryAfter(u16, u64),
    /// Accept, after this delay.
    Delay(Duration),
    /// Never answer; hold the connection until the client gives up.
    Hang,
}

type FaultFn = dyn Fn(u64) -> Answer + Send + Sync;

/// A running collector; it stops accepting when dropped.
pub(crate) struct Collector {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    keep_bodies: bool,
    events: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
}

/// Accepted events by `event_session_index`, to spot the same event accepted twice (meaningful
/// with one reporter). One bit per index.
#[derive(Default)]
struct Tally {
    seen: Mutex<Vec<u64>>,
    duplicates: AtomicU64,
}

impl Tally {
    fn record(&self, body: &serde_json::Value) {
        let Some(events) = body["events"].as_array() else { return };
        let mut seen = self.seen.lock().unwrap();
        for index in events.iter().filter_map(|e| e["event_session_index"].as_u64()) {
            let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
            if seen.len() <= word {
                seen.resize(word + 1, 0);
            }
            if seen[word] & bit != 0 {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            seen[word] |= bit;
        }
    }
}

impl Collector {
    /// Starts a collector that accepts everything and keeps every body.
    pub(crate) fn start() -> std::io::Result<Collector> {
        Collector::start_with(true, Arc::new(|_| Answer::Accept))
    }

    /// Starts a collector; `fault(n)` decides the answer to the n-th request (from 0).
    /// With `keep_bodies` false it only counts events, for long benchmarks.
    pub(crate) fn start_with(keep_bodies: bool, fault: Arc<FaultFn>) -> std::io::Result<Collector> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let shared = (bodies.clone(), events.clone(), requests.clone(), stop.clone(), tally.clone());
        std::thread::Builder::new().name("collector".into()).spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if shared.3.load(Ordering::Relaxed) {
                    break;
                }
                let (b, e, r, f) = (shared.0.clone(), shared.1.clone(), shared.2.clone(), fault.clone());
                let t = shared.4.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, keep_bodies, &b, &e, &r, &t, &*f);
                });
            }
        })?;
        Ok(Collector { addr, bodies, keep_bodies, events, requests, tally, stop })
    }

    /// `http://127.0.0.1:PORT`, to pass as the base URL.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every body received and accepted so far (empty unless bodies are kept).
    pub(crate) fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Events in accepted requests so far.
    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Requests received so far, whatever the answer.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Events accepted again with an `event_session_index` accepted before.
    pub(crate) fn duplicates(&self) -> u64 {
        self.tally.duplicates.load(Ordering::Relaxed)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn serve(
    stream: TcpStream,
    keep_bodies: bool,
    bodies: &Mutex<Vec<serde_json::Value>>,
    events: &AtomicU64,
    requests: &AtomicU64,
    tally: &Tally,
    fault: &FaultFn,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let n = requests.fetch_add(1, Ordering::Relaxed);
        let mut extra = String::new();
        let answer = fault(n);
        let (status, reply) = match answer {
            Answer::Reset => return Ok(()),
            Answer::Hang => {
                // Wait for the client to give up and close.
                while reader.read(&mut [0u8; 256])? > 0 {}
                return Ok(());
            }
            Answer::Status(s) => (s, "{}"),
            Answer::RetryAfter(s, secs) => {
                extra = format!("retry-after: {secs}\r\n");
                (s, "{}")
            }
            Answer::Accept | Answer::Delay(_) => {
                if let Answer::Delay(d) = answer {
                    std::thread::sleep(d);
                }
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let count = value["events"].as_array().map_or(0, Vec::len) as u64;
                events.fetch_add(count, Ordering::Relaxed);
                tally.record(&value);
                if keep_bodies {
                    bodies.lock().unwrap().push(value);
                }
                (200, r#"{"status":"accepted"}"#)
            }
        };
        write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{reply}",
            reply.len()
        )?;
        writer.flush()?;
    }
}
