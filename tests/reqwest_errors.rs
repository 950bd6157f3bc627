//! User-error classification of real reqwest errors, one cargo feature per reqwest version: a
//! 404 from a server on 127.0.0.1, made a `reqwest::Error` by `error_for_status`, is a user
//! error bare, through anyhow's context, as a `Box<dyn Error>` and as the `source()` of an
//! application's error, and arrives as a `user_error` event with `status_code` 404. reqwest
//! 0.13 with the default `reqwest-0-13` feature; reqwest 0.12 with `--features reqwest-0-12`
//! (CI runs this binary with it too), and without that feature a 0.12 error is no user error.

mod support;

use std::error::Error;
use std::fmt;

use serde_json::Value;
use support::{Raw, RawServer};
use tinker_telemetry::{Severity, is_user_error};

const SESSION: &str = "reqwest-errors-session";

/// An application's error whose cause is the HTTP failure.
#[derive(Debug)]
struct TrainingStep {
    source: Box<dyn Error + Send + Sync>,
}

impl fmt::Display for TrainingStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the training step failed")
    }
}

impl Error for TrainingStep {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// Runs `request` on a runtime of its own.
fn block_on<F: std::future::Future>(request: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(request)
}

/// Checks errors made by `fetch` (a fresh one per call) through every wrapper: the rule, and
/// the event each wrapper becomes on the wire.
fn check<E: Error + Send + Sync + 'static>(fetch: impl Fn() -> E, user_error: bool) {
    let bare = fetch();
    assert_eq!(is_user_error(&bare), user_error, "bare: {bare:?}");
    let with_context = anyhow::Error::new(fetch()).context("posting the batch").context("training step 3");
    assert_eq!(is_user_error(&*with_context), user_error, "anyhow: {with_context:?}");
    let boxed: Box<dyn Error + Send + Sync> = Box::new(fetch());
    assert_eq!(is_user_error(&*boxed), user_error, "boxed: {boxed:?}");
    let chained = TrainingStep { source: Box::new(fetch()) };
    assert_eq!(is_user_error(&chained), user_error, "source chain: {chained:?}");

    let collector = support::Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    assert!(handle.log_exception(&with_context, Severity::Error));
    assert!(handle.log_exception(&boxed, Severity::Error));
    assert!(handle.log_exception(&chained, Severity::Error));
    drop(guard);
    let events: Vec<Value> = collector
        .accepted_by_index()
        .into_iter()
        .filter(|e| e["event"] != "SESSION_START" && e["event"] != "SESSION_END")
        .collect();
    assert_eq!(events.len(), 3, "{events:#?}");
    for (event, error_type) in events.iter().zip(["reqwest::Error", "reqwest::Error", "TrainingStep"]) {
        if user_error {
            assert_eq!(event["event_name"], "user_error", "{event:#}");
            assert_eq!(event["severity"], "WARNING", "{event:#}");
            assert_eq!(event["event_data"]["status_code"], 404, "{event:#}");
            assert_eq!(event["event_data"]["error_type"], error_type, "{event:#}");
        } else {
            assert_eq!(event["event"], "UNHANDLED_EXCEPTION", "{event:#}");
        }
    }
}

#[test]
fn reqwest_0_13_errors_are_user_errors_through_every_wrapper() {
    let server = RawServer::with_fn(|_| Raw::Status(404));
    let url = format!("{}/api/v1/models/missing", server.uri());
    let fetch = || {
        block_on(async {
            let response = reqwest::Client::new().post(&url).send().await.unwrap();
            response.error_for_status().unwrap_err()
        })
    };
    assert_eq!(fetch().status().map(|s| s.as_u16()), Some(404));
    check(fetch, true);
}

#[test]
fn reqwest_0_12_errors_are_user_errors_with_their_feature() {
    let server = RawServer::with_fn(|_| Raw::Status(404));
    let url = format!("{}/api/v1/models/missing", server.uri());
    let fetch = || {
        block_on(async {
            let response = reqwest_012::Client::new().post(&url).send().await.unwrap();
            response.error_for_status().unwrap_err()
        })
    };
    assert_eq!(fetch().status().map(|s| s.as_u16()), Some(404));
    // Without the feature the crate does not know reqwest 0.12's error type.
    check(fetch, cfg!(feature = "reqwest-0-12"));
}
