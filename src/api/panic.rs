//! Panics: the process-wide panic hook, and panics caught by the capture helpers. A panic is
//! reported as an UNHANDLED_EXCEPTION (`CRITICAL`) with its payload, location, thread and
//! backtrace, and waited for until delivered. It ends the session only where it cannot be
//! survived: in a program built with `panic = "abort"`.

use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::{Arc, Once};

use super::handle::TelemetryHandle;
use super::registry::Registry;
use super::reporter::Reporter;
use crate::handoff::clock::Stamp;
use crate::handoff::control::deadline_in;
use crate::handoff::record::{Body, ExceptionRecord, Record};
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_VALUE_BYTES, truncate_owned};
use crate::severity::Severity;

/// Whether a panic ends the process: the strategy this crate was compiled with, which is the
/// final binary's.
const PANIC_ABORTS: bool = cfg!(panic = "abort");

/// The reporters the panic hook reports for.
static HOOKED: Registry<Reporter> = Registry::new();
/// The hook is installed once per process, however many reporters register.
static INSTALL: Once = Once::new();

thread_local! {
    /// The reporters whose panic hook reported the panic unwinding through this thread, so
    /// that their capture helpers that catch it do not report it again. Cleared whenever a
    /// capture helper starts.
    static PANIC_REPORTED_BY: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// The panics capture helpers on this thread caught, by reporter and by the address of
    /// the payload they resumed, so that a helper further out, catching the same payload,
    /// does not report it again. Cleared whenever a capture helper starts.
    static CAUGHT: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn clear_reported_panics() {
    let _ = PANIC_REPORTED_BY.try_with(|r| r.borrow_mut().clear());
    let _ = CAUGHT.try_with(|c| c.borrow_mut().clear());
}

impl TelemetryHandle {
    /// Reports a panic a capture helper caught, unless the panic hook or a helper further in
    /// (which caught the same payload) already did; returns whether it queued the event (and
    /// so whether the caller should wait for its delivery).
    pub(super) fn queue_caught_panic(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        let Some(reporter) = self.reporter() else { return false };
        let id = self.reporter_id();
        let caught = self.mark_caught(payload);
        let hooked = PANIC_REPORTED_BY.try_with(|r| {
            let mut hooked = r.borrow_mut();
            let seen = hooked.contains(&id);
            hooked.retain(|&by| by != id);
            seen
        });
        if caught || hooked.unwrap_or(false) || !reporter.in_own_process() {
            return false;
        }
        let traceback = traceback(None);
        reporter.handoff.push_critical(panic_record(payload_message(payload), &traceback))
    }

    /// Notes on this thread that this reporter's capture helper caught `payload`, just before
    /// the unwind goes on, so that a helper further out catching it does not report it
    /// again; returns whether it already was.
    pub(super) fn mark_caught(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        let key = (self.reporter_id(), std::ptr::from_ref(payload).cast::<()>() as usize);
        CAUGHT
            .try_with(|c| {
                let mut caught = c.borrow_mut();
                let seen = caught.contains(&key);
                if !seen {
                    caught.push(key);
                }
                seen
            })
            .unwrap_or(false)
    }

    /// Reports every panic in the process from now on while this reporter lives: an
    /// UNHANDLED_EXCEPTION (severity `CRITICAL`, with the payload, location, thread name and
    /// a backtrace), then a wait, at most `flush_timeout`, until it is delivered, before the
    /// previous hook runs. The session stays open, since a panic that unwinds may be
    /// survived (a joined thread, a tokio task, `catch_unwind`): later events are sent, and
    /// SESSION_END when the guard drops. In a program built with `panic = "abort"`, where
    /// nothing survives a panic, the hook also ends the session (SESSION_END) and drains
    /// before the process aborts.
    ///
    /// One hook serves the whole process: the first call installs it, keeping the hook that
    /// was there before and calling it after; each later call registers one more reporter
    /// with it, held weakly (a reporter that is gone stops reporting, and is not kept alive).
    /// Each registered reporter reports every panic into its own session. A panic that a
    /// capture helper catches is reported once, not twice. Panics on the crate's own threads
    /// are not reported, and nothing is reported in a forked child or after a reporter's
    /// shutdown. Replacing the process's hook later with [`std::panic::set_hook`] without
    /// chaining it stops the reporting.
    ///
    /// Returns true when this call registered this reporter; false when it already was,
    /// telemetry is disabled, or the thread is panicking before any hook was installed.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// let handle = guard.handle();
    /// handle.install_panic_hook(); // false here: telemetry is disabled in this example
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn install_panic_hook(&self) -> bool {
        let Some(reporter) = self.reporter() else { return false };
        // `set_hook` panics on a panicking thread.
        if std::thread::panicking() && !INSTALL.is_completed() {
            return false;
        }
        if !HOOKED.add(reporter) {
            return false;
        }
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                on_panic(info);
                previous(info);
            }));
        });
        true
    }
}

/// The hook: the panic to every registered reporter, then the wait for its delivery; where
/// the panic aborts, the end of every session first.
fn on_panic(info: &PanicHookInfo<'_>) {
    // A panic on the crate's own threads cannot wait for the uploader.
    if std::thread::current().name().is_some_and(|n| n.starts_with("tinker-telemetry")) {
        return;
    }
    let reporters: Vec<Arc<Reporter>> =
        HOOKED.live().into_iter().filter(|r| r.in_own_process() && !r.shut_down()).collect();
    if reporters.is_empty() {
        return;
    }
    let ids = reporters.iter().map(|r| Arc::as_ptr(r) as usize);
    let _ = PANIC_REPORTED_BY.try_with(|r| r.borrow_mut().extend(ids));
    let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let traceback = traceback(location);
    let message = payload_message(info.payload());
    for reporter in &reporters {
        reporter.handoff.push_critical(panic_record(message, &traceback));
        if PANIC_ABORTS {
            reporter.end_session();
        }
    }
    // Every drain asked for first, then waited for: the uploaders work side by side.
    let drains: Vec<_> =
        reporters.iter().map(|r| (r.request_drain(), deadline_in(r.flush_timeout))).collect();
    for (reporter, (request, deadline)) in reporters.iter().zip(drains) {
        reporter.wait_drained(request, deadline);
    }
}

/// Where the panic happened, on which thread, and a backtrace.
fn traceback(location: Option<String>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let mut traceback = match location {
        Some(at) => format!("thread '{name}' panicked at {at}"),
        None => format!("thread '{name}' panicked"),
    };
    traceback.push_str("\nBacktrace:\n");
    traceback.push_str(&std::backtrace::Backtrace::force_capture().to_string());
    traceback
}

/// The UNHANDLED_EXCEPTION (`CRITICAL`) a panic becomes.
fn panic_record(message: &str, traceback: &str) -> Record {
    Record {
        time: Stamp::now(),
        severity: Severity::Critical,
        body: Body::Exception(Box::new(ExceptionRecord {
            error_type: "panic".into(),
            error_message: truncate_owned(message.to_owned(), MAX_VALUE_BYTES),
            traceback: Some(truncate_owned(traceback.to_owned(), MAX_EVENT_TEXT_BYTES)),
        })),
    }
}

/// A panic's message: its `&str` or `String` payload.
fn payload_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}
