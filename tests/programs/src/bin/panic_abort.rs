//! A program built with `panic = "abort"`: a session to `$TINKER_BASE_URL` with two events,
//! the panic hook, then a panic, which aborts the process once the hook returns.

use std::time::Duration;

use serde_json::json;
use tinker_telemetry::{Severity, TinkerTelemetryLayer};

fn main() {
    let (_layer, guard) = TinkerTelemetryLayer::builder()
        .session_id("abort-session")
        .flush_interval(Duration::from_secs(3600))
        .flush_timeout(Duration::from_secs(10))
        .build()
        .expect("a reporter");
    let handle = guard.handle();
    assert!(handle.install_panic_hook());
    for step in 0..2 {
        handle.log("before.panic", json!({ "step": step }), Severity::Info);
    }
    panic!("boom, with panic = abort");
}
