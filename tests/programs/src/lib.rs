//! What the programs share: a reporter aimed at `$TINKER_BASE_URL` with its panic hook
//! installed, that has logged a few events.

use std::time::Duration;

use serde_json::json;
use tinker_telemetry::{Severity, TelemetryGuard, TelemetryHandle, TinkerTelemetryLayer};

/// A reporter for `session` (no interval flush, a 10 s drain), its panic hook installed,
/// that has logged `events` events named `name`, each with its `step`.
pub fn reporter_with_hook(session: &str, name: &str, events: u32) -> (TelemetryGuard, TelemetryHandle) {
    let (_layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(session)
        .flush_interval(Duration::from_secs(3600))
        .flush_timeout(Duration::from_secs(10))
        .build()
        .expect("a reporter");
    let handle = guard.handle();
    assert!(handle.install_panic_hook());
    for step in 0..events {
        handle.log(name, json!({ "step": step }), Severity::Info);
    }
    (guard, handle)
}
