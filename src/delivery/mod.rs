//! The delivery side, run by the uploader thread: everything between a record taken from the
//! hand-off and the server's answer.
//!
//! ```text
//! thread.rs ── runs ──▶ uploader.rs: take ─▶ wire.rs (redact.rs) ─▶ batch.rs ─▶ dispatch
//!                                                                              │ up to max_in_flight
//!                        send.rs: one batch ◀──────────────────────────────────┘
//!                          loop: transport.rs Transport::post ─▶ Answer
//!                                retry.rs classify(status)    ─▶ Verdict
//!                                retry, wait, split or stop   ─▶ Fate, booked in the hand-off
//! ```
//!
//! `http.rs` is the reqwest `Transport` (whom it trusts over TLS: `tls.rs`); tests drive
//! `send.rs` through a scripted one.

pub(crate) mod batch;
pub(crate) mod diagnose;
pub(crate) mod dropped;
pub(crate) mod http;
pub(crate) mod ratelimit;
pub(crate) mod redact;
pub(crate) mod retry;
pub(crate) mod send;
pub(crate) mod spooling;
pub(crate) mod thread;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod uploader;
pub(crate) mod wire;
