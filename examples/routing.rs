//! A program using its own telemetry while it runs: two local endpoints answer the same
//! request, one of them slowed; the client sends each request to the endpoint with the lower
//! p95 over the last summary window, read from `TelemetryHandle::operations()`, and keeps
//! one request in ten on the other so that its numbers stay live. Half way through, the
//! slow endpoint recovers (and becomes the faster one); the example prints, second by
//! second, how the split moves, and at the end the session's usage report
//! (`TelemetryHandle::usage()`). A local collector stands in for the Tinker API.
//!
//! ```text
//! cargo run --example routing -- --seconds 10
//! ```

#[path = "common/collector.rs"]
mod collector;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use collector::Collector;
use tinker_telemetry::{OperationsSnapshot, TelemetryHandle, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

const SESSION: &str = "0b6f5e2a-7c1d-4e8f-9a3b-5d2c1e0f4a76";
/// How long endpoint `a` takes, and `b` while slowed and once recovered.
const A_DELAY: Duration = Duration::from_millis(6);
const B_SLOW: Duration = Duration::from_millis(30);
const B_RECOVERED: Duration = Duration::from_millis(2);
/// One request in this many goes to the endpoint not chosen, to keep its p95 live.
const PROBE_EVERY: u64 = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 10,
        [flag, n] if flag == "--seconds" => n.parse()?,
        _ => return Err("usage: routing [--seconds N]".into()),
    };
    let collector = Collector::start()?;
    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key("tml-routing-example")
        .base_url(collector.base_url())
        .enabled(true)
        // The endpoint is a dimension of the operation: one entry per endpoint.
        .operation_label("endpoint")
        // Every request in the summaries, none sent as an event of its own.
        .summary_only(["http.request"])
        .summary_interval(Duration::from_millis(500))
        .build()?;
    tracing_subscriber::registry().with(layer).init();
    let handle = guard.handle();
    let sent = route(&handle, Duration::from_secs(seconds))?;
    // Everything taken, the last window summarised: the usage report of the whole session.
    handle.wait_until_drained(Duration::from_secs(5));
    usage(&handle);
    drop(guard);
    let summaries = collector
        .bodies()
        .iter()
        .flat_map(|b| b["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["event_name"] == "performance.summary")
        .count();
    println!("{sent} requests, sent to the collector as {summaries} performance.summary events");
    Ok(())
}

/// Sends requests for `length`, each to the endpoint [`choose`] picks but one in
/// [`PROBE_EVERY`]; `b` recovers half way. Prints the split every second; returns the
/// requests sent.
fn route(handle: &TelemetryHandle, length: Duration) -> std::io::Result<u64> {
    let a = Endpoint::start(A_DELAY)?;
    let b = Endpoint::start(B_SLOW)?;
    let half = length / 2;
    println!(
        "endpoint a {} answers in {A_DELAY:?}, endpoint b {} in {B_SLOW:?} until {half:?}, then in {B_RECOVERED:?}",
        a.addr, b.addr
    );
    println!(
        "{:>4} {:>9} {:>6} {:>6} {:>12} {:>12}",
        "t", "requests", "to a", "to b", "p95 a (ms)", "p95 b (ms)"
    );
    let started = Instant::now();
    let (mut sent, mut second, mut recovered) = (0u64, [0u64; 2], false);
    let mut next_report = started + Duration::from_secs(1);
    while started.elapsed() < length {
        if !recovered && started.elapsed() >= half {
            b.delay.store(B_RECOVERED.as_micros() as u64, Relaxed);
            recovered = true;
            println!("---- endpoint b recovered");
        }
        let snapshot = handle.operations();
        let best = choose(&snapshot);
        let to = if sent % PROBE_EVERY == PROBE_EVERY - 1 { 1 - best } else { best };
        request(["a", "b"][to], [&a, &b][to].addr)?;
        second[to] += 1;
        sent += 1;
        if Instant::now() >= next_report {
            report(started, second, &snapshot);
            second = [0, 0];
            next_report += Duration::from_secs(1);
        }
    }
    Ok(sent)
}

/// The endpoint (0 for `a`, 1 for `b`) with the lower p95 over the last window; `a` while
/// either has no numbers yet.
fn choose(snapshot: &OperationsSnapshot) -> usize {
    match (p95(snapshot, "a"), p95(snapshot, "b")) {
        (Some(a), Some(b)) if b < a => 1,
        _ => 0,
    }
}

/// The p95 of the requests to `endpoint` over the last completed summary window.
fn p95(snapshot: &OperationsSnapshot, endpoint: &str) -> Option<f64> {
    let op =
        snapshot.operations.iter().find(|o| o.key.labels.get("endpoint").is_some_and(|e| e == endpoint))?;
    Some(op.window?.p95_ms)
}

fn report(started: Instant, split: [u64; 2], snapshot: &OperationsSnapshot) {
    let total = (split[0] + split[1]).max(1);
    let shown = |p: Option<f64>| p.map_or("-".to_owned(), |p| format!("{p:.1}"));
    println!(
        "{:>3}s {:>9} {:>5}% {:>5}% {:>12} {:>12}",
        started.elapsed().as_secs(),
        split[0] + split[1],
        split[0] * 100 / total,
        split[1] * 100 / total,
        shown(p95(snapshot, "a")),
        shown(p95(snapshot, "b")),
    );
}

/// The session's usage report.
fn usage(handle: &TelemetryHandle) {
    let usage = handle.usage();
    println!("usage report:");
    println!("{:>8} {:>7} {:>9} {:>9}  operation", "count", "errors", "p50 (ms)", "p95 (ms)");
    for op in &usage.top {
        let s = op.session;
        println!("{:>8} {:>7} {:>9.1} {:>9.1}  {}", s.count, s.errors, s.p50_ms, s.p95_ms, op.key.display());
    }
    println!(
        "{} operations under {} keys, {} failed ({:.2} %)",
        usage.count,
        usage.operations,
        usage.errors,
        usage.error_rate * 100.0
    );
}

/// One request to `endpoint` at `addr`, in a span the layer captures and the analysis counts.
fn request(endpoint: &str, addr: SocketAddr) -> std::io::Result<()> {
    let span = tracing::info_span!(
        "http.request",
        session_id = SESSION,
        method = "POST",
        host = "127.0.0.1",
        port = addr.port(),
        path = "/v1/sample",
        endpoint,
        status = tracing::field::Empty,
    );
    let _in = span.enter();
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(
        b"POST /v1/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status: u16 = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    span.record("status", status);
    Ok(())
}

/// A local HTTP endpoint answering every request after its delay.
struct Endpoint {
    addr: SocketAddr,
    /// Microseconds.
    delay: Arc<AtomicU64>,
}

impl Endpoint {
    fn start(delay: Duration) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let delay = Arc::new(AtomicU64::new(delay.as_micros() as u64));
        let serving = Arc::clone(&delay);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let delay = Duration::from_micros(serving.load(Relaxed));
                std::thread::spawn(move || answer(stream, delay));
            }
        });
        Ok(Endpoint { addr, delay })
    }
}

fn answer(mut stream: TcpStream, delay: Duration) {
    let mut request = [0u8; 1024];
    let _ = stream.read(&mut request);
    std::thread::sleep(delay);
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}
