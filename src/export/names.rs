//! The metrics the exporters record: names, units and attributes after the OpenTelemetry
//! semantic conventions for HTTP clients, crate-prefixed names for the rest, and the
//! histogram bucket bounds.
#![cfg_attr(
    not(any(feature = "metrics", feature = "opentelemetry")),
    expect(dead_code, reason = "without an exporter feature only DURATION_BUCKETS is used")
)]

use crate::analysis::sink::Operation;
use crate::handoff::stats::Stats;

/// The bucket bounds of the duration histograms, in seconds: the OpenTelemetry conventions'
/// advice for `http.client.request.duration`, which holds the 10, 100, 500, 1,000, 5,000 and
/// 10,000 ms of Tinker's Elixir SDK.
///
/// The OpenTelemetry exporter sets them on its histograms. Through the `metrics` facade the
/// recorder decides, so pass them to it; with `metrics-exporter-prometheus`:
///
/// ```ignore
/// PrometheusBuilder::new()
///     .with_recommended_naming(true)
///     .set_buckets_for_metric(Matcher::Suffix("duration".into()), tinker_telemetry::DURATION_BUCKETS)?
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

/// An operation's attributes: for an HTTP request `http.request.method`, `url.template` (the
/// HTTP client conventions' name for the route template), `server.address`,
/// `http.response.status_code` (when a response came) and `error.type` (on failure); for
/// another operation `operation` and `error.type`.
pub(crate) fn attributes<'a>(
    op: &Operation<'a>,
    status: &'a str,
) -> impl Iterator<Item = (&'static str, &'a str)> {
    use crate::analysis::sink::OpKind;
    let http = op.kind == OpKind::Http;
    let pairs: [(&'static str, Option<&'a str>); 6] = [
        ("operation", (!http).then_some(op.name)),
        ("http.request.method", op.method.filter(|_| http)),
        ("url.template", op.route.filter(|_| http)),
        ("server.address", op.server_address.filter(|_| http)),
        ("http.response.status_code", op.status.filter(|_| http).map(|_| status)),
        ("error.type", op.error_type),
    ];
    pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)))
}

/// The reason attribute of each drop counter, with its count in `stats`.
pub(crate) fn drops(stats: &Stats) -> [(&'static str, u64); 6] {
    let d = &stats.dropped;
    [
        ("queue_full", d.queue_full),
        ("rejected", d.rejected),
        ("retries_exhausted", d.retries_exhausted),
        ("too_large", d.too_large),
        ("after_shutdown", d.after_shutdown),
        ("unsent_at_shutdown", d.unsent_at_shutdown),
    ]
}

/// What a counter gained between two snapshots (never negative).
pub(crate) fn gained(now: u64, before: u64) -> u64 {
    now.saturating_sub(before)
}
