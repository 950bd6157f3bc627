//! The ecosystem's HTTP instrumentation, captured with the default builder: reqwest-tracing
//! 0.7 (reqwest 0.13, both span backends) and 0.5 (reqwest 0.12) on the client side,
//! tower-http's `TraceLayer` under axum on the server side, all over real HTTP on 127.0.0.1.
//! Each request becomes one `http.request` event in the crate's shape, with the crate's
//! severity rule and no query string anywhere.

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::{Collector, PATIENCE, closed_port};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

const SESSION: &str = "7e6d5c4b-3a29-4f18-8e07-d6c5b4a39281";

/// An axum app on 127.0.0.1: `/ok` answers 200, `/missing` 404, `/boom` 500; traced by
/// tower-http's `TraceLayer` with its defaults.
async fn app() -> SocketAddr {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no such thing") }))
        .route("/boom", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A port nothing listens on.
/// Runs `requests` in the session's span on a runtime that also serves [`app`]; returns the
/// `http.request` events that arrived.
fn captured<F, Fut>(sessionless: bool, requests: F) -> Vec<Value>
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let collector = Collector::start();
    let builder = collector.builder(SESSION);
    let builder = if sessionless { builder.sessionless() } else { builder };
    let (layer, guard) = builder.build().unwrap();
    let handle = guard.handle();
    // One thread runs the client and the server's tasks, under the test's dispatcher.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let _default = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(
        async { requests(app().await).await }
            .instrument(tracing::info_span!("session", session_id = SESSION)),
    );
    drop(runtime);
    assert!(handle.wait_until_drained(PATIENCE));
    guard.shutdown();
    let events = collector.accepted_by_index();
    events.into_iter().filter(|e| e["event_name"] == "http.request").collect()
}

/// What every captured request must look like, whatever instrumentation made it.
fn assert_clean(event: &Value) {
    let data = event["event_data"].as_object().unwrap();
    for key in data.keys() {
        assert!(
            !key.starts_with("otel.") && !key.starts_with("url.") && !key.starts_with("server."),
            "{key} in {event}"
        );
        assert!(
            !["user_agent.original", "version", "latency", "error.cause_chain"].contains(&key.as_str()),
            "{key} in {event}"
        );
    }
    assert!(!event.to_string().contains("SECRET"), "a query reached the server: {event}");
    assert!(data["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{event}");
    assert_eq!(data["method"], "GET", "{event}");
}

fn by_status(events: &[Value], status: u64) -> &Value {
    events
        .iter()
        .find(|e| e["event_data"]["status"] == status)
        .unwrap_or_else(|| panic!("no {status} in {events:#?}"))
}

#[test]
fn reqwest_tracing_0_7_spans_arrive_as_http_requests() {
    let server_port = std::sync::OnceLock::new();
    let events = captured(false, |addr| {
        server_port.set(addr.port()).unwrap();
        async move {
            use reqwest_tracing_07::{SpanBackendWithUrl, TracingMiddleware};
            let plain = reqwest_middleware_05::ClientBuilder::new(reqwest::Client::new())
                .with(TracingMiddleware::default())
                .build();
            let with_url = reqwest_middleware_05::ClientBuilder::new(reqwest::Client::new())
                .with(TracingMiddleware::<SpanBackendWithUrl>::new())
                .build();
            let _ = plain.get(format!("http://{addr}/ok?token=SECRET")).send().await.unwrap();
            let _ = plain.get(format!("http://{addr}/missing?token=SECRET")).send().await.unwrap();
            let refused = format!("http://127.0.0.1:{}/down?token=SECRET", closed_port());
            assert!(plain.get(refused).send().await.is_err());
            let _ = with_url.get(format!("http://u:SECRET@{addr}/boom?token=SECRET")).send().await.unwrap();
        }
    });
    assert_eq!(events.len(), 4, "{events:#?}");
    events.iter().for_each(assert_clean);
    let ok = by_status(&events, 200);
    assert_eq!(ok["severity"], "INFO");
    assert_eq!(ok["event_data"]["host"], "127.0.0.1");
    assert_eq!(ok["event_data"]["port"], server_port.get().copied().unwrap(), "server.port, as a number");
    assert!(ok["event_data"].get("path").is_none(), "the default backend records no path: {ok}");
    assert_eq!(
        by_status(&events, 404)["severity"],
        "WARNING",
        "a 4xx is a warning, whatever otel.status_code says"
    );
    let boom = by_status(&events, 500);
    assert_eq!(
        (boom["severity"].as_str(), boom["event_data"]["path"].as_str()),
        (Some("ERROR"), Some("/boom"))
    );
    let refused = events.iter().find(|e| e["event_data"].get("status").is_none()).unwrap();
    assert_eq!(refused["severity"], "ERROR");
    let error = refused["event_data"]["error"].as_str().unwrap();
    assert!(error.contains("/down"), "the error names the request, without its query: {error}");
}

#[test]
fn reqwest_tracing_0_5_spans_arrive_as_http_requests() {
    let events = captured(false, |addr| async move {
        let client = reqwest_middleware_04::ClientBuilder::new(reqwest_012::Client::new())
            .with(reqwest_tracing_05::TracingMiddleware::default())
            .build();
        let _ = client.get(format!("http://{addr}/ok?token=SECRET")).send().await.unwrap();
        let _ = client.get(format!("http://{addr}/missing?token=SECRET")).send().await.unwrap();
        let refused = format!("http://127.0.0.1:{}/down?token=SECRET", closed_port());
        assert!(client.get(refused).send().await.is_err());
    });
    assert_eq!(events.len(), 3, "{events:#?}");
    events.iter().for_each(assert_clean);
    assert_eq!(by_status(&events, 200)["severity"], "INFO");
    assert_eq!(by_status(&events, 404)["severity"], "WARNING");
    let refused = events.iter().find(|e| e["event_data"].get("status").is_none()).unwrap();
    assert_eq!(refused["severity"], "ERROR");
    assert!(refused["event_data"]["error"].is_string(), "{refused}");
}

#[test]
fn tower_http_request_spans_arrive_with_their_status() {
    // Server spans belong to no session of their own: a session-less reporter takes them.
    let events = captured(true, |addr| async move {
        let client = reqwest::Client::new();
        for path in ["/ok?page=SECRET", "/missing", "/boom"] {
            let _ = client.get(format!("http://{addr}{path}")).send().await.unwrap();
        }
    });
    assert_eq!(events.len(), 3, "{events:#?}");
    events.iter().for_each(assert_clean);
    let ok = by_status(&events, 200);
    assert_eq!((ok["severity"].as_str(), ok["event_data"]["path"].as_str()), (Some("INFO"), Some("/ok")));
    assert_eq!(by_status(&events, 404)["severity"], "WARNING");
    let boom = by_status(&events, 500);
    assert_eq!(boom["severity"], "ERROR");
    assert!(boom["event_data"]["error"].is_string(), "tower-http's failure classification: {boom}");
}
