//! Errors: the crate's own ([`BuildError`](build::BuildError)), and the user's as telemetry
//! (user-error classification, exception records). Runs wherever an error is reported: the
//! emitting thread for an error recorded through tracing, the caller's for the handle's
//! helpers.

pub(crate) mod build;
pub(crate) mod classify;
pub(crate) mod report;
pub(crate) mod reportable;
pub(crate) mod reqwest_versions;
pub(crate) mod status;
