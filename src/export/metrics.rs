//! The `metrics` facade exporter: operations and delivery counters recorded through whatever
//! recorder the application installed (`metrics-exporter-prometheus`, say). The crate never
//! installs one; without one, recording does nothing.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU64};

use metrics::{Key, Label, Level, Metadata, Unit};

use super::names::{
    DELIVERED, DELIVERED_HELP, DROP_REASONS, DROPPED, DROPPED_HELP, HTTP_DURATION, HTTP_DURATION_HELP,
    Numbers, OPERATION_DURATION, OPERATION_DURATION_HELP, QUEUE_DEPTH, QUEUE_DEPTH_HELP, QUEUE_STATE_CHANGES,
    QUEUE_STATE_CHANGES_HELP, RETRIES, RETRIES_HELP, attributes, drops, gained, retries, values,
};
use super::series::Series;
use crate::analysis::sink::{OpKind, Operation, Sink};
use crate::handoff::stats::{RetryCause, Stats};

/// What the crate's histograms are registered with, as `metrics::histogram!` would.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The counters of every reporter of the process added up: the facade's counters are set to
/// these (`absolute`), so that reporters sharing a process add up and a recorder installed
/// late still reads the whole count.
static TOTALS: Totals = Totals::new();

#[derive(Debug)]
pub(crate) struct Totals {
    retries: [AtomicU64; RetryCause::ALL.len()],
    delivered: AtomicU64,
    dropped: [AtomicU64; DROP_REASONS],
    queued: AtomicI64,
}

impl Totals {
    pub(crate) const fn new() -> Self {
        Totals {
            retries: [const { AtomicU64::new(0) }; RetryCause::ALL.len()],
            delivered: AtomicU64::new(0),
            dropped: [const { AtomicU64::new(0) }; DROP_REASONS],
            queued: AtomicI64::new(0),
        }
    }
}

/// Adds `delta` to `total`; returns the new total.
fn add(total: &AtomicU64, delta: u64) -> u64 {
    total.fetch_add(delta, Relaxed) + delta
}

/// Records into the `metrics` facade's current recorder (the global one on the uploader
/// thread).
#[derive(Debug)]
pub(crate) struct MetricsSink {
    /// The recorder the metrics were last described to, by address. A recorder installed
    /// after `build()` (after the uploader's first take) is another one, and is told the
    /// units and descriptions too: without its unit, a Prometheus recorder would name
    /// `http.client.request.duration` without the `_seconds` suffix.
    recorder: Option<usize>,
    /// The process's counters this sink adds to ([`TOTALS`] but in tests).
    totals: &'static Totals,
    /// The counters as last exported.
    last: Stats,
    /// Each duration series's key (its name and labels), made once. The histogram itself is
    /// registered at every record, as `metrics::histogram!` does, so that a recorder which
    /// removes idle series (`PrometheusBuilder::idle_timeout`) brings one back when it is
    /// recorded into again.
    keys: Series<Key>,
}

impl Default for MetricsSink {
    fn default() -> Self {
        MetricsSink::adding_to(&TOTALS)
    }
}

impl MetricsSink {
    /// A sink whose counters add up with every other sink adding to `totals`.
    pub(crate) fn adding_to(totals: &'static Totals) -> Self {
        MetricsSink { recorder: None, totals, last: Stats::default(), keys: Series::default() }
    }

    /// Describes the metrics to the current recorder, if it is not the one they were
    /// described to.
    fn describe(&mut self) {
        let current = metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>().addr());
        if self.recorder == Some(current) {
            return;
        }
        self.recorder = Some(current);
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
        let numbers = Numbers::of(op);
        let values = values(op, &numbers);
        let key = self.keys.get(&values, || {
            let name = if op.kind == OpKind::Http { HTTP_DURATION } else { OPERATION_DURATION };
            let labels: Vec<Label> =
                attributes(op, &values).map(|(k, v)| Label::new(k.to_owned(), v.to_owned())).collect();
            // Retained (shared), so that a recorder keeping the key (metrics-exporter-prometheus
            // does at every registration) clones it without allocating.
            Key::from_parts(name, labels).to_retained()
        });
        metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA))
            .record(op.duration.as_secs_f64());
    }

    fn queue_state_change(&mut self, to: &str) {
        self.describe();
        metrics::counter!(QUEUE_STATE_CHANGES, "to" => to.to_owned()).increment(1);
    }

    fn delivery(&mut self, stats: &Stats) {
        self.describe();
        let totals = self.totals;
        let before = std::mem::replace(&mut self.last, *stats);
        for (((error_type, now), (_, was)), total) in
            retries(stats).zip(retries(&before)).zip(&totals.retries)
        {
            metrics::counter!(RETRIES, "error.type" => error_type).absolute(add(total, gained(now, was)));
        }
        let delivered = add(&totals.delivered, gained(stats.delivered, before.delivered));
        metrics::counter!(DELIVERED).absolute(delivered);
        for (((reason, now), (_, was)), total) in drops(stats).zip(drops(&before)).zip(&totals.dropped) {
            // Every reason's series exists from the start, at 0.
            metrics::counter!(DROPPED, "reason" => reason).absolute(add(total, gained(now, was)));
        }
        let change = stats.queued as i64 - before.queued as i64;
        let total = totals.queued.fetch_add(change, Relaxed) + change;
        metrics::gauge!(QUEUE_DEPTH).set(total as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

    use super::*;

    const REASONS: [&str; crate::DropReason::ALL.len()] = {
        let mut names = [""; crate::DropReason::ALL.len()];
        let mut i = 0;
        while i < names.len() {
            names[i] = crate::DropReason::ALL[i].name();
            i += 1;
        }
        names
    };

    /// A sink with counters of its own, apart from the other tests'.
    fn sink() -> MetricsSink {
        MetricsSink::adding_to(Box::leak(Box::new(Totals::new())))
    }

    fn recorder() -> PrometheusRecorder {
        PrometheusBuilder::new().with_recommended_naming(true).build_recorder()
    }

    /// The value of the sample line `series` (its name and labels as rendered).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn op(kind: OpKind, name: &'static str) -> Operation<'static> {
        Operation {
            kind,
            name,
            method: None,
            route: None,
            server_address: None,
            server_port: None,
            ..Operation::get_for_tests(None)
        }
    }

    fn http(status: Option<u16>, error_type: Option<&'static str>) -> Operation<'static> {
        let route = "/api/v1/sampling_sessions/{id}/sample";
        Operation::http("POST", route, status, error_type, Duration::from_millis(30))
    }

    #[test]
    fn operations_become_series_with_the_conventions_labels() {
        let recorder = recorder();
        let mut sink = sink();
        metrics::with_local_recorder(&recorder, || {
            sink.operation(&http(Some(200), None));
            sink.operation(&http(Some(500), Some("500")));
            sink.operation(&http(None, Some("timeout")));
            sink.operation(&Operation {
                queue_to: Some("paused_rate_limit"),
                ..op(OpKind::QueueStateChange, "queue.state_change")
            });
            sink.queue_state_change("paused_rate_limit");
            sink.operation(&Operation {
                error_type: Some("io_error"),
                ..op(OpKind::Other, "checkpoint.save")
            });
        });
        let text = recorder.handle().render();
        let http = "http_client_request_duration_seconds_count";
        let base = r#"http_request_method="POST",url_template="/api/v1/sampling_sessions/{id}/sample",server_address="tinker.example",server_port="443""#;
        for labels in [
            format!(r#"{base},http_response_status_code="200""#),
            format!(r#"{base},http_response_status_code="500",error_type="500""#),
            format!(r#"{base},error_type="timeout""#),
        ] {
            assert_eq!(value(&text, &format!("{http}{{{labels}}}")), Some(1.0), "{labels}:\n{text}");
        }
        let other = "tinker_telemetry_operation_duration_seconds_count";
        assert_eq!(
            value(&text, &format!(r#"{other}{{operation="queue.state_change"}}"#)),
            Some(1.0),
            "{text}"
        );
        let failed = format!(r#"{other}{{operation="checkpoint.save",error_type="io_error"}}"#);
        assert_eq!(value(&text, &failed), Some(1.0), "{text}");
        let changes = r#"tinker_telemetry_queue_state_changes_total{to="paused_rate_limit"}"#;
        assert_eq!(value(&text, changes), Some(1.0), "{text}");
        assert_eq!(text.matches("_count").count(), 5, "no other series:\n{text}");
    }

    #[test]
    fn a_series_the_recorder_removed_as_idle_comes_back_when_recorded_again() {
        let recorder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .idle_timeout(metrics_util::MetricKindMask::HISTOGRAM, Some(Duration::from_millis(1)))
            .build_recorder();
        let handle = recorder.handle();
        let series = r#"http_client_request_duration_seconds_count{http_request_method="POST",url_template="/api/v1/sampling_sessions/{id}/sample",server_address="tinker.example",server_port="443",http_response_status_code="200"}"#;
        let mut sink = sink();
        metrics::with_local_recorder(&recorder, || {
            sink.operation(&http(Some(200), None));
            sink.operation(&http(Some(200), None));
            assert_eq!(value(&handle.render(), series), Some(2.0));
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(value(&handle.render(), series), None, "idle, removed");
            sink.operation(&http(Some(200), None));
        });
        assert_eq!(value(&handle.render(), series), Some(1.0), "back");
    }

    /// What the docs tell applications: metrics-exporter-prometheus matches bucket matchers
    /// against the sanitized name, before the unit suffix (`Matcher::Full` with the dotted
    /// name matches nothing).
    #[test]
    fn the_documented_matchers_give_both_histograms_the_buckets() {
        use metrics_exporter_prometheus::Matcher;
        for matchers in [
            vec![Matcher::Suffix("duration".into())],
            vec![
                Matcher::Full("http_client_request_duration".into()),
                Matcher::Full("tinker_telemetry_operation_duration".into()),
            ],
        ] {
            let builder = PrometheusBuilder::new().with_recommended_naming(true);
            let builder = matchers
                .into_iter()
                .fold(builder, |b, m| b.set_buckets_for_metric(m, crate::DURATION_BUCKETS).unwrap());
            let recorder = builder.build_recorder();
            let mut sink = sink();
            metrics::with_local_recorder(&recorder, || {
                sink.operation(&http(Some(200), None));
                sink.operation(&op(OpKind::Other, "checkpoint.save"));
            });
            let text = recorder.handle().render();
            for name in
                ["http_client_request_duration_seconds", "tinker_telemetry_operation_duration_seconds"]
            {
                assert!(text.contains(&format!("# TYPE {name} histogram")), "{name}:\n{text}");
                let buckets = text.lines().filter(|l| l.starts_with(&format!("{name}_bucket{{"))).count();
                assert_eq!(buckets, crate::DURATION_BUCKETS.len() + 1, "{name}:\n{text}");
            }
        }
    }

    #[test]
    fn counters_grow_by_the_differences_and_every_reason_starts_at_zero() {
        let recorder = recorder();
        let handle = recorder.handle();
        let mut sink = sink();
        let mut later = Stats { delivered: 8, queued: 2, ..Stats::retried_after_server_errors(1) };
        later.dropped.rejected = 2;
        metrics::with_local_recorder(&recorder, || {
            sink.delivery(&Stats { delivered: 5, queued: 7, ..Stats::retried_after_server_errors(1) });
            let text = handle.render();
            for reason in REASONS {
                let series = format!(r#"tinker_telemetry_events_dropped_total{{reason="{reason}"}}"#);
                assert_eq!(value(&text, &series), Some(0.0), "{reason}:\n{text}");
            }
            assert_eq!(value(&text, "tinker_telemetry_queue_depth"), Some(7.0), "{text}");
            sink.delivery(&later);
            sink.delivery(&later);
        });
        let text = handle.render();
        assert_eq!(value(&text, "tinker_telemetry_events_delivered_total"), Some(8.0), "{text}");
        assert_eq!(
            value(&text, r#"tinker_telemetry_requests_retried_total{error_type="5xx"}"#),
            Some(1.0),
            "{text}"
        );
        for reason in REASONS {
            let series = format!(r#"tinker_telemetry_events_dropped_total{{reason="{reason}"}}"#);
            let want = if reason == "rejected" { 2.0 } else { 0.0 };
            assert_eq!(value(&text, &series), Some(want), "{reason}:\n{text}");
        }
        assert_eq!(value(&text, "tinker_telemetry_queue_depth"), Some(2.0), "{text}");
    }

    #[test]
    fn reporters_in_one_process_add_up() {
        let totals: &'static Totals = Box::leak(Box::new(Totals::new()));
        let (mut a, mut b) = (MetricsSink::adding_to(totals), MetricsSink::adding_to(totals));
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            a.delivery(&Stats { delivered: 5, queued: 2, ..Stats::default() });
            b.delivery(&Stats { delivered: 3, queued: 4, ..Stats::default() });
            a.delivery(&Stats { delivered: 6, queued: 0, ..Stats::default() });
        });
        let text = recorder.handle().render();
        assert_eq!(value(&text, "tinker_telemetry_events_delivered_total"), Some(9.0), "{text}");
        assert_eq!(value(&text, "tinker_telemetry_queue_depth"), Some(4.0), "{text}");
    }

    #[test]
    fn a_recorder_installed_later_gets_the_units_and_the_whole_counts() {
        let mut sink = sink();
        let stats = Stats { delivered: 5, ..Stats::retried_after_server_errors(2) };
        // No recorder yet: the facade's no-op one.
        sink.operation(&http(Some(200), None));
        sink.delivery(&stats);
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            sink.operation(&http(Some(200), None));
            sink.delivery(&stats);
        });
        let text = recorder.handle().render();
        assert!(text.contains("# HELP http_client_request_duration_seconds "), "{text}");
        assert!(text.contains("# HELP tinker_telemetry_events_delivered_total "), "{text}");
        assert_eq!(value(&text, "tinker_telemetry_events_delivered_total"), Some(5.0), "{text}");
        assert_eq!(
            value(&text, r#"tinker_telemetry_requests_retried_total{error_type="5xx"}"#),
            Some(2.0),
            "{text}"
        );
    }
}
