//! The `metrics` facade exporter: operations and delivery counters recorded through whatever
//! recorder the application installed (`metrics-exporter-prometheus`, say). The crate never
//! installs one; without one, recording does nothing.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU64};

use metrics::{Label, Unit};

use super::names::{
    DELIVERED, DELIVERED_HELP, DROPPED, DROPPED_HELP, HTTP_DURATION, HTTP_DURATION_HELP, OPERATION_DURATION,
    OPERATION_DURATION_HELP, QUEUE_DEPTH, QUEUE_DEPTH_HELP, QUEUE_STATE_CHANGES, QUEUE_STATE_CHANGES_HELP,
    RETRIES, RETRIES_HELP, attributes, drops, gained,
};
use crate::analysis::sink::{OpKind, Operation, Sink};
use crate::handoff::stats::Stats;

/// The counters of every reporter of the process added up: the facade's counters are set to
/// these (`absolute`), so that reporters sharing a process add up and a recorder installed
/// late still reads the whole count.
static TOTALS: Totals = Totals {
    retries: AtomicU64::new(0),
    delivered: AtomicU64::new(0),
    dropped: [const { AtomicU64::new(0) }; 6],
    queued: AtomicI64::new(0),
};

struct Totals {
    retries: AtomicU64,
    delivered: AtomicU64,
    dropped: [AtomicU64; 6],
    queued: AtomicI64,
}

/// Adds `delta` to `total`; returns the new total.
fn add(total: &AtomicU64, delta: u64) -> u64 {
    total.fetch_add(delta, Relaxed) + delta
}

/// Records into the `metrics` facade's global recorder.
#[derive(Debug, Default)]
pub(crate) struct MetricsSink {
    /// The counters as last exported.
    last: Stats,
    /// Text of the status code, kept between records.
    status: String,
}

impl MetricsSink {
    /// Describes the metrics (help and unit) to the recorder; done with every delivery
    /// snapshot, so that a recorder installed after `build()` gets them too.
    fn describe(&self) {
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
        let retries = add(&TOTALS.retries, gained(stats.retries, before.retries));
        metrics::counter!(RETRIES).absolute(retries);
        let delivered = add(&TOTALS.delivered, gained(stats.delivered, before.delivered));
        metrics::counter!(DELIVERED).absolute(delivered);
        for (((reason, now), (_, was)), total) in
            drops(stats).into_iter().zip(drops(&before)).zip(&TOTALS.dropped)
        {
            // Every reason's series exists from the start, at 0.
            metrics::counter!(DROPPED, "reason" => reason).absolute(add(total, gained(now, was)));
        }
        let change = stats.queued as i64 - before.queued as i64;
        let total = TOTALS.queued.fetch_add(change, Relaxed) + change;
        metrics::gauge!(QUEUE_DEPTH).set(total as f64);
    }
}
