//! A way in for the benchmarks in `bench/`: what a captured HTTP span costs the uploader
//! thread's analysis (route template, table look-up, histogram, spike check), without the
//! uploader around it. Hidden from the docs; not part of the API.

use std::time::{Duration, SystemTime};

use super::operation::template;
use super::operations::Operations;
use super::sink::{OpKind, Operation};
use super::spike::SpikeRule;

/// The HTTP operation both benchmarks record: `method` to `route` on `tinker.example:443`,
/// failed with the error type `"500"` when `status` is 400 or more.
pub(crate) fn http<'a>(method: &'a str, route: &'a str, status: u16, duration: Duration) -> Operation<'a> {
    let failed = status >= 400;
    Operation {
        kind: OpKind::Http,
        name: "http.request",
        method: Some(method),
        route: Some(route),
        server_address: Some("tinker.example"),
        server_port: Some(443),
        status: Some(status),
        error_type: failed.then_some("500"),
        queue_to: None,
        duration,
    }
}

/// The analysis of one reporter, driven directly.
#[doc(hidden)]
#[derive(Debug)]
pub struct AnalysisBench {
    operations: Operations,
    route: String,
}

impl AnalysisBench {
    /// A table of at most `max_operations` keys, alerting at `threshold` errors in `window`.
    #[must_use]
    pub fn new(max_operations: usize, threshold: usize, window: Duration) -> Self {
        let rule = SpikeRule { threshold, window };
        AnalysisBench { operations: Operations::new(max_operations, Some(rule)), route: String::new() }
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
        self.operations
            .summary()
            .and_then(|s| s.get("operations").and_then(|o| o.as_array()).map(Vec::len))
            .unwrap_or(0)
    }

    /// Distinct keys held, `_other` included.
    #[must_use]
    pub fn keys(&self) -> usize {
        self.operations.keys()
    }

    /// About the heap the table holds.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.operations.heap_bytes()
    }
}
