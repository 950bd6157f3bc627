//! What the analysis reports, as types: the `performance.summary` and `alert.error_spike`
//! events' data exactly as they go on the wire, and the snapshot the program reads through
//! [`TelemetryHandle::operations`](crate::TelemetryHandle::operations), whose rows are the
//! summary's rows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::handoff::clock::format_timestamp;

/// What an operation is counted by: its name, method and route template, and the values of
/// the program's operation labels
/// ([`Builder::operation_label`](crate::Builder::operation_label)).
///
/// Serialized as the first fields of a `performance.summary` row: `name`, then `method` and
/// `route` when it has them, then one field per label that has a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub struct OperationKey {
    /// The span's name as sent (`http.request` for every HTTP span); `_other` for the
    /// operations past [`max_operations`](crate::Builder::max_operations).
    pub name: String,
    /// The HTTP method, upper case (`_OTHER` for a non-standard one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The route template (`/api/v1/futures/{id}`), for HTTP operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Each operation label's value, by the label's name (its span field); a label the span
    /// had no value for is left out.
    #[serde(flatten)]
    pub labels: BTreeMap<String, String>,
}

impl OperationKey {
    /// The key in words, as `performance.summary`'s `top` lists it:
    /// `http.request GET /api/v1/futures/{id} loss_fn=cross_entropy`.
    #[must_use]
    pub fn display(&self) -> String {
        let mut s = self.name.clone();
        for part in [&self.method, &self.route].into_iter().flatten() {
            s.push(' ');
            s.push_str(part);
        }
        for (name, value) in &self.labels {
            s.push_str(&format!(" {name}={value}"));
        }
        s
    }
}

/// One operation's numbers over a stretch of time: a `performance.summary` row's numbers.
/// Durations are in milliseconds, rounded to the microsecond; quantiles are within
/// [`QUANTILE_RELATIVE_ERROR`](crate::QUANTILE_RELATIVE_ERROR) of a duration that really
/// was at that rank; the maximum is exact.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct OperationNumbers {
    /// How many times the operation ended.
    pub count: u64,
    /// How many of those failed (a status of 400 and up, an error, an `ERROR` level).
    pub errors: u64,
    /// `errors / count`, rounded to 4 decimals.
    pub error_rate: f64,
    /// The mean duration, ms.
    pub avg_ms: f64,
    /// The median duration, ms.
    pub p50_ms: f64,
    /// The 95th percentile duration, ms.
    pub p95_ms: f64,
    /// The 99th percentile duration, ms.
    pub p99_ms: f64,
    /// The longest duration, ms.
    pub max_ms: f64,
}

/// One row of a `performance.summary`: an operation's key, then its numbers over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SummaryRow {
    #[serde(flatten)]
    pub(crate) key: OperationKey,
    #[serde(flatten)]
    pub(crate) numbers: OperationNumbers,
}

/// A `performance.summary` event's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SummaryData {
    /// How long the window lasted, seconds.
    pub(crate) window_s: f64,
    /// The window's operations, most used first; the rows past the event's room summed as
    /// one `_other` row last.
    pub(crate) operations: Vec<SummaryRow>,
    /// The ten most used operations of the session, in words ([`OperationKey::display`]).
    pub(crate) top: Vec<String>,
    pub(crate) process: ProcessMeasurements,
}

/// Measurements of the whole process, each left out when it could not be read.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub(crate) struct ProcessMeasurements {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resident_memory_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_time_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) threads: Option<u64>,
    /// The tokio runtime the reporter was built in, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tokio: Option<RuntimeMeasurements>,
}

/// A tokio runtime's workers, its tasks not yet finished and the tasks waiting in its shared
/// run queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct RuntimeMeasurements {
    pub(crate) workers: usize,
    pub(crate) alive_tasks: usize,
    pub(crate) global_queue_depth: usize,
}

/// An error spike: one operation failed [`errors`](Self::errors) times within the window of
/// [`Builder::error_spike`](crate::Builder::error_spike). It is the data of the
/// `alert.error_spike` event, and what
/// [`Builder::on_error_spike`](crate::Builder::on_error_spike)'s callback is given.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ErrorSpike {
    /// The operation's name (`http.request` for every HTTP span).
    pub operation: String,
    /// Its HTTP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Its route template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Its operation labels' values, by label name.
    #[serde(flatten)]
    pub labels: BTreeMap<String, String>,
    /// The failures within the window when the alert fired.
    pub errors: usize,
    /// The rule's window, seconds.
    pub window_s: f64,
    /// When the first of those failures happened (its span closed).
    #[serde(serialize_with = "timestamp")]
    pub first_error_at: SystemTime,
    /// Each error type among them (`"503"`, `"timeout"`, …) with its count, in order of
    /// first appearance.
    pub error_types: Vec<ErrorTypeCount>,
}

/// One error type of an [`ErrorSpike`] and how many of its failures had it. Types are
/// values, not keys, on the wire: a key could be taken for a secret's name and redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErrorTypeCount {
    /// The error type.
    #[serde(rename = "type")]
    pub error_type: String,
    /// How many failures had it.
    pub count: usize,
}

/// An operation as [`TelemetryHandle::operations`](crate::TelemetryHandle::operations)
/// shows it: its key, its numbers over the last completed summary window, and over the
/// session so far.
///
/// Serialized as `{"name", "method", "route", <labels>, "window": {"count", "errors",
/// "error_rate", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"} | null, "session": {…}}`:
/// the key and the window's numbers are the `performance.summary` row sent for that window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OperationStats {
    /// What the operation is counted by (shared between snapshots: a read copies no text).
    #[serde(flatten)]
    pub key: Arc<OperationKey>,
    /// Its numbers in the last completed window; `None` when it did not end in that window
    /// (or no window has completed yet).
    pub window: Option<OperationNumbers>,
    /// Its numbers since the session began, up to the uploader's last take.
    pub session: OperationNumbers,
}

/// Every operation of the session as of the uploader's last take; see
/// [`TelemetryHandle::operations`](crate::TelemetryHandle::operations).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct OperationsSnapshot {
    /// One entry per operation key, the most used over the session first (those used
    /// alike in the order they were first seen).
    pub operations: Vec<OperationStats>,
    /// When the last completed summary window closed; `None` before the first one.
    #[serde(serialize_with = "optional_timestamp")]
    pub window_closed_at: Option<SystemTime>,
    /// How long that window lasted, seconds.
    pub window_s: Option<f64>,
    /// When the uploader published these numbers (its last take); `None` when it has not
    /// yet, or the analysis is off.
    #[serde(serialize_with = "optional_timestamp")]
    pub taken_at: Option<SystemTime>,
}

impl OperationsSnapshot {
    /// The entry whose key is `name`, `method` and `route` (any labels), the first found.
    #[must_use]
    pub fn find(&self, name: &str, method: Option<&str>, route: Option<&str>) -> Option<&OperationStats> {
        self.operations.iter().find(|o| {
            o.key.name == name && o.key.method.as_deref() == method && o.key.route.as_deref() == route
        })
    }
}

/// The session's usage: its most used operations and the totals; see
/// [`TelemetryHandle::usage`](crate::TelemetryHandle::usage).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct UsageReport {
    /// The ten most used operations over the session, most used first: the operations
    /// `performance.summary`'s `top` names.
    pub top: Vec<OperationStats>,
    /// Distinct operation keys seen (`_other` included).
    pub operations: usize,
    /// Operations that ended, all keys together.
    pub count: u64,
    /// Those that failed.
    pub errors: u64,
    /// `errors / count`, rounded to 4 decimals; 0 when nothing ended.
    pub error_rate: f64,
    /// When the uploader published these numbers (its last take).
    #[serde(serialize_with = "optional_timestamp")]
    pub taken_at: Option<SystemTime>,
}

fn timestamp<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*at))
}

fn optional_timestamp<S: Serializer>(at: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => timestamp(at, s),
        None => s.serialize_none(),
    }
}

/// `x` rounded to `digits` decimals, for numbers people read.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;

    /// The object's field names, in order.
    fn fields(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>()
    }

    fn sorted(mut names: Vec<&str>) -> Vec<&str> {
        names.sort_unstable();
        names
    }

    fn key(labels: &[(&str, &str)]) -> OperationKey {
        OperationKey {
            name: "http.request".into(),
            method: Some("POST".into()),
            route: Some("/api/v1/forward_backward".into()),
            labels: labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        }
    }

    /// The wire contract's `performance.summary`: `window_s`, `operations` [per operation:
    /// `name`, its labels, `count`, `errors`, `error_rate`, `avg_ms`, `p50_ms`, `p95_ms`,
    /// `p99_ms`, `max_ms`], `top`, process measurements.
    #[test]
    fn the_summary_has_the_wire_contract_s_shape() {
        let row =
            SummaryRow { key: key(&[("loss_fn", "cross_entropy")]), numbers: OperationNumbers::default() };
        let data = SummaryData {
            window_s: 60.0,
            operations: vec![row],
            top: vec!["http.request POST /api/v1/forward_backward".into()],
            process: ProcessMeasurements {
                resident_memory_bytes: Some(1),
                cpu_time_s: Some(0.5),
                threads: Some(3),
                tokio: Some(RuntimeMeasurements { workers: 2, alive_tasks: 4, global_queue_depth: 0 }),
            },
        };
        let v = serde_json::to_value(&data).unwrap();
        assert_eq!(sorted(fields(&v)), ["operations", "process", "top", "window_s"]);
        assert_eq!(
            sorted(fields(&v["operations"][0])),
            sorted(vec![
                "name",
                "method",
                "route",
                "loss_fn",
                "count",
                "errors",
                "error_rate",
                "avg_ms",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "max_ms"
            ])
        );
        assert_eq!(
            sorted(fields(&v["process"])),
            ["cpu_time_s", "resident_memory_bytes", "threads", "tokio"]
        );
        assert_eq!(sorted(fields(&v["process"]["tokio"])), ["alive_tasks", "global_queue_depth", "workers"]);
        let bare = SummaryRow {
            key: OperationKey { method: None, route: None, ..key(&[]) },
            ..data.operations[0].clone()
        };
        assert!(!fields(&serde_json::to_value(bare).unwrap()).contains(&"route"), "no label it has not");
        let none = serde_json::to_value(ProcessMeasurements::default()).unwrap();
        assert_eq!(none, json!({}), "what could not be measured is left out");
    }

    /// The wire contract's `alert.error_spike`: `operation`, its labels, `errors`,
    /// `window_s`, `first_error_at`, `error_types`.
    #[test]
    fn the_alert_has_the_wire_contract_s_shape() {
        let spike = ErrorSpike {
            operation: "http.request".into(),
            method: Some("GET".into()),
            route: Some("/a".into()),
            labels: [("loss_fn".to_owned(), "ppo".to_owned())].into(),
            errors: 5,
            window_s: 10.0,
            first_error_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_239_517),
            error_types: vec![ErrorTypeCount { error_type: "503".into(), count: 5 }],
        };
        assert_eq!(
            serde_json::to_value(&spike).unwrap(),
            json!({"operation": "http.request", "method": "GET", "route": "/a", "loss_fn": "ppo", "errors": 5,
                   "window_s": 10.0, "first_error_at": "2026-11-21T05:38:37.000000Z",
                   "error_types": [{"type": "503", "count": 5}]})
        );
    }

    #[test]
    fn a_snapshot_entry_carries_the_summary_row_s_names() {
        let numbers =
            OperationNumbers { count: 2, errors: 1, error_rate: 0.5, ..OperationNumbers::default() };
        let stats = OperationStats { key: Arc::new(key(&[])), window: Some(numbers), session: numbers };
        let v = serde_json::to_value(&stats).unwrap();
        let row = serde_json::to_value(SummaryRow { key: key(&[]), numbers }).unwrap();
        for (field, value) in row.as_object().unwrap() {
            let got = v.get(field).or_else(|| v["window"].get(field)).unwrap();
            assert_eq!(got, value, "{field}");
        }
        assert_eq!(v["session"], v["window"]);
        assert_eq!(
            key(&[("b", "2"), ("a", "1")]).display(),
            "http.request POST /api/v1/forward_backward a=1 b=2"
        );
    }
}
