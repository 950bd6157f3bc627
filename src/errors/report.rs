//! Errors as telemetry events: type names, cause chains and backtraces, and the record an
//! error becomes (`UNHANDLED_EXCEPTION`, or a `user_error` event).

use std::error::Error;
use std::fmt::{self, Write as _};

use super::classify::{Classifier, UserErrorInfo, chain};
use super::reqwest_versions;
use super::status::HttpError;
use crate::handoff::clock::Stamp;
use crate::handoff::record::{Body, ExceptionRecord, Record};
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_VALUE_BYTES, truncate_owned};
use crate::severity::Severity;

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
        // Bytes past ASCII belong to a name's characters (`Größe`).
        if c.is_ascii_alphanumeric() || c == b'_' || !c.is_ascii() {
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
    if reqwest_versions::is_reqwest_error(err) {
        return "reqwest::Error".into();
    }
    if err.is::<std::io::Error>() {
        return "io::Error".into();
    }
    let mut head = Head { text: String::new(), room: 64 };
    let _ = write!(head, "{err:?}");
    let name: String = head.text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let rest = &head.text[name.len()..];
    let looks_like_type = name.starts_with(|c: char| c.is_ascii_uppercase())
        && (rest.is_empty() || rest.starts_with([' ', '(', '{']));
    if looks_like_type { name } else { "Error".into() }
}

/// Keeps the first `room` bytes written, then stops the formatter.
struct Head {
    text: String,
    room: usize,
}

impl fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.room - self.text.len();
        if s.len() >= room {
            self.text.push_str(crate::limits::floor_char_boundary(s, room));
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// `err`'s `Display` text, cut to `max` bytes and marked when longer. Never more than that
/// is formatted, and an impl that fails leaves what it wrote instead of panicking.
fn display_text(err: &dyn Error, max: usize) -> String {
    // A few bytes past `max`, so that a text cut on a character boundary still shows longer.
    let mut head = Head { text: String::new(), room: max + 4 };
    let _ = write!(head, "{err}");
    truncate_owned(head.text, max)
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
        error_message: display_text(err, MAX_VALUE_BYTES),
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
    let message = display_text(err, MAX_VALUE_BYTES);
    if !message.is_empty() {
        data.insert("message".into(), message.into());
    }
    data.insert("status_code".into(), info.status_code.into());
    if let Some(body) = info.body {
        data.insert("body".into(), truncate_owned(body, MAX_VALUE_BYTES).into());
    }
    serde_json::Value::Object(data)
}

/// The record for an error: `user_error` (WARNING) for user errors, else
/// UNHANDLED_EXCEPTION with `severity`.
pub(crate) fn error_record(
    classifier: &Classifier,
    err: &(dyn std::error::Error + 'static),
    error_type: String,
    severity: Severity,
    context: Option<&str>,
) -> Record {
    let time = Stamp::now();
    match classifier.user_error(err) {
        Some(info) => Record {
            time,
            severity: Severity::Warning,
            body: Body::Json { name: "user_error".into(), data: user_error_data(&error_type, err, info) },
        },
        None => Record {
            time,
            severity,
            body: Body::Exception(Box::new(exception_record(error_type, err, context))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::reportable::ReportableError;

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
}
