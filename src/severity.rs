//! [`Severity`]: how serious an event is, as the Tinker backend spells it.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
