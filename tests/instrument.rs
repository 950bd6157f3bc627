//! Events as applications emit them without naming them: `#[instrument(err)]`'s error event,
//! field-only events inside an instrumented function, and `log` records bridged by
//! tracing-log. (Its own binary: tracing-log's bridge is a process-wide `log` logger.)

mod support;

use support::{Collector, PATIENCE};
use tracing_subscriber::prelude::*;

const SESSION: &str = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a";

#[tracing::instrument(err)]
fn load_checkpoint(path: &str) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(format!("no checkpoint at {path}")))
}

#[tracing::instrument]
fn train_step(step: u64) {
    tracing::info!(step, loss = 0.25);
}

#[test]
fn unnamed_events_take_their_span_name_and_instrument_err_is_an_exception() {
    tracing_log::LogTracer::init().unwrap();
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let handle = guard.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("session", session_id = SESSION);
        let _in = session.enter();
        let _ = load_checkpoint("/ckpt/7");
        train_step(3);
        log::warn!(target: "trainer", "bridged from log");
    });
    assert!(handle.wait_until_drained(PATIENCE));
    guard.shutdown();
    let events = collector.accepted_by_index();

    let exception = events.iter().find(|e| e["event"] == "UNHANDLED_EXCEPTION").expect("no exception");
    assert_eq!(exception["error_message"], "no checkpoint at /ckpt/7");
    assert_eq!(exception["traceback"], "in load_checkpoint");
    assert_eq!(exception["severity"], "ERROR");

    let step =
        events.iter().find(|e| e["event_name"] == "train_step").expect("no event named after its span");
    assert_eq!(step["event_data"], serde_json::json!({"step": 3, "loss": 0.25}));
    assert!(
        events.iter().all(|e| !e["event_name"].as_str().unwrap_or("").starts_with("event ")),
        "{events:#?}"
    );

    let bridged = events
        .iter()
        .find(|e| e["event_name"] == "bridged from log")
        .unwrap_or_else(|| panic!("no log record: {events:#?}"));
    assert_eq!(bridged["severity"], "WARNING");
    assert_eq!(bridged["event_data"], serde_json::json!({}), "the log.* bookkeeping is left out");
}
