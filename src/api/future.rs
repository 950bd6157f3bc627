//! Capture helpers for futures: [`Captured`] and the [`CaptureExt`] methods.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::handle::TelemetryHandle;
use super::panic::clear_reported_panics;
use crate::errors::reportable::{ReportableError, kinds};
use crate::severity::Severity;

pin_project_lite::pin_project! {
    /// A future whose `Err` output is logged and whose panics are reported (and resumed once
    /// the report is delivered); see
    /// [`TelemetryHandle::capture_async`] and [`CaptureExt`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Captured<F: Future, K = kinds::Value> {
        #[pin]
        inner: F,
        kind: PhantomData<fn() -> K>,
        handle: Option<TelemetryHandle>,
        severity: Severity,
        fatal: bool,
        drain: Option<Drain>,
        output: Option<F::Output>,
        // A caught panic, resumed once its report is delivered.
        panic: Option<Box<dyn Any + Send>>,
    }
}

impl<F: Future, K> std::fmt::Debug for Captured<F, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("severity", &self.severity)
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl<F: Future, K> Captured<F, K> {
    pub(super) fn new(handle: &TelemetryHandle, inner: F, severity: Severity, fatal: bool) -> Self {
        let handle = handle.is_enabled().then(|| handle.clone());
        Captured { inner, kind: PhantomData, handle, severity, fatal, drain: None, output: None, panic: None }
    }
}

impl<F, T, E, K> Future for Captured<F, K>
where
    F: Future<Output = Result<T, E>>,
    E: ReportableError<K>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(drain) = this.drain.as_mut() {
            if drain.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            *this.drain = None;
            if let Some(payload) = this.panic.take() {
                resume_reported(this.handle.as_ref(), payload);
            }
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
                let mut drain: Drain = Box::pin(handle.log_fatal_exception_async(&err, *this.severity));
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
                if !handle.queue_caught_panic(&*payload) {
                    resume_unwind(payload);
                }
                let timeout = handle.reporter().map_or(Duration::ZERO, |r| r.flush_timeout);
                let mut drain: Drain = Box::pin(handle.wait_until_drained_async(timeout));
                if drain.as_mut().poll(cx).is_ready() {
                    resume_unwind(payload);
                }
                *this.drain = Some(drain);
                *this.panic = Some(payload);
                Poll::Pending
            }
        }
    }
}

/// The wait for delivery a captured future finishes before it returns or resumes a panic.
type Drain = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Resumes the panic a captured future reported on an earlier poll (maybe on another
/// thread), noted first on this one, where a helper further out catches it.
fn resume_reported(handle: Option<&TelemetryHandle>, payload: Box<dyn Any + Send>) -> ! {
    if let Some(handle) = handle {
        handle.mark_caught(&*payload);
    }
    resume_unwind(payload)
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
    /// Logs an `Err` output (severity `ERROR`) and reports a panic, resuming it once the
    /// report is delivered; see [`TelemetryHandle::capture_async`].
    fn capture<T, E, K>(self, handle: &TelemetryHandle) -> Captured<Self, K>
    where
        Self: Future<Output = Result<T, E>>,
        E: ReportableError<K>,
    {
        Captured::new(handle, self, Severity::Error, false)
    }

    /// Like [`capture`](CaptureExt::capture), with an `Err` taking the fatal path (severity
    /// `CRITICAL`); the drain is awaited without blocking the executor.
    fn capture_fatal<T, E, K>(self, handle: &TelemetryHandle) -> Captured<Self, K>
    where
        Self: Future<Output = Result<T, E>>,
        E: ReportableError<K>,
    {
        Captured::new(handle, self, Severity::Critical, true)
    }
}

impl<F: Future> CaptureExt for F {}
