//! Errors.

/// Why [`Builder::build`](crate::Builder::build) refused a configuration or could not start.
///
/// Messages name the option at fault and never contain the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required option was not given (and not found in its environment variable).
    #[error("missing option `{option}`: {hint}")]
    Missing {
        /// The builder option, e.g. `api_key`.
        option: &'static str,
        /// How to provide it.
        hint: &'static str,
    },
    /// An option's value cannot work.
    #[error("invalid option `{option}`: {reason}")]
    Invalid {
        /// The builder option, e.g. `max_batch_size`.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The uploader thread or its runtime could not be started.
    #[error("could not start the telemetry uploader thread")]
    Runtime(#[source] std::io::Error),
    /// The HTTP client could not be built (TLS set-up failed).
    #[error("could not build the telemetry HTTP client")]
    Client(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl BuildError {
    /// The builder option this error is about, if it is about one.
    ///
    /// # Examples
    /// ```
    /// let err = tinker_telemetry::TinkerTelemetryLayer::builder()
    ///     .session_id("s")
    ///     .api_key("tml-secret")
    ///     .max_batch_size(0)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.option(), Some("max_batch_size"));
    /// ```
    #[must_use]
    pub fn option(&self) -> Option<&'static str> {
        match self {
            BuildError::Missing { option, .. } | BuildError::Invalid { option, .. } => Some(option),
            BuildError::Runtime(_) | BuildError::Client(_) => None,
        }
    }

    pub(crate) fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        BuildError::Invalid { option, reason: reason.into() }
    }
}
