//! Starts a local collector on 127.0.0.1, runs a small Tinker session through the layer with
//! ordinary tracing macros, and prints each batch the collector received and the final stats.
//!
//! ```text
//! cargo run --example quickstart
//! ```

#[path = "common/collector.rs"]
mod collector;

use std::time::Duration;

use tinker_telemetry::{Severity, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let collector = collector::Collector::start()?;
    let session_id = "6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11";

    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(session_id)
        .api_key("tml-quickstart-example")
        .base_url(collector.base_url())
        .enabled(true)
        .flush_interval(Duration::from_secs(10))
        .build()?;
    tracing_subscriber::registry().with(layer).with(tracing_subscriber::fmt::layer()).init();

    {
        let session = tracing::info_span!("session", session_id);
        let _in = session.enter();
        tracing::info!(event_name = "user.action", button = "submit", "the user pressed submit");
        tracing::info!(event_name = "training.step", step = 1u64, loss = 0.731, lr = 1e-4);
        tracing::warn!(session_id = "another-session", "not ours: ignored by the layer");
        tracing::error!(disk = "sda1", free_bytes = 0u64, "checkpoint write failed");
    }

    let handle = guard.handle();
    handle.log("cache.miss", serde_json::json!({"key": "user:123"}), Severity::Warning);
    if !handle.wait_until_drained(Duration::from_secs(5)) {
        eprintln!("the collector did not answer in time");
    }

    // Dropping the guard sends SESSION_END and drains; shutdown() does the same and reports.
    let report = guard.shutdown();

    for (i, body) in collector.bodies().iter().enumerate() {
        println!("--- batch {} ({} events)", i + 1, body["events"].as_array().map_or(0, Vec::len));
        println!("{}", serde_json::to_string_pretty(body)?);
    }
    let s = report.stats;
    println!(
        "--- stats: accepted {}, delivered {}, dropped {}, retries {}, batches {}, drained {}",
        s.accepted,
        s.delivered,
        s.dropped.total(),
        s.retries,
        s.batches_sent,
        report.drained
    );
    Ok(())
}
