//! Exceptions: error events, user-error classification, the fatal path, capture helpers and
//! errors recorded through tracing, over real HTTP.

mod support;

use std::error::Error;
use std::fmt;

use serde_json::{Value, json};
use support::{Collector, PATIENCE};
use tinker_telemetry::{CaptureExt, HttpError, Severity, is_user_error};
use tracing_subscriber::prelude::*;

const SESSION: &str = "exceptions-session";

/// An error with a message and an optional cause, to build chains.
#[derive(Debug)]
struct Wrapped {
    message: &'static str,
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl Error for Wrapped {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// `depth` wrappers around `inner`.
fn nested(inner: impl Error + Send + Sync + 'static, depth: usize) -> Wrapped {
    let mut err = Wrapped { message: "level 1", source: Some(Box::new(inner)) };
    for _ in 1..depth {
        err = Wrapped { message: "outer level", source: Some(Box::new(err)) };
    }
    err
}

/// Logs each error with `log_exception`; returns the non-session events that arrived.
fn logged(errors: Vec<Box<dyn Error + Send + Sync>>) -> Vec<Value> {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    for err in &errors {
        assert!(handle.log_exception(&**err, Severity::Error));
    }
    drop(guard);
    collector
        .accepted_by_index()
        .into_iter()
        .filter(|e| e["event"] == "UNHANDLED_EXCEPTION" || e["event"] == "GENERIC_EVENT")
        .collect()
}

#[test]
fn the_reference_scenarios_classify_as_the_contract_says() {
    let events = logged(vec![
        Box::new(HttpError::new(400, "bad request").with_body(r#"{"detail":"bad lr"}"#)),
        Box::new(HttpError::new(408, "request timeout")),
        Box::new(HttpError::new(429, "too many requests")),
        Box::new(Wrapped {
            message: "create failed",
            source: Some(Box::new(HttpError::new(409, "conflict"))),
        }),
        Box::new(nested(HttpError::new(500, "server error"), 3)),
        Box::new(nested(HttpError::new(400, "deep bad request"), 4)),
    ]);
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["event"], "GENERIC_EVENT");
    assert_eq!(events[0]["event_name"], "user_error");
    assert_eq!(events[0]["severity"], "WARNING");
    assert_eq!(
        events[0]["event_data"],
        json!({"error_type": "HttpError", "message": "HTTP 400: bad request", "status_code": 400, "body": "{\"detail\":\"bad lr\"}"})
    );
    for (i, status) in [(1, "408"), (2, "429")] {
        assert_eq!(events[i]["event"], "UNHANDLED_EXCEPTION", "{status}");
        assert_eq!(events[i]["error_type"], "HttpError");
        assert_eq!(events[i]["severity"], "ERROR");
    }
    assert_eq!(events[3]["event_name"], "user_error");
    assert_eq!(events[3]["event_data"]["status_code"], 409);
    assert_eq!(events[3]["event_data"]["error_type"], "Wrapped");
    assert_eq!(events[3]["event_data"]["message"], "create failed");
    assert_eq!(events[4]["event"], "UNHANDLED_EXCEPTION", "a 500 three causes deep is not a user error");
    let traceback = events[4]["traceback"].as_str().unwrap();
    assert_eq!(traceback.lines().filter(|l| l.starts_with("Caused by: ")).count(), 3, "{traceback}");
    assert!(traceback.contains("Caused by: HttpError: HTTP 500: server error"), "{traceback}");
    assert_eq!(events[5]["event_name"], "user_error", "a 400 four causes deep is a user error");
    assert_eq!(events[5]["event_data"]["status_code"], 400);
}

#[test]
fn exception_events_name_the_type_and_carry_the_message() {
    let err = "12x".parse::<u32>().unwrap_err();
    let collector = Collector::start();
    let (_layer, guard) = collector.builder(SESSION).build().unwrap();
    guard.handle().log_exception(&err, Severity::Critical);
    drop(guard);
    let event =
        collector.accepted_by_index().into_iter().find(|e| e["event"] == "UNHANDLED_EXCEPTION").unwrap();
    assert_eq!(event["error_type"], "ParseIntError");
    assert_eq!(event["error_message"], err.to_string());
    assert_eq!(event["severity"], "CRITICAL");
}

#[test]
fn anyhow_chains_and_reqwest_errors_are_classified() {
    let deep = anyhow::Error::new(HttpError::new(404, "no such model"))
        .context("loading the model")
        .context("starting");
    assert!(is_user_error(&*deep));
    let server = anyhow::Error::new(HttpError::new(503, "busy")).context("calling the API");
    assert!(!is_user_error(&*server));

    // A real reqwest error from a real 404.
    let collector = Collector::with_plan(vec![support::Reply::Status(404)]);
    let url = format!("{}/api/v1/telemetry", collector.uri());
    let err = collector.block_on(async {
        reqwest::Client::new().post(url).send().await.unwrap().error_for_status().unwrap_err()
    });
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert!(is_user_error(&err));
    assert!(is_user_error(&*anyhow::Error::new(err).context("posting")));
}

#[test]
fn registered_status_types_and_custom_rules() {
    #[derive(Debug)]
    struct ApiError(u16);
    impl fmt::Display for ApiError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "api said {}", self.0)
        }
    }
    impl Error for ApiError {}
    impl tinker_telemetry::HttpStatusError for ApiError {
        fn status_code(&self) -> Option<u16> {
            Some(self.0)
        }
        fn response_body(&self) -> Option<&str> {
            Some("from the api")
        }
    }
    let collector = Collector::start();
    let (_layer, guard) = collector
        .builder(SESSION)
        .status_error::<ApiError>()
        .user_error_classifier(|e| e.to_string().contains("quota").then_some(true))
        .build()
        .unwrap();
    let handle = guard.handle();
    handle.log_exception(&nested(ApiError(403), 2), Severity::Error);
    handle.log_exception(&std::io::Error::other("quota exceeded"), Severity::Error);
    handle.log_exception(&ApiError(502), Severity::Error);
    drop(guard);
    let events: Vec<Value> = collector
        .accepted_by_index()
        .into_iter()
        .filter(|e| e["event_session_index"] != 0 && e["event"] != "SESSION_END")
        .collect();
    assert_eq!(
        events[0]["event_data"],
        json!({"error_type": "Wrapped", "message": "outer level", "status_code": 403, "body": "from the api"})
    );
    assert_eq!(events[1]["event_name"], "user_error");
    assert_eq!(events[1]["event_data"]["status_code"], Value::Null);
    assert_eq!(events[2]["event"], "UNHANDLED_EXCEPTION");
    assert_eq!(events[2]["error_type"], "ApiError");
}

#[test]
fn the_fatal_path_delivers_the_exception_then_session_end_before_returning() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    assert!(handle.log_fatal_exception(&std::io::Error::other("disk gone"), Severity::Critical));
    // Delivered before the call returned: no flush, no drop needed.
    let events = collector.accepted_by_index();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]);
    assert_eq!(events[1]["error_type"], "io::Error");
    // A second fatal error does not end the session again.
    assert!(!handle.log_fatal_exception(&std::io::Error::other("still gone"), Severity::Critical));
    drop(guard);
    let ends = collector.accepted_events().iter().filter(|e| e["event"] == "SESSION_END").count();
    assert_eq!(ends, 1);
    assert_eq!(
        handle.stats().dropped.after_shutdown,
        1,
        "the second error is counted, not sent after the end"
    );
}

#[test]
fn the_async_fatal_path_awaits_the_drain_on_a_current_thread_runtime() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let delivered = rt.block_on(async {
        let err = HttpError::new(500, "boom");
        async { Err::<(), _>(err) }.capture_fatal(&handle).await.unwrap_err();
        handle.stats().delivered
    });
    assert_eq!(delivered, 3, "START, the exception and END were delivered when the future completed");
    drop(guard);
    assert_eq!(collector.names(), ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]);
}

#[test]
fn capture_helpers_return_what_they_were_given() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    assert_eq!(handle.capture(|| Ok::<_, std::num::ParseIntError>(5)), Ok(5));
    let err = handle.capture(|| "x".parse::<u8>()).unwrap_err();
    assert_eq!(err, "x".parse::<u8>().unwrap_err(), "the original error comes back");
    let err = handle
        .capture_with_severity(Severity::Warning, || Err::<(), _>(std::io::Error::other("w")))
        .unwrap_err();
    assert_eq!(err.to_string(), "w");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let out = rt.block_on(handle.capture_async(async {
        tokio::task::yield_now().await;
        Err::<u8, _>(HttpError::new(503, "later"))
    }));
    assert_eq!(out.unwrap_err().status(), 503);
    assert_eq!(rt.block_on(async { Ok::<_, HttpError>("fine") }.capture(&handle)).unwrap(), "fine");
    drop(guard);
    let events: Vec<Value> =
        collector.accepted_by_index().into_iter().filter(|e| e["event"] == "UNHANDLED_EXCEPTION").collect();
    let severities: Vec<&str> = events.iter().map(|e| e["severity"].as_str().unwrap()).collect();
    assert_eq!(severities, ["ERROR", "WARNING", "ERROR"]);
    assert_eq!(events[0]["error_type"], "ParseIntError");
    assert_eq!(events[2]["error_type"], "HttpError");
}

#[test]
fn a_panic_inside_capture_is_reported_and_resumed() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handle.capture(|| -> Result<(), std::io::Error> { panic!("inside capture") })
    }));
    let payload = unwound.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside capture"), "the original panic is resumed");
    // Delivered before the unwind went on, and the session is still open.
    let events = collector.accepted_by_index();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SESSION_START", "UNHANDLED_EXCEPTION"]);
    assert_eq!(events[1]["error_type"], "panic");
    assert_eq!(events[1]["error_message"], "inside capture");
    assert_eq!(events[1]["severity"], "CRITICAL");
    assert!(handle.log("after.panic", json!({}), Severity::Info), "a caught panic does not end the session");
    drop(guard);
    assert_eq!(collector.names(), ["SESSION_START", "UNHANDLED_EXCEPTION", "after.panic", "SESSION_END"]);
    assert_eq!(handle.stats().dropped.after_shutdown, 0);
}

#[test]
fn errors_recorded_through_tracing_become_exceptions_or_user_errors() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("s", session_id = SESSION).in_scope(|| {
            let failure = nested(HttpError::new(502, "bad gateway"), 2);
            tracing::error!(error = &failure as &dyn Error, "sampling failed");
            let mistake = nested(HttpError::new(422, "bad params").with_body("lr must be > 0"), 1);
            tracing::warn!(error = &mistake as &dyn Error, "request refused");
        });
    });
    drop(guard);
    let events: Vec<Value> = collector
        .accepted_by_index()
        .into_iter()
        .filter(|e| e["event_session_index"] != 0 && e["event"] != "SESSION_END")
        .collect();
    assert_eq!(events[0]["event"], "UNHANDLED_EXCEPTION");
    assert_eq!(events[0]["error_type"], "Wrapped");
    assert_eq!(events[0]["error_message"], "outer level");
    assert_eq!(events[0]["severity"], "ERROR");
    let traceback = events[0]["traceback"].as_str().unwrap();
    assert!(traceback.starts_with("While: sampling failed"), "{traceback}");
    assert!(
        traceback.contains("Caused by: Wrapped: level 1\nCaused by: HttpError: HTTP 502: bad gateway"),
        "{traceback}"
    );
    assert_eq!(events[1]["event_name"], "user_error");
    assert_eq!(events[1]["event_data"]["status_code"], 422);
    assert_eq!(events[1]["event_data"]["body"], "lr must be > 0");
}

#[test]
fn disabled_helpers_are_transparent_and_send_nothing() {
    let collector = Collector::start();
    let (_layer, guard) = collector.builder(SESSION).enabled(false).build().unwrap();
    let handle = guard.handle();
    assert!(!handle.log_exception(&HttpError::new(500, "x"), Severity::Error));
    assert!(!handle.log_fatal_exception(&HttpError::new(500, "x"), Severity::Error));
    assert!(!handle.install_panic_hook());
    assert_eq!(handle.capture(|| "7".parse::<u8>()), Ok(7));
    assert!(handle.capture_fatal(|| "x".parse::<u8>()).is_err());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(async { Ok::<_, HttpError>(1) }.capture(&handle)).unwrap(), 1);
    assert!(!rt.block_on(handle.log_fatal_exception_async(&HttpError::new(500, "x"), Severity::Error)));
    drop(guard);
    assert!(collector.seen().is_empty());
    let _ = PATIENCE;
}

#[test]
fn the_blocking_fatal_path_inside_a_current_thread_runtime_does_not_deadlock() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let drained =
        rt.block_on(async { handle.log_fatal_exception(&HttpError::new(500, "x"), Severity::Error) });
    assert!(drained);
    assert_eq!(collector.names(), ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]);
    drop(guard);
}

#[test]
fn log_exception_sends_before_the_interval() {
    let collector = Collector::start();
    let (_layer, guard) = collector.builder(SESSION).build().unwrap();
    collector.wait_requests(1);
    guard.handle().log_exception(&HttpError::new(500, "now"), Severity::Error);
    // The interval is an hour and nothing else flushes: only log_exception's own request.
    let seen = collector.wait_requests(2);
    assert_eq!(seen[1].events()[0]["event"], "UNHANDLED_EXCEPTION");
    drop(guard);
}

#[test]
fn a_panic_inside_capture_async_is_reported_and_resumed() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(handle.capture_async(async {
            tokio::task::yield_now().await;
            if true {
                panic!("inside an async capture");
            }
            Ok::<(), HttpError>(())
        }))
    }));
    assert_eq!(unwound.unwrap_err().downcast_ref::<&str>(), Some(&"inside an async capture"));
    // Resumed only once delivered; the session stays open.
    let events = collector.accepted_by_index();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["error_message"], "inside an async capture");
    assert!(handle.log("after.panic", json!({}), Severity::Info));
    drop(guard);
    assert_eq!(collector.names(), ["SESSION_START", "UNHANDLED_EXCEPTION", "after.panic", "SESSION_END"]);
}

#[test]
fn a_fatal_error_is_not_lost_to_a_full_queue() {
    let gate = support::Gate::default();
    let collector = Collector::with_plan(vec![support::Reply::Held(gate.clone())]);
    let (_layer, guard) =
        collector.builder(SESSION).max_queue_size(5).max_batch_size(5).flush_threshold(5).build().unwrap();
    let handle = guard.handle();
    // SESSION_START is held in flight; four events fill the queue of five.
    collector.wait_requests(1);
    for i in 0..10 {
        handle.log("filler", json!({ "i": i }), Severity::Info);
    }
    assert_eq!(handle.stats().dropped.queue_full, 6);
    let waiter = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            handle.log_fatal_exception(&HttpError::new(500, "the end"), Severity::Critical)
        })
    };
    gate.open();
    assert!(waiter.join().unwrap());
    let kinds: Vec<String> =
        collector.accepted_by_index().iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "UNHANDLED_EXCEPTION").count(), 1, "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("SESSION_END"));
    drop(guard);
}

/// The events the collector accepted that are errors: exceptions and `user_error`s.
fn error_events(collector: &Collector) -> Vec<Value> {
    collector
        .accepted_by_index()
        .into_iter()
        .filter(|e| e["event"] == "UNHANDLED_EXCEPTION" || e["event_name"] == "user_error")
        .collect()
}

#[test]
fn errors_as_applications_carry_them_go_through_every_helper() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

    // anyhow, with context over a real cause: the chain and the root's type are reported.
    let out: anyhow::Result<()> = handle.capture(|| {
        let parsed: u8 = "12x".parse().map_err(anyhow::Error::from)?;
        let _ = parsed;
        Ok(())
    });
    assert!(out.is_err());
    let out = handle.capture(|| -> anyhow::Result<()> {
        Err(anyhow::Error::new(std::io::Error::other("disk gone")).context("saving checkpoint 7"))
    });
    assert!(out.is_err());
    let out = runtime.block_on(handle.capture_async(async {
        Err::<(), _>(anyhow::Error::new(HttpError::new(404, "no such model")).context("loading"))
    }));
    assert!(out.is_err());
    let out = runtime.block_on(async { Err::<(), anyhow::Error>(anyhow::anyhow!("plain")) }.capture(&handle));
    assert!(out.is_err());
    handle.log_exception(&anyhow::anyhow!("logged directly"), Severity::Warning);

    // Boxed trait objects, with and without Send + Sync.
    let boxed: Result<(), Box<dyn Error + Send + Sync>> = handle
        .capture(|| Err(Box::new(HttpError::new(422, "bad learning rate")) as Box<dyn Error + Send + Sync>));
    assert!(boxed.is_err());
    let local: Box<dyn Error> = Box::new(std::io::Error::other("local"));
    handle.log_exception(&local, Severity::Error);
    assert!(handle.wait_until_drained(PATIENCE));
    drop(guard);

    let events = error_events(&collector);
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let kind =
                e["error_type"].as_str().or(e["event_data"]["error_type"].as_str()).unwrap_or("?").to_owned();
            let message =
                e["error_message"].as_str().or(e["event_data"]["message"].as_str()).unwrap_or("?").to_owned();
            (kind, message)
        })
        .collect();
    let want = [
        ("ParseIntError", "invalid digit found in string"),
        ("io::Error", "saving checkpoint 7"),
        ("HttpError", "loading"),
        ("Error", "plain"),
        ("Error", "logged directly"),
        ("HttpError", "HTTP 422: bad learning rate"),
        ("io::Error", "local"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(k, m)| ((*k).to_owned(), (*m).to_owned())).collect();
    assert_eq!(summary, want, "{events:#?}");
    // The context's cause is in the traceback; the 404 and the 422 are user errors.
    assert!(events[1]["traceback"].as_str().unwrap().contains("disk gone"), "{:#}", events[1]);
    assert_eq!(events[2]["event_name"], "user_error");
    assert_eq!(events[2]["event_data"]["status_code"], 404);
    assert_eq!(events[5]["event_data"]["status_code"], 422);
}

#[cfg(feature = "eyre")]
#[test]
fn eyre_reports_go_through_the_helpers_with_the_eyre_feature() {
    use eyre::WrapErr as _;
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    let out = handle.capture(|| -> eyre::Result<()> {
        Err(HttpError::new(404, "no such model")).wrap_err("loading")?;
        Ok(())
    });
    assert!(out.is_err());
    handle.log_exception(&eyre::eyre!("plain"), Severity::Error);
    assert!(handle.wait_until_drained(PATIENCE));
    drop(guard);
    let events = error_events(&collector);
    assert_eq!(events[0]["event_name"], "user_error");
    assert_eq!(events[0]["event_data"]["status_code"], 404);
    assert_eq!(events[1]["error_message"], "plain");
}

#[test]
fn a_status_read_by_a_closure_classifies_a_foreign_error_type() {
    let collector = Collector::start();
    let (_layer, guard) = collector
        .builder(SESSION)
        .status_error_with(|err| {
            err.downcast_ref::<std::io::Error>()
                .filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
                .map(|_| 403)
        })
        .build()
        .unwrap();
    let handle = guard.handle();
    let denied =
        anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)).context("uploading");
    handle.log_exception(&denied, Severity::Error);
    handle.log_exception(&std::io::Error::other("disk"), Severity::Error);
    assert!(handle.wait_until_drained(PATIENCE));
    drop(guard);
    let events = error_events(&collector);
    assert_eq!(events[0]["event_name"], "user_error");
    assert_eq!(events[0]["event_data"]["status_code"], 403);
    assert_eq!(events[1]["event"], "UNHANDLED_EXCEPTION", "another io::Error is not a user error");
}

/// How many UNHANDLED_EXCEPTIONs `session` received.
fn panics_reported(collector: &Collector, session: &str) -> usize {
    collector.session_events(session).iter().filter(|e| e["event"] == "UNHANDLED_EXCEPTION").count()
}

#[test]
fn nested_capture_helpers_report_one_panic_once() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter("nested");
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handle.capture(|| handle.capture(|| -> Result<(), HttpError> { panic!("one panic") }))
    }));
    assert_eq!(unwound.unwrap_err().downcast_ref::<&str>(), Some(&"one panic"));
    // A second, distinct panic caught by the outer helper alone is reported too.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handle.capture(|| -> Result<(), HttpError> { panic!("another panic") })
    }));
    assert!(unwound.is_err());
    drop(guard);
    assert_eq!(panics_reported(&collector, "nested"), 2, "{:?}", collector.session_events("nested"));
}

#[test]
fn nested_capture_futures_report_one_panic_once() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter("nested-async");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let inner = async {
            tokio::task::yield_now().await;
            if true {
                panic!("one panic");
            }
            Ok::<(), HttpError>(())
        };
        rt.block_on(async { inner.capture(&handle).await }.capture(&handle))
    }));
    assert_eq!(unwound.unwrap_err().downcast_ref::<&str>(), Some(&"one panic"));
    drop(guard);
    assert_eq!(
        panics_reported(&collector, "nested-async"),
        1,
        "{:?}",
        collector.session_events("nested-async")
    );
}

/// An error whose `Display` fails after writing a little.
#[derive(Debug)]
struct FailingDisplay;

impl fmt::Display for FailingDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half a message")?;
        Err(fmt::Error)
    }
}

impl Error for FailingDisplay {}

/// An error type whose name is not ASCII.
#[derive(Debug)]
struct Größe;

impl fmt::Display for Größe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too big")
    }
}

impl Error for Größe {}

#[test]
fn an_error_whose_display_fails_is_reported_with_what_it_wrote() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    assert!(handle.log_exception(&FailingDisplay, Severity::Error));
    assert!(handle.log_exception(&Größe, Severity::Error));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::error!(session_id = SESSION, error = &FailingDisplay as &dyn Error, "through tracing");
    });
    drop(guard);
    let events = error_events(&collector);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["error_message"], "half a message");
    assert_eq!(events[0]["error_type"], "FailingDisplay");
    assert_eq!(events[1]["error_type"], "Größe");
    assert_eq!(events[2]["error_message"], "half a message");
}
