//! A reporter across the life of a process: inherited by a forked child (which must neither
//! wait for an uploader that stayed in the parent nor send anything again), and built and
//! shut down again and again (which must leave no thread and no file descriptor behind).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::child::{child, is_child, run_ok};
use support::programs::program;
use support::{API_KEY, Collector, PATIENCE, assert_well_formed, test_builder};
use tinker_telemetry::Severity;

const URL: &str = "TINKER_TELEMETRY_TEST_URL";
const HOOK: &str = "TINKER_TELEMETRY_TEST_HOOK";
const CYCLES: usize = 200;

/// Runs `program fork <mode>` against a collector; returns what it printed and the collector.
fn fork(mode: &str) -> (String, Collector) {
    let collector = Collector::start();
    let out = program("fork")
        .arg(mode)
        .env("TINKER_BASE_URL", collector.uri())
        .env("TINKER_API_KEY", API_KEY)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    (stdout, collector)
}

/// The `CHILD status=… elapsed_ms=…` line: the child's exit code (or minus its signal), and
/// the time from the fork to the child's end.
fn child_outcome(stdout: &str) -> (i32, u64) {
    let line = stdout.lines().find_map(|l| l.strip_prefix("CHILD ")).expect(stdout);
    let value = |name: &str| {
        let field = line.split_whitespace().find_map(|f| f.strip_prefix(name)).expect(line);
        field.parse::<i64>().unwrap()
    };
    (value("status=") as i32, value("elapsed_ms=") as u64)
}

/// Every event the collector saw, accepted or not, has a different id; the session is the
/// parent's alone, complete and well formed.
fn check_parent_session(collector: &Collector) {
    let seen: Vec<Value> = collector.seen().iter().flat_map(|s| s.events().to_vec()).collect();
    let ids: HashSet<&str> = seen.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seen.len(), "an event was sent twice: {seen:?}");
    let events = collector.session_events("fork-session");
    assert_well_formed(&events);
    let names: Vec<&str> =
        events.iter().map(|e| e["event_name"].as_str().unwrap_or(e["event"].as_str().unwrap())).collect();
    assert_eq!(
        names,
        [
            "SESSION_START",
            "before.fork",
            "before.fork",
            "before.fork",
            "http.request",
            "after.fork",
            "performance.summary",
            "SESSION_END"
        ]
    );
}

#[test]
fn a_forked_child_that_drops_the_guard_returns_at_once_and_sends_nothing_twice() {
    let (stdout, collector) = fork("drop");
    let (status, elapsed_ms) = child_outcome(&stdout);
    eprintln!(
        "the forked child waited, shut down and dropped its guard in {elapsed_ms} ms (flush_timeout 10 s)"
    );
    assert_eq!(status, 0, "in the child, waits and shutdowns must report nothing drained: {stdout}");
    assert!(elapsed_ms < 2_000, "the child took {elapsed_ms} ms; flush_timeout is 10 s");
    check_parent_session(&collector);
}

#[test]
fn a_forked_child_that_panics_is_not_held_by_the_panic_hook_and_sends_nothing() {
    let (stdout, collector) = fork("panic");
    let (status, elapsed_ms) = child_outcome(&stdout);
    eprintln!("the forked child's panic hook returned and the child aborted within {elapsed_ms} ms");
    assert_eq!(status, -6, "the child must die of SIGABRT (panic = \"abort\"): {stdout}");
    assert!(elapsed_ms < 2_000, "the child took {elapsed_ms} ms; flush_timeout is 10 s");
    check_parent_session(&collector);
}

/// Threads and open file descriptors of this process.
fn counts() -> (usize, usize) {
    let count = |dir| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/task"), count("/proc/self/fd"))
}

/// In the child: build, log, shut down, drop, `CYCLES` times, with or without the panic hook;
/// then waits for the thread and descriptor counts to come back to where they were after a
/// warm-up cycle (the clock calibration thread and the like start once per process).
#[test]
fn cycles_child() {
    if !is_child("cycles_child") {
        return;
    }
    let url = std::env::var(URL).unwrap();
    let hook = std::env::var(HOOK).unwrap() == "1";
    let cycle = |n: usize| {
        let (_layer, guard) = test_builder(&url, "cycles").build().unwrap();
        let handle = guard.handle();
        if hook {
            assert!(handle.install_panic_hook());
        }
        handle.log("cycle", json!({ "n": n }), Severity::Info);
        let report = handle.shutdown(Duration::from_secs(10));
        assert!(report.drained && report.stats.delivered == 3, "{report:?}");
        drop(guard);
    };
    for n in 0..2 {
        cycle(n);
    }
    let before = counts();
    let started = Instant::now();
    for n in 0..CYCLES {
        cycle(n);
    }
    let took = started.elapsed();
    let until = Instant::now() + PATIENCE;
    let mut after = counts();
    // The last uploader thread ends just after its answer; its sockets close with it.
    while (after.0 > before.0 + 1 || after.1 > before.1 + 1) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
        after = counts();
    }
    println!(
        "CYCLES {CYCLES} in {} ms: threads {} -> {}, fds {} -> {}",
        took.as_millis(),
        before.0,
        after.0,
        before.1,
        after.1
    );
    assert!(after.0 <= before.0 + 1, "threads grew from {} to {} over {CYCLES} cycles", before.0, after.0);
    assert!(
        after.1 <= before.1 + 1,
        "descriptors grew from {} to {} over {CYCLES} cycles",
        before.1,
        after.1
    );
}

fn cycles(hook: bool) {
    let collector = Collector::start();
    let out = run_ok(child("cycles_child").env(URL, collector.uri()).env(HOOK, if hook { "1" } else { "0" }));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.split_once("CYCLES ").map(|(_, v)| v)).expect(&stdout);
    eprintln!("panic hook {}: {CYCLES} cycles {line}", if hook { "on" } else { "off" });
    let ends = collector.accepted_events().iter().filter(|e| e["event"] == "SESSION_END").count();
    assert_eq!(ends, CYCLES + 2, "one SESSION_END per cycle");
}

#[test]
fn build_log_shutdown_cycles_leave_no_thread_or_descriptor_behind() {
    cycles(false);
}

#[test]
fn build_log_shutdown_cycles_with_the_panic_hook_leave_no_thread_or_descriptor_behind() {
    cycles(true);
}
