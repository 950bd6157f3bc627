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
}

#[cfg(test)]
impl Operation<'static> {
    /// A `GET /api/v1/futures/{id}` to `tinker.example:443` that took 30 ms and was answered
    /// `status`, for tests; its error type is left to the test.
    pub(crate) fn get_for_tests(status: Option<u16>) -> Self {
        Operation {
            kind: OpKind::Http,
            name: "http.request",
            method: Some("GET"),
            route: Some("/api/v1/futures/{id}"),
            server_address: Some("tinker.example"),
            server_port: Some(443),
            status,
            error_type: None,
            queue_to: None,
            duration: Duration::from_millis(30),
        }
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
