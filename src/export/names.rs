//! The metrics the exporters record: names, units and attributes after the OpenTelemetry
//! semantic conventions for HTTP clients, crate-prefixed names for the rest, and the
//! histogram bucket bounds.
#![cfg_attr(
    not(any(feature = "metrics", feature = "opentelemetry")),
    expect(dead_code, reason = "without an exporter feature only DURATION_BUCKETS is used")
)]

use smallvec::SmallVec;

use crate::analysis::sink::{OpKind, Operation};
use crate::handoff::stats::{DropReason, SpoolDropReason, Stats};

/// The bucket bounds of the duration histograms, in seconds: the OpenTelemetry conventions'
/// advice for `http.client.request.duration`, which holds the 10, 100, 500, 1,000, 5,000 and
/// 10,000 ms of Tinker's Elixir SDK.
///
/// The OpenTelemetry exporter sets them on its histograms. Through the `metrics` facade the
/// recorder decides, so pass them to it; with `metrics-exporter-prometheus`, whose matchers
/// see the name with `_` for `.` and without the unit suffix
/// (`Matcher::Full("http_client_request_duration".into())` and
/// `Matcher::Full("tinker_telemetry_operation_duration".into())` match the two histograms
/// exactly, the dotted names match nothing):
///
/// ```
/// use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
///
/// let recorder = PrometheusBuilder::new()
///     .with_recommended_naming(true)
///     .set_buckets_for_metric(Matcher::Suffix("duration".into()), tinker_telemetry::DURATION_BUCKETS)?
///     .build_recorder(); // or `.install()`, with its HTTP listener
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// HTTP requests' durations, seconds.
pub(crate) const HTTP_DURATION: &str = "http.client.request.duration";
/// Other operations' durations, seconds.
pub(crate) const OPERATION_DURATION: &str = "tinker_telemetry.operation.duration";
/// Queue state changes, by the state entered.
pub(crate) const QUEUE_STATE_CHANGES: &str = "tinker_telemetry.queue.state_changes";
/// Telemetry requests the uploader sent again.
pub(crate) const RETRIES: &str = "tinker_telemetry.requests.retried";
/// Events delivered.
pub(crate) const DELIVERED: &str = "tinker_telemetry.events.delivered";
/// Events dropped, by reason.
pub(crate) const DROPPED: &str = "tinker_telemetry.events.dropped";
/// Events waiting or in flight.
pub(crate) const QUEUE_DEPTH: &str = "tinker_telemetry.queue.depth";

pub(crate) const HTTP_DURATION_HELP: &str = "Duration of HTTP client requests.";
pub(crate) const OPERATION_DURATION_HELP: &str = "Duration of operations other than HTTP requests.";
pub(crate) const QUEUE_STATE_CHANGES_HELP: &str = "Queue state changes, by the state entered.";
pub(crate) const RETRIES_HELP: &str = "Telemetry requests sent again after a retryable failure.";
pub(crate) const DELIVERED_HELP: &str = "Telemetry events the server accepted.";
pub(crate) const DROPPED_HELP: &str = "Telemetry events given up on, by reason.";
pub(crate) const QUEUE_DEPTH_HELP: &str = "Telemetry events waiting or in flight.";

/// The attributes every operation can have; the program's operation labels follow them.
pub(crate) const ATTRIBUTES: [&str; 7] = [
    "operation",
    "http.request.method",
    "url.template",
    "server.address",
    "server.port",
    "http.response.status_code",
    "error.type",
];

/// An operation's attribute values, one per name of [`ATTRIBUTES`] then one per operation
/// label, `None` for those it has not: for an HTTP request `http.request.method`,
/// `url.template` (the HTTP client conventions' name for the route template),
/// `server.address`, `server.port`, `http.response.status_code` (when a response came) and
/// `error.type` (on failure); for another operation `operation` and `error.type`; for both,
/// each operation label the span had a value for. They name its series.
pub(crate) type Values<'a> = SmallVec<[Option<&'a str>; 12]>;

/// An operation's numbers written as text, for [`values`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numbers {
    port: Option<U16Text>,
    status: Option<U16Text>,
}

impl Numbers {
    pub(crate) fn of(op: &Operation<'_>) -> Self {
        Numbers { port: op.server_port.map(U16Text::new), status: op.status.map(U16Text::new) }
    }
}

/// The attribute values of `op`, its numbers read from `numbers`.
pub(crate) fn values<'a>(op: &Operation<'a>, numbers: &'a Numbers) -> Values<'a> {
    let http = op.kind == OpKind::Http;
    let http_only = |v: Option<&'a str>| v.filter(|_| http);
    let fixed = [
        (!http).then_some(op.name),
        http_only(op.method),
        http_only(op.route),
        http_only(op.server_address),
        http_only(numbers.port.as_ref().map(U16Text::as_str)),
        http_only(numbers.status.as_ref().map(U16Text::as_str)),
        op.error_type,
    ];
    fixed.into_iter().chain(op.labels.values()).collect()
}

/// The attributes among `values` (of `op`) that are present, name and value.
pub(crate) fn attributes<'o: 'v, 'v>(
    op: &Operation<'o>,
    values: &'v Values<'o>,
) -> impl Iterator<Item = (&'o str, &'o str)> + 'v {
    let label_names: &'o [Box<str>] = op.labels.names;
    let names = ATTRIBUTES.into_iter().chain(label_names.iter().map(|n| &**n));
    names.zip(values.iter()).filter_map(|(name, value)| Some((name, (*value)?)))
}

/// A status code or port as text, written without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct U16Text {
    digits: [u8; 5],
    start: usize,
}

impl U16Text {
    pub(crate) fn new(code: u16) -> Self {
        let mut digits = [b'0'; 5];
        let (mut rest, mut start) = (code, digits.len());
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                return U16Text { digits, start };
            }
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or_default()
    }
}

/// How many `reason` values the drop counter has: every [`DropReason`] and every
/// [`SpoolDropReason`].
pub(crate) const DROP_REASONS: usize = DropReason::ALL.len() + SpoolDropReason::ALL.len();

/// The `reason` attribute of each drop counter, with its count in `stats`: the reporter's
/// own drops in [`DropReason::ALL`] order, then the spool's in [`SpoolDropReason::ALL`]
/// order.
pub(crate) fn drops(stats: &Stats) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    let own = stats.dropped.iter().map(|(reason, n)| (reason.name(), n));
    own.chain(stats.spool.dropped.iter().map(|(reason, n)| (reason.name(), n)))
}

/// The `error.type` attribute of each retry counter, with its count in `stats`, in
/// [`RetryCause::ALL`](crate::RetryCause::ALL) order.
pub(crate) fn retries(stats: &Stats) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    stats.retried.iter().map(|(cause, n)| (cause.error_type(), n))
}

/// What a counter gained between two snapshots (never negative).
pub(crate) fn gained(now: u64, before: u64) -> u64 {
    now.saturating_sub(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::sink::OpLabels;

    #[test]
    fn u16_text_reads_as_the_number() {
        for code in [0, 7, 42, 200, 429, 503, 999, 1000, 65535] {
            assert_eq!(U16Text::new(code).as_str(), code.to_string());
        }
    }

    #[test]
    fn http_and_other_operations_have_their_own_attributes() {
        let op = Operation { error_type: Some("404"), ..Operation::get_for_tests(Some(404)) };
        let numbers = Numbers::of(&op);
        let http_values = values(&op, &numbers);
        let http: Vec<_> = attributes(&op, &http_values).collect();
        assert_eq!(
            http,
            [
                ("http.request.method", "GET"),
                ("url.template", "/api/v1/futures/{id}"),
                ("server.address", "tinker.example"),
                ("server.port", "443"),
                ("http.response.status_code", "404"),
                ("error.type", "404"),
            ]
        );
        // The same fields on another kind of operation: only its name and error type.
        let other = Operation { kind: OpKind::Other, name: "checkpoint.save", ..op };
        let other_values = values(&other, &numbers);
        let other: Vec<_> = attributes(&other, &other_values).collect();
        assert_eq!(other, [("operation", "checkpoint.save"), ("error.type", "404")]);
    }

    #[test]
    fn operation_labels_follow_the_conventions_attributes() {
        let names: Vec<Box<str>> = vec!["loss_fn".into(), "model".into()];
        let labels = OpLabels { names: &names, text: "ppo", ranges: &[Some((0, 3)), None] };
        let op =
            Operation { kind: OpKind::Other, name: "train.step", labels, ..Operation::get_for_tests(None) };
        let numbers = Numbers::of(&op);
        let values = values(&op, &numbers);
        assert_eq!(values.len(), ATTRIBUTES.len() + 2, "a value, or none, for every label");
        let got: Vec<_> = attributes(&op, &values).collect();
        assert_eq!(got, [("operation", "train.step"), ("loss_fn", "ppo")]);
    }
}
