//! A bounded soak: a local collector that fails requests at random (503, 429 with
//! `Retry-After`, connection resets, slow answers, hangs, the odd 413 and 400), a reporter
//! driven by steady traffic plus periodic bursts that overflow its queue, and a line every
//! few seconds with what was delivered, dropped (by reason), retried, and the process's
//! resident set size. Stops by itself; exits non-zero when the counters do not add up, an
//! event was accepted twice, or memory kept growing after warm-up.
//!
//! ```text
//! cargo run --release --example soak                 # 60 s
//! cargo run --release --example soak -- --seconds 10
//! ```

#[path = "common/collector.rs"]
mod collector;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use collector::Answer;
use tinker_telemetry::{Stats, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

const SESSION: &str = "7c9e2b14-6a3f-4d58-9e1b-0f2a4c6e8d31";
/// Steady traffic, events per second, spread over the producer threads.
const RATE: u64 = 4_000;
const PRODUCERS: u64 = 2;
/// Every this often from `BURST_FIRST` (within the warm-up), one producer emits a burst
/// larger than the queue.
const BURST_FIRST: Duration = Duration::from_secs(5);
const BURST_EVERY: Duration = Duration::from_secs(20);
const BURST: u64 = 15_000;
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often the resident set is sampled for the flatness check.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The answer to one request: mostly accepted, often failed.
fn fault(rng: &mut fastrand::Rng) -> Answer {
    match rng.u32(0..100) {
        0..=64 => Answer::Accept,
        65..=74 => Answer::Status(503),
        75..=79 => Answer::RetryAfter(429, rng.u64(0..=1)),
        80..=84 => Answer::Reset,
        85..=93 => Answer::Delay(Duration::from_millis(rng.u64(10..200))),
        94..=95 => Answer::Hang,
        96..=97 => Answer::Status(413),
        _ => Answer::Status(400),
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn seconds_from_args() -> Result<u64, String> {
    let mut args = std::env::args().skip(1);
    let mut seconds = 60;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a value")?;
                seconds = value.parse().map_err(|_| format!("--seconds: not a number: {value}"))?;
            }
            other => return Err(format!("unknown argument {other} (usage: soak [--seconds N])")),
        }
    }
    if seconds == 0 {
        return Err("--seconds must be at least 1".into());
    }
    Ok(seconds)
}

fn print_line(t: Duration, emitted: u64, s: &Stats, server: &collector::Collector, rss: u64) {
    let d = &s.dropped;
    println!(
        "{:>5.0}s {:>9} {:>9} {:>6} | {:>7} {:>5} {:>5} {:>4} {:>5} | {:>6} {:>6} {:>6} | {:>6.1}",
        t.as_secs_f64(),
        emitted,
        s.delivered,
        s.queued,
        d.queue_full,
        d.rejected,
        d.retries_exhausted,
        d.too_large,
        d.unsent_at_shutdown + d.after_shutdown,
        s.retries,
        server.requests(),
        server.duplicates(),
        mib(rss),
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = seconds_from_args()?;
    let duration = Duration::from_secs(seconds);
    let warm_up = (duration / 6).max(Duration::from_secs(2));
    let rng = Mutex::new(fastrand::Rng::with_seed(0x7e1e_3e7e));
    let server = collector::Collector::start_with(false, Arc::new(move |_| fault(&mut rng.lock().unwrap())))?;

    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key("tml-soak-test")
        .base_url(server.base_url())
        .enabled(true)
        .flush_interval(Duration::from_secs(1))
        .http_timeout(Duration::from_secs(1))
        .retry_base_delay(Duration::from_millis(50))
        .max_retries(3)
        .flush_timeout(Duration::from_secs(5))
        .build()?;
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    println!(
        "soak: {seconds} s, {RATE} events/s steady, a burst of {BURST} at {BURST_FIRST:?} and every {BURST_EVERY:?} after, warm-up {warm_up:?}"
    );
    println!(
        "{:>6} {:>9} {:>9} {:>6} | {:>7} {:>5} {:>5} {:>4} {:>5} | {:>6} {:>6} {:>6} | {:>6}",
        "t",
        "emitted",
        "delivered",
        "queued",
        "q_full",
        "rej",
        "exh",
        "big",
        "unsent",
        "retry",
        "reqs",
        "dups",
        "RSS MiB"
    );

    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let emitted = AtomicU64::new(0);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    std::thread::scope(|scope| {
        for p in 0..PRODUCERS {
            let (dispatch, stop, emitted) = (&dispatch, &stop, &emitted);
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    let per_tick = RATE / PRODUCERS / 100;
                    let mut next_burst = started + BURST_FIRST;
                    let mut tick = started;
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let n = if p == 0 && Instant::now() >= next_burst {
                            next_burst += BURST_EVERY;
                            BURST
                        } else {
                            per_tick
                        };
                        for _ in 0..n {
                            tracing::info!(
                                session_id = SESSION,
                                event_name = "soak.step",
                                producer = p,
                                i,
                                loss = 1.0 / (i as f64 + 1.0),
                                note = "steady traffic through random faults"
                            );
                            i += 1;
                        }
                        emitted.fetch_add(n, Ordering::Relaxed);
                        tick += Duration::from_millis(10);
                        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
                    }
                });
            });
        }
        let (mut next_sample, mut next_report) = (started + SAMPLE_EVERY, started + REPORT_EVERY);
        while started.elapsed() < duration {
            let until = next_sample.min(started + duration);
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            if Instant::now() >= next_sample {
                next_sample += SAMPLE_EVERY;
                let rss = rss_bytes();
                samples.push((started.elapsed(), rss));
                if Instant::now() >= next_report {
                    next_report += REPORT_EVERY;
                    print_line(
                        started.elapsed(),
                        emitted.load(Ordering::Relaxed),
                        &handle.stats(),
                        &server,
                        rss,
                    );
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });

    let shutting = Instant::now();
    let report = guard.shutdown();
    let took = shutting.elapsed();
    let s = report.stats;
    let emitted = emitted.load(Ordering::Relaxed);
    print_line(started.elapsed(), emitted, &s, &server, rss_bytes());

    // Flat after warm-up: sampled every second, the second half of the run reaches no higher
    // than the first half did (warm-up included: each has a burst that fills the queue), and
    // its lowest point is no higher than the first half's after warm-up; give or take 2 MiB
    // or 10 %.
    let half = duration / 2;
    let rss_of = |keep: &dyn Fn(Duration) -> bool| -> Vec<u64> {
        samples.iter().filter(|(t, _)| keep(*t)).map(|(_, r)| *r).collect()
    };
    let (early, late) = (rss_of(&|t| t < half), rss_of(&|t| t >= half));
    let settled = rss_of(&|t| t >= warm_up && t < half);
    let peak = |s: &[u64]| s.iter().copied().max().unwrap_or(0);
    let trough = |s: &[u64]| s.iter().copied().min().unwrap_or(0);
    let peak_growth = peak(&late).saturating_sub(peak(&early));
    let trough_growth = trough(&late).saturating_sub(trough(&settled));
    let tolerance = (2u64 << 20).max(peak(&early) / 10);
    println!();
    println!("shutdown: {took:?} (flush_timeout 5 s), drained: {}", report.drained);
    println!(
        "events: emitted {emitted}, accepted {} (with SESSION_START/END and telemetry.dropped reports), delivered {}, server received {}, accepted twice {}",
        s.accepted,
        s.delivered,
        server.events(),
        server.duplicates()
    );
    println!(
        "dropped: queue_full {}, rejected {}, retries_exhausted {}, too_large {}, unsent_at_shutdown {}, after_shutdown {} (total {})",
        s.dropped.queue_full,
        s.dropped.rejected,
        s.dropped.retries_exhausted,
        s.dropped.too_large,
        s.dropped.unsent_at_shutdown,
        s.dropped.after_shutdown,
        s.dropped.total()
    );
    println!(
        "requests: {} sent, {} accepted (2xx), {} retries",
        server.requests(),
        s.batches_sent,
        s.retries
    );
    println!(
        "RSS, sampled every second: first half {:.1}-{:.1} MiB after warm-up (peak {:.1} with it), second half {:.1}-{:.1} MiB; peak growth {:.2} MiB, trough growth {:.2} MiB (tolerance {:.1})",
        mib(trough(&settled)),
        mib(peak(&settled)),
        mib(peak(&early)),
        mib(trough(&late)),
        mib(peak(&late)),
        mib(peak_growth),
        mib(trough_growth),
        mib(tolerance)
    );

    let mut failures = Vec::new();
    if s.accepted != s.delivered + s.dropped.total() + s.queued {
        failures.push("accepted != delivered + dropped + queued".to_owned());
    }
    if s.delivered != server.events() {
        failures.push(format!("delivered {} but the server accepted {}", s.delivered, server.events()));
    }
    if server.duplicates() > 0 {
        failures.push(format!("{} events accepted twice", server.duplicates()));
    }
    if took > Duration::from_secs(5) + Duration::from_millis(250) {
        failures.push(format!("shutdown took {took:?}"));
    }
    if peak_growth > tolerance || trough_growth > tolerance {
        failures.push("RSS kept growing after warm-up".to_owned());
    }
    if failures.is_empty() {
        println!("verdict: OK");
        Ok(())
    } else {
        println!("verdict: FAILED: {}", failures.join("; "));
        std::process::exit(1);
    }
}
