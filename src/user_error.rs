//! Errors as telemetry: type names, cause chains, and telling user errors (the caller's
//! mistake, HTTP 4xx) from failures worth an `UNHANDLED_EXCEPTION`.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_VALUE_BYTES, truncate_owned};
use crate::record::ExceptionRecord;

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

/// An error that telemetry can report: any sized `std::error::Error + 'static`, and the
/// `dyn Error` trait objects (so `&*anyhow_error` and `&*boxed_error` work too).
pub trait ReportableError {
    /// The error as a trait object.
    fn as_error(&self) -> &(dyn Error + 'static);

    /// The error's type name without its module path: `ParseIntError`, `io::Error`.
    fn error_type(&self) -> String;
}

impl<E: Error + 'static> ReportableError for E {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self
    }

    fn error_type(&self) -> String {
        short_type_name(std::any::type_name::<E>())
    }
}

macro_rules! reportable_dyn {
    ($($t:ty),*) => {$(
        impl ReportableError for $t {
            fn as_error(&self) -> &(dyn Error + 'static) {
                self
            }

            /// For a trait object the concrete type is unknown: the name is read from the
            /// start of its `Debug` output (derived `Debug` starts with the type name), else
            /// `Error`.
            fn error_type(&self) -> String {
                dyn_type_name(self)
            }
        }
    )*};
}

reportable_dyn!(dyn Error + 'static, dyn Error + Send + 'static, dyn Error + Send + Sync + 'static);

/// `core::num::error::ParseIntError` → `ParseIntError`; generic arguments shortened too;
/// a bare `Error` keeps its module (`io::Error`, `reqwest::Error`).
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut path: Vec<&str> = Vec::new();
    let mut start = None;
    let flush = |out: &mut String, path: &mut Vec<&str>| {
        if let Some(last) = path.last() {
            if *last == "Error" && path.len() >= 2 {
                let module = if matches!(path[0], "std" | "core" | "alloc") && path.len() >= 3 {
                    path[1]
                } else {
                    path[0]
                };
                // `core::error::Error` is the trait itself: plain `Error`.
                if module != "error" {
                    out.push_str(module);
                    out.push_str("::");
                }
            }
            out.push_str(last);
        }
        path.clear();
    };
    let bytes = full.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphanumeric() || c == b'_' {
            start.get_or_insert(i);
            i += 1;
            continue;
        }
        if let Some(s) = start.take() {
            path.push(&full[s..i]);
        }
        if c == b':' && bytes.get(i + 1) == Some(&b':') {
            i += 2;
            continue;
        }
        flush(&mut out, &mut path);
        out.push(c as char);
        i += 1;
    }
    if let Some(s) = start {
        path.push(&full[s..]);
    }
    flush(&mut out, &mut path);
    out
}

/// The best honest name for an error known only as a trait object.
pub(crate) fn dyn_type_name(err: &(dyn Error + 'static)) -> String {
    if err.is::<HttpError>() {
        return "HttpError".into();
    }
    if err.is::<reqwest::Error>() {
        return "reqwest::Error".into();
    }
    if err.is::<std::io::Error>() {
        return "io::Error".into();
    }
    let mut head = Head(String::new());
    let _ = write!(head, "{err:?}");
    let name: String = head.0.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let rest = &head.0[name.len()..];
    let looks_like_type = name.starts_with(|c: char| c.is_ascii_uppercase())
        && (rest.is_empty() || rest.starts_with([' ', '(', '{']));
    if looks_like_type { name } else { "Error".into() }
}

/// Keeps the first 64 bytes written, then stops the formatter.
struct Head(String);

impl fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = 64 - self.0.len();
        if s.len() >= room {
            self.0.push_str(crate::limits::floor_char_boundary(s, room));
            return Err(fmt::Error);
        }
        self.0.push_str(s);
        Ok(())
    }
}

/// The cause chain, one per line (`Caused by: Type: message`), then the backtrace captured
/// here when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` asks for one.
pub(crate) fn traceback(err: &(dyn Error + 'static), context: Option<&str>) -> Option<String> {
    let mut out = String::new();
    if let Some(context) = context {
        let _ = writeln!(out, "While: {context}");
    }
    for cause in chain(err).skip(1) {
        let _ = writeln!(out, "Caused by: {}: {cause}", dyn_type_name(cause));
    }
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        let _ = write!(out, "Backtrace:\n{backtrace}");
    }
    let out = out.trim_end().to_owned();
    (!out.is_empty()).then(|| truncate_owned(out, MAX_EVENT_TEXT_BYTES))
}

/// An UNHANDLED_EXCEPTION's fields for `err`.
pub(crate) fn exception_record(
    error_type: String,
    err: &(dyn Error + 'static),
    context: Option<&str>,
) -> ExceptionRecord {
    ExceptionRecord {
        error_type: truncate_owned(error_type, MAX_VALUE_BYTES),
        error_message: truncate_owned(err.to_string(), MAX_VALUE_BYTES),
        traceback: traceback(err, context),
    }
}

/// A `user_error` event's `event_data`.
pub(crate) fn user_error_data(
    error_type: &str,
    err: &(dyn Error + 'static),
    info: UserErrorInfo,
) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    data.insert("error_type".into(), error_type.into());
    let message = err.to_string();
    if !message.is_empty() {
        data.insert("message".into(), truncate_owned(message, MAX_VALUE_BYTES).into());
    }
    data.insert("status_code".into(), info.status_code.into());
    if let Some(body) = info.body {
        data.insert("body".into(), truncate_owned(body, MAX_VALUE_BYTES).into());
    }
    serde_json::Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(short_type_name("core::num::error::ParseIntError"), "ParseIntError");
        assert_eq!(short_type_name("std::io::error::Error"), "io::Error");
        assert_eq!(short_type_name("reqwest::error::Error"), "reqwest::Error");
        assert_eq!(short_type_name("alloc::boxed::Box<dyn core::error::Error>"), "Box<dyn Error>");
        assert_eq!(
            short_type_name("my_app::Wrapper<core::num::error::ParseIntError>"),
            "Wrapper<ParseIntError>"
        );
        assert_eq!("x".parse::<u8>().unwrap_err().error_type(), "ParseIntError");
    }

    #[test]
    fn trait_objects_are_named_from_their_debug_output() {
        let err: Box<dyn Error + Send + Sync> = Box::new("x".parse::<u8>().unwrap_err());
        assert_eq!((*err).error_type(), "ParseIntError");
        let io: Box<dyn Error> = Box::new(std::io::Error::other("disk"));
        assert_eq!(dyn_type_name(&*io), "io::Error");
        let plain: Box<dyn Error + Send + Sync> = "just text".into();
        assert_eq!((*plain).error_type(), "Error");
    }

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
