//! SIGINT and SIGTERM with `install_signal_handlers` (feature `signals`, which `cargo test`
//! enables through the crate's dev-dependency on itself): a child process sends itself the
//! signal mid-session; the collector gets the whole session, SESSION_END included, and the
//! child dies of that signal.
#![cfg(feature = "signals")]

mod support;

use std::os::unix::process::ExitStatusExt;

use serde_json::json;
use signal_hook::consts::{SIGINT, SIGTERM};
use support::child::{child, is_child};
use support::{Collector, PATIENCE, assert_well_formed, test_builder};
use tinker_telemetry::Severity;

const URL: &str = "TINKER_TELEMETRY_TEST_URL";
const SIGNAL: &str = "TINKER_TELEMETRY_TEST_SIGNAL";
const SESSION: &str = "signal-session";

/// In the child: three events, then the signal. The listener thread ends the session and
/// the process; this thread holds the guard meanwhile.
#[test]
fn signalled_child() {
    if !is_child("signalled_child") {
        return;
    }
    let signal: i32 = std::env::var(SIGNAL).unwrap().parse().unwrap();
    let (_layer, guard) = test_builder(&std::env::var(URL).unwrap(), SESSION).build().unwrap();
    let handle = guard.handle();
    assert!(handle.install_signal_handlers().unwrap());
    assert!(!handle.install_signal_handlers().unwrap(), "registering twice is a no-op");
    for n in 0..3 {
        handle.log("before.signal", json!({ "n": n }), Severity::Info);
    }
    signal_hook::low_level::raise(signal).unwrap();
    // Only reached if the signal did not end the process.
    std::thread::sleep(PATIENCE);
    drop(guard);
    std::process::exit(4);
}

fn signal_mid_session(signal: i32) {
    let collector = Collector::start();
    let out =
        child("signalled_child").env(URL, collector.uri()).env(SIGNAL, signal.to_string()).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "the child must die of signal {signal}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let events = collector.session_events(SESSION);
    assert_well_formed(&events);
    let names: Vec<&str> =
        events.iter().map(|e| e["event_name"].as_str().unwrap_or(e["event"].as_str().unwrap())).collect();
    assert_eq!(names, ["SESSION_START", "before.signal", "before.signal", "before.signal", "SESSION_END"]);
}

#[test]
fn sigterm_ends_the_session_drains_and_then_kills_the_process() {
    signal_mid_session(SIGTERM);
}

#[test]
fn sigint_ends_the_session_drains_and_then_kills_the_process() {
    signal_mid_session(SIGINT);
}
