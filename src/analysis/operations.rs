//! The table of operations: one entry per key (name, method, route template, operation
//! label values), each with its current summary window (a duration [`Histogram`] and its
//! error count), the windows before it, the last window's numbers as its summary said them,
//! and its error-spike state. The number of keys is capped; operations past the cap are
//! counted under one [`OTHER_KEY`] entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::histogram::{Both, Histogram};
use super::report::{ErrorSpike, ErrorTypeCount, OperationKey, OperationNumbers, SummaryRow, round};
use super::sink::Operation;
use super::spike::{Spike, SpikeRule, SpikeState};

/// The name operations past the key cap are counted under.
pub(crate) const OTHER_KEY: &str = "_other";
/// The most bytes of operation rows one summary lists, so that it stays well within
/// `MAX_EVENT_BYTES` (64 KiB) with its `top` list and process measurements; the least used
/// operations past it are summed into one `_other` row.
const SUMMARY_ROWS_BYTES: usize = 48 * 1024;
/// How many operations `top` lists.
pub(crate) const TOP: usize = 10;

/// What counting one operation led to.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Recorded {
    /// The key cap was reached: the operation was counted under [`OTHER_KEY`].
    pub(crate) folded: bool,
    /// The error spike, if this error made its operation's.
    pub(crate) alert: Option<ErrorSpike>,
}

/// One key's numbers.
#[derive(Debug)]
struct Entry {
    key: Arc<OperationKey>,
    window: Histogram,
    window_errors: u64,
    /// The completed windows' durations and errors.
    past: Histogram,
    past_errors: u64,
    /// The last completed window's numbers, as its summary row said them; `None` when the
    /// operation did not end in it.
    last_window: Option<OperationNumbers>,
    spike: SpikeState,
    /// Counted since the changes were last taken.
    changed: bool,
}

impl Entry {
    fn total(&self) -> u64 {
        self.past.count() + self.window.count()
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
    /// [`OTHER_KEY`]'s entry in the index, in [`encode`]'s form.
    other_index_key: Box<str>,
    /// Operations recorded since the last summary.
    in_window: u64,
    /// The entries counted since the changes were last taken.
    changed: Vec<usize>,
    /// Every entry changed (a window closed) since the changes were last taken.
    all_changed: bool,
}

/// Writes a key in the index's form: each part then `\0`, a part that is absent as `\1`.
fn encode<'a>(out: &mut String, parts: impl IntoIterator<Item = Option<&'a str>>) {
    out.clear();
    for part in parts {
        out.push_str(part.unwrap_or("\u{1}"));
        out.push('\0');
    }
}

impl Operations {
    /// A table of at most `max_keys` keys (plus [`OTHER_KEY`]), raising error-spike alerts by
    /// `spike_rule` if given, keyed by the values of the operation labels `label_names` too.
    pub(crate) fn new(max_keys: usize, spike_rule: Option<SpikeRule>, label_names: &[Box<str>]) -> Self {
        let mut other_index_key = String::new();
        let no_labels = label_names.iter().map(|_| None);
        encode(&mut other_index_key, [Some(OTHER_KEY), None, None].into_iter().chain(no_labels));
        Operations {
            index: HashMap::new(),
            entries: Vec::new(),
            max_keys,
            spike_rule,
            key: String::new(),
            other_index_key: other_index_key.into(),
            in_window: 0,
            changed: Vec::new(),
            all_changed: false,
        }
    }

    /// Counts one operation that ended at `at`.
    pub(crate) fn record(&mut self, op: &Operation<'_>, at: SystemTime) -> Recorded {
        let i = self.entry(op);
        let folded = self.entries[i].key.name == OTHER_KEY && op.name != OTHER_KEY;
        Recorded { folded, alert: self.count(i, op, at) }
    }

    /// Counts `op` in entry `i`; returns the spike if this error makes one.
    fn count(&mut self, i: usize, op: &Operation<'_>, at: SystemTime) -> Option<ErrorSpike> {
        let entry = &mut self.entries[i];
        entry.window.record(op.duration.as_secs_f64() * 1000.0);
        self.in_window += 1;
        if !entry.changed {
            entry.changed = true;
            self.changed.push(i);
        }
        let error_type = op.error_type?;
        entry.window_errors += 1;
        let rule = self.spike_rule?;
        let spike = entry.spike.error(rule, at, error_type)?;
        Some(error_spike(&entry.key, rule.window, spike))
    }

    /// The entry for `op`'s key, made if new and there is room, else [`OTHER_KEY`]'s.
    fn entry(&mut self, op: &Operation<'_>) -> usize {
        encode(&mut self.key, [Some(op.name), op.method, op.route].into_iter().chain(op.labels.values()));
        if let Some(&i) = self.index.get(self.key.as_str()) {
            return i;
        }
        let full = self.index.len() >= self.max_keys;
        if full {
            if let Some(&i) = self.index.get(&self.other_index_key) {
                return i;
            }
        }
        let (index_key, key) = if full {
            let key = OperationKey {
                name: OTHER_KEY.into(),
                method: None,
                route: None,
                labels: Default::default(),
            };
            (self.other_index_key.clone(), key)
        } else {
            let labels = op.labels.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            let key = OperationKey {
                name: op.name.into(),
                method: op.method.map(Into::into),
                route: op.route.map(Into::into),
                labels,
            };
            (self.key.as_str().into(), key)
        };
        self.index.insert(index_key, self.entries.len());
        self.entries.push(Entry {
            key: Arc::new(key),
            window: Histogram::default(),
            window_errors: 0,
            past: Histogram::default(),
            past_errors: 0,
            last_window: None,
            spike: SpikeState::default(),
            changed: false,
        });
        self.entries.len() - 1
    }

    /// Whether anything was recorded since the last summary.
    pub(crate) fn active(&self) -> bool {
        self.in_window > 0
    }

    /// The `performance.summary` rows and top list for the window that ends now, and a new
    /// window begun; `None` when nothing happened in it.
    ///
    /// Rows most frequent first, those past 48 KiB of rows (and the key cap's) summed as one
    /// `_other` row last; `top` names the ten most frequent over the session (first seen
    /// first among those used alike).
    pub(crate) fn summary(&mut self) -> Option<(Vec<SummaryRow>, Vec<String>)> {
        if !self.active() {
            return None;
        }
        self.in_window = 0;
        let rows = self.close_window();
        // Stable: operations used alike keep the order they were first seen in.
        let mut by_use: Vec<&Entry> = self.entries.iter().collect();
        by_use.sort_by_key(|e| std::cmp::Reverse(e.total()));
        let top = by_use.into_iter().take(TOP).map(|e| e.key.display()).collect();
        Some((rows, top))
    }

    /// Ends the window: each entry's numbers in it kept as its last window's, its durations
    /// moved to the past; returns the window's rows within the summary's room.
    fn close_window(&mut self) -> Vec<SummaryRow> {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        let entries = &self.entries;
        order.sort_by(|&a, &b| {
            let (a, b) = (&entries[a], &entries[b]);
            b.window.count().cmp(&a.window.count()).then_with(|| a.key.cmp(&b.key))
        });
        let mut rows = Vec::new();
        let mut bytes = 0;
        // The rows past the budget (and the `_other` key's), as one `_other` row.
        let (mut rest, mut rest_errors) = (Histogram::default(), 0);
        for i in order {
            let e = &mut self.entries[i];
            e.last_window = (e.window.count() > 0).then(|| numbers(Both(&e.window, None), e.window_errors));
            let Some(numbers) = e.last_window else { continue };
            let row = SummaryRow { key: (*e.key).clone(), numbers };
            let size = serde_json::to_vec(&row).map_or(0, |v| v.len() + 1);
            if e.key.name != OTHER_KEY && bytes + size <= SUMMARY_ROWS_BYTES {
                bytes += size;
                rows.push(row);
            } else {
                rest.merge(&e.window);
                rest_errors += e.window_errors;
            }
            e.past.merge(&e.window);
            e.past_errors += e.window_errors;
            e.window.clear();
            e.window_errors = 0;
        }
        if rest.count() > 0 {
            let key = OperationKey {
                name: OTHER_KEY.into(),
                method: None,
                route: None,
                labels: Default::default(),
            };
            rows.push(SummaryRow { key, numbers: numbers(Both(&rest, None), rest_errors) });
        }
        self.all_changed = true;
        rows
    }

    /// Calls `f` with every entry counted since the last call (every entry, after a window
    /// closed): its index, key, last window's numbers and numbers over the session.
    pub(crate) fn take_changes(
        &mut self,
        mut f: impl FnMut(usize, &Arc<OperationKey>, Option<OperationNumbers>, OperationNumbers),
    ) {
        let changed = std::mem::take(&mut self.changed);
        let all = std::mem::take(&mut self.all_changed);
        let mut each = |i: usize, entries: &mut [Entry]| {
            let e = &mut entries[i];
            e.changed = false;
            let session = numbers(Both(&e.past, Some(&e.window)), e.past_errors + e.window_errors);
            f(i, &e.key, e.last_window, session);
        };
        if all {
            (0..self.entries.len()).for_each(|i| each(i, &mut self.entries));
        } else {
            changed.iter().for_each(|&i| each(i, &mut self.entries));
        }
        // The list's memory is kept for the next round.
        self.changed = changed;
        self.changed.clear();
    }

    /// Keys in the table, [`OTHER_KEY`] included.
    pub(crate) fn keys(&self) -> usize {
        self.entries.len()
    }

    /// About the heap the table holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        let per_entry = size_of::<Entry>() + size_of::<OperationKey>() + 2 * size_of::<(Box<str>, usize)>();
        let text = |k: &OperationKey| {
            k.name.len()
                + k.method.as_ref().map_or(0, String::len)
                + k.route.as_ref().map_or(0, String::len)
                + k.labels.iter().map(|(n, v)| n.len() + v.len() + 48).sum::<usize>()
        };
        self.entries
            .iter()
            .map(|e| per_entry + 2 * text(&e.key) + e.window.heap_bytes() + e.past.heap_bytes())
            .sum::<usize>()
    }
}

/// The alert for `spike` of the operation `key`, by a rule of `window`.
fn error_spike(key: &OperationKey, window: Duration, spike: Spike) -> ErrorSpike {
    ErrorSpike {
        operation: key.name.clone(),
        method: key.method.clone(),
        route: key.route.clone(),
        labels: key.labels.clone(),
        errors: spike.errors,
        window_s: window.as_secs_f64(),
        first_error_at: spike.first_error_at,
        error_types: spike
            .error_types
            .into_iter()
            .map(|(t, count)| ErrorTypeCount { error_type: t.into(), count })
            .collect(),
    }
}

/// The numbers of durations `h`, of which `errors` failed.
pub(crate) fn numbers(h: Both<'_>, errors: u64) -> OperationNumbers {
    let count = h.count();
    if count == 0 {
        return OperationNumbers::default();
    }
    let [p50, p95, p99] = h.quantiles([0.5, 0.95, 0.99]);
    OperationNumbers {
        count,
        errors,
        error_rate: round(errors as f64 / count as f64, 4),
        avg_ms: round(h.mean_ms(), 3),
        p50_ms: round(p50, 3),
        p95_ms: round(p95, 3),
        p99_ms: round(p99, 3),
        max_ms: round(h.max_ms(), 3),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn op<'a>(method: &'a str, route: &'a str, ms: u64, error_type: Option<&'a str>) -> Operation<'a> {
        Operation::http(method, route, None, error_type, Duration::from_millis(ms))
    }

    /// The window's summary as its JSON: `{"operations", "top"}`.
    fn summary(ops: &mut Operations) -> Option<Value> {
        let (rows, top) = ops.summary()?;
        Some(json!({"operations": rows, "top": top}))
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_239_517) + Duration::from_millis(ms)
    }

    #[test]
    fn a_window_summarises_each_key_then_starts_again() {
        let mut ops = Operations::new(16, None, &[]);
        assert_eq!(summary(&mut ops), None, "nothing happened: no summary");
        for ms in 1..=100 {
            ops.record(&op("GET", "/a", ms, None), at(ms));
        }
        ops.record(&op("POST", "/b", 40, Some("500")), at(0));
        ops.record(&op("POST", "/b", 60, None), at(0));
        let s = summary(&mut ops).unwrap();
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
        assert_eq!(summary(&mut ops), None, "a new window, still empty");
        ops.record(&op("POST", "/b", 1, None), at(0));
        let s = summary(&mut ops).unwrap();
        assert_eq!(s["operations"].as_array().unwrap().len(), 1, "only what happened in the window");
        assert_eq!(s["top"][0], "http.request GET /a", "top counts the whole session");
    }

    #[test]
    fn keys_past_the_cap_fold_into_other() {
        let mut ops = Operations::new(3, None, &[]);
        let routes: Vec<String> = (0..1000).map(|i| format!("/r{i}")).collect();
        for (i, r) in routes.iter().enumerate() {
            assert_eq!(ops.record(&op("GET", r, 1, None), at(0)).folded, i >= 3);
        }
        assert_eq!(ops.keys(), 4, "three keys and _other");
        let s = summary(&mut ops).unwrap();
        let other = s["operations"].as_array().unwrap().iter().find(|o| o["name"] == OTHER_KEY).unwrap();
        assert_eq!(other["count"], 997);
        assert!(other.get("route").is_none());
        assert!(ops.heap_bytes() < 4 * 1024, "{}", ops.heap_bytes());
    }

    #[test]
    fn a_summary_stays_within_an_event_and_counts_every_operation() {
        let mut ops = Operations::new(10_000, None, &[]);
        let long = "x".repeat(100);
        for i in 0..2000u64 {
            for _ in 0..=(i % 3) {
                ops.record(&op("GET", &format!("/{long}/{i:04}"), 1 + i, None), at(0));
            }
        }
        let s = summary(&mut ops).unwrap();
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
        let mut ops = Operations::new(16, Some(rule), &[]);
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
            serde_json::to_value(alert).unwrap(),
            json!({"operation": "http.request", "method": "POST", "route": "/b", "errors": 5, "window_s": 10.0,
                   "first_error_at": "2026-11-21T05:38:37.000000Z",
                   "error_types": [{"type": "500", "count": 4}, {"type": "503", "count": 1}]})
        );
        assert_eq!(ops.record(&op("POST", "/b", 1, Some("500")), at(600)).alert, None);
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;
    use crate::analysis::sink::OpLabels;

    #[test]
    fn changes_carry_the_last_window_and_the_session() {
        let mut ops = Operations::new(16, None, &[]);
        let mut seen = Vec::new();
        let get = |ms| Operation::http("GET", "/a", Some(200), None, Duration::from_millis(ms));
        for ms in 1..=10 {
            ops.record(&get(ms), SystemTime::now());
        }
        ops.take_changes(|i, _, window, session| seen.push((i, window, session.count)));
        assert_eq!(seen, [(0, None, 10)], "no window has closed yet");
        seen.clear();
        ops.take_changes(|i, _, _, _| seen.push((i, None, 0)));
        assert!(seen.is_empty(), "nothing changed");
        let (rows, _) = ops.summary().unwrap();
        ops.record(&get(100), SystemTime::now());
        let mut got = None;
        ops.take_changes(|_, key, window, session| got = Some((key.display(), window, session)));
        let (key, window, session) = got.unwrap();
        assert_eq!(key, "http.request GET /a");
        assert_eq!(window, Some(rows[0].numbers), "the window as its summary row said it");
        assert_eq!((session.count, session.max_ms), (11, 100.0), "the session up to now");
    }

    #[test]
    fn label_values_are_part_of_the_key_and_the_other_key_has_none() {
        let names: Vec<Box<str>> = vec!["loss_fn".into()];
        let mut ops = Operations::new(2, None, &names);
        let text = "cross_entropyppo";
        for ranges in [[Some((0, 13))], [Some((13, 16))], [None]] {
            let labels = OpLabels { names: &names, text, ranges: &ranges };
            let op = Operation { labels, ..Operation::get_for_tests(Some(200)) };
            ops.record(&op, SystemTime::now());
        }
        let (rows, _) = ops.summary().unwrap();
        let keys: Vec<String> = rows.iter().map(|r| r.key.display()).collect();
        assert_eq!(
            keys,
            [
                "http.request GET /api/v1/futures/{id} loss_fn=cross_entropy",
                "http.request GET /api/v1/futures/{id} loss_fn=ppo",
                "_other",
            ]
        );
        assert_eq!(&*ops.other_index_key, "_other\0\u{1}\0\u{1}\0\u{1}\0", "the encoding, with one label");
    }
}
