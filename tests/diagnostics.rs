//! Seeing what the crate sends and why it fails, without a feedback loop: the last delivery
//! error in words through the handle, and the opt-in debug line per payload on stderr (read
//! from a child process). Neither ever shows the API key.

mod support;

use std::time::Duration;

use serde_json::json;
use support::child::{child, is_child, run_ok};
use support::{API_KEY, PATIENCE, Raw, RawServer};
use tinker_telemetry::{DeliveryErrorKind, Severity};

const SESSION: &str = "2f1e0d9c-8b7a-4695-a4b3-c2d1e0f9a8b7";

#[test]
fn the_last_delivery_error_names_the_cause() {
    let server = RawServer::with_plan(vec![Raw::Accept, Raw::Status(401)]);
    let (_layer, guard) = server.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    server.wait_requests(1);
    assert_eq!(handle.last_delivery_error(), None, "nothing failed yet");
    handle.log("refused", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let error = handle.last_delivery_error().expect("the 401 is recorded");
    assert_eq!(error.kind, DeliveryErrorKind::Status(401));
    assert_eq!(error.to_string(), "401 from the server: the API key was rejected");
    assert!(!format!("{error:?}").contains(API_KEY));
    drop(guard);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_layer, guard) = support::test_builder(&format!("http://127.0.0.1:{port}"), SESSION)
        .max_retries(0)
        .flush_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let handle = guard.handle();
    assert!(handle.wait_until_drained(PATIENCE));
    let error = handle.last_delivery_error().expect("the refusal is recorded");
    assert_eq!(
        (error.kind, error.message.as_str()),
        (DeliveryErrorKind::Connect, "connect: connection refused")
    );
}

/// In the child: a session with debug output to `TINKER_BASE_URL`, one event refused.
#[test]
fn child_with_debug_output() {
    if !is_child("child_with_debug_output") {
        return;
    }
    let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .debug(true)
        .flush_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let handle = guard.handle();
    handle.log("refused", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
}

#[test]
fn debug_output_is_one_line_per_payload_on_stderr() {
    let server = RawServer::with_plan(vec![Raw::Accept, Raw::Status(401)]);
    let mut cmd = child("child_with_debug_output");
    cmd.env("TINKER_BASE_URL", server.uri()).env("TINKER_API_KEY", API_KEY);
    let out = run_ok(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("tinker-telemetry: ")).collect();
    assert!(
        lines[0].starts_with("tinker-telemetry: 1 events, ")
            && lines[0].ends_with(": delivered after 0 retries"),
        "{stderr}"
    );
    assert!(
        lines[1].ends_with(
            "dropped (Rejected) after 0 retries; last error: 401 from the server: the API key was rejected"
        ),
        "{stderr}"
    );
    assert_eq!(lines.len(), 3, "SESSION_START, the refused event, SESSION_END: {stderr}");
    assert!(!stderr.contains(API_KEY), "the key was printed: {stderr}");
}
