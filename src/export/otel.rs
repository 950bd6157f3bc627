//! The OpenTelemetry exporter: operations and delivery counters recorded through a meter of
//! the `MeterProvider` the application passes to
//! [`Builder::meter_provider`](crate::Builder::meter_provider).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};

use super::names::{
    DELIVERED, DELIVERED_HELP, DROPPED, DROPPED_HELP, DURATION_BUCKETS, HTTP_DURATION, HTTP_DURATION_HELP,
    Numbers, OPERATION_DURATION, OPERATION_DURATION_HELP, QUEUE_DEPTH, QUEUE_DEPTH_HELP, QUEUE_STATE_CHANGES,
    QUEUE_STATE_CHANGES_HELP, RETRIES, RETRIES_HELP, attributes, drops, gained, retries, values,
};
use super::series::Series;
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
    /// The counters as last exported.
    last: Stats,
    /// Each duration series's attributes, made once.
    attributes: Series<Vec<KeyValue>>,
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
            attributes: Series::default(),
        }
    }
}

impl Sink for OtelSink {
    fn operation(&mut self, op: &Operation<'_>) {
        let numbers = Numbers::of(op);
        let values = values(op, &numbers);
        let attributes = self.attributes.get(&values, || {
            attributes(op, &values)
                .map(|(k, v)| match (k, op.status, op.server_port) {
                    // The conventions make the status code and the port integers.
                    ("http.response.status_code", Some(code), _) => {
                        KeyValue::new(k.to_owned(), i64::from(code))
                    }
                    ("server.port", _, Some(port)) => KeyValue::new(k.to_owned(), i64::from(port)),
                    _ => KeyValue::new(k.to_owned(), v.to_owned()),
                })
                .collect()
        });
        let histogram = if op.kind == OpKind::Http { &self.http } else { &self.other };
        histogram.record(op.duration.as_secs_f64(), attributes);
    }

    fn queue_state_change(&mut self, to: &str) {
        self.queue_changes.add(1, &[KeyValue::new("to", to.to_owned())]);
    }

    fn delivery(&mut self, stats: &Stats) {
        let before = std::mem::replace(&mut self.last, *stats);
        for ((error_type, now), (_, was)) in retries(stats).zip(retries(&before)) {
            self.retries.add(gained(now, was), &[KeyValue::new("error.type", error_type)]);
        }
        self.delivered.add(gained(stats.delivered, before.delivered), &[]);
        for ((reason, now), (_, was)) in drops(stats).zip(drops(&before)) {
            self.dropped.add(gained(now, was), &[KeyValue::new("reason", reason)]);
        }
        self.depth.add(stats.queued as i64 - before.queued as i64, &[]);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Value;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    use super::*;

    /// A sink on a provider whose metrics `read` returns.
    fn sink() -> (OtelSink, impl Fn() -> ResourceMetrics) {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let sink = OtelSink::new(&provider.meter(METER));
        let read = move || {
            provider.force_flush().unwrap();
            exporter.get_finished_metrics().unwrap().pop().unwrap()
        };
        (sink, read)
    }

    /// The points of the counter `name`: each one's attributes and value.
    fn sums(metrics: &ResourceMetrics, name: &str) -> Vec<(Vec<(String, Value)>, u64)> {
        let metric = metrics.scope_metrics().flat_map(|s| s.metrics()).find(|m| m.name() == name).unwrap();
        let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else { panic!("{name}") };
        let mut points: Vec<_> = sum
            .data_points()
            .map(|p| (p.attributes().map(|kv| (kv.key.to_string(), kv.value.clone())).collect(), p.value()))
            .collect();
        points.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        points
    }

    #[test]
    fn counters_grow_by_the_differences_and_every_reason_starts_at_zero() {
        let (mut sink, read) = sink();
        sink.delivery(&Stats { delivered: 5, queued: 7, ..Stats::retried_after_server_errors(1) });
        let first = read();
        let reasons: Vec<_> =
            sums(&first, DROPPED).into_iter().map(|(attrs, n)| (attrs[0].1.to_string(), n)).collect();
        let mut want: Vec<_> = drops(&Stats::default()).map(|(reason, n)| (reason.to_owned(), n)).collect();
        want.sort();
        assert_eq!(reasons, want, "every reason, at 0");

        let mut later = Stats { delivered: 8, queued: 2, ..Stats::retried_after_server_errors(1) };
        later.dropped.rejected = 2;
        sink.delivery(&later);
        sink.delivery(&later);
        let metrics = read();
        assert_eq!(sums(&metrics, DELIVERED), vec![(vec![], 8)]);
        let retried = sums(&metrics, RETRIES);
        assert_eq!(retried.len(), 8, "every error type, from 0: {retried:?}");
        let server_error = vec![("error.type".to_owned(), Value::from("5xx"))];
        assert_eq!(retried.iter().map(|(_, n)| n).sum::<u64>(), 1);
        assert!(retried.contains(&(server_error, 1)), "{retried:?}");
        let rejected = ("reason".to_owned(), Value::from("rejected"));
        assert!(sums(&metrics, DROPPED).contains(&(vec![rejected], 2)));
        assert_eq!(sums(&metrics, DROPPED).iter().map(|(_, n)| n).sum::<u64>(), 2);
    }

    #[test]
    fn the_status_code_and_port_are_integers_and_durations_are_seconds() {
        let (mut sink, read) = sink();
        sink.operation(&Operation { error_type: Some("429"), ..Operation::get_for_tests(Some(429)) });
        let metrics = read();
        let metric =
            metrics.scope_metrics().flat_map(|s| s.metrics()).find(|m| m.name() == HTTP_DURATION).unwrap();
        assert_eq!(metric.unit(), "s");
        let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() else { panic!() };
        let point = h.data_points().next().unwrap();
        assert_eq!(point.bounds().collect::<Vec<_>>(), DURATION_BUCKETS);
        assert_eq!(point.sum(), 0.03);
        let status = point.attributes().find(|kv| kv.key.as_str() == "http.response.status_code").unwrap();
        assert_eq!(status.value, Value::I64(429));
        let port = point.attributes().find(|kv| kv.key.as_str() == "server.port").unwrap();
        assert_eq!(port.value, Value::I64(443));
        let error = point.attributes().find(|kv| kv.key.as_str() == "error.type").unwrap();
        assert_eq!(error.value, Value::from("429"));
    }
}
