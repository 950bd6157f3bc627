//! What the analysis shows the program while it runs: the uploader publishes its operations'
//! numbers after each take ([`Publisher`]), and any thread reads the last ones published
//! ([`Live`], behind [`TelemetryHandle::operations`](crate::TelemetryHandle::operations) and
//! [`usage`](crate::TelemetryHandle::usage)).
//!
//! The two sides share one pointer under a lock: the uploader swaps in a new one, a reader
//! clones it; neither holds the lock for anything else, so a reader delays the uploader at
//! most for a reference count's increment, and no emitting thread ever takes the lock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::notify::SpikeCounters;
use super::operations::{Operations, TOP};
use super::report::{OperationKey, OperationNumbers, OperationStats, OperationsSnapshot, UsageReport, round};

/// One operation's numbers as published.
#[derive(Debug, Clone)]
struct Row {
    key: Arc<OperationKey>,
    window: Option<OperationNumbers>,
    session: OperationNumbers,
}

/// The numbers of one take.
#[derive(Debug, Default)]
struct Published {
    /// By the table's entry index; a row unchanged since the last take is shared with it.
    rows: Vec<Arc<Row>>,
    window_closed_at: Option<SystemTime>,
    window_s: Option<f64>,
    taken_at: Option<SystemTime>,
}

/// The published numbers and the spike callback's counters of one reporter, shared by its
/// uploader and its handles.
#[derive(Debug, Default)]
pub(crate) struct Live {
    published: Mutex<Arc<Published>>,
    pub(crate) spike_calls: Arc<SpikeCounters>,
}

impl Live {
    /// The last numbers published.
    fn current(&self) -> Arc<Published> {
        Arc::clone(&self.published.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every operation as last published, the most used first.
    pub(crate) fn snapshot(&self) -> OperationsSnapshot {
        let published = self.current();
        OperationsSnapshot {
            operations: by_use(&published.rows).map(stats).collect(),
            window_closed_at: published.window_closed_at,
            window_s: published.window_s,
            taken_at: published.taken_at,
        }
    }

    /// The most used operations and the totals, as last published.
    pub(crate) fn usage(&self) -> UsageReport {
        let published = self.current();
        let rows = &published.rows;
        let count: u64 = rows.iter().map(|r| r.session.count).sum();
        let errors: u64 = rows.iter().map(|r| r.session.errors).sum();
        UsageReport {
            top: by_use(rows).take(TOP).map(stats).collect(),
            operations: rows.len(),
            count,
            errors,
            error_rate: if count == 0 { 0.0 } else { round(errors as f64 / count as f64, 4) },
            taken_at: published.taken_at,
        }
    }
}

/// `rows` the most used over the session first, those used alike in the order they were
/// first seen: the order of the summary's `top`.
fn by_use(rows: &[Arc<Row>]) -> impl Iterator<Item = &Row> {
    let mut order: Vec<&Row> = rows.iter().map(|r| &**r).collect();
    order.sort_by_key(|r| std::cmp::Reverse(r.session.count));
    order.into_iter()
}

fn stats(row: &Row) -> OperationStats {
    OperationStats { key: Arc::clone(&row.key), window: row.window, session: row.session }
}

/// The uploader's side: what it last published, updated with what changed.
#[derive(Debug)]
pub(crate) struct Publisher {
    live: Arc<Live>,
    rows: Vec<Arc<Row>>,
    window_closed_at: Option<SystemTime>,
    window_s: Option<f64>,
    /// A window closed since the last publication.
    window_changed: bool,
}

impl Publisher {
    pub(crate) fn new(live: Arc<Live>) -> Self {
        Publisher { live, rows: Vec::new(), window_closed_at: None, window_s: None, window_changed: false }
    }

    /// Notes that the summary window of `length` closed at `at`.
    pub(crate) fn window_closed(&mut self, at: SystemTime, length: Duration) {
        self.window_closed_at = Some(at);
        self.window_s = Some(round(length.as_secs_f64(), 3));
        self.window_changed = true;
    }

    /// Publishes the numbers of `operations` if any changed since the last publication.
    pub(crate) fn publish(&mut self, operations: &mut Operations) {
        let mut changed = std::mem::take(&mut self.window_changed);
        let rows = &mut self.rows;
        operations.take_changes(|i, key, window, session| {
            changed = true;
            let row = Arc::new(Row { key: Arc::clone(key), window, session });
            match rows.get_mut(i) {
                Some(known) => *known = row,
                None => rows.push(row),
            }
        });
        if !changed {
            return;
        }
        let published = Arc::new(Published {
            rows: self.rows.clone(),
            window_closed_at: self.window_closed_at,
            window_s: self.window_s,
            taken_at: Some(SystemTime::now()),
        });
        let previous = std::mem::replace(
            &mut *self.live.published.lock().unwrap_or_else(PoisonError::into_inner),
            published,
        );
        // Freed, if no reader holds it, outside the lock.
        drop(previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::sink::Operation;

    fn get(route: &str, ms: u64) -> Operation<'_> {
        Operation::http("GET", route, Some(200), None, Duration::from_millis(ms))
    }

    #[test]
    fn readers_see_what_the_uploader_published_most_used_first() {
        let live = Arc::new(Live::default());
        assert_eq!(live.snapshot(), OperationsSnapshot::default(), "nothing published yet");
        let mut ops = Operations::new(16, None, &[]);
        let mut publisher = Publisher::new(Arc::clone(&live));
        ops.record(&get("/a", 5), SystemTime::now());
        for _ in 0..3 {
            ops.record(&get("/b", 7), SystemTime::now());
        }
        assert!(live.snapshot().operations.is_empty(), "not published before the take");
        publisher.publish(&mut ops);
        let snapshot = live.snapshot();
        let routes: Vec<_> = snapshot.operations.iter().map(|o| o.key.route.as_deref().unwrap()).collect();
        assert_eq!(routes, ["/b", "/a"]);
        assert_eq!((snapshot.operations[0].session.count, snapshot.operations[0].window), (3, None));
        let taken = snapshot.taken_at.unwrap();
        publisher.publish(&mut ops);
        assert_eq!(live.snapshot().taken_at, Some(taken), "nothing changed: nothing published");
        ops.summary().unwrap();
        publisher.window_closed(SystemTime::now(), Duration::from_millis(1500));
        publisher.publish(&mut ops);
        let snapshot = live.snapshot();
        assert_eq!(snapshot.window_s, Some(1.5));
        assert_eq!(snapshot.operations[1].window.unwrap().count, 1);
        let usage = live.usage();
        assert_eq!((usage.operations, usage.count, usage.errors, usage.error_rate), (2, 4, 0, 0.0));
        assert_eq!(usage.top[0].key.route.as_deref(), Some("/b"));
    }
}
