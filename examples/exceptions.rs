//! Exception capture against a local collector: an error logged directly, a user error
//! (HTTP 4xx in the cause chain), an error recorded through tracing, capture helpers, and the
//! fatal path, which ends the session and drains before it returns.
//!
//! ```text
//! cargo run --example exceptions
//! ```

#[path = "common/collector.rs"]
mod collector;

use std::error::Error;

use tinker_telemetry::{HttpError, Severity, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn Error>> {
    let collector = collector::Collector::start()?;
    let session_id = "1e6b3c1a-9a8e-4b5e-8a51-2f0f5c1d7e42";
    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(session_id)
        .api_key("tml-exceptions-example")
        .base_url(collector.base_url())
        .enabled(true)
        .build()?;
    let handle = guard.handle();
    // Panics on any thread from now on become UNHANDLED_EXCEPTION events, delivered before
    // the previous hook runs (and before an abort).
    handle.install_panic_hook();

    // A failure: UNHANDLED_EXCEPTION with error_type "ParseIntError".
    if let Err(err) = "12x".parse::<u32>() {
        handle.log_exception(&err, Severity::Error);
    }
    // The caller's mistake: a 422 in the chain makes a `user_error` event instead.
    let refused =
        anyhow::Error::new(HttpError::new(422, "invalid lr").with_body(r#"{"detail":"lr must be > 0"}"#))
            .context("creating the training run");
    handle.log_exception(&*refused, Severity::Error);

    // Through tracing, inside the session.
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _in = tracing::info_span!("session", session_id).entered();
        let err = std::io::Error::other("checkpoint upload interrupted");
        tracing::error!(error = &err as &dyn Error, "saving checkpoint");
    });

    // Capture helpers hand the result back unchanged.
    let parsed = handle.capture(|| "7".parse::<u8>());
    assert_eq!(parsed, Ok(7));

    // The fatal path: the exception, SESSION_END, and a drain before it returns.
    let delivered =
        handle.log_fatal_exception(&HttpError::new(503, "the service went away"), Severity::Critical);
    println!("fatal error delivered before returning: {delivered}");

    for body in collector.bodies() {
        for event in body["events"].as_array().into_iter().flatten() {
            let what = event["event_name"].as_str().or(event["error_type"].as_str()).unwrap_or("");
            println!(
                "{:<20} {:<9} {what}",
                event["event"].as_str().unwrap_or(""),
                event["severity"].as_str().unwrap_or("")
            );
        }
    }
    drop(guard);
    Ok(())
}
