//! The panic hook, in a real process that really dies: this test binary runs itself again as
//! a child that installs the hook and panics (unwinding on a worker thread, or aborting the
//! way `panic = "abort"` does: the hook chain runs, then the process aborts), and checks what
//! reached the local collector.

mod support;

use std::process::Command;

use support::Collector;

const URL: &str = "TINKER_TELEMETRY_TEST_CHILD_URL";
const MODE: &str = "TINKER_TELEMETRY_TEST_CHILD_MODE";
const SESSION: &str = "panic-session";

/// The child's program; does nothing unless started by `run_child`.
#[test]
fn child_program() {
    let (Ok(url), Ok(mode)) = (std::env::var(URL), std::env::var(MODE)) else { return };
    let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .api_key(support::API_KEY)
        .base_url(url)
        .enabled(true)
        .build()
        .unwrap();
    let handle = guard.handle();
    // A hook the program had before: ours must chain it, not replace it.
    std::panic::set_hook(Box::new(|_| eprintln!("the previous hook ran")));
    assert!(handle.install_panic_hook());
    assert!(!handle.install_panic_hook(), "installing twice is a no-op");
    if mode == "abort" {
        // What `panic = "abort"` does after the hooks: abort, with no unwinding and no drops.
        let hooks = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hooks(info);
            std::process::abort();
        }));
        panic!("boom, then abort");
    }
    let worker = std::thread::Builder::new().name("worker".into()).spawn(|| panic!("boom on a worker"));
    let joined = worker.unwrap().join();
    assert!(joined.is_err());
    // Leave without dropping the guard: only the hook can have sent the events.
    std::mem::forget(guard);
    std::process::exit(3);
}

fn run_child(mode: &str) -> (std::process::ExitStatus, Collector) {
    let collector = Collector::start();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_program", "--nocapture", "--test-threads=1"])
        .env(URL, collector.uri())
        .env(MODE, mode)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the previous hook ran"), "the previous hook was replaced: {stderr}");
    (output.status, collector)
}

fn check_events(collector: &Collector, message: &str, thread: &str) {
    let events = collector.accepted_by_index();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]);
    let panic = &events[1];
    assert_eq!(panic["error_type"], "panic");
    assert_eq!(panic["error_message"], message);
    assert_eq!(panic["severity"], "CRITICAL");
    let traceback = panic["traceback"].as_str().unwrap();
    assert!(
        traceback.starts_with(&format!("thread '{thread}' panicked at tests/panic_hook.rs:")),
        "{traceback}"
    );
    assert!(traceback.contains("Backtrace:"), "{traceback}");
}

#[test]
fn a_panic_on_a_worker_thread_reaches_the_server() {
    let (status, collector) = run_child("unwind");
    assert_eq!(status.code(), Some(3), "{status:?}");
    check_events(&collector, "boom on a worker", "worker");
}

#[test]
fn a_panic_that_aborts_the_process_reaches_the_server_first() {
    let (status, collector) = run_child("abort");
    assert_eq!(status.code(), None, "the child must die of SIGABRT: {status:?}");
    check_events(&collector, "boom, then abort", "child_program");
}

/// In this process (no other test here panics, so the global hook is ours to change).
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
