//! Client-side session telemetry for the Tinker fine-tuning API, as a
//! [`tracing_subscriber::Layer`].
//!
//! Register [`TinkerTelemetryLayer`] in a `tracing_subscriber` registry, emit with the ordinary
//! `tracing` macros, and hold the [`TelemetryGuard`] until `main` returns. The layer keeps the
//! events that belong to your Tinker session; a background uploader batches them to
//! `{base_url}/api/v1/telemetry`, retries what can succeed, counts what cannot, and drains
//! the queue when the guard drops.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use tinker_telemetry::{Severity, TinkerTelemetryLayer};
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A stand-in for the Tinker API on 127.0.0.1 that accepts every request.
//! # use std::io::{BufRead, BufReader, Read, Write};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let base_url = format!("http://{}", listener.local_addr()?);
//! # std::thread::spawn(move || for stream in listener.incoming().flatten() {
//! #     std::thread::spawn(move || -> std::io::Result<()> {
//! #         let mut reader = BufReader::new(stream.try_clone()?);
//! #         let mut writer = stream;
//! #         loop {
//! #             let (mut line, mut length) = (String::new(), 0);
//! #             while reader.read_line(&mut line)? > 2 {
//! #                 if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") { length = v.trim().parse().unwrap(); }
//! #                 line.clear();
//! #             }
//! #             if line.is_empty() { return Ok(()); }
//! #             reader.read_exact(&mut vec![0; length])?;
//! #             writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n{\"status\":\"accepted\"}")?;
//! #         }
//! #     });
//! # });
//! let session_id = "6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11";
//! let (layer, guard) = TinkerTelemetryLayer::builder()
//!     .session_id(session_id)
//!     .api_key("tml-example")
//!     .base_url(base_url) // default: TINKER_BASE_URL, else the production API
//!     .build()?;
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     let session = tracing::info_span!("session", session_id);
//!     let _in = session.enter();
//!     tracing::info!(event_name = "user.action", button = "submit"); // captured
//!     tracing::warn!(session_id = "other", "not ours");              // ignored
//! });
//! let handle = guard.handle();
//! handle.log("cache.miss", serde_json::json!({"key": "user:123"}), Severity::Warning);
//! assert!(handle.wait_until_drained(Duration::from_secs(5)));
//!
//! let report = guard.shutdown(); // what dropping the guard does, with a report
//! assert_eq!(report.stats.delivered, 4); // SESSION_START, 2 events, SESSION_END
//! # Ok(())
//! # }
//! ```
//!
//! # The guard
//!
//! [`Builder::build`] returns the layer and a [`TelemetryGuard`]. Hold the guard until the
//! program ends: dropping it (or calling [`TelemetryGuard::shutdown`]) enqueues SESSION_END,
//! flushes, and waits for the uploader for at most `flush_timeout` (30 s by default). It works
//! from a plain `main`, inside a current-thread or multi-thread tokio runtime, and during a
//! panic unwind, because the uploader runs on a thread of its own with its own runtime. A
//! [`TelemetryHandle`] from [`TelemetryGuard::handle`] logs, flushes and reads
//! [`Stats`] from anywhere.
//!
//! The session can also end without the guard, from any thread:
//! [`TelemetryHandle::shutdown`] does what the guard's drop does, bounded by the timeout you
//! give it, once per reporter (concurrent calls get the same report, and the guard's drop
//! then returns at once). In async code, [`TelemetryHandle::shutdown_async`] and
//! [`TelemetryHandle::wait_until_drained_async`] return futures that wait on a short-lived
//! thread of their own, never blocking the runtime's threads, with any executor. With the
//! `signals` feature, `TelemetryHandle::install_signal_handlers` ends the session on
//! SIGINT or SIGTERM before the signal ends the process.
//!
//! `std::process::exit` runs no destructors: the guard never drops, and whatever is still
//! queued, SESSION_END included, is lost. End the session first, or return from `main`:
//!
//! ```
//! # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
//! #     .session_id("s").enabled(false).build()?;
//! # let failed = false;
//! if failed {
//!     let report = guard.shutdown(); // or handle.shutdown(timeout) where the guard is out of reach
//!     eprintln!("telemetry drained: {}", report.drained);
//!     std::process::exit(1);
//! }
//! # Ok::<(), tinker_telemetry::BuildError>(())
//! ```
//!
//! # What gets captured
//!
//! An event is captured when its level is at least [`Builder::min_level`] (`INFO`) and its
//! own `session_id` field, or else its nearest enclosing span's (or that span's nearest
//! ancestor's), equals the reporter's session. A session-less reporter
//! ([`Builder::sessionless`]) captures every event at or above the level.
//!
//! | tracing data | wire field | type |
//! |---|---|---|
//! | `event_name` field | `event_name` | string |
//! | macro `name:` (when no `event_name` field) | `event_name` | string |
//! | message (when neither of the above) | `event_name` | string |
//! | message (when there is an event name) | `event_data.message` | string |
//! | `severity` field (`DEBUG` … `CRITICAL`, any case) | `severity` | string |
//! | level: `TRACE`/`DEBUG`, `INFO`, `WARN`, `ERROR` | `severity`: `DEBUG`, `INFO`, `WARNING`, `ERROR` | string |
//! | `session_id` field | not sent per event (it is the body's `session_id`) | |
//! | `i64`, `u64`, `i128`, `u128` fields | `event_data.<name>` | number |
//! | `f64` fields | `event_data.<name>`; NaN and ±∞ as `"NaN"`, `"inf"`, `"-inf"` | number or string |
//! | `bool` fields | `event_data.<name>` | bool |
//! | `&str` fields, `%display` and `?debug` values | `event_data.<name>` | string |
//! | fields whose name looks secret ([`DEFAULT_REDACTED_FIELDS`]) | `event_data.<name>` = [`REDACTED`] | string |
//!
//! ## Spans
//!
//! Spans named in [`Builder::capture_spans`] (by default [`DEFAULT_CAPTURED_SPANS`]:
//! `http.request` and `queue.state_change`) become one `GENERIC_EVENT` each when they close,
//! if they belong to the session. Other spans are not captured; they only carry
//! `session_id` to what happens inside them, wherever they are entered (other threads,
//! futures instrumented with [`tracing::Instrument`]). The nearest `session_id` wins: the
//! event's own, then its span's, then that span's ancestors'. Under a per-layer filter, the
//! spans that carry `session_id` must pass the filter for their events to be captured.
//!
//! | span data | wire field |
//! |---|---|
//! | span name | `event_name` |
//! | fields given at creation or with `Span::record` | `event_data.<name>`, typed as for events |
//! | time from creation to close | `event_data.duration_ms` (float) |
//! | `http.request`: `method` or `http.request.method` | `event_data.method` |
//! | `http.request`: `path`, `url.path`, `http.route` | `event_data.path`, query string removed |
//! | `http.request`: `url`, `url.full` | `event_data.url` without credentials or query, and its `path` |
//! | `http.request`: `status`, `http.response.status_code` (number or digits) | `event_data.status` (number) |
//! | `http.request` severity | `ERROR` for status ≥ 500 or an `error`/`exception` field, `WARNING` for other 4xx, else `INFO` |
//! | `queue.state_change` (span, or event with that `name:` or `event_name`) severity | `WARNING` when `to` is `paused_rate_limit` or `paused_capacity`, else `INFO` |
//! | other captured spans' severity | from the span's level |
//!
//! One bad value never makes a batch unsendable: a string or `Debug` output longer than
//! [`MAX_VALUE_BYTES`] is cut at a character boundary and ends with [`TRUNCATION_MARKER`],
//! an event keeps at most [`MAX_EVENT_TEXT_BYTES`] of text and [`MAX_FIELDS`] fields, and an
//! event that would still serialize past [`MAX_EVENT_BYTES`] is sent with its payload
//! replaced by an `_elided` marker. A request body therefore stays under
//! `max_batch_size × MAX_EVENT_BYTES + 512` bytes (for a UUID session id).
//!
//! # Configuration
//!
//! Every [`Builder`] setter documents its default (the `DEFAULT_*` constants).
//! `TINKER_API_KEY`, `TINKER_BASE_URL` and `TINKER_TELEMETRY` (`0`, `false`, `no`, `off`
//! disable) fill in what the builder leaves unset; builder settings win. When disabled,
//! `build()` starts no thread and opens no socket, and the layer and handle do nothing.
//!
//! # Delivery
//!
//! Events wait in per-thread lanes, bounded together by `max_queue_size`; memory is taken as
//! they fill and given back once a lane has been idle for a few seconds. Each thread's events
//! keep their order (`event_session_index` follows it).
//! The uploader sends every `flush_interval`, and at once when `flush_threshold` events wait
//! (even while other requests are in flight), in batches of up to `max_batch_size`, with up
//! to `max_in_flight` requests at once.
//! SESSION_START goes first and alone; SESSION_END goes last, once everything before it is
//! settled. Network errors, timeouts, 408, 429 and 5xx are retried up to `max_retries` times
//! with exponential backoff from `retry_base_delay` plus up to 10 % jitter, or after the
//! server's `Retry-After` (capped at [`RETRY_AFTER_CAP`]); a 413 splits the batch; other
//! statuses are final. A shutdown cuts any backoff short and makes at most one further
//! attempt per batch, within `flush_timeout`. Every event's fate is counted in [`Stats`];
//! `RELIABILITY.md` lists each guarantee with the test that proves it.
//!
//! # Exceptions and panics
//!
//! Errors are `std::error::Error` values with their `source()` chains:
//!
//! | entry point | what it does |
//! |---|---|
//! | [`TelemetryHandle::log_exception`] | queues one event and asks for a send; never blocks |
//! | [`TelemetryHandle::log_fatal_exception`] (and `_async`) | the event, SESSION_END (once per session), then a drain bounded by `flush_timeout` |
//! | [`TelemetryHandle::capture`], `capture_fatal`, `capture_with_severity` | run a closure; log its `Err` and return it unchanged; report a panic, wait for its delivery, and resume it |
//! | [`TelemetryHandle::capture_async`], [`CaptureExt`] | the same for futures (the wait never blocks the executor) |
//! | `tracing::error!(error = &err as &dyn Error, "…")` in the session | the same event as `log_exception`, with the message as context |
//! | [`TelemetryHandle::install_panic_hook`] | a panic on any thread: UNHANDLED_EXCEPTION `CRITICAL` with payload, location, thread and backtrace, and a wait (at most `flush_timeout`) until it is delivered; then the previous hook |
//!
//! A panic that unwinds may be survived (a joined thread, a tokio task, `catch_unwind`), so
//! it does not end the session: later events are sent, and SESSION_END comes once, when the
//! guard drops. Only in a program built with `panic = "abort"`, where nothing survives a
//! panic, does the hook also end the session and drain before the process aborts. The hook
//! is installed once per process, whatever number of reporters register with it; it holds
//! them weakly and reports each panic into every registered session that is still open. A
//! panic that both the hook and a capture helper see is reported once.
//!
//! An error is a *user error* when it or a cause carries an HTTP status in 400..=499 other
//! than 408 and 429 ([`is_user_error`]; `reqwest::Error`, [`HttpError`], types registered with
//! [`Builder::status_error`], or a rule given to [`Builder::user_error_classifier`]). A user
//! error is sent as a `GENERIC_EVENT` named `user_error` (`WARNING`, `event_data` with
//! `error_type`, `message`, `status_code`, `body`); any other error as an
//! `UNHANDLED_EXCEPTION` with `error_type` (the type name without module path),
//! `error_message` (its `Display`) and `traceback` (the cause chain, one per line, plus a
//! backtrace when `RUST_BACKTRACE` asks for one).
//!
//! ```
//! use tinker_telemetry::{HttpError, Severity, TinkerTelemetryLayer};
//!
//! let (_layer, guard) = TinkerTelemetryLayer::builder().session_id("s").enabled(false).build()?;
//! let handle = guard.handle();
//! handle.install_panic_hook();
//! let result = handle.capture(|| Err::<(), _>(HttpError::new(422, "bad learning rate")));
//! assert!(result.is_err()); // logged as a user_error, returned unchanged
//! # Ok::<(), tinker_telemetry::BuildError>(())
//! ```
//!
//! # Feedback loops
//!
//! The uploader's thread, and every thread its runtime starts, runs under
//! [`tracing::subscriber::NoSubscriber`]: the HTTP client's own tracing output never reaches
//! any subscriber, so it can neither be captured nor cause more requests. The layer emits no
//! tracing events itself and filters nothing for other layers.
//!
//! # Feature flags and MSRV
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `signals` | off | `TelemetryHandle::install_signal_handlers`: SIGINT and SIGTERM end the session and drain (at most `flush_timeout`), then the signal's default action ends the process (Unix; adds `signal-hook`) |
//!
//! The minimum supported Rust version is 1.85 (edition 2024); CI checks that no dependency
//! asks for a newer one.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod api;
mod capture;
mod config;
mod delivery;
mod errors;
mod handoff;
mod limits;
mod severity;
mod urls;

pub use api::future::{CaptureExt, Captured};
pub use api::guard::TelemetryGuard;
pub use api::handle::TelemetryHandle;
pub use api::reporter::ShutdownReport;
pub use capture::layer::TinkerTelemetryLayer;
pub use capture::span::DEFAULT_CAPTURED_SPANS;
pub use config::builder::Builder;
pub use config::defaults::{
    DEFAULT_BASE_URL, DEFAULT_FLUSH_INTERVAL, DEFAULT_FLUSH_THRESHOLD, DEFAULT_FLUSH_TIMEOUT,
    DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_MAX_RETRIES, DEFAULT_MIN_LEVEL, DEFAULT_RETRY_BASE_DELAY, ENV_API_KEY, ENV_BASE_URL, ENV_ENABLED,
    MAX_BATCH_SIZE_LIMIT,
};
pub use delivery::retry::RETRY_AFTER_CAP;
pub use errors::build::BuildError;
pub use errors::classify::{HttpError, HttpStatusError, MAX_CAUSES, is_user_error, is_user_status};
pub use errors::report::ReportableError;
pub use handoff::stats::{Dropped, Stats};
pub use limits::{
    DEFAULT_REDACTED_FIELDS, MAX_EVENT_BYTES, MAX_EVENT_TEXT_BYTES, MAX_FIELDS, MAX_VALUE_BYTES, REDACTED,
    TRUNCATION_MARKER,
};
pub use severity::{ParseSeverityError, Severity};
