//! The reqwest versions whose errors are recognised, one cargo feature each, the way
//! reqwest-tracing names an OpenTelemetry version per feature: `reqwest-0-13` (on by
//! default; the crate's own transport) and `reqwest-0-12` (pulls reqwest 0.12, no default
//! features). A reqwest error carries the response's status when it came from
//! `error_for_status`; that status is what user-error classification reads, through any
//! wrapper that exposes the error in its `source()` chain (`anyhow`, `Box<dyn Error>`, an
//! application's own error types).
//!
//! Adding a version: one `recognise!` line and one feature in `Cargo.toml`.

use std::error::Error;

#[cfg(any(feature = "reqwest-0-13", feature = "reqwest-0-12"))]
use super::status::{HttpStatusError, read_status};

/// Implements [`HttpStatusError`] for one version's `reqwest::Error`, and lists the type in
/// [`status`] and [`is_reqwest_error`].
macro_rules! recognise {
    ($($feature:literal => $error:ty),* $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            impl HttpStatusError for $error {
                fn status_code(&self) -> Option<u16> {
                    self.status().map(|s| s.as_u16())
                }
            }
        )*

        /// The status of `err` when it is a reqwest error of a recognised version that
        /// carries one. Never a body: reqwest errors do not keep it.
        pub(crate) fn status(err: &(dyn Error + 'static)) -> Option<(u16, Option<String>)> {
            $(
                #[cfg(feature = $feature)]
                if let Some(found) = read_status::<$error>(err) {
                    return Some(found);
                }
            )*
            let _ = err;
            None
        }

        /// Whether `err` is a `reqwest::Error` of a recognised version.
        pub(crate) fn is_reqwest_error(err: &(dyn Error + 'static)) -> bool {
            $(
                #[cfg(feature = $feature)]
                if err.is::<$error>() {
                    return true;
                }
            )*
            let _ = err;
            false
        }
    };
}

recognise! {
    "reqwest-0-13" => reqwest::Error,
    "reqwest-0-12" => reqwest_012::Error,
}
