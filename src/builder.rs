//! Configuration: the [`Builder`], its defaults, and the validation `build()` does.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tracing::Level;

use crate::api::guard::TelemetryGuard;
use crate::api::handle::TelemetryHandle;
use crate::capture::layer::{LayerConfig, TinkerTelemetryLayer};
use crate::capture::span::DEFAULT_CAPTURED_SPANS;
use crate::delivery::redact::Redactor;
use crate::delivery::thread;
use crate::delivery::uploader::UploadConfig;
use crate::errors::build::BuildError;
use crate::errors::classify::{Classifier, HttpStatusError, read_status};
use crate::handoff::Handoff;

/// The production endpoint's base URL, used when neither the builder nor `TINKER_BASE_URL`
/// gives one.
pub const DEFAULT_BASE_URL: &str = "https://tinker.thinkingmachines.dev/services/tinker-prod";
/// Default for [`Builder::flush_interval`]: 10 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default for [`Builder::flush_threshold`]: 100 events.
pub const DEFAULT_FLUSH_THRESHOLD: usize = 100;
/// Default for [`Builder::flush_timeout`]: 30 s.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`Builder::http_timeout`]: 5 s.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`Builder::max_retries`]: 3.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default for [`Builder::retry_base_delay`]: 1 s.
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_secs(1);
/// Default for [`Builder::max_queue_size`]: 10,000 events.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 10_000;
/// Default for [`Builder::max_batch_size`]: 100 events, also the most the server takes.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 100;
/// The largest batch the server accepts.
pub const MAX_BATCH_SIZE_LIMIT: usize = 100;
/// Default for [`Builder::max_in_flight`]: 4 requests.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Default for [`Builder::min_level`]: `INFO`.
pub const DEFAULT_MIN_LEVEL: Level = Level::INFO;

/// The environment variable that turns telemetry off (`0`, `false`, `no`, `off`).
pub const ENV_ENABLED: &str = "TINKER_TELEMETRY";
/// The environment variable read when no API key is given.
pub const ENV_API_KEY: &str = "TINKER_API_KEY";
/// The environment variable read when no base URL is given.
pub const ENV_BASE_URL: &str = "TINKER_BASE_URL";

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
    session_id: Option<String>,
    sessionless: bool,
    api_key: Option<String>,
    base_url: Option<String>,
    enabled: Option<bool>,
    flush_interval: Duration,
    flush_threshold: usize,
    flush_timeout: Duration,
    http_timeout: Duration,
    max_retries: u32,
    retry_base_delay: Duration,
    max_queue_size: usize,
    max_batch_size: usize,
    max_in_flight: usize,
    min_level: Level,
    redacted_fields: Option<Vec<String>>,
    capture_spans: Vec<String>,
    errors: Classifier,
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
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            min_level: DEFAULT_MIN_LEVEL,
            redacted_fields: None,
            capture_spans: DEFAULT_CAPTURED_SPANS.iter().map(|s| (*s).to_owned()).collect(),
            errors: Classifier::default(),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("session_id", &self.session_id)
            .field("sessionless", &self.sessionless)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url.as_deref().map(shown_base_url))
            .field("enabled", &self.enabled)
            .field("flush_interval", &self.flush_interval)
            .field("flush_threshold", &self.flush_threshold)
            .field("flush_timeout", &self.flush_timeout)
            .field("http_timeout", &self.http_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_batch_size", &self.max_batch_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("min_level", &self.min_level)
            .field("redacted_fields", &self.redacted_fields)
            .field("capture_spans", &self.capture_spans)
            .field("errors", &self.errors)
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
    /// `TINKER_BASE_URL` environment variable, else [`DEFAULT_BASE_URL`]. An empty value counts
    /// as unset and a trailing `/` is dropped.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Turns telemetry on or off, overriding `TINKER_TELEMETRY`. Default: on, unless
    /// `TINKER_TELEMETRY` is `0`, `false`, `no` or `off`. When off, `build()` starts no thread
    /// and opens no socket, and every call on the layer and handle is a cheap no-op.
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

    /// Most events in one request, 1 to [`MAX_BATCH_SIZE_LIMIT`]. Default:
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
    /// field (`method`, `http.request.method`) is sent as `http.request` with normalised
    /// fields, so adding reqwest-tracing's `"HTTP request"` or tower-http's `"request"` maps
    /// them. Replaces the default list,
    /// [`DEFAULT_CAPTURED_SPANS`](crate::DEFAULT_CAPTURED_SPANS) (`http.request` and
    /// `queue.state_change`); include those names to keep them.
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
        self.errors.readers.push(read_status::<E>);
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
        self.errors.custom = Some(Arc::new(rule));
        self
    }

    /// Checks the configuration and, when telemetry is enabled, starts the uploader thread.
    ///
    /// Returns the layer to register with a `tracing_subscriber::Registry` and the guard to
    /// hold until the program ends.
    ///
    /// # Errors
    /// A [`BuildError`] naming the option when: no `session_id` was given (and not
    /// `sessionless`); no API key is set while enabled, or it cannot be sent as a header;
    /// `base_url` does not parse as an `http` or `https` URL, or is plain `http` to a host that
    /// is not loopback while an API key would be sent; a size, count or interval is zero;
    /// `max_batch_size` exceeds [`MAX_BATCH_SIZE_LIMIT`] or `max_queue_size`;
    /// `flush_threshold` exceeds `max_queue_size`. Also when the uploader thread or its HTTP
    /// client cannot be started.
    pub fn build(self) -> Result<(TinkerTelemetryLayer, TelemetryGuard), BuildError> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    pub(crate) fn build_with_env(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(TinkerTelemetryLayer, TelemetryGuard), BuildError> {
        let checked = self.check(env)?;
        let Checked { enabled, session_id, endpoint, api_key } = checked;
        let layer_config = LayerConfig {
            session_id: session_id.clone().into(),
            sessionless: self.sessionless,
            min_level: self.min_level,
            capture_spans: self.capture_spans.iter().map(|s| s.as_str().into()).collect(),
            errors: Arc::new(self.errors),
        };
        if !enabled {
            let handle = TelemetryHandle::disabled(session_id);
            return Ok((TinkerTelemetryLayer::disabled(), TelemetryGuard::disabled(handle)));
        }
        let (handoff, control) =
            Handoff::new(self.max_queue_size, self.flush_threshold, session_id.into(), self.sessionless);
        let handoff = Arc::new(handoff);
        crate::capture::clock::calibrate_in_background();
        handoff.push_session_start();
        let redactor = match self.redacted_fields {
            Some(names) => Redactor::new(names),
            None => Redactor::default(),
        };
        let config = UploadConfig {
            endpoint,
            api_key: api_key.unwrap_or_default(),
            flush_interval: self.flush_interval,
            http_timeout: self.http_timeout,
            max_retries: self.max_retries,
            retry_base_delay: self.retry_base_delay,
            max_batch_size: self.max_batch_size,
            flush_threshold: self.flush_threshold,
            max_in_flight: self.max_in_flight,
            redactor,
        };
        let thread = thread::start(config, Arc::clone(&handoff), control)?;
        let handle = TelemetryHandle::enabled(
            Arc::clone(&handoff),
            self.flush_timeout,
            Arc::clone(&layer_config.errors),
        );
        let layer = TinkerTelemetryLayer::enabled(layer_config, handoff);
        Ok((layer, TelemetryGuard::enabled(handle, thread)))
    }

    fn check(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Checked, BuildError> {
        let enabled = self.enabled.unwrap_or_else(|| env(ENV_ENABLED).is_none_or(|v| env_flag(&v)));
        let nonzero = |option: &'static str, zero: bool| {
            if zero { Err(BuildError::invalid(option, "must be greater than zero")) } else { Ok(()) }
        };
        nonzero("flush_interval", self.flush_interval.is_zero())?;
        nonzero("flush_threshold", self.flush_threshold == 0)?;
        nonzero("flush_timeout", self.flush_timeout.is_zero())?;
        nonzero("http_timeout", self.http_timeout.is_zero())?;
        nonzero("retry_base_delay", self.retry_base_delay.is_zero())?;
        nonzero("max_queue_size", self.max_queue_size == 0)?;
        nonzero("max_batch_size", self.max_batch_size == 0)?;
        nonzero("max_in_flight", self.max_in_flight == 0)?;
        if self.max_batch_size > MAX_BATCH_SIZE_LIMIT {
            return Err(BuildError::invalid(
                "max_batch_size",
                format!("{} is above the server's limit of {MAX_BATCH_SIZE_LIMIT}", self.max_batch_size),
            ));
        }
        if self.max_batch_size > self.max_queue_size {
            return Err(BuildError::invalid(
                "max_batch_size",
                format!("{} is above max_queue_size ({})", self.max_batch_size, self.max_queue_size),
            ));
        }
        if self.flush_threshold > self.max_queue_size {
            return Err(BuildError::invalid(
                "flush_threshold",
                format!(
                    "{} is above max_queue_size ({}), so it could never be reached",
                    self.flush_threshold, self.max_queue_size
                ),
            ));
        }
        let session_id = if self.sessionless {
            uuid::Uuid::new_v4().hyphenated().to_string()
        } else {
            match self.session_id.as_deref().map(str::trim) {
                Some(id) if !id.is_empty() => id.to_owned(),
                Some(_) => return Err(BuildError::invalid("session_id", "must not be empty")),
                None => {
                    return Err(BuildError::Missing {
                        option: "session_id",
                        hint: "call `.session_id(..)`, or `.sessionless()` to report without a session",
                    });
                }
            }
        };
        let base = non_empty(self.base_url.clone())
            .or_else(|| non_empty(env(ENV_BASE_URL)))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let endpoint = endpoint(&base)?;
        let api_key = non_empty(self.api_key.clone()).or_else(|| non_empty(env(ENV_API_KEY)));
        if enabled {
            let Some(key) = &api_key else {
                return Err(BuildError::Missing {
                    option: "api_key",
                    hint: "call `.api_key(..)` or set TINKER_API_KEY",
                });
            };
            if !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(BuildError::invalid(
                    "api_key",
                    "must be printable ASCII without spaces (it is sent as an HTTP header)",
                ));
            }
            if endpoint.scheme() == "http" && !crate::scrub::is_loopback(&endpoint) {
                return Err(BuildError::invalid(
                    "base_url",
                    "plain http:// is only allowed to a loopback host; use https:// so the API key is not sent in clear",
                ));
            }
        }
        Ok(Checked { enabled, session_id, endpoint, api_key })
    }
}

struct Checked {
    enabled: bool,
    session_id: String,
    endpoint: reqwest::Url,
    api_key: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `TINKER_TELEMETRY`'s meaning: off for `0`, `false`, `no`, `off` (any case, trimmed), on
/// for anything else, including empty.
fn env_flag(value: &str) -> bool {
    let v = value.trim();
    !["0", "false", "no", "off"].iter().any(|off| v.eq_ignore_ascii_case(off))
}

fn endpoint(base: &str) -> Result<reqwest::Url, BuildError> {
    let base = base.trim_end_matches('/');
    // The text is not echoed: a key pasted into the wrong option must not end up in a log.
    let url =
        reqwest::Url::parse(base).map_err(|e| BuildError::invalid("base_url", format!("not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(BuildError::invalid(
            "base_url",
            format!("scheme must be http or https, not {}", url.scheme()),
        ));
    }
    if url.host().is_none() {
        return Err(BuildError::invalid("base_url", "has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BuildError::invalid("base_url", "must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BuildError::invalid("base_url", "must not carry credentials; use api_key"));
    }
    reqwest::Url::parse(&format!("{base}/api/v1/telemetry"))
        .map_err(|e| BuildError::invalid("base_url", format!("cannot append the telemetry path: {e}")))
}

/// How `Debug` shows a base URL: without credentials or query, and not at all when it is
/// not a URL (it might be a key pasted into the wrong option).
fn shown_base_url(base: &str) -> String {
    match reqwest::Url::parse(base.trim()) {
        Ok(url) if url.has_host() => crate::scrub::scrub_url(url.as_str()),
        _ => "<not a URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_none(_: &str) -> Option<String> {
        None
    }

    fn base() -> Builder {
        Builder::default().session_id("s-1").api_key("tml-test")
    }

    fn option_of(b: Builder) -> &'static str {
        b.check(&env_none).err().and_then(|e| e.option()).unwrap_or("none")
    }

    #[test]
    fn every_bad_option_is_named() {
        assert_eq!(option_of(Builder::default().api_key("k")), "session_id");
        assert_eq!(option_of(base().session_id("  ")), "session_id");
        assert_eq!(option_of(Builder::default().session_id("s")), "api_key");
        assert_eq!(option_of(base().api_key("tml bad")), "api_key");
        assert_eq!(option_of(base().base_url("not a url")), "base_url");
        assert_eq!(option_of(base().base_url("ftp://x")), "base_url");
        assert_eq!(option_of(base().base_url("http://example.com")), "base_url");
        assert_eq!(option_of(base().base_url("https://u:p@example.com")), "base_url");
        assert_eq!(option_of(base().base_url("https://example.com?x=1")), "base_url");
        assert_eq!(option_of(base().flush_interval(Duration::ZERO)), "flush_interval");
        assert_eq!(option_of(base().flush_threshold(0)), "flush_threshold");
        assert_eq!(option_of(base().flush_timeout(Duration::ZERO)), "flush_timeout");
        assert_eq!(option_of(base().http_timeout(Duration::ZERO)), "http_timeout");
        assert_eq!(option_of(base().retry_base_delay(Duration::ZERO)), "retry_base_delay");
        assert_eq!(option_of(base().max_queue_size(0)), "max_queue_size");
        assert_eq!(option_of(base().max_batch_size(0)), "max_batch_size");
        assert_eq!(option_of(base().max_batch_size(101)), "max_batch_size");
        assert_eq!(option_of(base().max_queue_size(50).max_batch_size(60)), "max_batch_size");
        assert_eq!(
            option_of(base().max_queue_size(50).max_batch_size(50).flush_threshold(51)),
            "flush_threshold"
        );
        assert_eq!(option_of(base().max_in_flight(0)), "max_in_flight");
        assert_eq!(option_of(base()), "none");
    }

    #[test]
    fn plain_http_is_fine_to_loopback_and_when_disabled() {
        for url in
            ["http://127.0.0.1:1", "http://localhost:8080/x/", "http://[::1]:9", "http://api.localhost"]
        {
            assert_eq!(option_of(base().base_url(url)), "none", "{url}");
        }
        assert_eq!(option_of(base().base_url("http://example.com").enabled(false)), "none");
        // Disabled needs no key.
        assert_eq!(option_of(Builder::default().session_id("s").enabled(false)), "none");
    }

    #[test]
    fn environment_supplies_defaults_and_the_builder_wins() {
        let env = |name: &str| match name {
            ENV_API_KEY => Some("tml-env".to_owned()),
            ENV_BASE_URL => Some("https://env.example/base/".to_owned()),
            ENV_ENABLED => Some(" OFF ".to_owned()),
            _ => None,
        };
        let c = Builder::default().session_id("s").check(&env).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.api_key.as_deref(), Some("tml-env"));
        assert_eq!(c.endpoint.as_str(), "https://env.example/base/api/v1/telemetry");
        let c = Builder::default()
            .session_id("s")
            .api_key("tml-mine")
            .base_url("")
            .enabled(true)
            .check(&env)
            .unwrap();
        assert!(c.enabled);
        assert_eq!(c.api_key.as_deref(), Some("tml-mine"));
        assert_eq!(c.endpoint.as_str(), "https://env.example/base/api/v1/telemetry");
        let c = Builder::default().session_id("s").api_key("k").check(&env_none).unwrap();
        assert_eq!(c.endpoint.as_str(), format!("{DEFAULT_BASE_URL}/api/v1/telemetry"));
    }

    #[test]
    fn telemetry_flag_values() {
        for off in ["0", "false", "NO", " off "] {
            assert!(!env_flag(off), "{off}");
        }
        for on in ["", "1", "true", "YES", "on", "anything"] {
            assert!(env_flag(on), "{on}");
        }
    }

    #[test]
    fn sessionless_gets_a_plain_uuid() {
        let c = Builder::default().sessionless().api_key("k").check(&env_none).unwrap();
        assert!(uuid::Uuid::parse_str(&c.session_id).is_ok(), "{}", c.session_id);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", base().api_key("tml-SECRET-123"));
        assert!(!shown.contains("SECRET"), "{shown}");
        // Even when it is pasted into the wrong option.
        let misplaced = base().api_key("tml-SECRET-123").base_url("tml-SECRET-123");
        let err = misplaced.clone().check(&env_none).err().unwrap();
        let shown = format!("{misplaced:?} {err} {err:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        let shown = format!("{:?}", base().base_url("https://u:SECRET@example.com/x?k=SECRET"));
        assert!(!shown.contains("SECRET") && shown.contains("https://example.com/x"), "{shown}");
    }
}
