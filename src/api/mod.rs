//! The user-facing side: the guard that ends the session, the handle that logs, flushes,
//! waits, reads the counters and ends the session from anywhere, exception and panic
//! capture, and the optional signal handler. Runs on the caller's threads.

pub(crate) mod exceptions;
pub(crate) mod future;
pub(crate) mod guard;
pub(crate) mod handle;
pub(crate) mod panic;
pub(crate) mod registry;
pub(crate) mod reporter;
#[cfg(feature = "signals")]
pub(crate) mod signals;
