//! Proxy variables: a loopback endpoint is never reached through a proxy (over plain
//! `http://` the proxy would read the API key), whatever `HTTP_PROXY`, `HTTPS_PROXY` and
//! `ALL_PROXY` say; an `https://` endpoint goes through the proxy the variables name, as a
//! `CONNECT` tunnel that carries no key in clear. Each case runs in a child process, which
//! reads the variables when it builds its reporter.

mod support;

use std::time::Duration;

use serde_json::json;
use support::child::{child, is_child, run_ok};
use support::proxy::FakeProxy;
use support::{API_KEY, Raw, RawServer};
use tinker_telemetry::{Severity, TinkerTelemetryLayer};

const SESSION: &str = "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a";
const PROXY_VARS: [&str; 6] =
    ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// In the child: a session with three events to `TINKER_BASE_URL`, shut down; prints the
/// report's counters.
#[test]
fn child_session() {
    if !is_child("child_session") {
        return;
    }
    let (_layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .flush_timeout(Duration::from_secs(3))
        .http_timeout(Duration::from_secs(2))
        .max_retries(0)
        .build()
        .unwrap();
    let handle = guard.handle();
    for n in 0..3 {
        handle.log("proxy.test", json!({ "n": n }), Severity::Info);
    }
    let report = guard.shutdown();
    println!("CHILD delivered={} dropped={}", report.stats.delivered, report.stats.dropped.total());
}

#[test]
fn a_loopback_endpoint_bypasses_every_proxy_variable() {
    let proxy = FakeProxy::start();
    let server = RawServer::with_plan(Vec::<Raw>::new());
    let mut cmd = child("child_session");
    cmd.env("TINKER_BASE_URL", server.uri()).env("TINKER_API_KEY", API_KEY);
    for var in PROXY_VARS {
        cmd.env(var, proxy.url());
    }
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CHILD delivered=5 dropped=0"), "{stdout}");
    assert_eq!(proxy.seen(), Vec::<String>::new(), "the proxy saw a loopback request");
    let events = server.accepted_events();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"SESSION_START"));
    assert_eq!(kinds.last(), Some(&"SESSION_END"));
    assert_eq!(kinds.iter().filter(|k| **k == "GENERIC_EVENT").count(), 3, "{kinds:?}");
}

#[test]
fn an_https_endpoint_goes_through_the_proxy_as_a_tunnel() {
    let proxy = FakeProxy::start();
    let mut cmd = child("child_session");
    // A reserved name that resolves nowhere: only the proxy can reach it.
    cmd.env("TINKER_BASE_URL", "https://telemetry.tinker.test").env("TINKER_API_KEY", API_KEY);
    for var in ["HTTPS_PROXY", "https_proxy"] {
        cmd.env(var, proxy.url());
    }
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CHILD delivered=0"), "{stdout}");
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the proxy saw no connection");
    for head in &seen {
        assert!(head.starts_with("CONNECT telemetry.tinker.test:443 "), "not a tunnel: {head}");
        assert!(!head.contains(API_KEY), "the key reached the proxy in clear: {head}");
    }
}
