//! End to end, through the real uploader to a local sink on 127.0.0.1: delivered events per
//! second, the guard's drain time for 10,000 queued events, and peak memory with 10,000
//! events queued against the same program without the layer.
//!
//! ```text
//! cd bench && cargo run --release --bin e2e            # everything, in about 15 s
//! cargo run --release --bin e2e -- --events 2000000    # a longer throughput run
//! ```
//!
//! Run without `--mode`, it starts the sink in its own process and runs each measurement as a
//! child process of itself (`--mode throughput|drain|rss-layer|rss-bare --sink URL`), so that
//! peak RSS figures are comparable and the sink is in none of them. It checks that the sink
//! received exactly what each child says was delivered, and stops by itself.

use std::hint::black_box;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use tinker_telemetry::SpoolSync;
use tinker_telemetry_bench::{SESSION, Sink, builder, proc_status_kib};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Events queued before the guard drops, and for the memory figures.
const QUEUED: u64 = 10_000;
/// Drain measurements, each with a fresh reporter.
const DRAIN_RUNS: usize = 7;

fn emit(i: u64) {
    tracing::info!(
        session_id = SESSION,
        event_name = "train.step",
        step = black_box(i),
        loss = 0.731_f64,
        model = "llama-3-8b"
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let events: u64 = arg("--events").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let result = match (arg("--mode").as_deref(), arg("--sink")) {
        (None, _) => orchestrate(events),
        (Some("throughput"), Some(url)) => throughput(&url, events, None),
        (Some("throughput-spool-always"), Some(url)) => throughput(&url, events, Some(SpoolSync::Always)),
        (Some("throughput-spool-never"), Some(url)) => throughput(&url, events, Some(SpoolSync::Never)),
        (Some("drain"), Some(url)) => drain(&url),
        (Some("rss-layer"), Some(url)) => rss(Some(&url)),
        (Some("rss-bare"), _) => rss(None),
        _ => Err("usage: e2e [--events N] [--mode throughput[-spool-always|-spool-never]|drain|rss-layer|rss-bare \
                  --sink URL]"
            .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn orchestrate(events: u64) -> Result {
    let sink = Sink::start()?;
    let url = sink.base_url();
    let me = std::env::current_exe()?;
    let started = Instant::now();
    let mut results = std::collections::HashMap::new();
    for mode in
        ["throughput", "throughput-spool-always", "throughput-spool-never", "drain", "rss-bare", "rss-layer"]
    {
        let before = sink.events();
        let output = Command::new(&me)
            .args(["--mode", mode, "--sink", &url, "--events", &events.to_string()])
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            return Err(format!("--mode {mode} failed: {}", output.status).into());
        }
        // Each child ends with `delivered=N` when it sent anything: the sink must agree.
        let claimed: u64 = stdout
            .lines()
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("delivered=")))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        for word in stdout.lines().filter(|l| l.contains("-result ")).flat_map(str::split_whitespace) {
            if let Some((k, v)) = word.split_once('=') {
                results.insert(format!("{mode}.{k}"), v.parse::<f64>().unwrap_or(f64::NAN));
            }
        }
        let received = sink.events() - before;
        if claimed != received {
            return Err(format!(
                "--mode {mode}: the sink received {received} events, the reporter says {claimed}"
            )
            .into());
        }
    }
    let get = |k: &str| results.get(k).copied().unwrap_or(f64::NAN);
    let extra_mib = (get("rss-layer.hwm_queued_kib") - get("rss-bare.hwm_kib")) / 1024.0;
    let extra_built_mib = (get("rss-layer.built_kib") - get("rss-bare.hwm_kib")) / 1024.0;
    println!("--- summary");
    println!("delivered events/s (target >= 250,000):          {:.0}", get("throughput.events_per_s"));
    for sync in ["always", "never"] {
        let on = get(&format!("throughput-spool-{sync}.events_per_s"));
        let share = 100.0 * on / get("throughput.events_per_s");
        println!("  with a spool, SpoolSync::{sync:<6} (>= 50 % of off): {on:.0} ({share:.0} %)");
    }
    println!("drain of 10,000 queued, median (target <= 30 ms): {:.1} ms", get("drain.median_ms"));
    println!("peak RSS above no-layer, 10,000 queued (<= 5 MiB): {extra_mib:.2} MiB");
    println!("RSS above no-layer right after build, queue bound 1,000,000: {extra_built_mib:.2} MiB");
    println!(
        "peak RSS above no-layer once the 10,000 were drained:  {:.2} MiB",
        (get("rss-layer.hwm_drained_kib") - get("rss-bare.hwm_kib")) / 1024.0
    );
    println!(
        "all measurements done in {:.1} s; the sink saw {} requests",
        started.elapsed().as_secs_f64(),
        sink.requests()
    );
    Ok(())
}

/// Pushes `events` through the real uploader with default settings (queue of 10,000), pacing
/// the producer so that the queue never fills, and reports delivered events per second; with
/// `spool`, through a spool in a fresh directory with that fsync policy.
fn throughput(url: &str, events: u64, spool: Option<SpoolSync>) -> Result {
    let max_queue = 10_000;
    let dir = std::env::temp_dir().join(format!("tt-bench-spool-{}", std::process::id()));
    let mut builder = builder(url).max_queue_size(max_queue);
    if let Some(sync) = spool {
        builder = builder.spool_dir(&dir).spool_sync(sync);
    }
    let (layer, guard) = builder.build()?;
    let handle = guard.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    // Let SESSION_START go first, so the run measures only the events.
    if !handle.wait_until_drained(Duration::from_secs(5)) {
        return Err("SESSION_START was not delivered within 5 s".into());
    }
    let base = handle.stats().delivered;
    let mut waits = 0u64;
    let start = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        let mut i = 0;
        while i < events {
            // Never offer more than the queue can take: the producer must lose nothing.
            while handle.stats().queued + 64 > max_queue as u64 {
                waits += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            for _ in 0..64.min(events - i) {
                emit(i);
                i += 1;
            }
        }
    });
    let emitted_in = start.elapsed();
    let drained = handle.wait_until_drained(Duration::from_secs(30));
    let elapsed = start.elapsed();
    let stats = handle.stats();
    let delivered = stats.delivered - base;
    let report = guard.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    let rate = delivered as f64 / elapsed.as_secs_f64();
    println!(
        "throughput (spool {spool:?}): {delivered} events delivered in {:.3} s = {:.0} events/s (producer done after {:.3} s, \
         waited {waits}× for room); dropped {}, batches {}, drained {drained}",
        elapsed.as_secs_f64(),
        rate,
        emitted_in.as_secs_f64(),
        report.stats.dropped.total(),
        stats.batches_sent,
    );
    println!(
        "throughput-result events_per_s={rate:.0} dropped={} delivered={}",
        report.stats.dropped.total(),
        report.stats.delivered
    );
    if report.stats.dropped.total() != 0 || delivered != events {
        return Err(format!(
            "lost events: emitted {events}, delivered {delivered}, stats {:?}",
            report.stats
        )
        .into());
    }
    Ok(())
}

/// Queues 10,000 events behind a long flush interval and a high threshold, then times
/// `guard.shutdown()` (what dropping the guard does).
fn drain(url: &str) -> Result {
    let mut times = Vec::with_capacity(DRAIN_RUNS);
    let mut delivered = 0;
    for _ in 0..DRAIN_RUNS {
        let (layer, guard) = builder(url)
            .max_queue_size(20_000)
            .flush_threshold(20_000)
            .flush_interval(Duration::from_secs(3600))
            .build()?;
        let handle = guard.handle();
        settle_session_start(&handle)?;
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || (0..QUEUED).for_each(emit));
        let queued = handle.stats().queued;
        if queued != QUEUED {
            return Err(format!("expected {QUEUED} queued events, found {queued}").into());
        }
        let start = Instant::now();
        let report = guard.shutdown();
        let took = start.elapsed();
        if !report.drained || report.stats.dropped.total() != 0 {
            return Err(format!("the drain lost events: {report:?}").into());
        }
        times.push(took);
        delivered += report.stats.delivered;
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "drain: {QUEUED} queued events + SESSION_END delivered by guard.shutdown() in median {:.1} ms \
         (min {:.1}, max {:.1}; {DRAIN_RUNS} runs)",
        ms(times[DRAIN_RUNS / 2]),
        ms(times[0]),
        ms(times[DRAIN_RUNS - 1])
    );
    println!("drain-result median_ms={:.1} delivered={delivered}", ms(times[DRAIN_RUNS / 2]));
    Ok(())
}

/// Waits until SESSION_START (sent at start-up) is delivered and the uploader is idle again.
///
/// The second flush is a handshake: the uploader handles it only after it has finished
/// booking SESSION_START's request, which otherwise might still pull events emitted meanwhile.
fn settle_session_start(handle: &tinker_telemetry::TelemetryHandle) -> Result {
    for _ in 0..2 {
        if !handle.wait_until_drained(Duration::from_secs(5)) {
            return Err("SESSION_START was not delivered within 5 s".into());
        }
    }
    Ok(())
}

/// Peak memory of this program with 10,000 events queued (`url` given) or with no layer.
fn rss(url: Option<&str>) -> Result {
    let kib = |key| proc_status_kib(key).ok_or("no /proc/self/status");
    let start = kib("VmRSS")?;
    let Some(url) = url else {
        let dispatch = Dispatch::new(tracing_subscriber::registry());
        tracing::dispatcher::with_default(&dispatch, || (0..QUEUED).for_each(emit));
        let (rss, hwm) = (kib("VmRSS")?, kib("VmHWM")?);
        println!(
            "rss-bare: VmRSS at start {start} KiB; after {QUEUED} events with no layer: VmRSS {rss} KiB, VmHWM {hwm} KiB"
        );
        println!("rss-bare-result hwm_kib={hwm}");
        return Ok(());
    };
    // A queue bound of a million: nothing may be taken for it up front.
    let (layer, guard) = builder(url)
        .max_queue_size(1_000_000)
        .flush_threshold(1_000_000)
        .flush_interval(Duration::from_secs(3600))
        .build()?;
    let handle = guard.handle();
    settle_session_start(&handle)?;
    let built = kib("VmRSS")?;
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || (0..QUEUED).for_each(emit));
    let queued = handle.stats().queued;
    let (rss_queued, hwm_queued) = (kib("VmRSS")?, kib("VmHWM")?);
    let report = guard.shutdown();
    let hwm_drained = kib("VmHWM")?;
    println!(
        "rss-layer: VmRSS at start {start} KiB, after build (max_queue_size 1,000,000) {built} KiB; \
         with {queued} events queued VmRSS {rss_queued} KiB, VmHWM {hwm_queued} KiB; \
         VmHWM after the drain {hwm_drained} KiB"
    );
    println!(
        "rss-layer-result built_kib={built} hwm_queued_kib={hwm_queued} hwm_drained_kib={hwm_drained} delivered={}",
        report.stats.delivered
    );
    if queued != QUEUED || !report.drained {
        return Err(
            format!("expected {QUEUED} queued and a full drain, found {queued} queued: {report:?}").into()
        );
    }
    Ok(())
}
