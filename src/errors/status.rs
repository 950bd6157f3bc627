//! Errors that carry an HTTP status: the [`HttpStatusError`] trait, the crate's own
//! [`HttpError`], and reading a status off an error of a known type.

use std::error::Error;
use std::fmt;

/// An error that carries an HTTP status, and maybe the response body.
///
/// Implement it on your own error types and register them with
/// [`Builder::status_error`](crate::Builder::status_error) so that a 4xx among their causes
/// makes a `user_error` event rather than an `UNHANDLED_EXCEPTION`. [`HttpError`] and
/// `reqwest::Error` (0.13 with the default `reqwest-0-13` feature, 0.12 with `reqwest-0-12`)
/// are recognised without registration.
///
/// # Examples
/// ```
/// use tinker_telemetry::HttpStatusError;
///
/// #[derive(Debug)]
/// struct ApiError { status: u16, body: String }
/// # impl std::fmt::Display for ApiError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "api error {}", self.status) }
/// # }
/// # impl std::error::Error for ApiError {}
///
/// impl HttpStatusError for ApiError {
///     fn status_code(&self) -> Option<u16> { Some(self.status) }
///     fn response_body(&self) -> Option<&str> { Some(&self.body) }
/// }
/// ```
pub trait HttpStatusError {
    /// The HTTP status the error carries, if any.
    fn status_code(&self) -> Option<u16>;

    /// The response body, if the error kept it. Default: none.
    fn response_body(&self) -> Option<&str> {
        None
    }
}

/// An HTTP failure: a status, a message and maybe the response body. Use it (directly, or
/// as the `source()` of your own errors) to make an error classifiable without registering a
/// type.
///
/// # Examples
/// ```
/// use tinker_telemetry::{HttpError, is_user_error};
///
/// let err = HttpError::new(422, "invalid model name").with_body(r#"{"detail":"no such model"}"#);
/// assert!(is_user_error(&err));
/// assert!(!is_user_error(&HttpError::new(503, "overloaded")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: u16,
    message: String,
    body: Option<String>,
}

impl HttpError {
    /// An error for `status` with `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into(), body: None }
    }

    /// The same error, keeping the response body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl Error for HttpError {}

impl HttpStatusError for HttpError {
    fn status_code(&self) -> Option<u16> {
        Some(self.status)
    }

    fn response_body(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

/// The status (and body) of `err` when it is an `E` that carries one.
pub(crate) fn read_status<E: HttpStatusError + Error + 'static>(
    err: &(dyn Error + 'static),
) -> Option<(u16, Option<String>)> {
    let e = err.downcast_ref::<E>()?;
    Some((e.status_code()?, e.response_body().map(str::to_owned)))
}
