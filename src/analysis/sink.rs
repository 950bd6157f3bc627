//! Where finished operations go besides the crate's own analysis: the metrics exporters the
//! application runs (the `metrics` facade, an OpenTelemetry meter), each behind its feature.
//! Sinks are called on the uploader thread, never on the thread that emitted the span.

use std::fmt;
use std::time::Duration;

use crate::handoff::stats::Stats;

/// What kind of operation a captured span was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OpKind {
    /// An HTTP request (`http.request`, or a span from HTTP instrumentation).
    Http,
    /// A `queue.state_change` span.
    QueueStateChange,
    /// Any other captured span.
    Other,
}

/// One finished operation: a captured span as it was closed, its labels already reduced to
/// low-cardinality values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Operation<'a> {
    pub(crate) kind: OpKind,
    /// The span's name as sent (`http.request` for every HTTP span).
    pub(crate) name: &'a str,
    /// The HTTP method, upper case.
    pub(crate) method: Option<&'a str>,
    /// The route template: the route the span named, else its path with ids replaced by
    /// `{id}` and the query left out; `_other` once the analysis's key cap is reached.
    pub(crate) route: Option<&'a str>,
    /// The host the request went to.
    pub(crate) server_address: Option<&'a str>,
    /// The port it went to.
    pub(crate) server_port: Option<u16>,
    /// The HTTP status, when a response came.
    pub(crate) status: Option<u16>,
    /// Why the operation failed (`"500"`, `"timeout"`, `"_OTHER"`, …); `None` when it
    /// succeeded.
    pub(crate) error_type: Option<&'a str>,
    /// For a `queue.state_change`, the state entered.
    pub(crate) queue_to: Option<&'a str>,
    /// How long the span was open.
    pub(crate) duration: Duration,
    /// The values of the program's operation labels
    /// ([`Builder::operation_label`](crate::Builder::operation_label)).
    pub(crate) labels: OpLabels<'a>,
}

/// The values an operation has for the program's operation labels, in the order the labels
/// were configured; bounded like the other labels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct OpLabels<'a> {
    /// The labels' names (the span fields they are read from).
    pub(crate) names: &'a [Box<str>],
    /// The text the values are cut from.
    pub(crate) text: &'a str,
    /// Each label's value in `text`, `None` when the span had none; shorter than `names`
    /// when the values were dropped (the operation was folded past the key cap).
    pub(crate) ranges: &'a [Option<(u32, u32)>],
}

impl<'a> OpLabels<'a> {
    /// The value of label `i`.
    pub(crate) fn value(&self, i: usize) -> Option<&'a str> {
        let (start, end) = self.ranges.get(i).copied().flatten()?;
        self.text.get(start as usize..end as usize)
    }

    /// Every label's value, one per name.
    pub(crate) fn values(&self) -> impl Iterator<Item = Option<&'a str>> + '_ {
        (0..self.names.len()).map(|i| self.value(i))
    }

    /// The labels that have a value, name and value.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.names.iter().enumerate().filter_map(|(i, name)| Some((&**name, self.value(i)?)))
    }
}

impl<'a> Operation<'a> {
    /// An HTTP request: `method` to `route` on `tinker.example:443`, answered `status`,
    /// failed with `error_type`; for the benchmarks' way in and the tests.
    pub(crate) fn http(
        method: &'a str,
        route: &'a str,
        status: Option<u16>,
        error_type: Option<&'a str>,
        duration: Duration,
    ) -> Self {
        Operation {
            kind: OpKind::Http,
            name: crate::capture::span::HTTP_REQUEST,
            method: Some(method),
            route: Some(route),
            server_address: Some("tinker.example"),
            server_port: Some(443),
            status,
            error_type,
            queue_to: None,
            duration,
            labels: OpLabels::default(),
        }
    }
}

#[cfg(test)]
impl Operation<'static> {
    /// A `GET /api/v1/futures/{id}` to `tinker.example:443` that took 30 ms and was answered
    /// `status`, for tests; its error type is left to the test.
    pub(crate) fn get_for_tests(status: Option<u16>) -> Self {
        Operation::http("GET", "/api/v1/futures/{id}", status, None, Duration::from_millis(30))
    }
}

/// A destination for operations and delivery counters, called on the uploader thread.
pub(crate) trait Sink: Send + fmt::Debug {
    /// Records one finished operation.
    fn operation(&mut self, op: &Operation<'_>);

    /// Counts one queue state change into `to`, whether a `queue.state_change` span (after
    /// its [`operation`](Sink::operation)) or event said so.
    fn queue_state_change(&mut self, to: &str);

    /// Records the reporter's counters as they stand (retries, deliveries, drops by reason,
    /// queue depth); called after every take and at every summary, so a sink exports
    /// differences from the last call it saw.
    fn delivery(&mut self, stats: &Stats);
}
