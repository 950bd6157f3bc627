//! SIGINT and SIGTERM (feature `signals`): a process-wide listener thread that ends every
//! registered reporter's session and drains it, then lets the signal's default action end
//! the process.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::handle::TelemetryHandle;
use super::registry::Registry;
use super::reporter::Reporter;
use crate::handoff::control::deadline_in;

/// The signals that end the session.
const ENDING: [i32; 2] = [SIGINT, SIGTERM];

/// The reporters the listener ends.
static SIGNALLED: Registry<Reporter> = Registry::new();
/// Whether the listener thread runs (once per process).
static LISTENING: Mutex<bool> = Mutex::new(false);

impl TelemetryHandle {
    /// On SIGINT or SIGTERM, ends the session and drains (at most `flush_timeout`), then
    /// lets the signal do what it would have done without this handler: end the process,
    /// killed by that signal. A second SIGINT or SIGTERM during the drain ends the process at
    /// once. Requires the `signals` feature.
    ///
    /// One listener thread serves the whole process (signal-hook's self-pipe, no work in the
    /// signal handler itself): the first call starts it, each call registers one more
    /// reporter, held weakly. Every registered reporter still alive is shut down, side by
    /// side, when the signal arrives.
    ///
    /// Opt in only when nothing else in the program handles these signals: a program that
    /// shuts down gracefully on Ctrl-C (say with `tokio::signal::ctrl_c`) should call
    /// [`shutdown`](Self::shutdown) from its own handler instead, since this one ends the
    /// process. A child made with `fork` (and no `exec`) inherits the handler without the
    /// listener thread: there these signals no longer end the process.
    ///
    /// Returns `Ok(true)` when this call registered this reporter, `Ok(false)` when it
    /// already was or telemetry is disabled.
    ///
    /// # Errors
    /// When the handlers cannot be registered or the listener thread cannot be started.
    ///
    /// # Examples
    /// ```no_run
    /// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    /// #     .session_id("s").enabled(false).build()?;
    /// let handle = guard.handle();
    /// handle.install_signal_handlers()?;
    /// // … Ctrl-C now sends SESSION_END and what is queued before the process ends.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "signals")))]
    pub fn install_signal_handlers(&self) -> io::Result<bool> {
        let Some(reporter) = self.reporter() else { return Ok(false) };
        let mut listening = LISTENING.lock().unwrap_or_else(PoisonError::into_inner);
        if !*listening {
            listen()?;
            *listening = true;
        }
        Ok(SIGNALLED.add(reporter))
    }
}

/// Registers the handlers and starts the listener thread.
fn listen() -> io::Result<()> {
    // Set once the first signal is being handled: a second one then ends the process at once.
    let impatient = Arc::new(AtomicBool::new(false));
    for signal in ENDING {
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&impatient))?;
    }
    let mut signals = Signals::new(ENDING)?;
    std::thread::Builder::new().name("tinker-telemetry-signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            impatient.store(true, SeqCst);
            end_sessions();
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            // The default action of SIGINT and SIGTERM ends the process; if it could not be
            // run, end it as a shell reports a death by that signal.
            std::process::exit(128 + signal);
        }
    })?;
    Ok(())
}

/// Shuts every registered reporter down, each within its own `flush_timeout`.
fn end_sessions() {
    let reporters: Vec<Arc<Reporter>> = SIGNALLED.live().into_iter().filter(|r| r.in_own_process()).collect();
    std::thread::scope(|scope| {
        for reporter in &reporters {
            let shutdown = move || reporter.shutdown_by(deadline_in(reporter.flush_timeout));
            let named = std::thread::Builder::new().name("tinker-telemetry-signals".into());
            if named.spawn_scoped(scope, shutdown).is_err() {
                shutdown();
            }
        }
    });
}
