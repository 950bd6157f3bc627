//! A way in for the benchmarks in `bench/`: what a captured HTTP span costs the uploader
//! thread's analysis (route template, table look-up, histogram, spike check), without the
//! uploader around it. Hidden from the docs; not part of the API.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::live::{Live, Publisher};
use super::operation::template;
use super::operations::Operations;
use super::report::{OperationsSnapshot, UsageReport};
use super::sink::Operation;
use super::spike::SpikeRule;

/// The HTTP operation both benchmarks record: `method` to `route` on `tinker.example:443`,
/// failed with the error type `"500"` when `status` is 400 or more.
pub(crate) fn http<'a>(method: &'a str, route: &'a str, status: u16, duration: Duration) -> Operation<'a> {
    Operation::http(method, route, Some(status), (status >= 400).then_some("500"), duration)
}

/// The analysis of one reporter, driven directly.
#[doc(hidden)]
#[derive(Debug)]
pub struct AnalysisBench {
    operations: Operations,
    route: String,
    live: Arc<Live>,
    publisher: Publisher,
}

impl AnalysisBench {
    /// A table of at most `max_operations` keys, alerting at `threshold` errors in `window`.
    #[must_use]
    pub fn new(max_operations: usize, threshold: usize, window: Duration) -> Self {
        let rule = SpikeRule { threshold, window };
        let live = Arc::new(Live::default());
        AnalysisBench {
            operations: Operations::new(max_operations, Some(rule), &[]),
            route: String::new(),
            publisher: Publisher::new(Arc::clone(&live)),
            live,
        }
    }

    /// Counts one HTTP request to `path`; returns whether it raised an alert.
    pub fn record_http(&mut self, method: &str, path: &str, status: u16, duration: Duration) -> bool {
        template(path, &mut self.route);
        let op = http(method, &self.route, status, duration);
        self.operations.record(&op, SystemTime::now()).alert.is_some()
    }

    /// Writes the route template of `path` into `out`, by the rule the analysis uses.
    pub fn template(path: &str, out: &mut String) {
        template(path, out);
    }

    /// Ends the summary window; returns how many operations it listed.
    pub fn summary(&mut self) -> usize {
        self.operations.summary().map_or(0, |(rows, _)| rows.len())
    }

    /// Distinct keys held, `_other` included.
    #[must_use]
    pub fn keys(&self) -> usize {
        self.operations.keys()
    }

    /// Publishes what changed for the program, as the uploader does after each take.
    pub fn publish(&mut self) {
        self.publisher.publish(&mut self.operations);
    }

    /// What [`TelemetryHandle::operations`](crate::TelemetryHandle::operations) returns:
    /// the numbers last published.
    #[must_use]
    pub fn operations(&self) -> OperationsSnapshot {
        self.live.snapshot()
    }

    /// What [`TelemetryHandle::usage`](crate::TelemetryHandle::usage) returns.
    #[must_use]
    pub fn usage(&self) -> UsageReport {
        self.live.usage()
    }

    /// About the heap the table holds.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.operations.heap_bytes()
    }
}
