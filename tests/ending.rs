//! Ending a session without the guard: `TelemetryHandle::shutdown` from any thread (once,
//! whoever calls it, concurrent calls safe, the guard's drop then returning at once), and
//! the async forms, which never block an executor's thread.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Collector, Gate, Reply, assert_well_formed};
use tinker_telemetry::{Severity, TelemetryGuard, TelemetryHandle};

const SESSION: &str = "8a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn log_three(handle: &TelemetryHandle) {
    for n in 0..3 {
        assert!(handle.log("work", json!({ "n": n }), Severity::Info));
    }
}

#[test]
fn a_handle_ends_the_session_from_another_thread_and_the_guard_then_returns_at_once() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    log_three(&handle);
    let worker = handle.clone();
    let report = std::thread::spawn(move || worker.shutdown(Duration::from_secs(10))).join().unwrap();
    assert!(report.drained, "{report:?}");
    assert_eq!(report.stats.delivered, 5, "SESSION_START, three events, SESSION_END");
    assert_eq!(collector.names(), ["SESSION_START", "work", "work", "work", "SESSION_END"]);
    assert!(!handle.log("late", json!({}), Severity::Info), "the session has ended");
    assert_eq!(handle.shutdown(Duration::from_secs(10)), report, "a second call returns the same report");
    let started = Instant::now();
    let again = guard.shutdown();
    assert!(started.elapsed() < Duration::from_millis(50), "the guard waited {:?}", started.elapsed());
    assert_eq!(again, report);
    assert_eq!(handle.stats().dropped.after_shutdown, 1);
    assert_eq!(collector.accepted_events().len(), 5, "nothing was sent twice");
}

#[test]
fn concurrent_shutdowns_end_the_session_once_and_a_late_caller_waits_for_the_first() {
    let (collector, gate, guard, handle) = three_events_held();
    let callers = 8;
    let barrier = Arc::new(Barrier::new(callers));
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (handle, barrier) = (handle.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                handle.shutdown(Duration::from_secs(10))
            })
        })
        .collect();
    // The batch has reached the server and waits there: one shutdown is draining.
    collector.wait_requests(2);
    let started = Instant::now();
    let impatient = handle.shutdown(Duration::from_millis(100));
    let waited = started.elapsed();
    assert!(!impatient.drained, "the drain is still held: {impatient:?}");
    assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2), "{waited:?}");
    gate.open();
    let reports: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(reports.iter().all(|r| *r == reports[0] && r.drained), "{reports:?}");
    assert_eq!(reports[0].stats.delivered, 5);
    let events = collector.accepted_by_index();
    assert_well_formed(&events);
    assert_eq!(events.iter().filter(|e| e["event"] == "SESSION_END").count(), 1);
    drop(guard);
    assert_eq!(collector.accepted_events().len(), 5);
}

/// A reporter whose SESSION_START was accepted and whose next batch, three events, will be
/// held at the collector until the gate opens.
fn three_events_held() -> (Collector, Gate, TelemetryGuard, TelemetryHandle) {
    let (collector, gate) = Collector::holding_second();
    let (guard, handle) = collector.reporter(SESSION);
    collector.wait_requests(1);
    log_three(&handle);
    (collector, gate, guard, handle)
}

/// A runtime with one thread: a future that blocked it would keep `open_later` from ever
/// opening the gate that the drain waits for.
fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Opens `gate` from a task of the runtime, once the runtime's thread is free to run it.
async fn open_later(gate: Gate) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    gate.open();
}

#[test]
fn shutdown_async_drains_without_blocking_the_runtime_thread() {
    let (collector, gate, guard, handle) = three_events_held();
    let rt = one_thread_runtime();
    let started = Instant::now();
    let report = rt.block_on(async {
        let opener = tokio::spawn(open_later(gate));
        let report = handle.shutdown_async(Duration::from_secs(10)).await;
        opener.await.unwrap();
        report
    });
    assert!(report.drained, "{report:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(collector.names(), ["SESSION_START", "work", "work", "work", "SESSION_END"]);
    let again = Instant::now();
    drop(guard);
    assert!(again.elapsed() < Duration::from_millis(50));
}

#[test]
fn wait_until_drained_async_waits_without_blocking_the_runtime_thread() {
    let (collector, gate, guard, handle) = three_events_held();
    let rt = one_thread_runtime();
    let drained = rt.block_on(async {
        let opener = tokio::spawn(open_later(gate));
        let drained = handle.wait_until_drained_async(Duration::from_secs(10)).await;
        opener.await.unwrap();
        drained
    });
    assert!(drained);
    assert_eq!(handle.stats().delivered, 4, "delivered before the future resolved");
    assert!(handle.log("still.open", json!({}), Severity::Info), "waiting does not end the session");
    drop(guard);
    assert_eq!(collector.names().last().map(String::as_str), Some("SESSION_END"));
}

#[test]
fn wait_until_drained_async_gives_up_at_its_timeout() {
    let collector = Collector::with_plan(vec![Reply::Status(200), Reply::Hang]);
    let (_layer, guard) =
        collector.builder(SESSION).flush_timeout(Duration::from_millis(200)).build().unwrap();
    let handle = guard.handle();
    collector.wait_requests(1);
    log_three(&handle);
    let started = Instant::now();
    assert!(!one_thread_runtime().block_on(handle.wait_until_drained_async(Duration::from_millis(200))));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2), "{waited:?}");
    drop(guard);
}

/// The smallest executor: poll, park until woken, poll again. No tokio runtime anywhere.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[test]
fn the_async_forms_work_on_any_executor() {
    let collector = Collector::start();
    let (guard, handle) = collector.reporter(SESSION);
    log_three(&handle);
    assert!(block_on(handle.wait_until_drained_async(Duration::from_secs(10))));
    assert_eq!(handle.stats().delivered, 4);
    let report = block_on(handle.shutdown_async(Duration::from_secs(10)));
    assert!(report.drained);
    assert_eq!(report.stats.delivered, 5);
    drop(guard);
}
