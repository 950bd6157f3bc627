//! Panics: the panic hook, and panics caught by the capture helpers. A panic is reported as
//! an UNHANDLED_EXCEPTION (`CRITICAL`) with its payload, location, thread and backtrace.

use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::atomic::Ordering::AcqRel;

use super::handle::TelemetryHandle;
use crate::handoff::clock::Stamp;
use crate::handoff::record::{Body, ExceptionRecord, Record};
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_VALUE_BYTES, truncate_owned};
use crate::severity::Severity;

thread_local! {
    /// The reporters whose panic hook reported the panic unwinding through this thread, so
    /// that their capture helpers that catch it do not report it again. Cleared whenever a
    /// capture helper starts.
    static PANIC_REPORTED_BY: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn clear_reported_panics() {
    PANIC_REPORTED_BY.with(|r| r.borrow_mut().clear());
}

impl TelemetryHandle {
    /// Reports a panic caught by a capture helper, unless the panic hook already did.
    pub(super) fn report_caught_panic(&self, payload: &(dyn std::any::Any + Send)) {
        let id = self.reporter_id();
        if PANIC_REPORTED_BY.with(|r| std::mem::take(&mut *r.borrow_mut()).contains(&id)) {
            return;
        }
        self.report_panic(payload_message(payload), None);
    }

    /// UNHANDLED_EXCEPTION `CRITICAL` for a panic, SESSION_END, and a bounded drain.
    fn report_panic(&self, message: &str, location: Option<String>) {
        let Some(handoff) = self.handoff() else { return };
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let mut traceback = match location {
            Some(at) => format!("thread '{name}' panicked at {at}"),
            None => format!("thread '{name}' panicked"),
        };
        traceback.push_str("\nBacktrace:\n");
        traceback.push_str(&std::backtrace::Backtrace::force_capture().to_string());
        let record = Record {
            time: Stamp::now(),
            severity: Severity::Critical,
            body: Body::Exception(Box::new(ExceptionRecord {
                error_type: "panic".into(),
                error_message: truncate_owned(message.to_owned(), MAX_VALUE_BYTES),
                traceback: Some(truncate_owned(traceback, MAX_EVENT_TEXT_BYTES)),
            })),
        };
        handoff.push_critical(record);
        self.end_session_and_drain();
    }

    /// Installs a panic hook that reports a panic on any thread as an UNHANDLED_EXCEPTION
    /// (severity `CRITICAL`, with the payload, location, thread name and a backtrace), ends
    /// the session and drains synchronously (at most `flush_timeout`) before the previous
    /// hook runs, so the events reach the server even when the program then aborts
    /// (`panic = "abort"`). The previous hook is kept and called after.
    ///
    /// Idempotent per reporter: returns true when this call installed the hook, false when it
    /// was already installed or telemetry is disabled.
    ///
    /// # Panics
    /// When called while the thread is panicking (as [`std::panic::set_hook`] does).
    pub fn install_panic_hook(&self) -> bool {
        if !self.is_enabled() || self.panic_hook.swap(true, AcqRel) {
            return false;
        }
        let handle = self.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            handle.report_panic_hook(info);
            previous(info);
        }));
        true
    }

    fn report_panic_hook(&self, info: &PanicHookInfo<'_>) {
        // A panic on the uploader's own threads cannot wait for the uploader.
        if std::thread::current().name().is_some_and(|n| n.starts_with("tinker-telemetry")) {
            return;
        }
        let id = self.reporter_id();
        PANIC_REPORTED_BY.with(|r| r.borrow_mut().push(id));
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        self.report_panic(payload_message(info.payload()), location);
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
