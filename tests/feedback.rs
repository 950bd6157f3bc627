//! The uploader's own HTTP stack must never feed the layer. This binary installs a global
//! subscriber (once, as a real program would) with a TRACE-level fmt layer, so that hyper's,
//! reqwest's and rustls' tracing output would reach it if the uploader thread did not run
//! under `NoSubscriber`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Collector, PATIENCE};
use tracing_subscriber::Layer;
use tracing_subscriber::prelude::*;

/// Counts events from the HTTP stack that reach the global subscriber.
struct HttpStackEvents(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for HttpStackEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let target = event.metadata().target();
        if ["hyper", "reqwest", "h2", "rustls", "tokio"].iter().any(|t| target.starts_with(t)) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn one_event_costs_one_request_even_with_everything_traced() {
    const SESSION: &str = "feedback-session";
    let collector = Collector::start();
    let (layer, guard) = collector
        .builder(SESSION)
        .min_level(tracing::Level::TRACE)
        .flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let http_events = Arc::new(AtomicUsize::new(0));
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(HttpStackEvents(Arc::clone(&http_events)))
        .with(layer)
        .init();

    // SESSION_START goes first, alone.
    collector.wait_requests(1);
    tracing::info!(session_id = SESSION, "the only event");
    let handle = guard.handle();
    assert!(handle.wait_until_drained(PATIENCE));
    // Let many flush intervals pass: a feedback loop would show up as more requests.
    std::thread::sleep(Duration::from_millis(400));
    let seen = collector.seen();
    assert_eq!(seen.len(), 2, "SESSION_START, then one request for the one event");
    assert_eq!(seen[1].events().len(), 1);
    assert_eq!(http_events.load(Ordering::Relaxed), 0, "the HTTP stack's events reached the subscriber");
    drop(guard);
    assert_eq!(collector.names(), ["SESSION_START", "the only event", "SESSION_END"]);
}
