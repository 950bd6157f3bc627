//! `Builder::on_error_spike`: the program told in-process of each error spike, once per
//! spike as the `alert.error_spike` event is sent, on a thread that emitted nothing, and a
//! callback that panics or blocks stopping neither delivery nor later calls.

mod support;

use std::sync::mpsc::{Receiver, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{Collector, PATIENCE};
use tinker_telemetry::{ErrorSpike, SpikeCalls, TelemetryHandle};
use tracing_subscriber::prelude::*;

const SESSION: &str = "spike-session";

fn failing(route: &str, n: usize) {
    for _ in 0..n {
        tracing::info_span!("http.request", session_id = SESSION, method = "GET", path = route, status = 503)
            .in_scope(|| {});
    }
}

fn alerts(collector: &Collector) -> Vec<Value> {
    let events = collector.accepted_by_index();
    events
        .into_iter()
        .filter(|e| e["event_name"] == "alert.error_spike")
        .map(|e| e["event_data"].clone())
        .collect()
}

/// Waits until `done` holds of the callback's counters.
fn calls_until(handle: &TelemetryHandle, done: impl Fn(SpikeCalls) -> bool) -> SpikeCalls {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let calls = handle.error_spike_calls();
        if done(calls) || std::time::Instant::now() > deadline {
            return calls;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_callback_fires_once_per_spike_with_the_alert_s_data_on_a_thread_of_its_own() {
    let collector = Collector::start();
    let (tx, spikes) = channel::<(ErrorSpike, Option<String>)>();
    let tx = Mutex::new(tx);
    let (layer, guard) = collector
        .builder(SESSION)
        .error_spike(3, Duration::from_secs(60))
        .on_error_spike(move |spike| {
            let thread = std::thread::current().name().map(str::to_owned);
            tx.lock().unwrap().send((spike.clone(), thread)).unwrap();
        })
        .build()
        .unwrap();
    let handle = guard.handle();
    let mut on = Vec::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Two spikes, and more failures within each one's window: two alerts.
        failing("/api/v1/models/1", 10);
        failing("/api/v1/sample", 3);
        // Spikes are found as the uploader takes the spans: at once, after a flush.
        handle.flush();
        for _ in 0..2 {
            on.push(spikes.recv_timeout(PATIENCE).unwrap());
        }
    });
    assert!(handle.wait_until_drained(PATIENCE));
    drop(guard);
    assert!(spikes.recv_timeout(Duration::from_millis(200)).is_err(), "once per spike");
    let sent = alerts(&collector);
    assert_eq!(sent.len(), 2);
    for ((spike, thread), alert) in on.iter().zip(&sent) {
        assert_eq!(
            thread.as_deref(),
            Some("tinker-telemetry-alerts"),
            "neither an emitting thread nor the uploader"
        );
        assert_eq!(&serde_json::to_value(spike).unwrap(), alert, "the alert's data, field by field");
    }
    assert_eq!(on[0].0.route.as_deref(), Some("/api/v1/models/{id}"));
    assert_eq!(on[0].0.errors, 3);
    assert_eq!(handle.error_spike_calls(), calls_until(&handle, |c| c.returned == 2));
}

#[test]
fn a_callback_that_panics_is_contained_and_called_again() {
    let collector = Collector::start();
    let (layer, guard) = collector
        .builder(SESSION)
        .error_spike(3, Duration::from_secs(60))
        .on_error_spike(|spike| panic!("the program's callback failed on {:?}", spike.route))
        .build()
        .unwrap();
    let handle = guard.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        failing("/a", 3);
        handle.flush();
        assert_eq!(calls_until(&handle, |c| c.panicked == 1).panicked, 1);
        failing("/b", 3);
        failing("/c", 1);
        handle.flush();
    });
    let calls = calls_until(&handle, |c| c.panicked == 2);
    assert_eq!((calls.panicked, calls.returned, calls.skipped), (2, 0, 0), "called again after a panic");
    let stats = guard.shutdown().stats;
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(alerts(&collector).len(), 2, "both alerts sent");
    assert_eq!(collector.names().iter().filter(|n| *n == "http.request").count(), 7, "and every span");
}

#[test]
fn a_callback_that_blocks_holds_up_only_itself_and_what_it_misses_is_counted() {
    const ROUTES: usize = 30;
    let collector = Collector::start();
    let (entered, was_entered) = channel::<()>();
    let (release, released) = sync_channel::<()>(0);
    let released: Arc<Mutex<Receiver<()>>> = Arc::new(Mutex::new(released));
    let entered = Mutex::new(entered);
    let (layer, guard) = collector
        .builder(SESSION)
        .error_spike(3, Duration::from_secs(60))
        .on_error_spike(move |_| {
            let _ = entered.lock().unwrap().send(());
            // Blocks until the test lets it go (or gives up on it).
            let _ = released.lock().unwrap().recv_timeout(PATIENCE);
        })
        .build()
        .unwrap();
    let handle = guard.handle();
    let names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        failing("/first", 3);
        handle.flush();
        was_entered.recv_timeout(PATIENCE).unwrap();
        for i in 1..ROUTES {
            failing(&format!("/{}/{}", names[i % 6], names[i / 6]), 3);
        }
    });
    // The callback is still blocked: delivery goes on regardless.
    assert!(handle.wait_until_drained(PATIENCE), "delivery does not wait for the callback");
    assert_eq!(alerts(&collector).len(), ROUTES, "every alert sent");
    let calls = handle.error_spike_calls();
    assert_eq!((calls.returned, calls.skipped), (0, (ROUTES - 1 - 16) as u64), "one blocked, 16 wait");
    drop(release);
    let calls = calls_until(&handle, |c| c.returned == 17);
    assert_eq!((calls.returned, calls.skipped), (17, 13), "the one blocked and the 16 waiting");
    let stats = guard.shutdown().stats;
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
}
