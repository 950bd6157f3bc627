//! TLS to an `https://` endpoint on 127.0.0.1 whose certificate comes from an authority made
//! for the test (rcgen) and a rustls server. Without that root, every attempt fails, is
//! retried, and is counted as dropped, in bounded time; with it, added through
//! `Builder::root_certificate`, the session arrives whole. A handshake that stalls is cut by
//! `http_timeout`, and the guard's drop stays within `flush_timeout`. `build()` refuses a PEM
//! that is not a certificate by naming the option, never by quoting it. Which store is
//! trusted besides: the bundled Mozilla roots only, or with `platform-roots` the platform's
//! too (read here from `SSL_CERT_FILE`, in a child process).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::child::{child, is_child, run_ok};
use support::tls::{Stall, TestCa};
use support::{API_KEY, PATIENCE, Raw, RawServer, assert_well_formed, eventually, test_builder};
use tinker_telemetry::{DeliveryErrorKind, Severity};
use tracing_subscriber::prelude::*;

const SESSION: &str = "7d3f9a1c-2e4b-4c6d-8f0a-1b2c3d4e5f60";

/// What the guard's drop may add to `flush_timeout` (the crate docs' bookkeeping allowance),
/// plus scheduling slack for a loaded machine.
const DROP_ALLOWANCE: Duration = Duration::from_millis(200 + 300);

#[test]
fn with_the_added_root_the_session_arrives_whole() {
    let ca = TestCa::new("tinker-telemetry test CA");
    let unrelated = TestCa::new("an unrelated CA");
    let server = RawServer::tls(&ca, |_| Raw::Accept);
    assert!(server.uri().starts_with("https://127.0.0.1:"));
    let (layer, guard) = server
        .builder(SESSION)
        // Called twice: each call adds its roots.
        .root_certificate(unrelated.pem.clone())
        .root_certificate(ca.pem.as_bytes())
        .build()
        .unwrap();
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(session_id = SESSION, step = 1u64, "over tls");
    });
    handle.log("tls.log", json!({"encrypted": true}), Severity::Info);
    assert!(handle.wait_until_drained(PATIENCE));
    let report = guard.shutdown();
    let s = report.stats;
    assert_eq!((s.accepted, s.delivered, s.dropped.total(), s.retries), (4, 4, 0, 0), "{s:?}");
    assert_eq!(handle.last_delivery_error(), None);

    // Every body was validated against the request schema by the server (`seen` panics if not).
    let seen = server.seen();
    for request in &seen {
        assert_eq!(request.header("x-api-key"), Some(API_KEY));
    }
    let events = server.accepted_events();
    assert_well_formed(&events);
    let names: Vec<&str> =
        events.iter().map(|e| e["event_name"].as_str().or(e["event"].as_str()).unwrap()).collect();
    assert_eq!(names, ["SESSION_START", "over tls", "tls.log", "SESSION_END"]);
    assert_eq!(events[1]["event_data"], json!({"step": 1}));
    assert_eq!(events[2]["event_data"], json!({"encrypted": true}));
}

#[test]
fn without_its_root_every_attempt_fails_and_is_counted_in_bounded_time() {
    let ca = TestCa::new("tinker-telemetry test CA");
    let server = RawServer::tls(&ca, |_| Raw::Accept);
    let flush_timeout = Duration::from_secs(5);
    // A root, but not the one that issued the server's certificate.
    let (_layer, guard) = server
        .builder(SESSION)
        .root_certificate(TestCa::new("an unrelated CA").pem)
        .max_retries(2)
        .flush_timeout(flush_timeout)
        .build()
        .unwrap();
    let handle = guard.handle();
    eventually("SESSION_START to run out of retries", || handle.stats().dropped.retries_exhausted == 1);
    let error = handle.last_delivery_error().expect("the refusal is recorded");
    assert_eq!(error.kind, DeliveryErrorKind::Tls, "{error:?}");
    assert!(error.message.contains("UnknownIssuer"), "{}", error.message);
    handle.log("never.arrives", json!({}), Severity::Info);
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    let s = report.stats;
    assert_eq!(s.delivered, 0, "{s:?}");
    assert_eq!(s.dropped.retries_exhausted, s.accepted, "every event dropped after its retries: {s:?}");
    assert_eq!(s.dropped.total(), s.accepted, "{s:?}");
    assert!(s.retries >= 4, "START, then the rest, each retried twice: {s:?}");
    assert!(took < flush_timeout + DROP_ALLOWANCE, "the shutdown took {took:?}");
    assert!(server.seen().is_empty(), "a request got past a refused handshake");
    assert!(server.connections() as u64 > s.retries, "one handshake per attempt: {s:?}");
}

#[test]
fn a_stalled_handshake_is_cut_by_http_timeout_and_counted() {
    let stall = Stall::start();
    let http_timeout = Duration::from_millis(500);
    let flush_timeout = Duration::from_secs(3);
    let (_layer, guard) = test_builder(&stall.uri(), SESSION)
        .http_timeout(http_timeout)
        .max_retries(0)
        .flush_timeout(flush_timeout)
        .build()
        .unwrap();
    let handle = guard.handle();
    // SESSION_START's only attempt: the ClientHello arrives and nothing answers it.
    let hello = stall.wait_hellos(1);
    eventually("SESSION_START to fail", || handle.stats().dropped.total() == 1);
    let failed_after = hello.elapsed();
    eprintln!(
        "a stalled handshake failed {failed_after:?} after its ClientHello (http_timeout {http_timeout:?})"
    );
    // The ClientHello leaves a little after the attempt starts, so the failure comes a little
    // less than http_timeout after it: well after it (the client waited), and not much later.
    assert!(
        failed_after >= http_timeout / 2 && failed_after < http_timeout + Duration::from_secs(1),
        "failed {failed_after:?} after the ClientHello, http_timeout is {http_timeout:?}"
    );
    let error = handle.last_delivery_error().expect("the timeout is recorded");
    assert_eq!(error.kind, DeliveryErrorKind::Timeout, "{error:?}");

    handle.log("stalled", json!({}), Severity::Info);
    let started = Instant::now();
    let report = guard.shutdown();
    let took = started.elapsed();
    let s = report.stats;
    assert!(took < flush_timeout + DROP_ALLOWANCE, "the guard's drop took {took:?}");
    assert_eq!(
        (s.delivered, s.dropped.retries_exhausted, s.dropped.total()),
        (0, s.accepted, s.accepted),
        "{s:?}"
    );
    for hello in stall.received() {
        // A TLS handshake record, never plain HTTP, and nothing of the key.
        assert_eq!(hello.first(), Some(&0x16), "not a TLS handshake: {hello:?}");
        assert!(!hello.windows(API_KEY.len()).any(|w| w == API_KEY.as_bytes()));
    }
}

#[test]
fn the_guard_s_drop_cuts_a_stalled_handshake_at_flush_timeout() {
    let stall = Stall::start();
    let flush_timeout = Duration::from_millis(800);
    // Each attempt could stall for 10 s; the drain must not.
    let (_layer, guard) = test_builder(&stall.uri(), SESSION)
        .http_timeout(Duration::from_secs(10))
        .flush_timeout(flush_timeout)
        .build()
        .unwrap();
    let handle = guard.handle();
    stall.wait_hellos(1);
    handle.log("stalled", json!({}), Severity::Info);
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    assert!(took < flush_timeout + DROP_ALLOWANCE, "the guard's drop took {took:?}");
    let s = handle.stats();
    assert_eq!(s.delivered, 0, "{s:?}");
    assert_eq!(s.dropped.unsent_at_shutdown, s.accepted, "cut at the deadline and counted: {s:?}");
}

#[test]
fn a_pem_that_is_not_a_certificate_is_refused_by_name_and_never_quoted() {
    let ca = TestCa::new("tinker-telemetry test CA");
    let key = "-----BEGIN PRIVATE KEY-----\nU0VDUkVULXBsYW50ZWQ=\n-----END PRIVATE KEY-----\n";
    let garbled = ca.pem.replace('M', "!");
    let cases = [
        (key.to_owned(), "PEM 2 of 2 holds no `BEGIN CERTIFICATE` section"),
        ("SECRET-planted".to_owned(), "PEM 2 of 2 holds no `BEGIN CERTIFICATE` section"),
        (garbled, "PEM 2 of 2 is not valid PEM (a section's base64 does not decode)"),
        (
            "-----BEGIN CERTIFICATE-----\nU0VDUkVULXBsYW50ZWQ=\n-----END CERTIFICATE-----\n".to_owned(),
            "PEM 2 of 2 holds a certificate (number 1) that does not parse as X.509",
        ),
    ];
    for (pem, reason) in cases {
        let builder = test_builder("https://127.0.0.1:9", SESSION)
            .root_certificate(ca.pem.clone())
            .root_certificate(pem);
        let shown_builder = format!("{builder:?}");
        assert!(shown_builder.contains("root_certificates: 2"), "{shown_builder}");
        let err = builder.build().unwrap_err();
        assert_eq!(err.option(), Some("root_certificate"));
        assert_eq!(err.to_string(), format!("invalid option `root_certificate`: {reason}"));
        let shown = format!("{err} {err:?} {shown_builder}");
        for needle in ["SECRET", "U0VDUkVU", "BEGIN PRIVATE", "MII"] {
            assert!(!shown.contains(needle), "{needle} shown: {shown}");
        }
    }
}

// ---- Which store is trusted besides the added roots ----

/// In the child: a session to `TINKER_BASE_URL` with no root added; prints the counters.
#[test]
fn child_session_without_added_roots() {
    if !is_child("child_session_without_added_roots") {
        return;
    }
    let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
        .session_id(SESSION)
        .max_retries(0)
        .flush_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    guard.handle().log("store.test", json!({}), Severity::Info);
    let report = guard.shutdown();
    println!("CHILD delivered={} dropped={}", report.stats.delivered, report.stats.dropped.total());
}

/// The platform's store as the test can set it: rustls-native-certs reads `SSL_CERT_FILE` on
/// Linux. With `platform-roots` the test authority found there is trusted; without it only
/// the bundled Mozilla roots (and added ones) are, whatever the platform says.
#[test]
fn the_platform_store_is_trusted_only_with_platform_roots() {
    let ca = TestCa::new("a CA only the platform store knows");
    let server = RawServer::tls(&ca, |_| Raw::Accept);
    let dir = std::env::temp_dir().join(format!("tinker-telemetry-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let mut cmd = child("child_session_without_added_roots");
    cmd.env("TINKER_BASE_URL", server.uri())
        .env("TINKER_API_KEY", API_KEY)
        .env("SSL_CERT_FILE", &bundle)
        .env_remove("SSL_CERT_DIR");
    let out = run_ok(&mut cmd);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if cfg!(feature = "platform-roots") {
        assert!(stdout.contains("CHILD delivered=3 dropped=0"), "{stdout}");
        assert_eq!(server.seen().len(), 2, "START, then the event with END");
    } else {
        assert!(stdout.contains("CHILD delivered=0 dropped="), "{stdout}");
        assert!(server.seen().is_empty(), "the platform store was trusted without platform-roots");
        assert!(server.connections() > 0, "no handshake was tried");
    }
}
