//! Telling user errors (the caller's mistake, HTTP 4xx) from failures worth an
//! `UNHANDLED_EXCEPTION`: the statuses errors carry and the rules that read them.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Causes followed at most: a longer (or cyclic) `source()` chain is cut here.
pub const MAX_CAUSES: usize = 32;

/// An error that carries an HTTP status, and maybe the response body.
///
/// Implement it on your own error types and register them with
/// [`Builder::status_error`](crate::Builder::status_error) so that a 4xx among their causes
/// makes a `user_error` event rather than an `UNHANDLED_EXCEPTION`. `reqwest::Error` and
/// [`HttpError`] are recognised without registration.
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

impl HttpStatusError for reqwest::Error {
    fn status_code(&self) -> Option<u16> {
        self.status().map(|s| s.as_u16())
    }
}

/// Whether `status` marks the caller's mistake: 4xx except 408 (timeout) and 429 (rate
/// limit), which are the server's or the moment's.
#[must_use]
pub fn is_user_status(status: u16) -> bool {
    (400..=499).contains(&status) && status != 408 && status != 429
}

/// Whether `err` is a user error: it, or an error in its `source()` chain (nearest first;
/// the first that matches wins), carries an HTTP status for which [`is_user_status`] holds.
/// Recognises `reqwest::Error` and [`HttpError`]; use a reporter's classification
/// ([`Builder::status_error`](crate::Builder::status_error),
/// [`Builder::user_error_classifier`](crate::Builder::user_error_classifier)) for more. At most
/// [`MAX_CAUSES`] causes are followed, so a cyclic chain cannot hang it.
///
/// Works on `anyhow::Error` through `&*err` or `err.as_ref()`.
#[must_use]
pub fn is_user_error(err: &(dyn Error + 'static)) -> bool {
    Classifier::default().user_error(err).is_some()
}

/// Reads a status (and body) off one error, if it is of a known type.
pub(crate) type StatusReader = fn(&(dyn Error + 'static)) -> Option<(u16, Option<String>)>;

/// A custom user-error rule: `Some(true)` a user error, `Some(false)` not, `None` undecided.
pub(crate) type CustomRule = Arc<dyn Fn(&(dyn Error + 'static)) -> Option<bool> + Send + Sync>;

pub(crate) fn read_status<E: HttpStatusError + Error + 'static>(
    err: &(dyn Error + 'static),
) -> Option<(u16, Option<String>)> {
    let e = err.downcast_ref::<E>()?;
    Some((e.status_code()?, e.response_body().map(str::to_owned)))
}

/// What a reporter knows about telling user errors apart.
#[derive(Clone, Default)]
pub(crate) struct Classifier {
    pub(crate) readers: Vec<StatusReader>,
    pub(crate) custom: Option<CustomRule>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("status_types", &self.readers.len())
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

/// A user error's details, from the error in the chain that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserErrorInfo {
    pub(crate) status_code: Option<u16>,
    pub(crate) body: Option<String>,
}

impl Classifier {
    fn status(&self, err: &(dyn Error + 'static)) -> Option<(u16, Option<String>)> {
        read_status::<HttpError>(err)
            .or_else(|| read_status::<reqwest::Error>(err))
            .or_else(|| self.readers.iter().find_map(|read| read(err)))
    }

    /// `Some` with the matching error's status and body when `err` is a user error.
    pub(crate) fn user_error(&self, err: &(dyn Error + 'static)) -> Option<UserErrorInfo> {
        for e in chain(err) {
            let status = self.status(e);
            if let Some(rule) = &self.custom {
                match rule(e) {
                    Some(true) => {
                        let (status_code, body) = status.map_or((None, None), |(s, b)| (Some(s), b));
                        return Some(UserErrorInfo { status_code, body });
                    }
                    Some(false) => return None,
                    None => {}
                }
            }
            if let Some((code, body)) = status {
                if is_user_status(code) {
                    return Some(UserErrorInfo { status_code: Some(code), body });
                }
            }
        }
        None
    }
}

/// `err` and its causes, nearest first, at most [`MAX_CAUSES`] + 1 of them.
pub(crate) fn chain<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn Error + 'static)| (*e).source()).take(MAX_CAUSES + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_statuses() {
        for s in [400, 401, 403, 404, 409, 413, 422, 499] {
            assert!(is_user_status(s), "{s}");
        }
        for s in [200, 399, 408, 429, 500, 503] {
            assert!(!is_user_status(s), "{s}");
        }
    }
}
