//! Errors through the handle: logging them, the fatal path, and capture helpers for closures
//! and futures. Runs on the caller's thread.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use super::future::Captured;
use super::handle::{TelemetryHandle, off_thread};
use super::panic::clear_reported_panics;
use crate::errors::report::error_record;
use crate::errors::reportable::ReportableError;
use crate::handoff::control::deadline_in;
use crate::severity::Severity;

impl TelemetryHandle {
    /// Queues one event for `err` and asks the uploader to send soon; never blocks.
    ///
    /// A user error (see [`is_user_error`](crate::is_user_error) and the builder's
    /// classification options) becomes a `GENERIC_EVENT` named `user_error`, severity
    /// `WARNING`, with `event_data` `{error_type, message, status_code, body}`. Any other
    /// error becomes an `UNHANDLED_EXCEPTION` with `severity`: `error_type` is the type name
    /// without its module path (for a `dyn Error`, read from its `Debug` output, else
    /// `Error`), `error_message` its `Display`, `traceback` its `source()` chain, one cause per
    /// line, plus a backtrace when `RUST_BACKTRACE` asks for one.
    ///
    /// Returns whether the event was queued.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// use tinker_telemetry::Severity;
    ///
    /// let handle = guard.handle();
    /// if let Err(err) = "12x".parse::<u32>() {
    ///     handle.log_exception(&err, Severity::Error); // error_type: ParseIntError
    /// }
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn log_exception<E: ReportableError<K> + ?Sized, K>(&self, err: &E, severity: Severity) -> bool {
        self.queue_exception(err, severity, false)
    }

    /// Queues the event for `err` and asks for a send. A fatal error's event is queued past
    /// the queue's bound: it must not be the one event a full queue loses.
    fn queue_exception<E: ReportableError<K> + ?Sized, K>(
        &self,
        err: &E,
        severity: Severity,
        fatal: bool,
    ) -> bool {
        let Some(reporter) = self.reporter() else { return false };
        let record = error_record(&reporter.classifier, err.as_error(), err.error_type(), severity, None);
        let handoff = &reporter.handoff;
        let queued = if fatal { handoff.push_critical(record) } else { handoff.push(record) };
        self.flush();
        queued
    }

    /// The fatal path: queues the event for `err` (as [`log_exception`](Self::log_exception)),
    /// ends the session (SESSION_END at most once, whatever number of fatal errors arrive),
    /// and waits until everything is delivered or dropped, at most `flush_timeout`.
    ///
    /// Returns whether the event was queued and the queue drained in time. Events logged
    /// after it are counted as dropped. Safe from any thread, inside or outside a runtime (it
    /// blocks only the calling thread); in async code prefer
    /// [`log_fatal_exception_async`](Self::log_fatal_exception_async). In a forked child it
    /// does nothing and returns false at once.
    pub fn log_fatal_exception<E: ReportableError<K> + ?Sized, K>(
        &self,
        err: &E,
        severity: Severity,
    ) -> bool {
        if !self.reporter().is_some_and(|r| r.in_own_process()) {
            return false;
        }
        let queued = self.queue_exception(err, severity, true);
        let drained = self.end_session_and_drain();
        queued && drained
    }

    /// The fatal path for async code: queues the event and ends the session when called, and
    /// returns a future that waits for the drain (on a thread of its own, never blocking the
    /// runtime's threads). Works with any executor.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// use tinker_telemetry::Severity;
    ///
    /// let err = std::io::Error::other("checkpoint store is gone");
    /// let delivered = guard.handle().log_fatal_exception_async(&err, Severity::Critical).await;
    /// # assert!(!delivered); // telemetry is disabled in this example
    /// # });
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn log_fatal_exception_async<E: ReportableError<K> + ?Sized, K>(
        &self,
        err: &E,
        severity: Severity,
    ) -> impl Future<Output = bool> + Send + 'static {
        let reporter = self.reporter().filter(|r| r.in_own_process()).cloned();
        let (queued, request) = match &reporter {
            Some(reporter) => {
                let queued = self.queue_exception(err, severity, true);
                reporter.end_session();
                (queued, reporter.request_drain())
            }
            None => (false, None),
        };
        let deadline = reporter.as_ref().map(|r| deadline_in(r.flush_timeout));
        async move {
            let (Some(reporter), Some(deadline)) = (reporter, deadline) else { return false };
            let drained = off_thread(move || reporter.wait_drained(request, deadline)).await;
            queued && drained.unwrap_or(false)
        }
    }

    /// Ends the session (SESSION_END unless it already was), then waits for everything
    /// queued to be delivered or dropped, at most `flush_timeout`: the tail of the fatal path.
    pub(super) fn end_session_and_drain(&self) -> bool {
        let Some(reporter) = self.reporter() else { return false };
        reporter.end_session();
        reporter.drain_by(deadline_in(reporter.flush_timeout))
    }

    /// Runs `f`; logs an `Err` (severity `ERROR`) and returns it unchanged. `Ok` passes
    /// through untouched. A panic inside `f` is reported (UNHANDLED_EXCEPTION `CRITICAL`,
    /// once even when the panic hook saw it too), waited for until delivered (at most
    /// `flush_timeout`), and then resumed, never swallowed; the session stays open, since a
    /// caught panic may be survived. When telemetry is disabled this is just `f()`.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// let handle = guard.handle();
    /// let parsed: Result<u32, _> = handle.capture(|| "42".parse::<u32>());
    /// assert_eq!(parsed, Ok(42));
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn capture<T, E, F, K>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError<K>,
    {
        self.capture_as(Severity::Error, false, f)
    }

    /// [`capture`](Self::capture) with the severity of the logged error.
    pub fn capture_with_severity<T, E, F, K>(&self, severity: Severity, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError<K>,
    {
        self.capture_as(severity, false, f)
    }

    /// [`capture`](Self::capture), with an `Err` taking the fatal path
    /// ([`log_fatal_exception`](Self::log_fatal_exception), severity `CRITICAL`).
    pub fn capture_fatal<T, E, F, K>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError<K>,
    {
        self.capture_as(Severity::Critical, true, f)
    }

    fn capture_as<T, E, F, K>(&self, severity: Severity, fatal: bool, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError<K>,
    {
        if !self.is_enabled() {
            return f();
        }
        clear_reported_panics();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                if fatal {
                    self.log_fatal_exception(&err, severity);
                } else {
                    self.log_exception(&err, severity);
                }
                Err(err)
            }
            Err(payload) => {
                if self.queue_caught_panic(&*payload) {
                    self.wait_until_drained(self.reporter().map_or(Duration::ZERO, |r| r.flush_timeout));
                }
                resume_unwind(payload)
            }
        }
    }

    /// Wraps a future like [`capture`](Self::capture) wraps a closure: an `Err` output is
    /// logged and returned; a panic while polling is reported, its delivery awaited (on a
    /// thread of its own, never blocking the executor; at most `flush_timeout`) and then
    /// resumed; the session stays open. The extension trait [`CaptureExt`](crate::CaptureExt) offers the same as a method on futures.
    ///
    /// # Examples
    /// ```
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let handle = guard.handle();
    /// let out = rt.block_on(handle.capture_async(async { "x".parse::<u8>() }));
    /// assert!(out.is_err());
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn capture_async<F, T, E, K>(&self, future: F) -> Captured<F, K>
    where
        F: Future<Output = Result<T, E>>,
        E: ReportableError<K>,
    {
        Captured::new(self, future, Severity::Error, false)
    }
}
