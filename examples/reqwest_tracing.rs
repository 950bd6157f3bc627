//! reqwest-tracing with no configuration: a reqwest 0.13 client behind reqwest-middleware's
//! `TracingMiddleware` calls a local API (200, 404, 503, then a refused connection); each
//! request arrives at the local collector as one `http.request` event with `method`,
//! `status`, `host`, `duration_ms`, the crate's severity and no query string.
//!
//! ```text
//! cargo run --example reqwest_tracing
//! ```

#[path = "common/collector.rs"]
mod collector;

use std::sync::Arc;

use collector::{Answer, Collector};
use tinker_telemetry::TinkerTelemetryLayer;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = Collector::start()?;
    let api = Collector::start_with(
        false,
        Arc::new(|n| match n {
            0 => Answer::Accept,
            1 => Answer::Status(404),
            _ => Answer::Status(503),
        }),
    )?;
    let session_id = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140";
    let (layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(session_id)
        .api_key("tml-reqwest-tracing-example")
        .base_url(telemetry.base_url())
        .enabled(true)
        .build()?;
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || -> Result<(), Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = reqwest_middleware_05::ClientBuilder::new(reqwest::Client::new())
            .with(reqwest_tracing_07::TracingMiddleware::default())
            .build();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        runtime.block_on(
            async {
                for path in ["/v1/models?token=not-sent", "/v1/models/unknown", "/v1/sample"] {
                    let _ = client.get(format!("{}{path}", api.base_url())).send().await;
                }
                let _ = client.get(format!("http://{closed}/v1/down?token=not-sent")).send().await;
            }
            .instrument(tracing::info_span!("session", session_id)),
        );
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
    println!("delivered {} events, dropped {}", report.stats.delivered, report.stats.dropped.total());
    Ok(())
}
