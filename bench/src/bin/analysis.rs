//! The uploader thread's analysis, driven directly through `tinker_telemetry::AnalysisBench`:
//! how many captured HTTP requests it aggregates per second against how many events the
//! uploader delivers per second, what a `performance.summary` costs, and the memory of the
//! operations table once its key cap is reached.
//!
//! ```text
//! cd bench && cargo build --release --bins && cargo run --release --bin analysis
//! cargo run --release --bin analysis -- --records 20000000 --no-e2e
//! valgrind --tool=callgrind --toggle-collect='*record_http*' \
//!     target/release/analysis --mode throughput --records 200000   # instructions per record
//! ```
//!
//! Run without `--mode`, it measures throughput and the summary in this process, runs each
//! memory measurement as a child process of itself (`--mode memory --cap N --paths N`: cap
//! 256 with 100,000 and 1,000,000 distinct paths, cap 10,000 with 100,000) so that RSS
//! growth is not hidden by memory an earlier measurement freed, and, unless told
//! `--no-e2e`, runs the `e2e` program built beside it for the uploader's delivery rate in the
//! same session.

use std::hint::black_box;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use tinker_telemetry::{
    AnalysisBench, DEFAULT_MAX_OPERATIONS, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW,
};
use tinker_telemetry_bench::proc_status_kib;
use tinker_telemetry_bench::workload::{DURATIONS, REQUESTS, distinct_paths, durations, status};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn table(cap: usize) -> AnalysisBench {
    AnalysisBench::new(cap, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: usize| arg(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let result = match arg("--mode").as_deref() {
        None => orchestrate(num("--records", 5_000_000), !args.iter().any(|a| a == "--no-e2e")),
        Some("throughput") => {
            let records = num("--records", 5_000_000);
            throughput_workload(records);
            throughput_past_cap(records);
            Ok(())
        }
        Some("memory") => memory(num("--cap", DEFAULT_MAX_OPERATIONS), num("--paths", 100_000)),
        Some(_) => Err("usage: analysis [--records N] [--no-e2e] | --mode throughput [--records N] | --mode memory --cap N --paths N"
                .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("analysis: {e}");
            ExitCode::FAILURE
        }
    }
}

fn orchestrate(records: usize, e2e: bool) -> Result {
    println!("--- aggregation throughput, one thread, {records} records");
    let workload = throughput_workload(records);
    let past_cap = throughput_past_cap(records);
    println!("--- summary cost (performance.summary of one window)");
    let summaries: Vec<(usize, Duration, usize)> = [5, DEFAULT_MAX_OPERATIONS, 10_000]
        .into_iter()
        .map(|keys| {
            let (took, listed) = summary_cost(keys);
            println!(
                "{keys:>6} keys: {:>9.1} µs per summary (median of 21), {listed} operations listed",
                micros(took)
            );
            (keys, took, listed)
        })
        .collect();
    println!("--- memory with the key cap reached (each a child process)");
    let me = std::env::current_exe()?;
    let mut rows = Vec::new();
    for (cap, paths) in
        [(DEFAULT_MAX_OPERATIONS, 100_000), (DEFAULT_MAX_OPERATIONS, 1_000_000), (10_000, 100_000)]
    {
        let out = Command::new(&me)
            .args(["--mode", "memory", "--cap", &cap.to_string(), "--paths", &paths.to_string()])
            .output()?;
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(format!("--mode memory --cap {cap} failed: {}", out.status).into());
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{stdout}");
        rows.push(stdout.lines().find(|l| l.starts_with("memory-result")).unwrap_or("").to_owned());
    }
    let delivery = if e2e { delivery_rate(&me) } else { None };

    println!("\n--- summary");
    println!("| measurement | figure |");
    println!("|---|---:|");
    println!(
        "| aggregation, 20 paths → 5 routes, 1 in 50 a 500 | {:.2} M records/s ({:.0} ns/record) |",
        workload / 1e6,
        1e9 / workload
    );
    println!(
        "| aggregation, cap 256 reached, every record a new path folded into `_other` | {:.2} M records/s ({:.0} ns/record) |",
        past_cap / 1e6,
        1e9 / past_cap
    );
    for (keys, took, _) in &summaries {
        println!("| `summary()` with {keys} keys | {:.1} µs |", micros(*took));
    }
    match delivery {
        Some(rate) => println!(
            "| uploader delivery (`e2e`, same session) | {rate:.0} events/s: aggregation is {:.1}× that ({:.1}× past the cap) |",
            workload / rate,
            past_cap / rate
        ),
        None => println!(
            "| uploader delivery | not measured (`--no-e2e`, or `e2e` not built beside this program) |"
        ),
    }
    println!("\n| cap | distinct paths | keys held | `heap_bytes()` | RSS growth | RSS growth per key |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let get = |k: &str| {
            row.split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let (keys, rss) = (get("keys"), get("rss_growth_kib"));
        println!(
            "| {} | {} | {} | {:.1} KiB | {:.0} KiB | {:.0} B |",
            get("cap"),
            get("paths"),
            keys,
            get("heap_bytes") / 1024.0,
            rss,
            rss * 1024.0 / keys
        );
    }
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Records per second for the workload of the criterion bench: twenty paths, five routes.
fn throughput_workload(records: usize) -> f64 {
    let durations = durations();
    let mut t = table(DEFAULT_MAX_OPERATIONS);
    // Warm up: the five keys exist and their histograms have their range.
    for i in 0..100_000u64 {
        let r = &REQUESTS[(i % 20) as usize];
        t.record_http(r.method, r.path, status(i), durations[(i % DURATIONS as u64) as usize]);
    }
    let mut alerts = 0usize;
    let start = Instant::now();
    for i in 0..records as u64 {
        let r = &REQUESTS[(i % 20) as usize];
        alerts += usize::from(t.record_http(
            r.method,
            black_box(r.path),
            status(i),
            durations[(i % DURATIONS as u64) as usize],
        ));
    }
    let took = start.elapsed();
    let rate = records as f64 / took.as_secs_f64();
    println!(
        "workload (20 paths → {} keys): {:.3} s, {:.2} M records/s, {:.1} ns/record, {alerts} alerts",
        t.keys(),
        took.as_secs_f64(),
        rate / 1e6,
        took.as_nanos() as f64 / records as f64
    );
    black_box(t.summary());
    rate
}

/// Records per second once the cap of 256 is reached and every record is a path never seen,
/// counted under `_other`: the slowest path of the table.
fn throughput_past_cap(records: usize) -> f64 {
    let paths = distinct_paths(100_000);
    let durations = durations();
    let mut t = table(DEFAULT_MAX_OPERATIONS);
    for p in &paths[..1_000] {
        t.record_http("POST", p, 200, Duration::from_millis(40));
    }
    let start = Instant::now();
    for i in 0..records {
        // Past the first 1,000, none of these paths has a key: every one is a miss.
        let p = &paths[1_000 + i % (paths.len() - 1_000)];
        t.record_http("POST", black_box(p), status(i as u64), durations[i % DURATIONS]);
    }
    let took = start.elapsed();
    let rate = records as f64 / took.as_secs_f64();
    println!(
        "past the cap (256 keys + _other, every record a new path): {:.3} s, {:.2} M records/s, {:.1} ns/record, keys {}",
        took.as_secs_f64(),
        rate / 1e6,
        took.as_nanos() as f64 / records as f64,
        t.keys()
    );
    rate
}

/// The median time of `summary()` over 21 windows, each with `keys` operations, 20 records
/// each with varied durations, and how many operations it listed.
fn summary_cost(keys: usize) -> (Duration, usize) {
    let paths = distinct_paths(keys);
    let durations = durations();
    let mut t = table(keys);
    let mut times = Vec::new();
    let mut listed = 0;
    for _ in 0..21 {
        let mut d = 0;
        for p in &paths {
            for _ in 0..20 {
                t.record_http("POST", p, 200, durations[d % DURATIONS]);
                d += 1;
            }
        }
        let start = Instant::now();
        listed = black_box(t.summary());
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], listed)
}

/// One table of cap `cap` fed `paths` distinct paths, in this process alone: its own
/// estimate of its heap and the growth of VmRSS. Each path is recorded three times, at 1 ms,
/// at 10 s and at a duration of the workload, one time in 50 a 500, so that every key's
/// histogram spans the range a Tinker request can take (its largest realistic size).
fn memory(cap: usize, paths: usize) -> Result {
    let names = distinct_paths(paths);
    let durations = durations();
    let rss_before = proc_status_kib("VmRSS").ok_or("no VmRSS")?;
    let mut t = table(cap);
    for (i, p) in names.iter().enumerate() {
        let spread = [Duration::from_millis(1), Duration::from_secs(10), durations[i % DURATIONS]];
        for (k, d) in spread.into_iter().enumerate() {
            t.record_http("POST", p, status((3 * i + k) as u64), d);
        }
    }
    let rss_after = proc_status_kib("VmRSS").ok_or("no VmRSS")?;
    let heap = t.heap_bytes();
    let keys = t.keys();
    let listed = t.summary();
    println!(
        "cap {cap}, {paths} distinct paths: keys {keys}, heap_bytes {heap} ({:.1} KiB), VmRSS {rss_before} → {rss_after} KiB (+{} KiB), summary lists {listed}",
        heap as f64 / 1024.0,
        rss_after.saturating_sub(rss_before)
    );
    println!(
        "memory-result cap={cap} paths={paths} keys={keys} heap_bytes={heap} rss_growth_kib={}",
        rss_after.saturating_sub(rss_before)
    );
    black_box(&t);
    Ok(())
}

/// The uploader's delivered events per second, from the `e2e` program beside this one.
fn delivery_rate(me: &std::path::Path) -> Option<f64> {
    let e2e = me.with_file_name("e2e");
    if !e2e.exists() {
        eprintln!("analysis: {} not built (cargo build --release --bins)", e2e.display());
        return None;
    }
    println!("--- uploader delivery rate: {}", e2e.display());
    let out = Command::new(&e2e).output().ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!("analysis: e2e failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let line = stdout.lines().find(|l| l.starts_with("delivered events/s"))?;
    println!("{line}");
    line.rsplit(' ').next()?.parse().ok()
}
