//! Secrets: the API key shows in no `Debug`, `Display`, error or log line of any public type;
//! event fields whose names look secret are sent redacted, end to end over HTTP; and the key
//! only ever travels in the `X-API-Key` header, to a loopback host when the URL is plain
//! `http://`, never to wherever a redirect points, never through a proxy to a loopback host,
//! and through a proxy to an `https://` host only inside a `CONNECT` tunnel; a certificate the
//! client refuses puts it nowhere. The proxy and TLS cases run in child processes, which read
//! the proxy variables when they build their reporter.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::json;
use support::child::{child, is_child, run_ok};
use support::proxy::FakeProxy;
use support::tls::TestCa;
use support::{API_KEY, PATIENCE, Raw, RawServer};
use tinker_telemetry::{REDACTED, Severity, TinkerTelemetryLayer};
use tracing_subscriber::prelude::*;

const SESSION: &str = "c3e1a7f9-4b2d-4e6c-8a1f-5d7b9c3e1a20";

/// A key no test output could contain by accident.
const KEY: &str = "tml-SECRET-c0ffee-7e57-9f8e7d6c5b4a";
/// The part of it to look for (a message might cut the prefix).
const NEEDLE: &str = "c0ffee-7e57";

fn shows_no_key(what: &str, text: &str) {
    assert!(!text.contains(NEEDLE), "{what} shows the API key: {text}");
}

/// Everything logged anywhere in this process, at every level, by any thread that has no
/// subscriber of its own (the uploader's threads silence themselves, which is the point).
fn global_log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&log);
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(move || SharedWriter(Arc::clone(&writer)))
            .with_ansi(false)
            .with_thread_names(true);
        tracing_subscriber::registry().with(tracing_subscriber::EnvFilter::new("trace")).with(fmt).init();
        log
    })
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_public_type_error_or_log_line_shows_the_api_key() {
    let log = global_log();
    // A server that refuses, fails, resets and finally accepts: every error path runs.
    let server = RawServer::with_plan(vec![Raw::Accept, Raw::Status(401), Raw::Status(500), Raw::Reset]);
    let builder = server.builder(SESSION).api_key(KEY).max_retries(3);
    let (layer, guard) = builder.clone().build().unwrap();
    let handle = guard.handle();
    server.wait_requests(1);
    handle.log("one", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    handle.log("two", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let stats = handle.stats();
    assert_eq!((stats.dropped.rejected, stats.retries), (1, 2), "{stats:?}");
    shows_no_key("Builder", &format!("{builder:?}"));
    shows_no_key("TinkerTelemetryLayer", &format!("{layer:?}"));
    shows_no_key("TelemetryGuard", &format!("{guard:?}"));
    shows_no_key("TelemetryHandle", &format!("{handle:?}"));
    shows_no_key("Stats", &format!("{stats:?} {:?}", stats.dropped));
    let report = guard.shutdown();
    shows_no_key("ShutdownReport", &format!("{report:?}"));
    shows_no_key("Severity", &format!("{:?} {}", Severity::Critical, Severity::Critical));
    shows_no_key("ParseSeverityError", &format!("{0:?} {0}", "x".parse::<Severity>().unwrap_err()));

    // Every refusal, with the key set: message, Debug and source chain.
    let refusals = [
        builder.clone().max_queue_size(0),
        builder.clone().base_url("http://example.com"),
        builder.clone().base_url("ftp://127.0.0.1"),
        builder.clone().base_url(format!("https://user:{KEY}@example.com")),
        builder.clone().base_url(format!("https://example.com/?key={KEY}")),
        builder.clone().api_key(format!("{KEY} with a space")),
        builder.clone().max_batch_size(500),
    ];
    for refused in refusals {
        shows_no_key("Builder", &format!("{refused:?}"));
        let err = refused.build().unwrap_err();
        let mut chain = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        shows_no_key("BuildError", &chain);
    }

    // The key went only where it belongs: the X-API-Key header of each request.
    for request in server.seen() {
        let in_header = request.head.lines().filter(|l| l.contains(NEEDLE)).collect::<Vec<_>>();
        assert_eq!(in_header, [format!("x-api-key: {KEY}")], "{}", request.head);
        shows_no_key("a request body", &String::from_utf8_lossy(&request.raw));
    }
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    shows_no_key("the log", &logged);
    assert!(!logged.contains("tinker-telemetry"), "the uploader's threads logged: {logged}");
}

#[test]
fn secret_looking_fields_are_sent_redacted() {
    let server = RawServer::with_fn(|_| Raw::Accept);
    let (layer, guard) = server.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            session_id = SESSION,
            api_key = KEY,
            "X-Api-Key" = KEY,
            API_KEY = %KEY,
            token = ?KEY,
            access_token = "hunter2-token",
            password = "hunter2-password",
            db_password = 123456u64,
            secret = true,
            client_secret = "hunter2-secret",
            authorization = "Bearer hunter2-bearer",
            Authorization = "Basic aHVudGVyMg==",
            cookie = "session=hunter2-cookie",
            "Set-Cookie" = "id=hunter2-set-cookie",
            user = "alice",
            key = "not-secret",
            "secrets found"
        );
    });
    let nested = json!({
        "Api-Key": KEY,
        "headers": {"Authorization": "Bearer hunter2-nested", "accept": "json"},
        "attempts": [{"password": "hunter2-array"}, {"ok": 1}],
        "user": "bob",
    });
    assert!(handle.log("login", nested, Severity::Info));
    assert!(handle.wait_until_drained(PATIENCE));
    drop(guard);

    let events = server.accepted_events();
    let found = events.iter().find(|e| e["event_name"] == "secrets found").unwrap();
    let data = found["event_data"].as_object().unwrap();
    for name in [
        "api_key",
        "X-Api-Key",
        "API_KEY",
        "token",
        "access_token",
        "password",
        "db_password",
        "secret",
        "client_secret",
        "authorization",
        "Authorization",
        "cookie",
        "Set-Cookie",
    ] {
        assert_eq!(data[name], REDACTED, "{name} was sent as {}", data[name]);
    }
    assert_eq!(data["user"], "alice");
    assert_eq!(data["key"], "not-secret");
    let login = &events.iter().find(|e| e["event_name"] == "login").unwrap()["event_data"];
    assert_eq!(
        login,
        &json!({
            "Api-Key": REDACTED,
            "headers": {"Authorization": REDACTED, "accept": "json"},
            "attempts": [{"password": REDACTED}, {"ok": 1}],
            "user": "bob",
        })
    );
    for request in server.seen() {
        let body = String::from_utf8_lossy(&request.raw);
        shows_no_key("a request body", &body);
        assert!(!body.contains("hunter2"), "a secret value was sent: {body}");
    }
}

#[test]
fn the_redacted_list_is_configurable() {
    let server = RawServer::with_fn(|_| Raw::Accept);
    let (layer, guard) = server.builder(SESSION).redacted_fields(["SSN", "session-cookie"]).build().unwrap();
    let (open_layer, open_guard) =
        server.builder("no-redaction").redacted_fields(Vec::<String>::new()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer).with(open_layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            session_id = SESSION,
            user_ssn = "078-05-1120",
            my_session_cookie = "c",
            password = "p",
            "custom"
        );
        tracing::info!(session_id = "no-redaction", password = "p", "open");
    });
    drop(guard);
    drop(open_guard);
    let events = server.accepted_events();
    let custom = &events.iter().find(|e| e["event_name"] == "custom").unwrap()["event_data"];
    assert_eq!(custom, &json!({"user_ssn": REDACTED, "my_session_cookie": REDACTED, "password": "p"}));
    let open = &events.iter().find(|e| e["event_name"] == "open").unwrap()["event_data"];
    assert_eq!(open, &json!({"password": "p"}), "an empty list turns redaction off");
}

#[test]
fn the_key_is_never_sent_over_plain_http_to_a_host_that_is_not_loopback() {
    for url in [
        "http://example.com",
        "http://10.0.0.1:8080",
        "http://192.168.1.20/tinker",
        "http://[2001:db8::1]:80",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "HTTP://EXAMPLE.COM/",
    ] {
        let err = TinkerTelemetryLayer::builder()
            .session_id(SESSION)
            .api_key(KEY)
            .base_url(url)
            .enabled(true)
            .build()
            .expect_err(url);
        assert_eq!(err.option(), Some("base_url"), "{url}: {err}");
        assert!(err.to_string().contains("https"), "{url}: {err}");
        shows_no_key("BuildError", &format!("{err} {err:?}"));
    }
    // Loopback, by name or address, is fine: the key stays on this machine.
    let server = RawServer::with_fn(|_| Raw::Accept);
    let port = server.port();
    for base in [format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}/")] {
        let (_layer, guard) = TinkerTelemetryLayer::builder()
            .session_id(SESSION)
            .api_key(KEY)
            .base_url(base.as_str())
            .enabled(true)
            .build()
            .unwrap_or_else(|e| panic!("{base}: {e}"));
        let report = guard.shutdown();
        assert_eq!(report.stats.delivered, 2, "{base}: {report:?}");
    }
    for base in ["http://[::1]:9", "http://127.8.9.10:9"] {
        let built = TinkerTelemetryLayer::builder()
            .session_id(SESSION)
            .api_key(KEY)
            .base_url(base)
            .enabled(true)
            .flush_timeout(Duration::from_millis(50))
            .build();
        assert!(built.is_ok(), "{base} is loopback");
    }
    // Disabled, nothing is sent, so any URL will do.
    assert!(
        TinkerTelemetryLayer::builder()
            .session_id(SESSION)
            .base_url("http://example.com")
            .enabled(false)
            .build()
            .is_ok()
    );
}

#[test]
fn a_redirect_is_never_followed_with_the_key() {
    let elsewhere = RawServer::with_fn(|_| Raw::Accept);
    let location = format!("{}/api/v1/telemetry", elsewhere.uri());
    let redirect =
        format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
            .into_bytes();
    let server = RawServer::with_fn(move |_| Raw::WriteClose(redirect.clone()));
    let (_layer, guard) = server.builder(SESSION).api_key(KEY).build().unwrap();
    guard.handle().log("moved", json!({}), Severity::Info);
    let report = guard.shutdown();
    assert!(elsewhere.seen().is_empty(), "a redirect was followed");
    let sent: Vec<usize> = server.seen().iter().map(|r| r.events().len()).collect();
    assert_eq!(sent, [1, 2], "START, then the event with END; each once");
    let s = report.stats;
    assert_eq!((s.delivered, s.dropped.rejected, s.retries), (0, 3, 0), "{s:?}");
}

/// An error whose message quotes a URL with a token, as reqwest's errors do.
#[derive(Debug)]
struct Fetch {
    source: std::io::Error,
}

impl std::fmt::Display for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error sending request for url (https://api.example.com/v1/run?token=PLANTED-err)")
    }
}

impl std::error::Error for Fetch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[test]
fn urls_in_any_text_lose_their_query_and_credentials() {
    let server = RawServer::with_fn(|_| Raw::Accept);
    let (layer, guard) = server.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let url = "https://user:PLANTED-span@api.example.com/v1/a?token=PLANTED-span";
        let span = tracing::info_span!("http.request", session_id = SESSION, method = "GET", note = url);
        drop(span);
        tracing::warn!(
            session_id = SESSION,
            field = "see http://h.example/p?token=PLANTED-field",
            debug = ?Some("http://u:PLANTED-debug@h.example/"),
            "failed: http://h.example/x?token=PLANTED-message"
        );
        tracing::info!(session_id = SESSION, "GET https://h.example/?token=PLANTED-name");
    });
    handle.log("json", json!({"nested": ["http://h.example/q?token=PLANTED-json"]}), Severity::Info);
    let cause = std::io::Error::other("proxy at http://u:PLANTED-cause@proxy.example:3128 refused");
    handle.log_exception(&Fetch { source: cause }, Severity::Error);
    assert!(handle.wait_until_drained(PATIENCE));
    guard.shutdown();
    let sent: String = server.seen().iter().map(|s| String::from_utf8_lossy(&s.raw).into_owned()).collect();
    for place in ["span", "field", "debug", "message", "name", "json", "err", "cause"] {
        assert!(!sent.contains(&format!("PLANTED-{place}")), "the {place} token was sent: {sent}");
    }
    for kept in ["api.example.com/v1/a", "h.example/p", "api.example.com/v1/run", "proxy.example:3128"] {
        assert!(sent.contains(kept), "{kept} should remain: {sent}");
    }
}

// ---- Proxies ----

const PROXY_SESSION: &str = "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a";
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
        .session_id(PROXY_SESSION)
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

// ---- TLS ----

/// In the child: everything logged at TRACE (tracing, and `log` through tracing-log) on
/// stderr, debug lines on; a session to `TINKER_BASE_URL` whose certificate is refused; the
/// error, the counters and the report on stdout.
#[test]
fn child_refused_certificate() {
    if !is_child("child_refused_certificate") {
        return;
    }
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false))
        .init();
    let (_layer, guard) = TinkerTelemetryLayer::builder()
        .session_id(PROXY_SESSION)
        .debug(true)
        .max_retries(1)
        .retry_base_delay(Duration::from_millis(5))
        .flush_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let handle = guard.handle();
    handle.log("tls.refused", json!({}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let error = handle.last_delivery_error().unwrap();
    println!("CHILD error: {error} {error:?}");
    println!("CHILD handle: {handle:?} {:?}", handle.stats());
    println!("CHILD report: {:?}", guard.shutdown());
}

#[test]
fn a_refused_certificate_puts_the_key_nowhere() {
    let ca = TestCa::new("a CA the client does not know");
    let server = RawServer::tls(&ca, |_| Raw::Accept);
    let mut cmd = child("child_refused_certificate");
    cmd.env("TINKER_BASE_URL", server.uri()).env("TINKER_API_KEY", KEY);
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The test would prove nothing if the refusal were not described.
    assert!(stdout.contains("CHILD error: TLS: invalid peer certificate: UnknownIssuer"), "{stdout}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("tinker-telemetry: ") && l.contains("TLS: invalid peer certificate")),
        "{stderr}"
    );
    shows_no_key("the child's stdout", &stdout);
    shows_no_key("the child's stderr", &stderr);
    assert!(server.seen().is_empty(), "a request got past a refused handshake");
    assert!(server.connections() > 0, "no handshake was tried");
}
