//! The [`Builder`]: its options and their defaults, the setters of the capture and delivery
//! options (the analysis's are in `analysis.rs`, the exporters' in `exports.rs`), and
//! `build()`, which checks every option (`check.rs`) and then starts the reporter's parts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tracing::Level;

use super::defaults::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_FLUSH_THRESHOLD, DEFAULT_FLUSH_TIMEOUT, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_OPERATIONS, DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_MAX_QUEUE_SIZE, DEFAULT_MAX_RETRIES, DEFAULT_MIN_LEVEL, DEFAULT_RETRY_BASE_DELAY,
    DEFAULT_SPIKE_THRESHOLD, DEFAULT_SPIKE_WINDOW, DEFAULT_SUMMARY_INTERVAL, SpoolOptions,
};
use crate::analysis::analyzer::{AnalysisConfig, Analyzer};
use crate::analysis::live::Live;
use crate::analysis::sink::Sink;
use crate::analysis::spike::SpikeRule;
use crate::api::guard::TelemetryGuard;
use crate::api::handle::TelemetryHandle;
use crate::capture::layer::{LayerConfig, TinkerTelemetryLayer};
use crate::capture::span::DEFAULT_CAPTURED_SPANS;
use crate::delivery::redact::Redactor;
use crate::delivery::thread;
use crate::delivery::uploader::UploadConfig;
use crate::errors::build::BuildError;
use crate::errors::classify::Classifier;
use crate::errors::status::{HttpStatusError, read_status};
use crate::handoff::Handoff;

/// Configures a [`TinkerTelemetryLayer`]; [`build`](Builder::build) checks everything and
/// starts the uploader.
///
/// Setters never fail; `build()` reports the first bad option by name.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use tinker_telemetry::TinkerTelemetryLayer;
///
/// let (layer, guard) = TinkerTelemetryLayer::builder()
///     .session_id("6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11")
///     .api_key("tml-example")
///     .base_url("http://127.0.0.1:9") // nothing listens there: events are counted as dropped
///     .flush_interval(Duration::from_secs(5))
///     .flush_timeout(Duration::from_millis(200))
///     .build()?;
/// # drop((layer, guard));
/// # Ok::<(), tinker_telemetry::BuildError>(())
/// ```
#[derive(Clone)]
#[must_use = "a Builder does nothing until `build()` is called"]
pub struct Builder {
    pub(super) session_id: Option<String>,
    pub(super) sessionless: bool,
    pub(super) api_key: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) enabled: Option<bool>,
    pub(super) flush_interval: Duration,
    pub(super) flush_threshold: usize,
    pub(super) flush_timeout: Duration,
    pub(super) http_timeout: Duration,
    pub(super) max_retries: u32,
    pub(super) retry_base_delay: Duration,
    pub(super) max_queue_size: usize,
    pub(super) max_queue_bytes: usize,
    pub(super) max_batch_size: usize,
    pub(super) max_in_flight: usize,
    pub(super) min_level: Level,
    pub(super) debug: bool,
    pub(super) redacted_fields: Option<Vec<String>>,
    pub(super) capture_spans: Vec<String>,
    pub(super) classifier: Classifier,
    pub(super) root_certificates: Vec<Vec<u8>>,
    /// Summaries, alerts, summary-only spans (`analysis.rs`).
    pub(super) analysis: AnalysisConfig,
    /// Makes the metrics exporters' sinks, one per reporter (`export/`).
    pub(super) sinks: Vec<SinkFactory>,
    /// Record through the `metrics` facade (`exports.rs`).
    #[cfg(feature = "metrics")]
    pub(super) metrics_facade: bool,
    /// The durable spool's options (`spool_dir` and the rest).
    pub(super) spool: SpoolOptions,
}

/// Makes one [`Sink`] for the uploader thread of a reporter being built.
pub(crate) type SinkFactory = Arc<dyn Fn() -> Box<dyn Sink> + Send + Sync>;

impl TinkerTelemetryLayer {
    /// Starts configuring a layer; see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            session_id: None,
            sessionless: false,
            api_key: None,
            base_url: None,
            enabled: None,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            flush_threshold: DEFAULT_FLUSH_THRESHOLD,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            min_level: DEFAULT_MIN_LEVEL,
            debug: false,
            redacted_fields: None,
            capture_spans: DEFAULT_CAPTURED_SPANS.iter().map(|s| (*s).to_owned()).collect(),
            classifier: Classifier::default(),
            root_certificates: Vec::new(),
            analysis: AnalysisConfig {
                enabled: true,
                summary_interval: DEFAULT_SUMMARY_INTERVAL,
                spike: Some(SpikeRule { threshold: DEFAULT_SPIKE_THRESHOLD, window: DEFAULT_SPIKE_WINDOW }),
                max_operations: DEFAULT_MAX_OPERATIONS,
                summary_only: Vec::new(),
                operation_labels: Vec::new(),
                on_error_spike: None,
                debug: false,
            },
            sinks: Vec::new(),
            #[cfg(feature = "metrics")]
            metrics_facade: true,
            spool: SpoolOptions::default(),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("session_id", &self.session_id)
            .field("sessionless", &self.sessionless)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url.as_deref().map(crate::urls::shown_base_url))
            .field("enabled", &self.enabled)
            .field("flush_interval", &self.flush_interval)
            .field("flush_threshold", &self.flush_threshold)
            .field("flush_timeout", &self.flush_timeout)
            .field("http_timeout", &self.http_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_batch_size", &self.max_batch_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("min_level", &self.min_level)
            .field("debug", &self.debug)
            .field("redacted_fields", &self.redacted_fields)
            .field("capture_spans", &self.capture_spans)
            .field("classifier", &self.classifier)
            // Counted, never shown: a PEM passed by mistake may be a private key.
            .field("root_certificates", &self.root_certificates.len())
            .field("analysis", &self.analysis)
            .field("sinks", &self.sinks.len())
            .field("spool", &self.spool)
            .finish()
    }
}

impl Builder {
    /// The Tinker session this reporter belongs to. Only events whose `session_id` field (on
    /// the event or its nearest enclosing span) equals it are captured. Required unless
    /// [`sessionless`](Builder::sessionless) is used; no default.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Report without a session: the reporter makes up a plain UUID as its session id, sends
    /// no SESSION_START or SESSION_END, and captures every event at or above
    /// [`min_level`](Builder::min_level) whatever its `session_id`. Default: off.
    pub fn sessionless(mut self) -> Self {
        self.sessionless = true;
        self
    }

    /// The API key sent as `X-API-Key`. Default: the `TINKER_API_KEY` environment variable.
    /// Required while telemetry is enabled.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Where the Tinker API lives; events go to `{base_url}/api/v1/telemetry`. Default: the
    /// `TINKER_BASE_URL` environment variable, else [`DEFAULT_BASE_URL`](crate::DEFAULT_BASE_URL). An empty value counts
    /// as unset and a trailing `/` is dropped.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Turns telemetry on or off, overriding `TINKER_TELEMETRY`. Default: on, unless
    /// `TINKER_TELEMETRY` is `0`, `false`, `no` or `off`. When off, `build()` never fails (no
    /// session id, key or URL is needed, and no option is checked), starts no thread and
    /// opens no socket, and every call on the layer and handle is a cheap no-op; register
    /// [`TinkerTelemetryLayer::into_option`] to make the layer cost nothing at all.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// How often whatever is queued is sent. Default: [`DEFAULT_FLUSH_INTERVAL`] (10 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How many queued events make the uploader send at once rather than wait for the
    /// interval. Default: [`DEFAULT_FLUSH_THRESHOLD`] (100).
    pub fn flush_threshold(mut self, events: usize) -> Self {
        self.flush_threshold = events;
        self
    }

    /// How long dropping the guard (or [`TelemetryGuard::shutdown`], or a fatal error) may
    /// wait for queued events to be sent. Default: [`DEFAULT_FLUSH_TIMEOUT`] (30 s).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Time limit of one HTTP request, from connecting to the end of the response. Default:
    /// [`DEFAULT_HTTP_TIMEOUT`] (5 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// How many times a batch is sent again after a network error, a timeout, 408, 429 or
    /// 5xx. Default: [`DEFAULT_MAX_RETRIES`] (3); 0 disables retries.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first retry's delay; each further retry doubles it, plus up to 10 % jitter. A
    /// `Retry-After` header (capped at 60 s) replaces it. Default:
    /// [`DEFAULT_RETRY_BASE_DELAY`] (1 s).
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry_base_delay = delay;
        self
    }

    /// Most events waiting to be sent; events captured while it is full are dropped, counted,
    /// and reported to the server as a `telemetry.dropped` event. Memory is taken as the queue
    /// fills, not up front. Default: [`DEFAULT_MAX_QUEUE_SIZE`] (10,000).
    pub fn max_queue_size(mut self, events: usize) -> Self {
        self.max_queue_size = events;
        self
    }

    /// Most bytes of event payload waiting to be sent: what queued events' fields and text
    /// hold until the uploader takes them, then their JSON until the server answers
    /// ([`Stats::queued_bytes`](crate::Stats::queued_bytes)). Events captured once it is
    /// reached are dropped and counted as a full queue, like those past
    /// [`max_queue_size`](Builder::max_queue_size); a fatal error's or panic's event is kept
    /// past it, and an event's JSON may add its envelope (under 256 bytes) to what it was
    /// admitted with. Memory for waiting events therefore stays under `max_queue_bytes`
    /// plus about 256 bytes per queued event. At least
    /// [`MAX_EVENT_BYTES`](crate::MAX_EVENT_BYTES). Default:
    /// [`DEFAULT_MAX_QUEUE_BYTES`](crate::DEFAULT_MAX_QUEUE_BYTES) (32 MiB).
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Most events in one request, 1 to [`MAX_BATCH_SIZE_LIMIT`](crate::MAX_BATCH_SIZE_LIMIT). Default:
    /// [`DEFAULT_MAX_BATCH_SIZE`] (100).
    pub fn max_batch_size(mut self, events: usize) -> Self {
        self.max_batch_size = events;
        self
    }

    /// Most requests under way at once. Default: [`DEFAULT_MAX_IN_FLIGHT`] (4). The server
    /// orders events by `event_session_index`, so their arrival order does not matter;
    /// SESSION_START is always sent first and SESSION_END last.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// The least severe tracing level captured. Default: [`DEFAULT_MIN_LEVEL`] (`INFO`).
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Prints one line on stderr for every request payload the uploader settles: its events
    /// and bytes, whether it was delivered or dropped (and why), its retries and the last
    /// error in words; and, once per reporter, a line the first time an HTTP span carries no
    /// path (its route is `_unknown`), naming the fix. Written straight to stderr, never
    /// through tracing, so it cannot feed back into the layer; the API key never appears in
    /// it. For finding out why telemetry
    /// does not arrive (a wrong key, TLS, a proxy); see also
    /// [`TelemetryHandle::last_delivery_error`](crate::TelemetryHandle::last_delivery_error).
    /// Default: off.
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Trusts the certificates in `pem` as roots for an `https://` [`base_url`](Builder::base_url),
    /// besides the bundled Mozilla roots (and, with the `platform-roots` feature, the
    /// platform's store): for a server whose certificate comes from a private CA, or a network
    /// that inspects TLS with its own. `pem` holds one or more `BEGIN CERTIFICATE` sections;
    /// other sections (a key) are skipped. Each call adds to the roots of the calls before.
    /// `build()` refuses a PEM without a certificate, or whose certificate does not parse,
    /// with a [`BuildError`] naming `root_certificate` that never quotes the PEM. Default: none
    /// added.
    ///
    /// # Examples
    /// ```no_run
    /// let pem = std::fs::read("/etc/ssl/private-ca.pem")?;
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().root_certificate(pem);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Field names whose values are sent as `[REDACTED]`: a field is redacted when the words of
    /// its name contain the words of one of these (`token` matches `access_token` and
    /// `X-Auth-Token`, not `max_tokens`), ignoring case. Replaces the default list,
    /// [`DEFAULT_REDACTED_FIELDS`](crate::DEFAULT_REDACTED_FIELDS); an empty list turns
    /// redaction off.
    pub fn redacted_fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redacted_fields = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Span names that become events when they close: one `GENERIC_EVENT` named after the
    /// span, with the span's fields (given at creation or recorded later) and `duration_ms`,
    /// for spans of the session, whatever their level. A captured span with an HTTP method
    /// field (`method`, `http.request.method`) is sent as `http.request` in its one shape.
    /// The HTTP instrumentation the crate docs list (reqwest-tracing, tower-http, the
    /// OpenTelemetry conventions) is captured whatever this says. Replaces the default list,
    /// [`DEFAULT_CAPTURED_SPANS`](crate::DEFAULT_CAPTURED_SPANS) (`http.request` and
    /// `queue.state_change`); include those names to keep them, or add one name at a time
    /// with [`capture_span`](Builder::capture_span).
    ///
    /// # Examples
    /// ```
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder()
    ///     .capture_spans(["http.request", "queue.state_change", "checkpoint.save"]);
    /// ```
    pub fn capture_spans<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capture_spans = names.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one span name to those captured (see [`capture_spans`](Builder::capture_spans)),
    /// keeping the others. Default: the list holds
    /// [`DEFAULT_CAPTURED_SPANS`](crate::DEFAULT_CAPTURED_SPANS).
    ///
    /// # Examples
    /// ```
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().capture_span("checkpoint.save");
    /// ```
    pub fn capture_span(mut self, name: impl Into<String>) -> Self {
        self.capture_spans.push(name.into());
        self
    }

    /// Recognises errors of type `E` as carrying an HTTP status (and maybe a body), so that
    /// a 4xx among an error's causes makes a `user_error` event. `reqwest::Error` and
    /// [`HttpError`](crate::HttpError) are recognised without this. Default: none.
    ///
    /// # Examples
    /// ```
    /// # #[derive(Debug)] struct ApiError(u16);
    /// # impl std::fmt::Display for ApiError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) } }
    /// # impl std::error::Error for ApiError {}
    /// impl tinker_telemetry::HttpStatusError for ApiError {
    ///     fn status_code(&self) -> Option<u16> { Some(self.0) }
    /// }
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().status_error::<ApiError>();
    /// ```
    pub fn status_error<E>(mut self) -> Self
    where
        E: HttpStatusError + std::error::Error + 'static,
    {
        self.classifier.readers.push(Arc::new(read_status::<E>));
        self
    }

    /// Reads an HTTP status off errors with a closure, asked about the error and each of its
    /// causes: for error types from other crates, which the orphan rule keeps you from
    /// implementing [`HttpStatusError`](crate::HttpStatusError) for. A 4xx it returns (other
    /// than 408 and 429) makes a `user_error` event. Default: none.
    ///
    /// # Examples
    /// ```
    /// // An error type of another crate that keeps its status in a method of its own.
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder().status_error_with(|err| {
    ///     err.downcast_ref::<std::io::Error>()
    ///         .filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    ///         .map(|_| 403)
    /// });
    /// ```
    pub fn status_error_with<F>(mut self, status: F) -> Self
    where
        F: Fn(&(dyn std::error::Error + 'static)) -> Option<u16> + Send + Sync + 'static,
    {
        self.classifier.readers.push(Arc::new(move |err| status(err).map(|code| (code, None))));
        self
    }

    /// A rule of your own for user errors, asked about the error and each of its causes
    /// (nearest first) before the status rule: `Some(true)` makes it a user error,
    /// `Some(false)` makes it not one, `None` leaves the decision to the status rule.
    /// Default: none.
    ///
    /// # Examples
    /// ```
    /// let builder = tinker_telemetry::TinkerTelemetryLayer::builder()
    ///     .user_error_classifier(|err| err.is::<std::num::ParseIntError>().then_some(true));
    /// ```
    pub fn user_error_classifier<F>(mut self, rule: F) -> Self
    where
        F: Fn(&(dyn std::error::Error + 'static)) -> Option<bool> + Send + Sync + 'static,
    {
        self.classifier.custom = Some(Arc::new(rule));
        self
    }

    /// Checks the configuration and, when telemetry is enabled, starts the uploader thread.
    ///
    /// Returns the layer to register with a `tracing_subscriber::Registry` and the guard to
    /// hold until the program ends. Bind the guard to a name (`_guard`, not `_`): dropped at
    /// once, it ends the session before anything is captured.
    ///
    /// # Errors
    /// Never while telemetry is disabled. While enabled, a [`BuildError`] naming the option
    /// when: no `session_id` was given (and not
    /// `sessionless`); no API key is set while enabled, or it cannot be sent as a header;
    /// `base_url` does not parse as an `http` or `https` URL, or is plain `http` to a host that
    /// is not loopback while an API key would be sent; a size, count or interval is zero;
    /// `max_batch_size` exceeds [`MAX_BATCH_SIZE_LIMIT`](crate::MAX_BATCH_SIZE_LIMIT) or `max_queue_size`;
    /// `flush_threshold` exceeds `max_queue_size`; a `root_certificate` PEM holds no
    /// certificate or one that does not parse; an `operation_label` is empty, given twice,
    /// a field every operation has, or a redacted field. Also when the uploader thread or its HTTP
    /// client cannot be started.
    pub fn build(self) -> Result<(TinkerTelemetryLayer, TelemetryGuard), BuildError> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    pub(crate) fn build_with_env(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(TinkerTelemetryLayer, TelemetryGuard), BuildError> {
        let checked = self.check(env)?;
        if !checked.enabled {
            let handle = TelemetryHandle::disabled(checked.session_id);
            return Ok((TinkerTelemetryLayer::disabled(), TelemetryGuard::disabled(handle)));
        }
        let layer_config = self.layer_config(&checked.session_id);
        let (handoff, control) = Handoff::new(
            self.max_queue_size,
            self.max_queue_bytes,
            self.flush_threshold,
            checked.session_id.into(),
            self.sessionless,
        );
        let handoff = Arc::new(handoff);
        crate::handoff::clock::calibrate_in_background();
        handoff.push_session_start();
        let flush_timeout = self.flush_timeout;
        let live = Arc::new(Live::default());
        let analyzer = self.analyzer(&live)?;
        let spool = crate::delivery::spooling::open_or_off(
            checked.spool.as_ref(),
            &checked.endpoint,
            &handoff,
            self.debug,
        );
        let mut config = self.upload_config(checked.endpoint, checked.api_key.unwrap_or_default());
        config.spool = spool;
        let thread = thread::start(config, checked.roots, Arc::clone(&handoff), control, analyzer)?;
        let handle = TelemetryHandle::enabled(
            Arc::clone(&handoff),
            flush_timeout,
            Arc::clone(&layer_config.classifier),
            live,
        );
        let layer = TinkerTelemetryLayer::enabled(layer_config, handoff);
        Ok((layer, TelemetryGuard::enabled(handle, thread)))
    }

    /// What the layer needs on the emitting threads.
    fn layer_config(&self, session_id: &str) -> LayerConfig {
        LayerConfig {
            session_id: session_id.into(),
            sessionless: self.sessionless,
            min_level: self.min_level,
            capture_spans: self
                .capture_spans
                .iter()
                .map(String::as_str)
                .chain(self.analysis.summary_only.iter().map(|s| &**s))
                .map(Into::into)
                .collect(),
            classifier: Arc::new(self.classifier.clone()),
        }
    }

    /// The analyzer with its sinks (the exporters' and, with the `metrics` feature, the
    /// facade's), publishing to `live`; starts the error-spike callback's thread.
    fn analyzer(&self, live: &Arc<Live>) -> Result<Analyzer, BuildError> {
        #[cfg_attr(
            not(feature = "metrics"),
            expect(unused_mut, reason = "the facade's sink is the only addition")
        )]
        let mut sinks: Vec<Box<dyn Sink>> = self.sinks.iter().map(|make| make()).collect();
        #[cfg(feature = "metrics")]
        if self.metrics_facade {
            sinks.push(Box::new(crate::export::metrics::MetricsSink::default()));
        }
        // The runtime `build()` runs in, if any, is measured in the summaries; without
        // summaries nothing reads it.
        let runtime = tokio::runtime::Handle::try_current().ok().filter(|_| self.analysis.enabled);
        let analysis = AnalysisConfig { debug: self.debug, ..self.analysis.clone() };
        Analyzer::new(analysis, sinks, runtime, live).map_err(BuildError::Runtime)
    }

    /// What the uploader thread needs.
    fn upload_config(self, endpoint: reqwest::Url, api_key: String) -> UploadConfig {
        let redactor = match self.redacted_fields {
            Some(names) => Redactor::new(names),
            None => Redactor::default(),
        };
        UploadConfig {
            endpoint,
            api_key,
            flush_interval: self.flush_interval,
            http_timeout: self.http_timeout,
            max_retries: self.max_retries,
            retry_base_delay: self.retry_base_delay,
            max_batch_size: self.max_batch_size,
            flush_threshold: self.flush_threshold,
            max_in_flight: self.max_in_flight,
            redactor,
            debug: self.debug,
            spool: None,
        }
    }
}
