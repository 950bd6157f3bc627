//! What `build()` checks: every option's value, the environment's, and the endpoint URL.
//! Errors name the option and never echo a value that might be a key.

use super::builder::Builder;
use super::defaults::{DEFAULT_BASE_URL, ENV_API_KEY, ENV_BASE_URL, ENV_ENABLED, MAX_BATCH_SIZE_LIMIT};
use crate::delivery::redact::Redactor;
use crate::delivery::tls::{AddedRoots, parse_roots};
use crate::errors::build::BuildError;
use crate::export::names::ATTRIBUTES;
use crate::limits::MAX_EVENT_BYTES;
use crate::spool::SpoolConfig;

impl Builder {
    /// Every option checked, the environment's included, or the first one at fault.
    pub(super) fn check(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Checked, BuildError> {
        let enabled = self.enabled.unwrap_or_else(|| env(ENV_ENABLED).is_none_or(|v| env_flag(&v)));
        if !enabled {
            // Disabled, nothing is sent and nothing is started: no option can be wrong.
            let session_id = self.session_id.as_deref().map(str::trim).unwrap_or_default().to_owned();
            let endpoint = endpoint(DEFAULT_BASE_URL)?;
            return Ok(Checked {
                enabled,
                session_id,
                endpoint,
                api_key: None,
                roots: AddedRoots::default(),
                spool: None,
            });
        }
        self.check_delivery()?;
        self.check_queue()?;
        self.check_analysis()?;
        self.check_spool()?;
        let session_id = self.checked_session_id()?;
        let base = non_empty(self.base_url.clone())
            .or_else(|| non_empty(env(ENV_BASE_URL)))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let endpoint = endpoint(&base)?;
        let api_key =
            checked_api_key(non_empty(self.api_key.clone()).or_else(|| non_empty(env(ENV_API_KEY))))?;
        if endpoint.scheme() == "http" && !crate::urls::is_loopback(&endpoint) {
            return Err(BuildError::invalid(
                "base_url",
                "plain http:// is only allowed to a loopback host; use https:// so the API key is not sent in clear",
            ));
        }
        // The PEM is never quoted: one passed by mistake may be a private key.
        let roots = parse_roots(&self.root_certificates).map_err(|(i, bad)| {
            BuildError::invalid(
                "root_certificate",
                format!("PEM {} of {} {bad}", i + 1, self.root_certificates.len()),
            )
        })?;
        let spool = super::spool::spool_dir(self, env).map(|dir| SpoolConfig {
            dir,
            interval: self.spool.interval,
            max_bytes: self.spool.max_bytes,
            max_age: self.spool.max_age,
            sync: self.spool.sync,
            fail_fsync: false,
        });
        Ok(Checked { enabled, session_id, endpoint, api_key: Some(api_key), roots, spool })
    }

    /// The spool's interval and bounds (its directory is checked when it is opened).
    fn check_spool(&self) -> Result<(), BuildError> {
        nonzero("spool_interval", self.spool.interval.is_zero())?;
        nonzero("spool_max_bytes", self.spool.max_bytes == 0)?;
        nonzero("spool_max_age", self.spool.max_age.is_zero())
    }

    /// The timing of the uploader's requests.
    fn check_delivery(&self) -> Result<(), BuildError> {
        nonzero("flush_interval", self.flush_interval.is_zero())?;
        nonzero("flush_timeout", self.flush_timeout.is_zero())?;
        nonzero("http_timeout", self.http_timeout.is_zero())?;
        nonzero("retry_base_delay", self.retry_base_delay.is_zero())?;
        nonzero("max_in_flight", self.max_in_flight == 0)
    }

    /// The queue's bounds and the batches it is sent in.
    fn check_queue(&self) -> Result<(), BuildError> {
        nonzero("flush_threshold", self.flush_threshold == 0)?;
        nonzero("max_queue_size", self.max_queue_size == 0)?;
        nonzero("max_batch_size", self.max_batch_size == 0)?;
        let above = |option, what: String| Err(BuildError::invalid(option, what));
        if self.max_queue_bytes < MAX_EVENT_BYTES {
            let bytes = self.max_queue_bytes;
            return above(
                "max_queue_bytes",
                format!("{bytes} is below MAX_EVENT_BYTES ({MAX_EVENT_BYTES}), the size of one event"),
            );
        }
        let (batch, queue) = (self.max_batch_size, self.max_queue_size);
        if batch > MAX_BATCH_SIZE_LIMIT {
            return above(
                "max_batch_size",
                format!("{batch} is above the server's limit of {MAX_BATCH_SIZE_LIMIT}"),
            );
        }
        if batch > queue {
            return above("max_batch_size", format!("{batch} is above max_queue_size ({queue})"));
        }
        if self.flush_threshold > queue {
            let threshold = self.flush_threshold;
            return above(
                "flush_threshold",
                format!("{threshold} is above max_queue_size ({queue}), so it could never be reached"),
            );
        }
        Ok(())
    }

    /// Summaries, alerts, operation labels and the cap on operations.
    fn check_analysis(&self) -> Result<(), BuildError> {
        let a = &self.analysis;
        nonzero("summary_interval", a.summary_interval.is_zero())?;
        nonzero("max_operations", a.max_operations == 0)?;
        self.check_operation_labels()?;
        match a.spike {
            Some(rule) if rule.threshold == 0 => {
                Err(BuildError::invalid("error_spike", "the threshold must be greater than zero"))
            }
            Some(rule) if rule.window.is_zero() => {
                Err(BuildError::invalid("error_spike", "the window must be greater than zero"))
            }
            _ => Ok(()),
        }
    }

    /// Each operation label names a span field, once, that is neither redacted (by the
    /// reporter's own list) nor a field every operation has.
    fn check_operation_labels(&self) -> Result<(), BuildError> {
        let redactor = match &self.redacted_fields {
            Some(names) => Redactor::new(names.iter().cloned()),
            None => Redactor::default(),
        };
        let labels = &self.analysis.operation_labels;
        let invalid = |reason: String| Err(BuildError::invalid("operation_label", reason));
        for (i, name) in labels.iter().enumerate() {
            if name.trim().is_empty() {
                return invalid("a label needs the name of a span field".into());
            }
            if labels[..i].contains(name) {
                return invalid(format!("`{name}` is given twice"));
            }
            let prometheus = prometheus_label(name);
            if let Some(other) = labels[..i].iter().find(|l| prometheus_label(l) == prometheus) {
                return invalid(format!("`{name}` and `{other}` are one Prometheus label, `{prometheus}`"));
            }
            let attribute = ATTRIBUTES.iter().any(|a| prometheus_label(a) == prometheus);
            if RESERVED_LABELS.contains(&&**name) || attribute {
                return invalid(format!("`{name}` is a field of every operation already"));
            }
            if PROMETHEUS_LABELS.contains(&&*prometheus) {
                return invalid(format!("`{name}` is a label Prometheus gives a meaning of its own"));
            }
            if redactor.is_secret(name) {
                return invalid(format!("`{name}` is a redacted field: its values are never sent"));
            }
        }
        Ok(())
    }

    /// The session's id: the one given, or a fresh UUID for a sessionless reporter.
    fn checked_session_id(&self) -> Result<String, BuildError> {
        if self.sessionless {
            return Ok(uuid::Uuid::new_v4().hyphenated().to_string());
        }
        match self.session_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            Some(_) => Err(BuildError::invalid("session_id", "must not be empty")),
            None => Err(BuildError::Missing {
                option: "session_id",
                hint: "call `.session_id(..)`, or `.sessionless()` to report without a session",
            }),
        }
    }
}

/// Names an operation label cannot have: the fields of a summary row, an alert and a
/// snapshot entry, which a label of that name would collide with (and the exporters'
/// attributes, [`ATTRIBUTES`]).
const RESERVED_LABELS: [&str; 17] = [
    "name",
    "method",
    "route",
    "count",
    "errors",
    "error_rate",
    "avg_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "window",
    "session",
    "operation",
    "window_s",
    "first_error_at",
    "error_types",
];

/// Labels Prometheus gives a meaning of its own: a histogram's bucket bound, a summary's
/// quantile.
const PROMETHEUS_LABELS: [&str; 2] = ["le", "quantile"];

/// `name` as a Prometheus label: each character but an ASCII letter, digit or `_` as `_`, as
/// the exporters write the attributes (`error.type` as `error_type`).
fn prometheus_label(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// `option` is refused when `zero`.
fn nonzero(option: &'static str, zero: bool) -> Result<(), BuildError> {
    if zero { Err(BuildError::invalid(option, "must be greater than zero")) } else { Ok(()) }
}

/// The API key, present and sendable as an HTTP header.
fn checked_api_key(key: Option<String>) -> Result<String, BuildError> {
    let Some(key) = key else {
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
    Ok(key)
}

/// What `build()` starts from: the options that need checking, checked.
pub(super) struct Checked {
    pub(super) enabled: bool,
    pub(super) session_id: String,
    pub(super) endpoint: reqwest::Url,
    pub(super) api_key: Option<String>,
    pub(super) roots: AddedRoots,
    /// The spool, when a directory is set.
    pub(super) spool: Option<SpoolConfig>,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert_eq!(option_of(base().max_queue_bytes(0)), "max_queue_bytes");
        assert_eq!(option_of(base().max_queue_bytes(MAX_EVENT_BYTES - 1)), "max_queue_bytes");
        assert_eq!(option_of(base().max_batch_size(101)), "max_batch_size");
        assert_eq!(option_of(base().max_queue_size(50).max_batch_size(60)), "max_batch_size");
        assert_eq!(
            option_of(base().max_queue_size(50).max_batch_size(50).flush_threshold(51)),
            "flush_threshold"
        );
        assert_eq!(option_of(base().max_in_flight(0)), "max_in_flight");
        assert_eq!(option_of(base().spool_interval(Duration::ZERO)), "spool_interval");
        assert_eq!(option_of(base().spool_max_bytes(0)), "spool_max_bytes");
        assert_eq!(option_of(base().spool_max_age(Duration::ZERO)), "spool_max_age");
        assert_eq!(option_of(base().root_certificate("not a certificate")), "root_certificate");
        assert_eq!(option_of(base().summary_interval(Duration::ZERO)), "summary_interval");
        assert_eq!(option_of(base().max_operations(0)), "max_operations");
        assert_eq!(option_of(base().error_spike(0, Duration::from_secs(1))), "error_spike");
        assert_eq!(option_of(base().error_spike(1, Duration::ZERO)), "error_spike");
        assert_eq!(option_of(base().operation_label("password")), "operation_label");
        assert_eq!(
            option_of(base().operation_label("loss_fn").operation_label("loss_fn")),
            "operation_label"
        );
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
        // Disabled needs no key, no session, no valid option at all.
        assert_eq!(option_of(Builder::default().session_id("s").enabled(false)), "none");
        assert_eq!(option_of(Builder::default().enabled(false)), "none");
        assert_eq!(option_of(Builder::default().max_batch_size(0).base_url("nope").enabled(false)), "none");
        assert_eq!(option_of(Builder::default().root_certificate("nope").enabled(false)), "none");
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
        let c = Builder::default().session_id("s").enabled(true).check(&env).unwrap();
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
