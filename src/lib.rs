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
//! program ends, bound to a name: `let (layer, _) = builder.build()?` drops it at once and
//! ends the session before anything is captured (`let (layer, _guard) = …` keeps it).
//! Dropping it (or calling [`TelemetryGuard::shutdown`]) enqueues SESSION_END, flushes, and
//! blocks its thread until the queue is drained or `flush_timeout` (30 s by default) has
//! passed, plus at most 200 ms for the uploader's bookkeeping and its thread's exit. It
//! works from a plain `main`, inside a current-thread or multi-thread tokio runtime, and
//! during a panic unwind, because the uploader runs on a thread of its own with its own
//! runtime; dropped on a runtime's thread it blocks that thread (on a current-thread runtime,
//! every task) for that long. Capturing an event never blocks; what can block is the end of
//! a session: the guard's drop, [`TelemetryHandle::wait_until_drained`], the fatal path and
//! the panic hook, each bounded by `flush_timeout` (a fatal path's drain and the guard's
//! drop that follows it each have their own bound). A
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
//! A process forked from the one that built a reporter inherits the guard and handles but
//! not the uploader thread: there nothing is sent, and every call that would wait for the
//! uploader (the guard's drop, `shutdown`, `wait_until_drained`, the fatal path, the panic
//! hook) returns at once.
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
//! | the enclosing span's name (when none of the above; e.g. the `#[instrument]`ed function) | `event_name` | string |
//! | `log.*` fields of a `log` record bridged by tracing-log | left out | |
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
//! `http.request` and `queue.state_change`; [`Builder::capture_span`] adds one) and the spans
//! of the ecosystem's HTTP instrumentation become one `GENERIC_EVENT` each when they close, if
//! they belong to the session, whatever their level. Other spans are not captured; they only
//! carry `session_id` to what happens inside them, wherever they are entered (other threads,
//! futures instrumented with [`tracing::Instrument`]). The nearest `session_id` wins: the
//! event's own, then its span's, then that span's ancestors'. Under a per-layer filter, the
//! spans that carry `session_id` must pass the filter for their events to be captured; a
//! global filter (`EnvFilter` or a level on the registry) that disables a span hides it from
//! every layer, this one included: to keep tower-http's DEBUG `request` span while printing
//! only INFO, give the filter to the printing layer (`fmt::layer().with_filter(…)`), not to
//! the registry.
//!
//! HTTP instrumentation recognised with no configuration:
//!
//! | instrumentation | span | its fields that are read |
//! |---|---|---|
//! | reqwest-tracing 0.7 (reqwest 0.13) and 0.5 (reqwest 0.12), default backend and `SpanBackendWithUrl` | `HTTP request` (INFO) | `http.request.method`, `server.address`, `http.response.status_code`, `error.message`, `url.full` (with the URL backend) |
//! | tower-http `TraceLayer` (server side; its status and failure arrive in events inside the span) | `request` (DEBUG) | `method`, `uri`; the response event's `status`, the failure event's `classification` |
//! | anything that follows the OpenTelemetry HTTP conventions | any name with `http.request.method` (or `http.method`) and `otel.kind` | as above, plus `url.path`, `http.route` |
//!
//! Each becomes an `http.request` event in one shape:
//!
//! | span data | wire field |
//! |---|---|
//! | span name (`http.request` for any HTTP span) | `event_name` |
//! | fields given at creation or with `Span::record` | `event_data.<name>`, typed as for events |
//! | time from creation to close | `event_data.duration_ms` (float) |
//! | `method`, `http.request.method`, `http.method` | `event_data.method` |
//! | `status`, `http.response.status_code`, `http.status_code` (number or digits) | `event_data.status` (number) |
//! | `host`, `server.address`, `http.host`, or the host of the URL | `event_data.host`, without a `user:password@` prefix |
//! | `port`, `server.port`, `net.peer.port` (number or digits, 1 to 65535), or the URL's port (the scheme's default when it names none) | `event_data.port` (number) |
//! | `path`, `url.path`, `http.target`, or the path of the URL or `uri` | `event_data.path`, query string removed |
//! | `route`, `http.route` | `event_data.route` |
//! | `error`, `error.message`, `exception.message`, tower-http's `classification` | `event_data.error`, URLs in it without credentials or query |
//! | `url`, `url.full`, `http.url` | `event_data.url` without credentials or query, for the program's own `http.request` spans; left out for instrumentation's (its host and path are sent) |
//! | `otel.*`, `url.scheme`, `net.host.port`, a port of 0 or not a number, `version`, `error.cause_chain`, `latency`, empty user agents | left out |
//! | HTTP severity, whatever `otel.status_code` says | `ERROR` for status ≥ 500 or an `error` (or `exception`, `error.type`) field, `WARNING` for other 4xx, else `INFO` |
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
//! ## TLS, proxies, redirects
//!
//! The uploader speaks HTTP/1.1 through reqwest 0.13 over rustls, with the crypto provider the
//! program installed as the process default, else aws-lc-rs. It trusts the Mozilla root store
//! bundled with the crate (`webpki-root-certs`), so it behaves the same on every machine,
//! containers without a CA bundle included, and the roots added with
//! [`Builder::root_certificate`] (a private CA, or a network that inspects TLS with its own).
//! The `platform-roots` feature trusts the platform's store as well, through the platform's
//! verifier (rustls-platform-verifier: the keychain on macOS, the certificate store on
//! Windows, on Linux the bundle `SSL_CERT_FILE` or `SSL_CERT_DIR` names, else the
//! distribution's). The handshake is part of the request, bounded by `http_timeout`. A
//! certificate the client refuses is a network failure: retried, then dropped and counted,
//! and [`TelemetryHandle::last_delivery_error`] says why ("TLS: invalid peer certificate:
//! UnknownIssuer"); no request, and so no API key, is ever written on such a connection.
//!
//! An `https://` endpoint honours `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (and, on Windows
//! and macOS, the system's proxy settings) through a `CONNECT` tunnel; a loopback endpoint is
//! never reached through a proxy. Redirects are never followed, and reqwest's own retries are
//! off: each attempt the crate counts is one request.
//!
//! # Delivery
//!
//! Events wait in per-thread lanes, bounded together by `max_queue_size` events and
//! `max_queue_bytes` of payload; memory is taken as they fill and given back once a lane has
//! been idle for a few seconds. Each thread's events keep their order (`event_session_index`
//! follows it).
//! The uploader sends every `flush_interval`, and at once when `flush_threshold` events wait
//! (even while other requests are in flight), in batches of up to `max_batch_size`, with up
//! to `max_in_flight` requests at once.
//! SESSION_START goes first and alone; SESSION_END goes last, once everything before it is
//! settled. Network errors, timeouts, 408, 429 and 5xx are retried up to `max_retries` times
//! with exponential backoff from `retry_base_delay` plus up to 10 % jitter, or after the
//! server's `Retry-After` (capped at [`RETRY_AFTER_CAP`]); a `Retry-After` on a 429 or 503
//! pauses every request until it passes. A 413 splits the batch; other statuses are final.
//!
//! At shutdown (the guard's drop, [`TelemetryGuard::shutdown`], the fatal path) the drain
//! goes on retrying with the same backoff and retry budget for as long as an attempt can
//! start before the deadline, `flush_timeout` from the start of the shutdown. A backoff that
//! would end past the deadline is shortened to one last attempt that starts just before it
//! (up to a second before, or `http_timeout` when that is shorter); a server's `Retry-After`
//! is never shortened: a batch it would push past the deadline is left unsent and counted.
//! Whatever was lost before SESSION_END (a full queue, refusals, exhausted retries) is
//! reported to the server in a `telemetry.dropped` event just before it. Every event's fate
//! is counted in [`Stats`]; `RELIABILITY.md` lists each guarantee with the test that proves
//! it.
//!
//! ## The spool
//!
//! With [`Builder::spool_dir`] (or `TINKER_TELEMETRY_SPOOL_DIR`), off by default, nothing is
//! lost when the process dies: every event captured at least `spool_interval` before the
//! process dies, or still unsent when the drain's deadline passes, is delivered by the next
//! process that opens the same directory, at least once, with its `event_id`, its session and,
//! for a batch already tried, its idempotency key. The uploader thread writes and reads the
//! spool's files (one per batch, checksummed); the emitting threads never touch the disk.
//! [`Stats::spool`] counts what was spooled, replayed and dropped from it; `RELIABILITY.md`
//! has the failure table.
//!
//! When telemetry does not arrive, [`TelemetryHandle::last_delivery_error`] says why in words
//! ("401 from the server: the API key was rejected", "TLS: invalid peer certificate: …",
//! "connect: connection refused"), and [`Builder::debug`] prints one line per request payload
//! on stderr (events, bytes, outcome, retries, last error). Neither goes through tracing, so
//! neither can feed back into the layer, and neither shows the API key.
//!
//! # Summaries and alerts
//!
//! Every captured span is an *operation*, keyed by its name, its method and its route
//! template (the span's `route`, else its path with id-like segments replaced by `{id}` and
//! the query left out); a status of 400 or more, an `error`, `error.type` or `error_type`
//! field, or the `ERROR` level makes it a failure, counted inside its operation. At most [`Builder::max_operations`] keys are
//! kept; later ones count under `_other`. The uploader thread does this as it takes the
//! records, so the emitting threads pay nothing for it.
//!
//! - Every [`Builder::summary_interval`] in which operations happened, and once more before
//!   SESSION_END, a `performance.summary` event (INFO): per operation its count, errors,
//!   error rate, mean, p50, p95, p99 (within [`QUANTILE_RELATIVE_ERROR`]) and largest
//!   duration in milliseconds, the session's ten most used operations (`top`), and the
//!   process's resident memory, CPU time and threads (`process`, Linux), with the workers,
//!   live tasks and run-queue depth of the tokio runtime `build()` was called in
//!   (`process.tokio`).
//! - When one operation fails [`Builder::error_spike`]'s threshold times within its sliding
//!   window, an `alert.error_spike` event (ERROR) with the operation, the error count, the
//!   window, the first error's time and the count of each error type; then none for that
//!   operation until a window has passed.
//! - [`Builder::summary_only`] names spans counted in the summaries instead of sent one event
//!   each ([`Stats::summarized`]).
//! - The program reads the same numbers while it runs: [`TelemetryHandle::operations`] (per
//!   operation, the last window's and the session's, as of the uploader's last take),
//!   [`TelemetryHandle::usage`] (the most used operations and the totals), and
//!   [`Builder::on_error_spike`] calls back with each spike on a thread of its own.
//!   [`Builder::operation_label`] adds a span field of the program's choosing to the key.
//! - With the `metrics` or `opentelemetry` feature, every operation and the uploader's
//!   counters are recorded as metrics named after the OpenTelemetry HTTP conventions
//!   (`http.client.request.duration` in seconds, with [`DURATION_BUCKETS`] as bounds); the
//!   repository's `dashboards/` has a Grafana dashboard and Prometheus alerting rules for
//!   them.
//!
//! ```
//! use std::time::Duration;
//! let builder = tinker_telemetry::TinkerTelemetryLayer::builder()
//!     .summary_interval(Duration::from_secs(30))
//!     .error_spike(10, Duration::from_secs(60))
//!     .summary_only(["http.request"]);
//! ```
//!
//! # Exceptions and panics
//!
//! Errors are what applications carry ([`ReportableError`]): any `std::error::Error` value,
//! `dyn Error` and `Box<dyn Error>` (with or without `Send + Sync`), `anyhow::Error` and, with
//! the `eyre` feature, `eyre::Report`, each with its `source()` chain:
//!
//! | entry point | what it does |
//! |---|---|
//! | [`TelemetryHandle::log_exception`] | queues one event and asks for a send; never blocks |
//! | [`TelemetryHandle::log_fatal_exception`] (and `_async`) | the event, SESSION_END (once per session), then a drain bounded by `flush_timeout` |
//! | [`TelemetryHandle::capture`], `capture_fatal`, `capture_with_severity` | run a closure; log its `Err` and return it unchanged; report a panic, wait for its delivery, and resume it |
//! | [`TelemetryHandle::capture_async`], [`CaptureExt`] | the same for futures (the wait never blocks the executor) |
//! | `tracing::error!(error = &err as &dyn Error, "…")` in the session | the same event as `log_exception`, with the message as context (the event's other fields are not sent) |
//! | `#[tracing::instrument(err)]` returning `Err` in the session | UNHANDLED_EXCEPTION with the error's text as `error_message`, `error_type` `Error` (only the text is recorded), `traceback` `in <function>` |
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
//! than 408 and 429 ([`is_user_error`]; `reqwest::Error` of reqwest 0.13, and of 0.12 with the
//! `reqwest-0-12` feature, [`HttpError`], types registered with
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
//! | `anyhow` | on | [`ReportableError`] for `anyhow::Error`: every exception helper takes it |
//! | `eyre` | off | [`ReportableError`] for `eyre::Report` |
//! | `signals` | off | `TelemetryHandle::install_signal_handlers`: SIGINT and SIGTERM end the session and drain (at most `flush_timeout`), then the signal's default action ends the process (Unix; adds `signal-hook`) |
//! | `reqwest-0-13` | on | user errors read from reqwest 0.13's `reqwest::Error` (the crate sends with reqwest 0.13 whatever this says) |
//! | `reqwest-0-12` | off | user errors read from reqwest 0.12's `reqwest::Error`; pulls reqwest 0.12 without default features |
//! | `platform-roots` | off | trust the platform's certificate store and verifier besides the bundled Mozilla roots |
//! | `metrics` | off | every operation and the delivery counters recorded through the `metrics` 0.24 facade, into the recorder the program installs (`Builder::metrics` lists the metrics) |
//! | `opentelemetry` | off | the same through a meter of the `MeterProvider` given to `Builder::meter_provider` (opentelemetry 0.33) |
//!
//! The TLS stack (rustls with aws-lc-rs) needs a C compiler to build, as ring did before; on
//! Linux, no cmake.
//!
//! The minimum supported Rust version is 1.85 (edition 2024), as for reqwest 0.13; CI checks
//! that no dependency asks for a newer one.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod analysis;
mod api;
mod capture;
mod config;
mod delivery;
mod errors;
mod export;
mod handoff;
mod limits;
mod severity;
mod spool;
mod status_class;
mod urls;

#[doc(hidden)]
pub use analysis::bench::AnalysisBench;
pub use analysis::histogram::QUANTILE_RELATIVE_ERROR;
pub use analysis::notify::SpikeCalls;
pub use analysis::report::{
    ErrorSpike, ErrorTypeCount, OperationKey, OperationNumbers, OperationStats, OperationsSnapshot,
    UsageReport,
};
pub use api::future::{CaptureExt, Captured};
pub use api::guard::TelemetryGuard;
pub use api::handle::TelemetryHandle;
pub use api::reporter::ShutdownReport;
pub use capture::layer::TinkerTelemetryLayer;
pub use capture::span::DEFAULT_CAPTURED_SPANS;
pub use config::builder::Builder;
pub use config::defaults::{
    DEFAULT_BASE_URL, DEFAULT_FLUSH_INTERVAL, DEFAULT_FLUSH_THRESHOLD, DEFAULT_FLUSH_TIMEOUT,
    DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_OPERATIONS,
    DEFAULT_MAX_QUEUE_BYTES, DEFAULT_MAX_QUEUE_SIZE, DEFAULT_MAX_RETRIES, DEFAULT_MIN_LEVEL,
    DEFAULT_RETRY_BASE_DELAY, DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW, DEFAULT_SPOOL_INTERVAL,
    DEFAULT_SPOOL_MAX_AGE, DEFAULT_SPOOL_MAX_BYTES, DEFAULT_SUMMARY_INTERVAL, ENV_API_KEY, ENV_BASE_URL,
    ENV_ENABLED, ENV_SPOOL_DIR, MAX_BATCH_SIZE_LIMIT,
};
pub use delivery::retry::RETRY_AFTER_CAP;
pub use errors::build::BuildError;
pub use errors::classify::{MAX_CAUSES, is_user_error, is_user_status};
pub use errors::reportable::{ReportableError, kinds};
pub use errors::status::{HttpError, HttpStatusError};
#[doc(hidden)]
#[cfg(any(feature = "metrics", feature = "opentelemetry"))]
pub use export::bench::ExportBench;
pub use export::names::DURATION_BUCKETS;
pub use handoff::stats::{
    DeliveryError, DeliveryErrorKind, DropReason, Dropped, Retried, RetryCause, SpoolDropReason,
    SpoolDropped, SpoolStats, Stats,
};
pub use limits::{
    DEFAULT_REDACTED_FIELDS, MAX_EVENT_BYTES, MAX_EVENT_TEXT_BYTES, MAX_FIELDS, MAX_VALUE_BYTES, REDACTED,
    TRUNCATION_MARKER,
};
pub use severity::{ParseSeverityError, Severity};
pub use spool::SpoolSync;
