//! Severity and the small pieces of the wire format that every event shares:
//! timestamps, session durations, the platform name and the process UUID.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// How serious a telemetry event is, as the Tinker backend spells it.
///
/// Tracing levels map onto it (`TRACE`/`DEBUG` → [`Debug`](Severity::Debug),
/// `INFO` → [`Info`](Severity::Info), `WARN` → [`Warning`](Severity::Warning),
/// `ERROR` → [`Error`](Severity::Error)); [`Critical`](Severity::Critical) is reached with an
/// explicit `severity = "CRITICAL"` field or through the handle.
///
/// # Examples
/// ```
/// use tinker_telemetry::Severity;
///
/// assert_eq!(Severity::from(&tracing::Level::WARN), Severity::Warning);
/// assert_eq!("critical".parse::<Severity>(), Ok(Severity::Critical));
/// assert_eq!(Severity::Error.as_str(), "ERROR");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `DEBUG`: diagnostics (tracing's `TRACE` and `DEBUG`).
    Debug,
    /// `INFO`: the ordinary course of a session.
    Info,
    /// `WARNING`: something unexpected that the program survived.
    Warning,
    /// `ERROR`: an operation failed.
    Error,
    /// `CRITICAL`: the program cannot go on (panics, fatal errors).
    Critical,
}

impl Severity {
    /// The wire spelling: `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Parses a severity name without allocating: case-insensitive, surrounding white space
    /// ignored, `WARN` accepted for `WARNING` and `FATAL` for `CRITICAL`.
    pub(crate) fn parse(s: &str) -> Option<Severity> {
        let s = s.trim();
        let eq = |name: &str| s.eq_ignore_ascii_case(name);
        if eq("DEBUG") || eq("TRACE") {
            Some(Severity::Debug)
        } else if eq("INFO") {
            Some(Severity::Info)
        } else if eq("WARNING") || eq("WARN") {
            Some(Severity::Warning)
        } else if eq("ERROR") {
            Some(Severity::Error)
        } else if eq("CRITICAL") || eq("FATAL") {
            Some(Severity::Critical)
        } else {
            None
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error [`Severity::from_str`] returns for a name it does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)")]
pub struct ParseSeverityError(());

impl FromStr for Severity {
    type Err = ParseSeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::parse(s).ok_or(ParseSeverityError(()))
    }
}

impl From<&tracing::Level> for Severity {
    fn from(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => Severity::Error,
            tracing::Level::WARN => Severity::Warning,
            tracing::Level::INFO => Severity::Info,
            _ => Severity::Debug,
        }
    }
}

impl From<tracing::Level> for Severity {
    fn from(level: tracing::Level) -> Self {
        Severity::from(&level)
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Formats a wall-clock time as RFC 3339 UTC with exactly six fractional digits,
/// `2026-11-21T05:38:37.548134Z`.
pub(crate) fn format_timestamp(at: SystemTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    // A time before 1970 or past year 9999 cannot come from a sane clock; fall back to the
    // epoch rather than fail the event.
    OffsetDateTime::from(at).format(&format).unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
}

/// Formats a duration the way Python's `str(timedelta)` does, which is what the backend
/// expects in `SESSION_END.duration`: `0:00:05.123456`, `0:00:05`, `1 day, 1:00:00`.
///
/// The duration is rounded to whole microseconds, as `timedelta` stores it.
pub(crate) fn format_duration(d: Duration) -> String {
    let total_micros = d.as_secs() as u128 * 1_000_000 + u128::from((d.subsec_nanos() + 500) / 1000);
    let micros = (total_micros % 1_000_000) as u32;
    let total_secs = total_micros / 1_000_000;
    let days = total_secs / 86_400;
    let rem = total_secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let mut out = String::with_capacity(32);
    if days > 0 {
        let plural = if days == 1 { "" } else { "s" };
        out.push_str(&format!("{days} day{plural}, "));
    }
    out.push_str(&format!("{h}:{m:02}:{s:02}"));
    if micros > 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out
}

/// The operating system's name as Python's `platform.system()` reports it.
pub(crate) fn platform() -> &'static str {
    match std::env::consts::OS {
        "linux" | "android" => "Linux",
        "macos" | "ios" => "Darwin",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        "netbsd" => "NetBSD",
        "openbsd" => "OpenBSD",
        "solaris" | "illumos" => "SunOS",
        _ => "Unknown",
    }
}

/// The UUID that identifies this process, made once and shared by every reporter in it.
pub(crate) fn process_uuid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_matches_python_timedelta_str() {
        let cases = [
            (Duration::from_micros(5_123_456), "0:00:05.123456"),
            (Duration::from_secs(5), "0:00:05"),
            (Duration::from_micros(3_723_457_244), "1:02:03.457244"),
            (Duration::from_secs(90_000), "1 day, 1:00:00"),
            (Duration::from_secs(2 * 86_400 + 61), "2 days, 0:01:01"),
            (Duration::from_nanos(999_999_999), "0:00:01"),
            (Duration::from_nanos(1_499), "0:00:00.000001"),
            (Duration::ZERO, "0:00:00"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn timestamp_always_has_six_fraction_digits() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_239_517);
        assert_eq!(format_timestamp(at), "2026-11-21T05:38:37.000000Z");
        let at = at + Duration::from_nanos(548_134_999);
        assert_eq!(format_timestamp(at), "2026-11-21T05:38:37.548134Z");
    }

    #[test]
    fn severity_parses_and_maps_levels() {
        assert_eq!(Severity::parse(" warn "), Some(Severity::Warning));
        assert_eq!(Severity::parse("Critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse("loud"), None);
        assert!("loud".parse::<Severity>().is_err());
        assert_eq!(Severity::from(tracing::Level::TRACE), Severity::Debug);
        assert_eq!(Severity::from(tracing::Level::ERROR), Severity::Error);
        assert_eq!(serde_json::to_string(&Severity::Warning).unwrap(), "\"WARNING\"");
    }

    #[test]
    fn process_uuid_is_stable_and_a_uuid() {
        assert_eq!(process_uuid(), process_uuid());
        assert!(Uuid::parse_str(process_uuid()).is_ok());
        assert_eq!(platform(), if cfg!(target_os = "linux") { "Linux" } else { platform() });
    }
}
