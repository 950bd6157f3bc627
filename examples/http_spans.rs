//! Wraps real reqwest calls to a local API server in `http.request` spans; the layer turns
//! each span into a `GENERIC_EVENT` with `method`, `path`, `status` and `duration_ms`, and
//! strips the query string and credentials from the URL.
//!
//! ```text
//! cargo run --example http_spans
//! ```

#[path = "common/collector.rs"]
mod collector;

use std::sync::Arc;
use std::time::Duration;

use collector::{Answer, Collector};
use tinker_telemetry::TinkerTelemetryLayer;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = Collector::start()?;
    // The "API" the program talks to: 200, then 404, then 503.
    let api = Collector::start_with(
        false,
        Arc::new(|n| match n {
            0 => Answer::Accept,
            1 => Answer::Status(404),
            _ => Answer::Status(503),
        }),
    )?;
    let session_id = "0b9f0c7d-2e11-4d7a-9c1e-6f1c2a9e5b4e";
    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(session_id)
        .api_key("tml-http-spans-example")
        .base_url(telemetry.base_url())
        .enabled(true)
        .build()?;
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || -> Result<(), Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let session = tracing::info_span!("session", session_id);
        runtime.block_on(
            async {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
                for path in ["/v1/models?api_key=hidden", "/v1/missing", "/v1/overloaded"] {
                    let url = format!("{}{path}", api.base_url().replace("http://", "http://user:pw@"));
                    let span = tracing::info_span!(
                        "http.request",
                        "http.request.method" = "GET",
                        "url.full" = %url,
                        "http.response.status_code" = tracing::field::Empty,
                    );
                    let response = client.get(&url).send().instrument(span.clone()).await?;
                    span.record("http.response.status_code", response.status().as_u16());
                }
                Ok::<(), Box<dyn std::error::Error>>(())
            }
            .instrument(session),
        )?;
        Ok(())
    })?;
    let report = guard.shutdown();

    for body in telemetry.bodies() {
        for event in body["events"].as_array().into_iter().flatten() {
            if event["event_name"] == "http.request" {
                println!("{} {}", event["severity"], event["event_data"]);
            }
        }
    }
    println!("delivered {} events", report.stats.delivered);
    Ok(())
}
