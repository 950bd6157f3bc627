//! [`ReportableError`]: what the handle's exception helpers accept. Errors as applications
//! carry them: any `std::error::Error` value, the `dyn Error` trait objects, boxed trait
//! objects, and (behind features) `anyhow::Error` and `eyre::Report`, which are not
//! `std::error::Error` themselves.
//!
//! The trait's parameter tells those families apart, so that each has an implementation of
//! its own: a single blanket implementation for every `E: Error` would forbid the others
//! (their crates could implement `Error` one day). It is inferred and never written.

use std::error::Error;

use super::report::{dyn_type_name, short_type_name};

/// An error that telemetry can report, with its cause chain: any sized
/// `std::error::Error + 'static`, `dyn Error` (also `+ Send`, `+ Send + Sync`), `Box<dyn Error>`
/// (the same three), and with the `anyhow` and `eyre` features `anyhow::Error` and
/// `eyre::Report`. `Kind` is one of the [`kinds`] and is inferred: callers never name it.
///
/// # Examples
/// ```
/// # let (_layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder().enabled(false).build()?;
/// use tinker_telemetry::Severity;
///
/// let handle = guard.handle();
/// let boxed: Box<dyn std::error::Error + Send + Sync> = "disk full".into();
/// handle.log_exception(&boxed, Severity::Error);
/// let parsed: Result<u8, Box<dyn std::error::Error + Send + Sync>> =
///     handle.capture(|| Ok("7".parse::<u8>()?));
/// # Ok::<(), tinker_telemetry::BuildError>(())
/// ```
pub trait ReportableError<Kind = kinds::Value> {
    /// The error as a trait object, for its `Display` and `source()` chain.
    fn as_error(&self) -> &(dyn Error + 'static);

    /// The error's type name without its module path: `ParseIntError`, `io::Error`.
    fn error_type(&self) -> String;
}

/// The families of [`ReportableError`]: its inferred parameter.
pub mod kinds {
    /// A sized `std::error::Error` value.
    #[derive(Debug)]
    pub struct Value;
    /// A `dyn Error` trait object.
    #[derive(Debug)]
    pub struct Object;
    /// A boxed `dyn Error` trait object.
    #[derive(Debug)]
    pub struct Boxed;
    /// An `anyhow::Error`.
    #[derive(Debug)]
    pub struct Anyhow;
    /// An `eyre::Report`.
    #[derive(Debug)]
    pub struct Eyre;
}

impl<E: Error + 'static> ReportableError<kinds::Value> for E {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self
    }

    fn error_type(&self) -> String {
        short_type_name(std::any::type_name::<E>())
    }
}

macro_rules! reportable_objects {
    ($($t:ty),*) => {$(
        impl ReportableError<kinds::Object> for $t {
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

        impl ReportableError<kinds::Boxed> for Box<$t> {
            fn as_error(&self) -> &(dyn Error + 'static) {
                &**self
            }

            fn error_type(&self) -> String {
                dyn_type_name(&**self)
            }
        }
    )*};
}

reportable_objects!(dyn Error + 'static, dyn Error + Send + 'static, dyn Error + Send + Sync + 'static);

#[cfg(feature = "anyhow")]
impl ReportableError<kinds::Anyhow> for anyhow::Error {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self.as_ref()
    }

    /// The root cause's type: the outer layers are context.
    fn error_type(&self) -> String {
        dyn_type_name(self.root_cause())
    }
}

#[cfg(feature = "eyre")]
impl ReportableError<kinds::Eyre> for eyre::Report {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self.as_ref()
    }

    /// The root cause's type: the outer layers are context.
    fn error_type(&self) -> String {
        dyn_type_name(self.root_cause())
    }
}
