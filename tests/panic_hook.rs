//! The panic hook, in real processes: each case runs in a child (this test binary run again
//! with one test selected, or a program from `tests/programs/` built with
//! `panic = "abort"`), since the hook is process-wide, and checks what reached a collector
//! on 127.0.0.1. A panic that unwinds may be survived: it is reported and waited for, and
//! the session goes on. A panic that aborts ends the session before the process dies.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::child::{child, is_child, run_ok};
use support::programs::program;
use support::{API_KEY, Collector, Raw, RawServer, assert_well_formed, names, test_builder};
use tinker_telemetry::{HttpError, Severity, TelemetryHandle};

/// The collector's address, for the children.
const URL: &str = "TINKER_TELEMETRY_TEST_URL";
const SIGABRT: i32 = 6;
const FILE: &str = "tests/panic_hook.rs";

fn url() -> String {
    std::env::var(URL).unwrap()
}

/// After a survived panic: delivered (the hook waited), nothing queued, the session open.
fn assert_delivered_and_open(handle: &TelemetryHandle) {
    let stats = handle.stats();
    assert_eq!((stats.delivered, stats.queued), (2, 0), "SESSION_START and the panic, delivered: {stats:?}");
    assert!(handle.log("after.panic", json!({}), Severity::Info), "the session must stay open");
}

/// Symbolizes a backtrace once, so that the time a panic takes afterwards is the hook's wait
/// rather than the first load of the symbols (a few hundred milliseconds in a debug build).
fn warm_up_backtraces() {
    let _ = std::backtrace::Backtrace::force_capture().to_string();
}

/// The value printed as `NAME=<value>` on a line of `stdout`.
fn printed(stdout: &[u8], name: &str) -> u64 {
    let stdout = String::from_utf8_lossy(stdout);
    let prefix = format!("{name}=");
    let value = stdout.lines().find_map(|l| l.split_once(&prefix).map(|(_, v)| v));
    value.and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no {name} in {stdout}"))
}

/// A panic's event: `thread` panicked at a line of `file`.
fn check_panic(event: &Value, message: &str, thread: &str, file: &str) {
    assert_eq!(event["event"], "UNHANDLED_EXCEPTION");
    assert_eq!(event["error_type"], "panic");
    assert_eq!(event["error_message"], message);
    assert_eq!(event["severity"], "CRITICAL");
    let traceback = event["traceback"].as_str().unwrap();
    assert!(traceback.starts_with(&format!("thread '{thread}")), "{traceback}");
    assert!(traceback.contains(&format!("' panicked at {file}:")), "{traceback}");
    assert!(traceback.contains("Backtrace:"), "{traceback}");
}

/// In the child: two reporters register with the hook (one hook for both); a worker thread
/// panics and is joined; a capture helper catches a second panic; both sessions go on.
#[test]
fn joined_thread_child() {
    if !is_child("joined_thread_child") {
        return;
    }
    let (_la, guard_a) = test_builder(&url(), "session-a").build().unwrap();
    let (_lb, guard_b) = test_builder(&url(), "session-b").build().unwrap();
    let (a, b) = (guard_a.handle(), guard_b.handle());
    // A hook the program had before: ours must chain it, not replace it.
    std::panic::set_hook(Box::new(|_| eprintln!("the previous hook ran")));
    assert!(a.install_panic_hook());
    assert!(!a.install_panic_hook(), "registering twice is a no-op");
    assert!(b.install_panic_hook());
    warm_up_backtraces();
    let started = Instant::now();
    let worker = std::thread::Builder::new().name("worker".into()).spawn(|| panic!("boom on a worker"));
    assert!(worker.unwrap().join().is_err());
    let waited = started.elapsed();
    assert_delivered_and_open(&a);
    assert_delivered_and_open(&b);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        a.capture(|| -> Result<(), HttpError> { panic!("caught by capture") })
    }));
    assert!(caught.is_err());
    println!("HOOK_WAITED_MS={}", waited.as_millis());
    for guard in [guard_a, guard_b] {
        let report = guard.shutdown();
        assert!(report.drained);
        assert_eq!(report.stats.dropped.total(), 0, "{report:?}");
    }
}

#[test]
fn a_joined_thread_that_panics_is_reported_and_the_session_goes_on() {
    let collector = Collector::start();
    let out = run_ok(child("joined_thread_child").env(URL, collector.uri()).env("RUST_BACKTRACE", "0"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the previous hook ran"), "the previous hook was replaced: {stderr}");
    let waited = printed(&out.stdout, "HOOK_WAITED_MS");
    eprintln!("the panicking thread waited {waited} ms for its report's delivery");
    assert!(waited < 5_000, "the hook waited {waited} ms, flush_timeout is 10 s");
    for session in ["session-a", "session-b"] {
        let events = collector.session_events(session);
        assert_well_formed(&events);
        assert_eq!(
            names(&events),
            ["SESSION_START", "UNHANDLED_EXCEPTION", "after.panic", "UNHANDLED_EXCEPTION", "SESSION_END"],
            "{session}"
        );
        check_panic(&events[1], "boom on a worker", "worker'", FILE);
        check_panic(&events[3], "caught by capture", "joined_thread_child'", FILE);
    }
}

/// In the child: a task panics on a multi-thread runtime; the runtime and the session go on.
#[test]
fn tokio_task_child() {
    if !is_child("tokio_task_child") {
        return;
    }
    let (_layer, guard) = test_builder(&url(), "task-session").build().unwrap();
    let handle = guard.handle();
    assert!(handle.install_panic_hook());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let task = tokio::spawn(async { panic!("boom in a task") });
        assert!(task.await.unwrap_err().is_panic());
        assert_delivered_and_open(&handle);
        let later = handle.clone();
        tokio::spawn(async move { later.log("from.a.later.task", json!({}), Severity::Info) }).await.unwrap();
    });
    assert!(guard.shutdown().drained);
}

#[test]
fn a_panicking_tokio_task_is_reported_and_the_session_goes_on() {
    let collector = Collector::start();
    run_ok(child("tokio_task_child").env(URL, collector.uri()).env("RUST_BACKTRACE", "0"));
    let events = collector.session_events("task-session");
    assert_well_formed(&events);
    assert_eq!(
        names(&events),
        ["SESSION_START", "UNHANDLED_EXCEPTION", "after.panic", "from.a.later.task", "SESSION_END"]
    );
    check_panic(&events[1], "boom in a task", "tokio-", FILE);
}

/// In the child: a panic while the server accepts requests and never answers them.
#[test]
fn unanswered_child() {
    if !is_child("unanswered_child") {
        return;
    }
    let (_layer, guard) =
        test_builder(&url(), "unanswered").flush_timeout(Duration::from_millis(500)).build().unwrap();
    assert!(guard.handle().install_panic_hook());
    warm_up_backtraces();
    let started = Instant::now();
    assert!(std::thread::spawn(|| panic!("nobody listens")).join().is_err());
    println!("HOOK_WAITED_MS={}", started.elapsed().as_millis());
    assert!(guard.handle().log("after.panic", json!({}), Severity::Info), "the session must stay open");
}

#[test]
fn a_panic_waits_for_its_delivery_at_most_flush_timeout() {
    // SESSION_START is accepted; every later request hangs.
    let server = RawServer::with_fn(|n| if n == 0 { Raw::Accept } else { Raw::Hang });
    let stdout = run_ok(child("unanswered_child").env(URL, server.uri()).env("RUST_BACKTRACE", "0")).stdout;
    let waited = printed(&stdout, "HOOK_WAITED_MS");
    eprintln!(
        "with a server that never answers, the panicking thread waited {waited} ms (flush_timeout 500 ms)"
    );
    assert!((450..1_500).contains(&waited), "waited {waited} ms, flush_timeout is 500 ms");
}

/// In the child: the hook chain ends in an abort, as a hook of the program's own might.
#[test]
fn aborting_hook_child() {
    if !is_child("aborting_hook_child") {
        return;
    }
    let (_layer, guard) = test_builder(&url(), "aborting-hook").build().unwrap();
    assert!(guard.handle().install_panic_hook());
    let hooks = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hooks(info);
        std::process::abort();
    }));
    panic!("boom, then abort");
}

#[test]
fn a_panic_is_delivered_before_the_previous_hooks_run() {
    let collector = Collector::start();
    let out =
        child("aborting_hook_child").env(URL, collector.uri()).env("RUST_BACKTRACE", "0").output().unwrap();
    assert_eq!(out.status.signal(), Some(SIGABRT), "the child must die of SIGABRT: {:?}", out.status);
    // A binary built with `panic = "unwind"`: the hook does not end the session, but the
    // panic was delivered before the chain went on to the abort.
    let events = collector.session_events("aborting-hook");
    assert_eq!(names(&events), ["SESSION_START", "UNHANDLED_EXCEPTION"]);
    check_panic(&events[1], "boom, then abort", "aborting_hook_child'", FILE);
}

#[test]
fn a_panic_in_a_panic_abort_program_ends_the_session_before_the_abort() {
    let collector = Collector::start();
    let out = program("panic_abort")
        .env("TINKER_BASE_URL", collector.uri())
        .env("TINKER_API_KEY", API_KEY)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(SIGABRT),
        "the program must die of SIGABRT: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let events = collector.session_events("abort-session");
    assert_well_formed(&events);
    assert_eq!(
        names(&events),
        ["SESSION_START", "before.panic", "before.panic", "UNHANDLED_EXCEPTION", "SESSION_END"]
    );
    check_panic(&events[3], "boom, with panic = abort", "main'", "src/bin/panic_abort.rs");
}

/// In this process (no other test here installs a hook in this process or panics, so the
/// global hook is ours to change).
#[test]
fn one_reporters_panic_hook_does_not_silence_another_reporters_capture() {
    let collector = Collector::start();
    let (_a, guard_a) = collector.builder("reporter-a").build().unwrap();
    let (_b, guard_b) = collector.builder("reporter-b").build().unwrap();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    assert!(guard_a.handle().install_panic_hook());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        guard_b.handle().capture(|| -> Result<(), tinker_telemetry::HttpError> { panic!("seen by both") })
    }));
    assert!(unwound.is_err());
    let _ = std::panic::take_hook();
    std::panic::set_hook(previous);
    for session in ["reporter-a", "reporter-b"] {
        let events = collector.session_events(session);
        let panics = events.iter().filter(|e| e["error_message"] == "seen by both").count();
        assert_eq!(panics, 1, "{session} must report the panic exactly once: {events:?}");
    }
    drop((guard_a, guard_b));
}

#[test]
fn hooked_nested_capture_child() {
    if !is_child("hooked_nested_capture_child") {
        return;
    }
    let (_layer, guard) = test_builder(&url(), "hooked-nested").build().unwrap();
    let handle = guard.handle();
    assert!(handle.install_panic_hook());
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        handle.capture(|| handle.capture(|| -> Result<(), HttpError> { panic!("one panic") }))
    }));
    assert!(unwound.is_err());
    assert!(guard.shutdown().drained);
}

/// The hook and two capture helpers, one inside the other, see one panic: one report.
#[test]
fn one_panic_through_the_hook_and_nested_capture_helpers_is_reported_once() {
    let collector = Collector::start();
    run_ok(child("hooked_nested_capture_child").env(URL, collector.uri()).env("RUST_BACKTRACE", "0"));
    let events = collector.session_events("hooked-nested");
    let panics = events.iter().filter(|e| e["event"] == "UNHANDLED_EXCEPTION").count();
    assert_eq!(panics, 1, "{events:?}");
}
