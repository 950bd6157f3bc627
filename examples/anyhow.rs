//! Errors as applications carry them: `anyhow::Result` through the capture helpers, with
//! context over a real cause. A 404 deep in the chain makes a `user_error` event; anything
//! else an UNHANDLED_EXCEPTION naming the root cause's type, with the chain as traceback.
//!
//! ```text
//! cargo run --example anyhow
//! ```

#[path = "common/collector.rs"]
mod collector;

use anyhow::Context as _;
use tinker_telemetry::{HttpError, Severity, TinkerTelemetryLayer};

fn load_model(name: &str) -> anyhow::Result<()> {
    Err(HttpError::new(404, format!("no model named {name}"))).context("loading the base model")
}

fn save_checkpoint(step: u64) -> anyhow::Result<()> {
    let io = std::io::Error::other("no space left on device");
    Err(io).with_context(|| format!("saving checkpoint {step}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = collector::Collector::start()?;
    let (_layer, guard) = TinkerTelemetryLayer::builder()
        .session_id("8c7b6a59-4837-4261-9f0e-1d2c3b4a5968")
        .api_key("tml-anyhow-example")
        .base_url(telemetry.base_url())
        .enabled(true)
        .build()?;
    let handle = guard.handle();
    let _ = handle.capture(|| load_model("llama-9"));
    let _ = handle.capture(|| save_checkpoint(1200));
    if let Err(err) = save_checkpoint(1300) {
        handle.log_exception(&err, Severity::Critical);
    }
    guard.shutdown();
    for body in telemetry.bodies() {
        for event in body["events"].as_array().into_iter().flatten() {
            if event["event"] == "UNHANDLED_EXCEPTION" || event["event_name"] == "user_error" {
                println!("{}", serde_json::to_string_pretty(event)?);
            }
        }
    }
    Ok(())
}
