//! Analysis of the captured spans, on the uploader thread: every captured span is an
//! operation, counted, timed and checked for error spikes where its record already goes, so
//! the emitting thread pays nothing for it.
//!
//! ```text
//! uploader.rs add(record) ─▶ analyzer.rs observe
//!                              ├─ operation.rs  record → Operation (route template, error
//!                              │                type, operation label values)
//!                              ├─ labels.rs     error types, servers, queue states, label values bounded
//!                              ├─ sink.rs       every Sink (export/: metrics, OpenTelemetry)
//!                              ├─ operations.rs the table: per key a window (histogram.rs),
//!                              │                the session, and its spike state (spike.rs)
//!                              └─ notify.rs     a spike to the program's callback, on its thread
//! uploader.rs timer ─────────▶ analyzer.rs summary (process.rs) ─▶ performance.summary (report.rs)
//! uploader.rs after a take ──▶ live.rs Publisher ─▶ Live ◀─ TelemetryHandle::operations / usage
//! ```

pub(crate) mod analyzer;
pub(crate) mod bench;
pub(crate) mod histogram;
pub(crate) mod labels;
pub(crate) mod live;
pub(crate) mod notify;
pub(crate) mod operation;
pub(crate) mod operations;
pub(crate) mod process;
pub(crate) mod report;
pub(crate) mod sink;
pub(crate) mod spike;
