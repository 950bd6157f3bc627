//! Serves what the crate measures: a simulated Tinker client (HTTP requests with a few
//! failures, queue state changes) runs through the layer with the `metrics` feature into a
//! Prometheus exporter, while a local collector stands in for the Tinker API. The first line
//! printed is the address Prometheus can scrape; after `--seconds N` (default 30) the session
//! ends and the example prints what reached the collector: the `performance.summary` and
//! `alert.error_spike` events among the rest.
//!
//! ```text
//! cargo run --example metrics -- --seconds 30
//! ```
//!
//! `dashboards/check.py` scrapes it with a real Prometheus to test the dashboard and rules.

#[path = "common/collector.rs"]
mod collector;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use collector::{Answer, Collector};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use tinker_telemetry::{DURATION_BUCKETS, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

const SESSION: &str = "5d0c9b7e-2f4a-4c8e-9a61-3e7f0b2d4c19";

/// The requests the simulated client makes: method, path (with ids), typical duration.
const REQUESTS: &[(&str, &str, u64)] = &[
    ("POST", "/api/v1/training_runs/{run}/forward_backward", 120),
    ("POST", "/api/v1/training_runs/{run}/optim_step", 40),
    ("POST", "/api/v1/sampling_sessions/{n}/sample", 300),
    ("GET", "/api/v1/futures/{uuid}", 15),
    ("GET", "/api/v1/training_runs/{run}", 8),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 30,
        [flag, n] if flag == "--seconds" => n.parse()?,
        _ => return Err("usage: metrics [--seconds N]".into()),
    };

    let port = serve_metrics()?;
    println!("METRICS http://127.0.0.1:{port}/metrics");
    std::io::stdout().flush()?;

    // The third upload is refused once with a 503, so the crate retries it.
    let collector =
        Collector::start_with(true, Arc::new(|n| if n == 2 { Answer::Status(503) } else { Answer::Accept }))?;
    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key("tml-metrics-example")
        .base_url(collector.base_url())
        .enabled(true)
        .flush_interval(Duration::from_secs(1))
        .summary_interval(Duration::from_secs(10))
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4u64)
        .map(|seed| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || client(seed, &stop))
        })
        .collect();
    let queue = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || queue_changes(&stop))
    };
    // A burst of failures of one operation a few seconds in: an error spike.
    std::thread::sleep(Duration::from_secs(3).min(deadline - Instant::now()));
    let session = tracing::info_span!("session", session_id = SESSION);
    session.in_scope(|| {
        for _ in 0..6 {
            request(
                "POST",
                "/api/v1/training_runs/run-7731/forward_backward",
                Duration::from_millis(5),
                Some(503),
            );
        }
    });
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let _ = queue.join();

    let report = guard.shutdown();
    let events: Vec<serde_json::Value> =
        collector.bodies().iter().flat_map(|b| b["events"].as_array().cloned().unwrap_or_default()).collect();
    let mut names = std::collections::BTreeMap::<String, u64>::new();
    for e in &events {
        let name = e["event_name"].as_str().or(e["event"].as_str()).unwrap_or("?");
        *names.entry(name.to_owned()).or_default() += 1;
    }
    println!("--- {} events reached the collector", events.len());
    for (name, n) in &names {
        println!("{n:>6}  {name}");
    }
    for e in events
        .iter()
        .filter(|e| e["event_name"] == "performance.summary" || e["event_name"] == "alert.error_spike")
    {
        println!("--- {} ({})", e["event_name"].as_str().unwrap_or(""), e["severity"].as_str().unwrap_or(""));
        println!("{}", serde_json::to_string_pretty(&e["event_data"])?);
    }
    let s = report.stats;
    println!(
        "--- stats: accepted {}, delivered {}, dropped {}, retries {}, drained {}",
        s.accepted,
        s.delivered,
        s.dropped.total(),
        s.retries,
        report.drained
    );
    Ok(())
}

/// Installs the Prometheus exporter, the global `metrics` recorder, serving on 127.0.0.1;
/// returns its port. The exporter does not tell the port it bound, so a free one is found
/// first; should another program take it in the meantime, another is tried.
fn serve_metrics() -> Result<u16, Box<dyn std::error::Error>> {
    let mut attempts = 0;
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let installed = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(Matcher::Suffix("duration".into()), DURATION_BUCKETS)?
            .with_http_listener(([127, 0, 0, 1], port))
            .install();
        match installed {
            Ok(()) => return Ok(port),
            Err(BuildError::FailedToCreateHTTPListener(_)) if attempts < 5 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One HTTP request, as the span a Tinker client would open around it.
fn request(method: &str, path: &str, took: Duration, status: Option<u16>) {
    let url = format!("https://tinker.thinkingmachines.dev{path}");
    let span = tracing::info_span!(
        "http.request",
        method,
        url,
        status = tracing::field::Empty,
        error = tracing::field::Empty
    );
    span.in_scope(|| std::thread::sleep(took));
    match status {
        Some(code) => span.record("status", code),
        None => span.record("error", "operation timed out"),
    };
}

/// Requests in a loop until `stop`: mostly successes, about 3 % 500s, 1 % 429s, 1 % timeouts,
/// and one in 50 slow (over a second).
fn client(seed: u64, stop: &AtomicBool) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let session = tracing::info_span!("session", session_id = SESSION);
    let _in = session.enter();
    while !stop.load(Ordering::Relaxed) {
        let (method, template, typical) = REQUESTS[rng.usize(..REQUESTS.len())];
        let path = template
            .replace("{run}", &format!("run-{}", rng.u32(1000..1010)))
            .replace("{n}", &rng.u32(1..50).to_string())
            .replace("{uuid}", &format!("3f2a9c1e-5b4e-4d7a-9c1e-{:012x}", rng.u64(..1 << 48)));
        let mut took = Duration::from_millis(typical / 2 + rng.u64(..typical));
        if rng.u32(..50) == 0 {
            took = Duration::from_millis(1100 + rng.u64(..500));
        }
        let status = match rng.u32(..100) {
            0..=2 => Some(500),
            3 => Some(429),
            4 => None,
            _ => Some(200),
        };
        request(method, &path, took, status);
    }
}

/// The sampling queue pausing for rate limits and resuming, every two seconds.
fn queue_changes(stop: &AtomicBool) {
    let session = tracing::info_span!("session", session_id = SESSION);
    let _in = session.enter();
    let mut paused = false;
    while !stop.load(Ordering::Relaxed) {
        let (from, to) =
            if paused { ("paused_rate_limit", "active") } else { ("active", "paused_rate_limit") };
        tracing::info_span!("queue.state_change", from, to)
            .in_scope(|| std::thread::sleep(Duration::from_millis(5)));
        paused = !paused;
        std::thread::sleep(Duration::from_secs(2));
    }
}
