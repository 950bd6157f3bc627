//! What reading the analysis costs: `TelemetryHandle::operations()` and `usage()` with 256
//! operations (the default key cap), what publishing them costs the uploader after a take,
//! and what 16 threads reading in a loop cost 4 threads emitting spans through a real
//! reporter, measured without and with the readers in the same run.
//!
//! ```text
//! cd bench && cargo run --release --bin snapshot
//! cargo run --release --bin snapshot -- --spans 50000 --rounds 4
//! ```
//!
//! The emitting threads' cost is their own CPU time per span, read from
//! `/proc/thread-self/schedstat` (nanoseconds on the CPU, and nanoseconds spent runnable but
//! waiting for one), so that the readers' share of the 2 cores shows as waiting, not as cost;
//! wall time per span is printed beside it.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tinker_telemetry::{
    AnalysisBench, DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW,
};
use tinker_telemetry_bench::{SESSION, Sink, builder};
use tracing_subscriber::prelude::*;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const EMITTERS: usize = 4;
const READERS: usize = 16;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: usize| arg(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let reads_only = args.iter().any(|a| a == "--reads-only");
    let result = reads().and_then(|()| {
        if reads_only { Ok(()) } else { emitting(num("--spans", 25_000), num("--rounds", 3)) }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An analysis with `keys` operations, each counted `per_key` times.
fn table(keys: usize, per_key: usize) -> AnalysisBench {
    let mut bench = AnalysisBench::new(DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW);
    let names: Vec<String> = (0..keys).map(route).collect();
    for i in 0..keys * per_key {
        let ms = Duration::from_micros(500 + (i as u64 * 7919) % 200_000);
        bench.record_http("GET", &names[i % keys], 200, ms);
    }
    bench
}

/// A route of letters only (a digit would make it `{id}`): `/api/v1/ops/ba`, `/api/v1/ops/ca`, …
fn route(i: usize) -> String {
    let letters = |n: usize| (b'a' + (n % 26) as u8) as char;
    format!("/api/v1/ops/{}{}", letters(i + 1), letters(i / 26))
}

fn reads() -> Result {
    let keys = DEFAULT_MAX_OPERATIONS;
    println!(
        "--- reading the analysis: {keys} operations; this thread's CPU time per call (mean), wall time (median)"
    );
    let mut bench = table(keys, 20);
    bench.publish();
    let snapshot = bench.operations();
    if snapshot.operations.len() != keys {
        return Err(format!("{} operations published, not {keys}", snapshot.operations.len()).into());
    }
    let mut timer = Timer::default();
    for _ in 0..1001 {
        timer.time(|| black_box(bench.operations()));
    }
    println!("operations() with {keys} entries:        {timer} (target <= 50 µs)");
    let mut timer = Timer::default();
    for _ in 0..1001 {
        timer.time(|| black_box(bench.usage()));
    }
    println!("usage() with {keys} operations:          {timer}");
    for changed in [keys, 10] {
        let mut timer = Timer::default();
        for _ in 0..101 {
            for i in 0..changed {
                bench.record_http("GET", &route(i), 200, Duration::from_millis(3));
            }
            timer.time(|| bench.publish());
        }
        println!("publish after a take, {changed:>3} changed:   {timer} (uploader thread)");
    }
    Ok(())
}

/// Calls timed one by one: this thread's CPU time and the wall time of each.
#[derive(Default)]
struct Timer {
    cpu_ns: u64,
    walls: Vec<Duration>,
}

impl Timer {
    fn time<T>(&mut self, f: impl FnOnce() -> T) {
        let cpu = thread_cpu_ns();
        let start = Instant::now();
        black_box(f());
        self.walls.push(start.elapsed());
        self.cpu_ns += thread_cpu_ns() - cpu;
    }
}

/// This thread's CPU time, nanoseconds (a vDSO call, well under a microsecond).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if ok { ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64 } else { 0 }
}

impl std::fmt::Display for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut walls = self.walls.clone();
        walls.sort();
        let cpu = self.cpu_ns as f64 / 1000.0 / walls.len() as f64;
        write!(f, "{cpu:>8.1} µs CPU {:>8.1} µs wall", micros(walls[walls.len() / 2]))
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// This thread's time on a CPU and time runnable waiting for one, nanoseconds.
fn thread_times() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

/// Rounds alternating no readers and 16 readers; each round 4 threads emit `spans` spans each.
fn emitting(spans: usize, rounds: usize) -> Result {
    println!(
        "--- {EMITTERS} threads emitting {spans} HTTP spans each, without and with {READERS} readers looping"
    );
    println!(
        "{:>8} {:>14} {:>14} {:>16} {:>12}",
        "readers", "cpu ns/span", "wall ns/span", "waiting ns/span", "reads"
    );
    let sink = Sink::start()?;
    let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds * 2 {
        let readers = if round % 2 == 0 { 0 } else { READERS };
        let (cpu_ns, wall_ns, wait_ns, reads) = emit_round(&sink.base_url(), spans, readers)?;
        cpu[round % 2].push(cpu_ns);
        println!("{readers:>8} {cpu_ns:>14.0} {wall_ns:>14.0} {wait_ns:>16.0} {reads:>12}");
    }
    for v in &mut cpu {
        v.sort_by(f64::total_cmp);
    }
    let (without, with) = (cpu[0][rounds / 2], cpu[1][rounds / 2]);
    println!(
        "emitting thread CPU per span, median: {without:.0} ns without readers, {with:.0} ns with {READERS} ({:+.1} %)",
        (with / without - 1.0) * 100.0
    );
    Ok(())
}

/// One round: the emitting threads' CPU, wall and waiting time per span, and the reads made.
fn emit_round(url: &str, spans: usize, readers: usize) -> Result<(f64, f64, f64, u64)> {
    let (layer, guard) = builder(url).build()?;
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(EMITTERS + readers));
    let reader_threads: Vec<_> =
        (0..readers).map(|_| reader(handle.clone(), stop.clone(), reads.clone(), start.clone())).collect();
    let emitters: Vec<_> = (0..EMITTERS)
        .map(|t| {
            let (dispatch, start) = (dispatch.clone(), start.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let paths: Vec<String> =
                        (0..64).map(|i| format!("{}/{}", route(t * 64 + i), t)).collect();
                    start.wait();
                    let (cpu0, wait0) = thread_times();
                    let wall = Instant::now();
                    let session = tracing::info_span!("session", session_id = SESSION);
                    let _in = session.enter();
                    for i in 0..spans {
                        let status = if i % 50 == 0 { 503 } else { 200 };
                        tracing::info_span!("http.request", method = "GET", path = &paths[i % 64], status)
                            .in_scope(|| {});
                    }
                    let (cpu1, wait1) = thread_times();
                    (cpu1 - cpu0, wall.elapsed().as_nanos() as u64, wait1 - wait0)
                })
            })
        })
        .collect();
    let times: Vec<(u64, u64, u64)> = emitters.into_iter().map(|t| t.join().unwrap_or_default()).collect();
    stop.store(true, Relaxed);
    reader_threads.into_iter().for_each(|t| t.join().unwrap_or_default());
    let stats = guard.shutdown().stats;
    if stats.dropped.total() != 0 {
        return Err(format!("dropped events: {stats:?}").into());
    }
    let n = (EMITTERS * spans) as f64;
    let sum = |f: fn(&(u64, u64, u64)) -> u64| times.iter().map(f).sum::<u64>() as f64;
    let wall = times.iter().map(|t| t.1).max().unwrap_or(0) as f64;
    Ok((sum(|t| t.0) / n, wall / spans as f64, sum(|t| t.2) / n, reads.load(Relaxed)))
}

/// A thread calling `operations()` and `usage()` in a loop until `stop`, counting its reads.
fn reader(
    handle: tinker_telemetry::TelemetryHandle,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
    start: Arc<Barrier>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        start.wait();
        while !stop.load(Relaxed) {
            black_box(handle.operations());
            black_box(handle.usage());
            reads.fetch_add(1, Relaxed);
        }
    })
}
