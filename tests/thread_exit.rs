//! Events logged while a thread is being torn down, from a thread-local's destructor, under a
//! global default subscriber: they are captured, whatever the layer's own thread-locals have
//! already been dropped. (Its own binary: the global default can be set once per process.)

mod support;

use std::cell::RefCell;

use support::{Collector, PATIENCE};
use tracing_subscriber::prelude::*;

const SESSION: &str = "thread-exit-session";

/// Logs an event when the thread drops it.
struct LogsOnDrop;

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        tracing::info!(session_id = SESSION, "from a thread-local destructor");
        // (Entering a span here would panic in the registry, whose span stacks are gone.)
    }
}

thread_local! {
    static LATE: RefCell<Option<LogsOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn events_logged_from_thread_local_destructors_are_captured() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
    std::thread::spawn(|| {
        // Thread-locals are destroyed in the reverse order of their first use. First tracing's
        // own (a span is dispatched through them), then ours, then the layer's (on the first
        // event): the destructor runs after the layer's thread-locals are gone, while tracing
        // still dispatches.
        drop(tracing::info_span!("first"));
        LATE.with(|late| *late.borrow_mut() = Some(LogsOnDrop));
        tracing::info!(session_id = SESSION, "while the thread runs");
        tracing::info_span!("early", session_id = SESSION).in_scope(|| tracing::info!("in a span"));
    })
    .join()
    .expect("the thread exits cleanly");
    assert!(guard.handle().wait_until_drained(PATIENCE));
    drop(guard);
    let mut names = collector.names();
    names.retain(|n| n != "SESSION_START" && n != "SESSION_END");
    names.sort();
    assert_eq!(names, ["from a thread-local destructor", "in a span", "while the thread runs"]);
}
