//! The `metrics` facade exporter: operations and delivery counters recorded through whatever
//! recorder the application installed (`metrics-exporter-prometheus`, say). The crate never
//! installs one; without one, recording does nothing.

use metrics::{Label, Unit};

use super::names::{
    DELIVERED, DELIVERED_HELP, DROPPED, DROPPED_HELP, HTTP_DURATION, HTTP_DURATION_HELP, OPERATION_DURATION,
    OPERATION_DURATION_HELP, QUEUE_DEPTH, QUEUE_DEPTH_HELP, QUEUE_STATE_CHANGES, QUEUE_STATE_CHANGES_HELP,
    RETRIES, RETRIES_HELP, attributes, drops, gained,
};
use crate::analysis::sink::{OpKind, Operation, Sink};
use crate::handoff::stats::Stats;

/// Records into the `metrics` facade's global recorder.
#[derive(Debug, Default)]
pub(crate) struct MetricsSink {
    /// The recorder the metrics were last described to, by address: they are described
    /// again whenever the current recorder is another, so that one installed after `build()`
    /// (after the uploader's first take) gets the units and descriptions too. Without its
    /// unit, a Prometheus recorder would name `http.client.request.duration` without the
    /// `_seconds` suffix.
    described_to: Option<usize>,
    /// The counters as last exported.
    last: Stats,
    /// Text of the status code, kept between records.
    status: String,
}

impl MetricsSink {
    fn describe(&mut self) {
        let current = metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>().addr());
        if self.described_to == Some(current) {
            return;
        }
        self.described_to = Some(current);
        metrics::describe_histogram!(HTTP_DURATION, Unit::Seconds, HTTP_DURATION_HELP);
        metrics::describe_histogram!(OPERATION_DURATION, Unit::Seconds, OPERATION_DURATION_HELP);
        metrics::describe_counter!(QUEUE_STATE_CHANGES, QUEUE_STATE_CHANGES_HELP);
        metrics::describe_counter!(RETRIES, RETRIES_HELP);
        metrics::describe_counter!(DELIVERED, DELIVERED_HELP);
        metrics::describe_counter!(DROPPED, DROPPED_HELP);
        metrics::describe_gauge!(QUEUE_DEPTH, QUEUE_DEPTH_HELP);
    }
}

impl Sink for MetricsSink {
    fn operation(&mut self, op: &Operation<'_>) {
        self.describe();
        self.status.clear();
        if let Some(code) = op.status {
            use std::fmt::Write;
            let _ = write!(self.status, "{code}");
        }
        let labels: Vec<Label> =
            attributes(op, &self.status).map(|(k, v)| Label::new(k, v.to_owned())).collect();
        let name = if op.kind == OpKind::Http { HTTP_DURATION } else { OPERATION_DURATION };
        metrics::histogram!(name, labels).record(op.duration.as_secs_f64());
        if let (OpKind::QueueStateChange, Some(to)) = (op.kind, op.queue_to) {
            metrics::counter!(QUEUE_STATE_CHANGES, "to" => to.to_owned()).increment(1);
        }
    }

    fn delivery(&mut self, stats: &Stats) {
        self.describe();
        let before = std::mem::replace(&mut self.last, *stats);
        metrics::counter!(RETRIES).increment(gained(stats.retries, before.retries));
        metrics::counter!(DELIVERED).increment(gained(stats.delivered, before.delivered));
        for ((reason, now), (_, was)) in drops(stats).into_iter().zip(drops(&before)) {
            // Every reason's series exists from the start, at 0.
            metrics::counter!(DROPPED, "reason" => reason).increment(gained(now, was));
        }
        metrics::gauge!(QUEUE_DEPTH).set(stats.queued as f64);
    }
}
