//! The delivery side, run by the uploader thread: everything between a record taken from the
//! hand-off and the server's answer.

pub(crate) mod batch;
pub(crate) mod http;
pub(crate) mod redact;
pub(crate) mod retry;
pub(crate) mod send;
pub(crate) mod thread;
pub(crate) mod transport;
pub(crate) mod uploader;
pub(crate) mod wire;
