//! The table of operations: one entry per key (name, method, route template), each with its
//! current summary window (a duration [`Histogram`] and its error count), its count over the
//! session, and its error-spike state. The number of keys is capped; operations past the cap
//! are counted under one [`OTHER_KEY`] entry.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::histogram::Histogram;
use super::sink::Operation;
use super::spike::{SpikeRule, SpikeState};
use crate::handoff::clock::format_timestamp;

/// The name operations past the key cap are counted under.
pub(crate) const OTHER_KEY: &str = "_other";
/// [`OTHER_KEY`]'s entry in the index.
const OTHER_INDEX_KEY: &str = "_other\0\0\0";
/// The most bytes of operation rows one summary lists, so that it stays well within
/// `MAX_EVENT_BYTES` (64 KiB) with its `top` list and process measurements; the least used
/// operations past it are summed into one `_other` row.
const SUMMARY_ROWS_BYTES: usize = 48 * 1024;
/// How many operations `top` lists.
const TOP: usize = 10;

/// What counting one operation led to.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Recorded {
    /// The key cap was reached: the operation was counted under [`OTHER_KEY`].
    pub(crate) folded: bool,
    /// The `alert.error_spike` event data, if this error made its operation's spike.
    pub(crate) alert: Option<Value>,
}

/// One key's numbers.
#[derive(Debug)]
struct Entry {
    name: Box<str>,
    method: Option<Box<str>>,
    route: Option<Box<str>>,
    window: Histogram,
    window_errors: u64,
    total: u64,
    spike: SpikeState,
}

impl Entry {
    /// The key's labels, as a JSON object's first fields.
    fn labels(&self, name_field: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(name_field.into(), self.name.as_ref().into());
        if let Some(method) = &self.method {
            m.insert("method".into(), method.as_ref().into());
        }
        if let Some(route) = &self.route {
            m.insert("route".into(), route.as_ref().into());
        }
        m
    }

    /// The key in words: `http.request GET /api/v1/futures/{id}`.
    fn display(&self) -> String {
        let mut s = self.name.to_string();
        for part in [&self.method, &self.route].into_iter().flatten() {
            s.push(' ');
            s.push_str(part);
        }
        s
    }
}

/// Every operation seen, by key.
#[derive(Debug)]
pub(crate) struct Operations {
    index: HashMap<Box<str>, usize>,
    entries: Vec<Entry>,
    max_keys: usize,
    spike_rule: Option<SpikeRule>,
    /// The key being looked up, reused so that a known key costs no allocation.
    key: String,
    /// Operations recorded since the last summary.
    in_window: u64,
}

impl Operations {
    /// A table of at most `max_keys` keys (plus [`OTHER_KEY`]), raising error-spike alerts by
    /// `spike_rule` if given.
    pub(crate) fn new(max_keys: usize, spike_rule: Option<SpikeRule>) -> Self {
        Operations {
            index: HashMap::new(),
            entries: Vec::new(),
            max_keys,
            spike_rule,
            key: String::new(),
            in_window: 0,
        }
    }

    /// Counts one operation that ended at `at`.
    pub(crate) fn record(&mut self, op: &Operation<'_>, at: SystemTime) -> Recorded {
        let i = self.entry(op);
        let folded = &*self.entries[i].name == OTHER_KEY && op.name != OTHER_KEY;
        Recorded { folded, alert: self.count(i, op, at) }
    }

    /// Counts `op` in entry `i`; returns the alert data if this error makes a spike.
    fn count(&mut self, i: usize, op: &Operation<'_>, at: SystemTime) -> Option<Value> {
        let entry = &mut self.entries[i];
        entry.window.record(op.duration.as_secs_f64() * 1000.0);
        entry.total += 1;
        self.in_window += 1;
        let error_type = op.error_type?;
        entry.window_errors += 1;
        let rule = self.spike_rule?;
        let spike = entry.spike.error(rule, at, error_type)?;
        let mut data = entry.labels("operation");
        data.insert("errors".into(), spike.errors.into());
        data.insert("window_s".into(), json!(rule.window.as_secs_f64()));
        data.insert("first_error_at".into(), format_timestamp(spike.first_error_at).into());
        // Types as values, not keys: a key could be taken for a secret's name and redacted.
        let types: Vec<Value> =
            spike.error_types.into_iter().map(|(t, n)| json!({"type": &*t, "count": n})).collect();
        data.insert("error_types".into(), types.into());
        Some(Value::Object(data))
    }

    /// The entry for `op`'s key, made if new and there is room, else [`OTHER_KEY`]'s.
    fn entry(&mut self, op: &Operation<'_>) -> usize {
        self.key.clear();
        for part in [Some(op.name), op.method, op.route] {
            self.key.push_str(part.unwrap_or(""));
            self.key.push('\0');
        }
        if let Some(&i) = self.index.get(self.key.as_str()) {
            return i;
        }
        let full = self.index.len() >= self.max_keys;
        if full {
            if let Some(&i) = self.index.get(OTHER_INDEX_KEY) {
                return i;
            }
        }
        let (key, name, method, route) = if full {
            (OTHER_INDEX_KEY, OTHER_KEY, None, None)
        } else {
            (self.key.as_str(), op.name, op.method, op.route)
        };
        let next = self.entries.len();
        let i = *self.index.entry(key.into()).or_insert(next);
        if i == next {
            self.entries.push(Entry {
                name: name.into(),
                method: method.map(Into::into),
                route: route.map(Into::into),
                window: Histogram::default(),
                window_errors: 0,
                total: 0,
                spike: SpikeState::default(),
            });
        }
        i
    }

    /// Whether anything was recorded since the last summary.
    pub(crate) fn active(&self) -> bool {
        self.in_window > 0
    }

    /// The `performance.summary` operations and top list for the window that ends now, and
    /// a new window begun; `None` when nothing happened in it.
    ///
    /// `{"operations": [{"name", "method"?, "route"?, "count", "errors", "error_rate",
    /// "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}, …], "top": [...]}`, operations
    /// most frequent first, those past 48 KiB of rows (and the key cap's) summed as one
    /// `_other` row last; `top` names the ten most frequent over the session.
    pub(crate) fn summary(&mut self) -> Option<Map<String, Value>> {
        if !self.active() {
            return None;
        }
        self.in_window = 0;
        let mut rows: Vec<&mut Entry> = self.entries.iter_mut().filter(|e| e.window.count() > 0).collect();
        rows.sort_by(|a, b| b.window.count().cmp(&a.window.count()).then_with(|| a.name.cmp(&b.name)));
        let mut operations: Vec<Value> = Vec::new();
        let mut bytes = 0;
        // The rows past the budget (and the `_other` key's), as one `_other` row.
        let (mut rest, mut rest_errors) = (Histogram::default(), 0);
        for e in rows {
            let row = if &*e.name == OTHER_KEY {
                None
            } else {
                Some(row(e.labels("name"), &e.window, e.window_errors))
            };
            let size = row.as_ref().map_or(0, |r| serde_json::to_vec(r).map_or(0, |v| v.len() + 1));
            match row {
                Some(row) if bytes + size <= SUMMARY_ROWS_BYTES => {
                    bytes += size;
                    operations.push(row);
                }
                _ => {
                    rest.merge(&e.window);
                    rest_errors += e.window_errors;
                }
            }
            e.window.clear();
            e.window_errors = 0;
        }
        if rest.count() > 0 {
            let mut labels = Map::new();
            labels.insert("name".into(), OTHER_KEY.into());
            operations.push(row(labels, &rest, rest_errors));
        }
        let mut by_use: Vec<&Entry> = self.entries.iter().collect();
        by_use.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
        let top: Vec<Value> = by_use.into_iter().take(TOP).map(|e| e.display().into()).collect();
        let mut out = Map::new();
        out.insert("operations".into(), operations.into());
        out.insert("top".into(), top.into());
        Some(out)
    }

    /// Keys in the table, [`OTHER_KEY`] included.
    pub(crate) fn keys(&self) -> usize {
        self.entries.len()
    }

    /// About the heap the table holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        let per_entry = size_of::<Entry>() + 2 * size_of::<(Box<str>, usize)>();
        self.entries
            .iter()
            .map(|e| {
                per_entry
                    + 2 * (e.name.len()
                        + e.method.as_ref().map_or(0, |m| m.len())
                        + e.route.as_ref().map_or(0, |r| r.len()))
                    + e.window.heap_bytes()
            })
            .sum()
    }
}

/// One operation's row of a summary: its labels, then its numbers.
fn row(mut row: Map<String, Value>, h: &Histogram, errors: u64) -> Value {
    row.insert("count".into(), h.count().into());
    row.insert("errors".into(), errors.into());
    row.insert("error_rate".into(), json!(round(errors as f64 / h.count() as f64, 4)));
    row.insert("avg_ms".into(), json!(round(h.mean_ms(), 3)));
    for (field, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        row.insert(field.into(), json!(round(h.quantile(q), 3)));
    }
    row.insert("max_ms".into(), json!(round(h.max_ms(), 3)));
    Value::Object(row)
}

/// `x` rounded to `digits` decimals, for numbers people read.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn op<'a>(method: &'a str, route: &'a str, ms: u64, error_type: Option<&'a str>) -> Operation<'a> {
        Operation {
            method: Some(method),
            route: Some(route),
            error_type,
            duration: Duration::from_millis(ms),
            ..Operation::get_for_tests(None)
        }
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_239_517) + Duration::from_millis(ms)
    }

    #[test]
    fn a_window_summarises_each_key_then_starts_again() {
        let mut ops = Operations::new(16, None);
        assert_eq!(ops.summary(), None, "nothing happened: no summary");
        for ms in 1..=100 {
            ops.record(&op("GET", "/a", ms, None), at(ms));
        }
        ops.record(&op("POST", "/b", 40, Some("500")), at(0));
        ops.record(&op("POST", "/b", 60, None), at(0));
        let s = Value::Object(ops.summary().unwrap());
        let get = &s["operations"][0];
        assert_eq!(
            (get["name"].as_str(), get["method"].as_str(), get["route"].as_str()),
            (Some("http.request"), Some("GET"), Some("/a"))
        );
        assert_eq!(
            (get["count"].as_u64(), get["errors"].as_u64(), get["error_rate"].as_f64()),
            (Some(100), Some(0), Some(0.0))
        );
        assert_eq!(get["avg_ms"], 50.5);
        assert_eq!(get["max_ms"], 100.0);
        for (field, want) in [("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)] {
            let got = get[field].as_f64().unwrap();
            assert!((got - want).abs() <= want * 0.02, "{field}: {got}");
        }
        let post = &s["operations"][1];
        assert_eq!(
            (post["count"].as_u64(), post["errors"].as_u64(), post["error_rate"].as_f64()),
            (Some(2), Some(1), Some(0.5))
        );
        assert_eq!(s["top"], json!(["http.request GET /a", "http.request POST /b"]));
        assert_eq!(ops.summary(), None, "a new window, still empty");
        ops.record(&op("POST", "/b", 1, None), at(0));
        let s = Value::Object(ops.summary().unwrap());
        assert_eq!(s["operations"].as_array().unwrap().len(), 1, "only what happened in the window");
        assert_eq!(s["top"][0], "http.request GET /a", "top counts the whole session");
    }

    #[test]
    fn keys_past_the_cap_fold_into_other() {
        let mut ops = Operations::new(3, None);
        let routes: Vec<String> = (0..1000).map(|i| format!("/r{i}")).collect();
        for (i, r) in routes.iter().enumerate() {
            assert_eq!(ops.record(&op("GET", r, 1, None), at(0)).folded, i >= 3);
        }
        assert_eq!(ops.keys(), 4, "three keys and _other");
        let s = Value::Object(ops.summary().unwrap());
        let other = s["operations"].as_array().unwrap().iter().find(|o| o["name"] == OTHER_KEY).unwrap();
        assert_eq!(other["count"], 997);
        assert!(other.get("route").is_none());
        assert!(ops.heap_bytes() < 4 * 1024, "{}", ops.heap_bytes());
    }

    #[test]
    fn a_summary_stays_within_an_event_and_counts_every_operation() {
        let mut ops = Operations::new(10_000, None);
        let long = "x".repeat(100);
        for i in 0..2000u64 {
            for _ in 0..=(i % 3) {
                ops.record(&op("GET", &format!("/{long}/{i:04}"), 1 + i, None), at(0));
            }
        }
        let s = Value::Object(ops.summary().unwrap());
        let bytes = serde_json::to_vec(&s).unwrap().len();
        assert!(bytes < crate::limits::MAX_EVENT_BYTES - 4096, "{bytes} bytes");
        let rows = s["operations"].as_array().unwrap();
        let other = rows.last().unwrap();
        assert_eq!(other["name"], OTHER_KEY);
        let counted: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
        assert_eq!(counted, (0..2000u64).map(|i| i % 3 + 1).sum::<u64>(), "every operation counted");
        assert!(rows.len() > 100, "{} rows listed", rows.len());
        assert_eq!(rows[0]["count"], 3, "the most used listed first");
        assert_eq!(other["max_ms"], 2000.0, "the rest keep their numbers");
    }

    #[test]
    fn spikes_alert_with_the_operation_labels() {
        let rule = SpikeRule { threshold: 5, window: Duration::from_secs(10) };
        let mut ops = Operations::new(16, Some(rule));
        for t in 0..4 {
            assert_eq!(ops.record(&op("POST", "/b", 1, Some("500")), at(t * 100)).alert, None);
        }
        assert_eq!(
            ops.record(&op("GET", "/a", 1, Some("500")), at(450)).alert,
            None,
            "another operation's error"
        );
        let alert = ops.record(&op("POST", "/b", 1, Some("503")), at(500)).alert.unwrap();
        assert_eq!(
            alert,
            json!({"operation": "http.request", "method": "POST", "route": "/b", "errors": 5, "window_s": 10.0,
                   "first_error_at": "2026-11-21T05:38:37.000000Z",
                   "error_types": [{"type": "500", "count": 4}, {"type": "503", "count": 1}]})
        );
        assert_eq!(ops.record(&op("POST", "/b", 1, Some("500")), at(600)).alert, None);
    }
}
