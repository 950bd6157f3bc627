//! The OpenTelemetry exporter: operations and delivery counters recorded through a meter of
//! the `MeterProvider` the application passes to
//! [`Builder::meter_provider`](crate::Builder::meter_provider).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};

use super::names::{
    DELIVERED, DELIVERED_HELP, DROPPED, DROPPED_HELP, DURATION_BUCKETS, HTTP_DURATION, HTTP_DURATION_HELP,
    OPERATION_DURATION, OPERATION_DURATION_HELP, QUEUE_DEPTH, QUEUE_DEPTH_HELP, QUEUE_STATE_CHANGES,
    QUEUE_STATE_CHANGES_HELP, RETRIES, RETRIES_HELP, attributes, drops, gained,
};
use crate::analysis::sink::{OpKind, Operation, Sink};
use crate::handoff::stats::Stats;

/// The meter's name.
pub(crate) const METER: &str = "tinker-telemetry";

/// The instruments, made from one meter.
#[derive(Debug)]
pub(crate) struct OtelSink {
    http: Histogram<f64>,
    other: Histogram<f64>,
    queue_changes: Counter<u64>,
    retries: Counter<u64>,
    delivered: Counter<u64>,
    dropped: Counter<u64>,
    /// Changed by this reporter's differences, so that reporters sharing a process add up.
    depth: UpDownCounter<i64>,
    last: Stats,
    status: String,
}

impl OtelSink {
    pub(crate) fn new(meter: &Meter) -> Self {
        let histogram = |name, help| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(help)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        let counter = |name, help| meter.u64_counter(name).with_description(help).build();
        OtelSink {
            http: histogram(HTTP_DURATION, HTTP_DURATION_HELP),
            other: histogram(OPERATION_DURATION, OPERATION_DURATION_HELP),
            queue_changes: counter(QUEUE_STATE_CHANGES, QUEUE_STATE_CHANGES_HELP),
            retries: counter(RETRIES, RETRIES_HELP),
            delivered: counter(DELIVERED, DELIVERED_HELP),
            dropped: counter(DROPPED, DROPPED_HELP),
            depth: meter.i64_up_down_counter(QUEUE_DEPTH).with_description(QUEUE_DEPTH_HELP).build(),
            last: Stats::default(),
            status: String::new(),
        }
    }
}

impl Sink for OtelSink {
    fn operation(&mut self, op: &Operation<'_>) {
        self.status.clear();
        let status = op.status.map(i64::from);
        if let Some(code) = op.status {
            use std::fmt::Write;
            let _ = write!(self.status, "{code}");
        }
        let attrs: Vec<KeyValue> = attributes(op, &self.status)
            .map(|(k, v)| match (k, status) {
                // The conventions make the status code an integer.
                ("http.response.status_code", Some(code)) => KeyValue::new(k, code),
                _ => KeyValue::new(k, v.to_owned()),
            })
            .collect();
        let histogram = if op.kind == OpKind::Http { &self.http } else { &self.other };
        histogram.record(op.duration.as_secs_f64(), &attrs);
        if let (OpKind::QueueStateChange, Some(to)) = (op.kind, op.queue_to) {
            self.queue_changes.add(1, &[KeyValue::new("to", to.to_owned())]);
        }
    }

    fn delivery(&mut self, stats: &Stats) {
        let before = std::mem::replace(&mut self.last, *stats);
        self.retries.add(gained(stats.retries, before.retries), &[]);
        self.delivered.add(gained(stats.delivered, before.delivered), &[]);
        for ((reason, now), (_, was)) in drops(stats).into_iter().zip(drops(&before)) {
            self.dropped.add(gained(now, was), &[KeyValue::new("reason", reason)]);
        }
        self.depth.add(stats.queued as i64 - before.queued as i64, &[]);
    }
}
