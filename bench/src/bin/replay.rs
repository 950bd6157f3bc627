//! Replay of a full spool at the next start: a first process fills a spool of about 64 MiB
//! while its endpoint refuses connections; a second one, with the endpoint up (the local
//! sink), is timed from `build()` to the moment it has delivered everything the first left,
//! and its peak RSS is set against the same program without a spool.
//!
//! ```text
//! cd bench && cargo run --release --bin replay              # about 64 MiB
//! cargo run --release --bin replay -- --mib 16              # a smaller spool
//! cargo run --release --bin replay -- --damaged 200         # with damaged files, below
//! ```
//!
//! With `--damaged N`, `build()` is also timed against spools holding damaged files: N of
//! each kind (cut short, empty, NUL-filled, a flipped checksum byte, a newer format version,
//! a foreign name, a symlink, a half-written `.tmp`) alone in a run of their own, one kind at
//! a time, and all of them mixed into the filled spool beside its good files.
//!
//! Each step is a child process of this program (`--mode fill|replay|bare --url URL --dir DIR`),
//! so that peak RSS figures are its own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use serde_json::json;
use tinker_telemetry::{Severity, SpoolSync};
use tinker_telemetry_bench::{Sink, builder, proc_status_kib};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Bytes of text in each event: with its envelope an event's JSON is about 1.2 KiB.
const PAYLOAD: usize = 1_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let mib: u64 = arg("--mib").and_then(|v| v.parse().ok()).unwrap_or(64);
    let damaged: usize = arg("--damaged").and_then(|v| v.parse().ok()).unwrap_or(0);
    let result = match (arg("--mode").as_deref(), arg("--url"), arg("--dir")) {
        (None, _, _) => orchestrate(mib, damaged),
        (Some("fill"), Some(url), Some(dir)) => fill(&url, &dir, mib),
        (Some("replay"), Some(url), Some(dir)) => replay(&url, Some(&dir)),
        (Some("bare"), Some(url), _) => replay(&url, None),
        _ => {
            Err("usage: replay [--mib N] [--damaged N] [--mode fill|replay|bare --url URL --dir DIR]".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn orchestrate(mib: u64, damaged: usize) -> Result {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("tt-bench-replay-{}", std::process::id()));
    let me = std::env::current_exe()?;
    let run_in = |mode: &str, dir: &Path| -> Result<String> {
        let out = Command::new(&me)
            .args(["--mode", mode, "--url", &url, "--dir", &dir.to_string_lossy(), "--mib", &mib.to_string()])
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{stdout}");
        if !out.status.success() {
            return Err(
                format!("--mode {mode}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr)).into()
            );
        }
        Ok(stdout)
    };
    let run = |mode: &str| run_in(mode, &dir);
    run("fill")?;
    let sink = Sink::start_on(TcpListener::bind(("127.0.0.1", port))?)?;
    if damaged > 0 {
        let first_run = walk_runs(&dir).into_iter().next().ok_or("the fill left no run")?;
        for kind in DAMAGE {
            let alone = std::env::temp_dir().join(format!("tt-bench-damaged-{kind}-{}", std::process::id()));
            let run_dir = alone.join(format!("0000000000001-{:016x}.run", 1));
            std::fs::create_dir_all(&run_dir)?;
            damage(&first_run, &run_dir, kind, damaged)?;
            print!("{damaged} {kind} files alone: ");
            run_in("replay", &alone)?;
            let _ = std::fs::remove_dir_all(&alone);
        }
        for kind in DAMAGE {
            damage(&first_run, &first_run, kind, damaged)?;
        }
        print!("{damaged} of each kind among the good files: ");
    }
    run("replay")?;
    let replayed = sink.events();
    run("bare")?;
    let _ = std::fs::remove_dir_all(&dir);
    println!("the sink received {replayed} events during the replay run, {} in all", sink.events());
    Ok(())
}

/// Fills the spool: events pile up while the endpoint refuses connections, and go to disk
/// once their retries run out (none here) or the drain deadline passes.
fn fill(url: &str, dir: &str, mib: u64) -> Result {
    let (_layer, guard) = builder(url)
        .spool_dir(dir)
        .spool_sync(SpoolSync::Never)
        .max_queue_size(1_000_000)
        .max_queue_bytes(1 << 30)
        .max_retries(0)
        .flush_timeout(Duration::from_secs(5))
        .build()?;
    let handle = guard.handle();
    let text = "x".repeat(PAYLOAD);
    let events = mib * 1024 * 1024 / (PAYLOAD as u64 + 230);
    for n in 0..events {
        handle.log("replay.bench", json!({ "n": n, "text": text }), Severity::Info);
    }
    let report = guard.shutdown();
    let bytes: u64 = walk(Path::new(dir)).iter().map(|p| p.metadata().map_or(0, |m| m.len())).sum();
    println!(
        "fill: {events} events emitted, {} spooled, {} dropped; the spool holds {:.1} MiB",
        report.stats.spool.spooled,
        report.stats.dropped.total(),
        bytes as f64 / 1048576.0
    );
    Ok(())
}

/// The kinds of damaged file `--damaged` adds.
const DAMAGE: [&str; 8] = ["cut", "empty", "nul", "checksum", "version", "foreign", "symlink", "tmp"];

/// The run directories the fill left in `dir`.
fn walk_runs(dir: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "run"))
        .collect();
    runs.sort();
    runs
}

/// Writes `count` files of damage `kind` into the run directory `to`, made from a good batch
/// file of the run `from`, named to sort among (and after) the good ones.
fn damage(from: &Path, to: &Path, kind: &str, count: usize) -> Result {
    let mut good: Vec<PathBuf> =
        walk(from).into_iter().filter(|p| p.extension().is_some_and(|e| e == "batch")).collect();
    good.sort();
    let template = std::fs::read(good.first().ok_or("no batch file to copy")?)?;
    let offset = match kind {
        "cut" => 0,
        "empty" => 1,
        "nul" => 2,
        "checksum" => 3,
        "version" => 4,
        "foreign" => 5,
        "symlink" => 6,
        _ => 7,
    };
    for i in 0..count {
        let seq = 10_000_000 + (i * DAMAGE.len() + offset) as u64;
        let path = to.join(format!("{seq:020}.batch"));
        match kind {
            "cut" => std::fs::write(path, &template[..template.len().min(2048) / 2])?,
            "empty" => std::fs::write(path, b"")?,
            "nul" => std::fs::write(path, vec![0u8; 4096])?,
            "checksum" => {
                let mut flipped = template.clone();
                *flipped.last_mut().ok_or("an empty batch")? ^= 1;
                std::fs::write(path, flipped)?;
            }
            "version" => {
                let mut newer = template.clone();
                newer[4] = 0x7f;
                std::fs::write(path, newer)?;
            }
            "foreign" => std::fs::write(to.join(format!("notes-{i}.txt")), b"not a batch")?,
            "symlink" => std::os::unix::fs::symlink(good[0].as_path(), path)?,
            _ => {
                std::fs::write(to.join(format!("{seq:020}.tmp")), &template[..template.len().min(2048) / 2])?
            }
        }
    }
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// Builds a reporter (with the spool in `dir`, or none), times `build()` and, with a spool,
/// the delivery of everything it holds; prints the peak RSS.
fn replay(url: &str, dir: Option<&str>) -> Result {
    let mut builder = builder(url);
    if let Some(dir) = dir {
        builder = builder.spool_dir(dir);
    }
    let start = Instant::now();
    let (_layer, guard) = builder.build()?;
    let built = start.elapsed();
    let handle = guard.handle();
    let mut last = (0, Instant::now());
    while dir.is_some() {
        let replayed = handle.stats().spool.replayed;
        if replayed != last.0 {
            last = (replayed, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let delivered_in = last.1.duration_since(start);
    let report = guard.shutdown();
    let hwm = proc_status_kib("VmHWM").unwrap_or(0);
    let s = report.stats;
    match dir {
        Some(_) => println!(
            "replay: build() {:.2} ms; {} events replayed in {:.2} s ({:.0} events/s); bad files {}; \
             dropped from the spool {:?}; peak RSS (VmHWM) {:.1} MiB",
            built.as_secs_f64() * 1e3,
            s.spool.replayed,
            delivered_in.as_secs_f64(),
            s.spool.replayed as f64 / delivered_in.as_secs_f64(),
            s.spool.bad_files,
            s.spool.dropped,
            hwm as f64 / 1024.0
        ),
        None => {
            println!(
                "bare: build() {:.2} ms; peak RSS (VmHWM) {:.1} MiB",
                built.as_secs_f64() * 1e3,
                hwm as f64 / 1024.0
            );
        }
    }
    Ok(())
}
