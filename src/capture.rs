//! Exception capture on the handle: logging errors, the fatal path, capture helpers for
//! closures and futures, and the panic hook.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::Ordering::AcqRel;
use std::task::{Context, Poll};

use crate::clock::Stamp;
use crate::errors::report::{ReportableError, error_record};
use crate::handle::TelemetryHandle;
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_VALUE_BYTES, truncate_owned};
use crate::record::{Body, ExceptionRecord, Record};
use crate::severity::Severity;

thread_local! {
    /// The reporters whose panic hook reported the panic unwinding through this thread, so
    /// that their capture helpers that catch it do not report it again. Cleared whenever a
    /// capture helper starts.
    static PANIC_REPORTED_BY: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn clear_reported_panics() {
    PANIC_REPORTED_BY.with(|r| r.borrow_mut().clear());
}

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
    pub fn log_exception<E: ReportableError + ?Sized>(&self, err: &E, severity: Severity) -> bool {
        self.queue_exception(err, severity, false)
    }

    /// Queues the event for `err` and asks for a send. A fatal error's event is queued past
    /// the queue's bound: it must not be the one event a full queue loses.
    fn queue_exception<E: ReportableError + ?Sized>(&self, err: &E, severity: Severity, fatal: bool) -> bool {
        let Some(handoff) = self.handoff() else { return false };
        let record = error_record(&self.errors, err.as_error(), err.error_type(), severity, None);
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
    /// [`log_fatal_exception_async`](Self::log_fatal_exception_async).
    pub fn log_fatal_exception<E: ReportableError + ?Sized>(&self, err: &E, severity: Severity) -> bool {
        if !self.is_enabled() {
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
    pub fn log_fatal_exception_async<E: ReportableError + ?Sized>(
        &self,
        err: &E,
        severity: Severity,
    ) -> impl Future<Output = bool> + Send + 'static {
        let queued = self.queue_exception(err, severity, true);
        self.end_session();
        let handle = self.clone();
        async move {
            if !handle.is_enabled() {
                return false;
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let waiter = handle.clone();
            let spawned =
                std::thread::Builder::new().name("tinker-telemetry-drain".into()).spawn(move || {
                    let _ = tx.send(waiter.wait_until_drained(waiter.flush_timeout));
                });
            match spawned {
                Ok(_) => queued && rx.await.unwrap_or(false),
                Err(_) => false,
            }
        }
    }

    /// [`end_session`](Self::end_session), then waits for everything queued to be delivered
    /// or dropped, at most `flush_timeout`: the tail of every fatal path.
    fn end_session_and_drain(&self) -> bool {
        self.end_session();
        self.wait_until_drained(self.flush_timeout)
    }

    /// Ends the session: no more events are taken, SESSION_END is queued unless it already
    /// was.
    fn end_session(&self) {
        if let Some(handoff) = self.handoff() {
            handoff.close();
            handoff.end_session();
        }
    }

    /// Runs `f`; logs an `Err` (severity `ERROR`) and returns it unchanged. `Ok` passes
    /// through untouched. A panic inside `f` is reported as fatal (UNHANDLED_EXCEPTION
    /// `CRITICAL`, SESSION_END, drain) and then resumed, never swallowed. When telemetry is
    /// disabled this is just `f()`.
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
    pub fn capture<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError,
    {
        self.capture_as(Severity::Error, false, f)
    }

    /// [`capture`](Self::capture) with the severity of the logged error.
    pub fn capture_with_severity<T, E, F>(&self, severity: Severity, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError,
    {
        self.capture_as(severity, false, f)
    }

    /// [`capture`](Self::capture), with an `Err` taking the fatal path
    /// ([`log_fatal_exception`](Self::log_fatal_exception), severity `CRITICAL`).
    pub fn capture_fatal<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError,
    {
        self.capture_as(Severity::Critical, true, f)
    }

    fn capture_as<T, E, F>(&self, severity: Severity, fatal: bool, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: ReportableError,
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
                self.report_caught_panic(&*payload);
                resume_unwind(payload)
            }
        }
    }

    /// Wraps a future like [`capture`](Self::capture) wraps a closure: an `Err` output is
    /// logged and returned; a panic while polling is reported as fatal and resumed. The
    /// extension trait [`CaptureExt`] offers the same as a method on futures.
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
    pub fn capture_async<F, T, E>(&self, future: F) -> Captured<F>
    where
        F: Future<Output = Result<T, E>>,
        E: ReportableError,
    {
        Captured::new(self, future, Severity::Error, false)
    }

    /// Reports a panic caught by a capture helper, unless the panic hook already did.
    fn report_caught_panic(&self, payload: &(dyn std::any::Any + Send)) {
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

pin_project_lite::pin_project! {
    /// A future whose `Err` output is logged and whose panics are reported; see
    /// [`TelemetryHandle::capture_async`] and [`CaptureExt`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Captured<F: Future> {
        #[pin]
        inner: F,
        handle: Option<TelemetryHandle>,
        severity: Severity,
        fatal: bool,
        drain: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
        output: Option<F::Output>,
    }
}

impl<F: Future> std::fmt::Debug for Captured<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("severity", &self.severity)
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Captured<F> {
    fn new(handle: &TelemetryHandle, inner: F, severity: Severity, fatal: bool) -> Self {
        let handle = handle.is_enabled().then(|| handle.clone());
        Captured { inner, handle, severity, fatal, drain: None, output: None }
    }
}

impl<F, T, E> Future for Captured<F>
where
    F: Future<Output = Result<T, E>>,
    E: ReportableError,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(drain) = this.drain.as_mut() {
            if drain.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            *this.drain = None;
            if let Some(out) = this.output.take() {
                return Poll::Ready(out);
            }
        }
        let Some(handle) = this.handle.as_ref() else { return this.inner.poll(cx) };
        clear_reported_panics();
        let polled = catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(value))) => Poll::Ready(Ok(value)),
            Ok(Poll::Ready(Err(err))) if *this.fatal => {
                let mut drain: Pin<Box<dyn Future<Output = bool> + Send>> =
                    Box::pin(handle.log_fatal_exception_async(&err, *this.severity));
                if drain.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(err));
                }
                *this.drain = Some(drain);
                *this.output = Some(Err(err));
                Poll::Pending
            }
            Ok(Poll::Ready(Err(err))) => {
                handle.log_exception(&err, *this.severity);
                Poll::Ready(Err(err))
            }
            Err(payload) => {
                handle.report_caught_panic(&*payload);
                resume_unwind(payload)
            }
        }
    }
}

/// Capture helpers as methods on futures that output a `Result`.
///
/// # Examples
/// ```
/// use tinker_telemetry::CaptureExt;
/// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
/// #     .session_id("s").enabled(false).build()?;
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let handle = guard.handle();
/// let out = rt.block_on(async { Ok::<_, std::io::Error>(7) }.capture(&handle));
/// assert_eq!(out.unwrap(), 7);
/// # Ok::<(), tinker_telemetry::BuildError>(())
/// ```
pub trait CaptureExt: Future + Sized {
    /// Logs an `Err` output (severity `ERROR`) and reports a panic as fatal; see
    /// [`TelemetryHandle::capture_async`].
    fn capture(self, handle: &TelemetryHandle) -> Captured<Self> {
        Captured::new(handle, self, Severity::Error, false)
    }

    /// Like [`capture`](CaptureExt::capture), with an `Err` taking the fatal path (severity
    /// `CRITICAL`); the drain is awaited without blocking the executor.
    fn capture_fatal(self, handle: &TelemetryHandle) -> Captured<Self> {
        Captured::new(handle, self, Severity::Critical, true)
    }
}

impl<F: Future> CaptureExt for F {}
