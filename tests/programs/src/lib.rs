//! What the programs share: a reporter aimed at `$TINKER_BASE_URL` with its panic hook
//! installed, that has logged a few events.

use std::time::Duration;

use serde_json::json;
use tinker_telemetry::{Severity, TelemetryGuard, TelemetryHandle, TinkerTelemetryLayer};
use tracing_subscriber::layer::SubscriberExt;

/// A reporter for `session` (no interval flush, a 10 s drain), its panic hook installed,
/// that has logged `events` events named `name`, each with its `step`.
pub fn reporter_with_hook(session: &str, name: &str, events: u32) -> (TelemetryGuard, TelemetryHandle) {
    let (_layer, guard) = reporter_and_layer(session, name, events);
    let handle = guard.handle();
    (guard, handle)
}

/// [`reporter_with_hook`], and one `http.request` span of `session` ended through its layer,
/// so that the analysis holds an operation.
pub fn reporter_with_operation(session: &str, name: &str, events: u32) -> (TelemetryGuard, TelemetryHandle) {
    let (layer, guard) = reporter_and_layer(session, name, events);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!(
            "http.request",
            session_id = session,
            method = "GET",
            path = "/v1/ping",
            status = 200u16
        )
        .in_scope(|| {});
    });
    let handle = guard.handle();
    (guard, handle)
}

fn reporter_and_layer(session: &str, name: &str, events: u32) -> (TinkerTelemetryLayer, TelemetryGuard) {
    let (layer, guard) = TinkerTelemetryLayer::builder()
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
    (layer, guard)
}
