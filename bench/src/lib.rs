//! Shared pieces of the tinker-telemetry benchmarks: a fast local sink, the reporter
//! configuration under test, the pacing that keeps a producer from losing events,
//! `/proc/self/status` readings, and a plain layer that only copies events' fields, as a
//! reference.

pub mod copy_only;
pub mod peers;
mod sink;
pub mod workload;

use std::time::{Duration, Instant};

use tinker_telemetry::{Builder, TinkerTelemetryLayer};

pub use sink::Sink;

/// The session every benchmark reports for.
pub const SESSION: &str = "6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11";
/// Another session: its events are not ours.
pub const OTHER_SESSION: &str = "0b9f0c7d-2e11-4d7a-9c1e-6f1c2a9e5b4e";

/// A reporter aimed at `base_url` (a [`Sink`]'s), enabled whatever the environment says,
/// with a queue large enough that a paced producer never loses an event.
pub fn builder(base_url: &str) -> Builder {
    TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key("tml-bench")
        .base_url(base_url)
        .enabled(true)
        .max_queue_size(1_000_000)
        .flush_timeout(Duration::from_secs(30))
}

/// The event every benchmark emits: `session_id` and 4 fields (two strings, an integer, a
/// float).
#[macro_export]
macro_rules! event_with_session {
    ($session:expr, $i:expr) => {
        tracing::info!(
            session_id = $session,
            event_name = "train.step",
            step = $i,
            loss = 0.731_f64,
            model = "llama-3-8b"
        )
    };
}

/// The same 4 fields, without a `session_id`.
#[macro_export]
macro_rules! event_without_session {
    ($i:expr) => {
        tracing::info!(event_name = "train.step", step = $i, loss = 0.731_f64, model = "llama-3-8b")
    };
}

/// Events emitted between two looks at the backlog.
pub const CHUNK: u64 = 1_000;
/// Backlog (events accepted and not yet settled) above which the producer waits, untimed...
pub const HIGH_WATER: u64 = 20_000;
/// ... until it is back under this.
pub const LOW_WATER: u64 = 5_000;

/// Runs `emit` `iters` times in chunks of [`CHUNK`] and returns the time spent emitting only.
///
/// Between chunks, while `backlog()` is above [`HIGH_WATER`], it waits (untimed) for the
/// consumer to bring it under [`LOW_WATER`]. A producer in a tight loop outruns any consumer
/// that serializes JSON, so without this the queue would grow by millions of events a second
/// and the figure would be one of page faults, or of drops.
pub fn paced(iters: u64, backlog: &dyn Fn() -> u64, mut emit: impl FnMut(u64)) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(CHUNK);
        let start = Instant::now();
        for i in done..done + n {
            emit(i);
        }
        timed += start.elapsed();
        done += n;
        if backlog() > HIGH_WATER {
            let give_up = Instant::now() + Duration::from_secs(30);
            while backlog() > LOW_WATER && Instant::now() < give_up {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    timed
}

/// Runs `emit` `iters` times back to back, as fast as the thread can, and returns the time
/// that took; then calls `settle` (untimed), which waits until the consumer has taken them
/// all. A flood: the queue takes the whole burst, so nothing is dropped, and the consumer
/// works on the other core meanwhile.
pub fn flood(iters: u64, settle: impl FnOnce(), mut emit: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        emit(i);
    }
    let took = start.elapsed();
    settle();
    took
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM` …), in KiB.
#[must_use]
pub fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
