//! What one `tracing` call costs the thread that makes it, with tinker-telemetry's layer and
//! with its peer (opentelemetry-appender-tracing over a BatchLogProcessor), in one criterion
//! run so that the ratios between them hold.
//!
//! ```text
//! cd bench && cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every event is `info!` with `session_id` and 4 fields. Benchmarks whose events reach a
//! queue emit in paced chunks (see `tinker_telemetry_bench::paced`): only the emitting is
//! timed, and the consumer is given time, untimed, to keep the backlog under 20,000 events,
//! so that nothing is dropped and no figure is one of page faults. The `*_flood` benchmarks
//! emit back to back instead (`tinker_telemetry_bench::flood`), the queue holding a whole
//! sample, and drain it, untimed, after each sample. Each tinker-telemetry
//! benchmark has a reporter of its own, aimed at a local sink; its final counters are printed
//! to stderr when the benchmark ends, drops included.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider,
};
use tinker_telemetry_bench::copy_only::CopyOnly;
use tinker_telemetry_bench::{
    OTHER_SESSION, SESSION, Sink, builder, event_with_session, event_without_session, flood, paced,
};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

macro_rules! http_request_span {
    () => {
        tracing::info_span!("http.request", session_id = SESSION, method = "GET", path = "/x", status = 200)
    };
}

fn no_backlog() -> u64 {
    0
}

/// Runs `bench` under a fresh tinker-telemetry reporter, then shuts the reporter down and
/// prints its counters.
fn with_reporter(name: &str, sink: &Sink, bench: impl FnOnce(&Dispatch, &(dyn Fn() -> u64 + Sync))) {
    let (layer, guard) = builder(&sink.base_url()).build().expect("the reporter builds");
    let handle = guard.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let backlog = || handle.stats().queued;
    bench(&dispatch, &backlog);
    drop(dispatch);
    let report = guard.shutdown();
    let s = report.stats;
    eprintln!(
        "[{name}] reporter: accepted {}, delivered {}, dropped {} (queue full {}), drained {}",
        s.accepted,
        s.delivered,
        s.dropped.total(),
        s.dropped.queue_full,
        report.drained
    );
}

/// Benchmarks `tinker/{name}`: an event without a `session_id`, inside an entered span of
/// `session`.
fn event_in_span(g: &mut BenchmarkGroup<'_, WallTime>, sink: &Sink, name: &str, session: &str) {
    with_reporter(name, sink, |d, backlog| {
        tracing::dispatcher::with_default(d, || {
            let span = tracing::info_span!("session", session_id = session);
            let _in = span.enter();
            g.bench_function(format!("tinker/{name}"), |b| {
                b.iter_custom(|n| paced(n, backlog, |i| event_without_session!(black_box(i))))
            });
        });
    });
}

fn benches(c: &mut Criterion) {
    let sink = Sink::start().expect("the sink starts");
    let mut g = c.benchmark_group("event");

    floors(&mut g);

    with_reporter("ignored_no_session", &sink, |d, backlog| {
        tracing::dispatcher::with_default(d, || {
            g.bench_function("tinker/ignored_no_session", |b| {
                b.iter_custom(|n| paced(n, backlog, |i| event_without_session!(black_box(i))))
            });
        });
    });

    with_reporter("ignored_other_session", &sink, |d, backlog| {
        tracing::dispatcher::with_default(d, || {
            g.bench_function("tinker/ignored_other_session", |b| {
                b.iter_custom(|n| paced(n, backlog, |i| event_with_session!(OTHER_SESSION, black_box(i))))
            });
        });
    });

    event_in_span(&mut g, &sink, "ignored_other_session_span", OTHER_SESSION);

    with_reporter("captured", &sink, |d, backlog| {
        tracing::dispatcher::with_default(d, || {
            g.bench_function("tinker/captured", |b| {
                b.iter_custom(|n| paced(n, backlog, |i| event_with_session!(SESSION, black_box(i))))
            });
        });
    });

    event_in_span(&mut g, &sink, "captured_in_span", SESSION);

    spans(&mut g, &sink);

    captured_2_threads(&mut g, &sink);
    captured_flood(&mut g, &sink);
    opentelemetry_paced(&mut g);
    opentelemetry_flood(&mut g);
    g.finish();
}

/// `tinker/span_enter_exit` and `tinker/http_request_span`.
fn spans(g: &mut BenchmarkGroup<'_, WallTime>, sink: &Sink) {
    with_reporter("span_enter_exit", sink, |d, _| {
        tracing::dispatcher::with_default(d, || {
            let span = tracing::info_span!("session", session_id = SESSION);
            g.bench_function("tinker/span_enter_exit", |b| {
                b.iter_custom(|n| paced(n, &no_backlog, |_| drop(black_box(span.enter()))))
            });
        });
    });

    with_reporter("http_request_span", sink, |d, backlog| {
        tracing::dispatcher::with_default(d, || {
            g.bench_function("tinker/http_request_span", |b| {
                b.iter_custom(|n| paced(n, backlog, |_| drop(black_box(http_request_span!()))))
            });
        });
    });
}

/// The floors: a registry and no layer, a layer that walks the fields and keeps nothing, and
/// one that only copies them into a locked buffer.
fn floors(g: &mut BenchmarkGroup<'_, WallTime>) {
    // The floor: a registry and no layer at all.
    let bare = Dispatch::new(tracing_subscriber::registry());
    tracing::dispatcher::with_default(&bare, || {
        g.bench_function("bare_registry", |b| {
            b.iter_custom(|n| paced(n, &no_backlog, |i| event_with_session!(SESSION, black_box(i))))
        });
        g.bench_function("bare_registry/http_request_span", |b| {
            b.iter_custom(|n| paced(n, &no_backlog, |_| drop(black_box(http_request_span!()))))
        });
        let span = tracing::info_span!("session", session_id = SESSION);
        g.bench_function("bare_registry/span_enter_exit", |b| {
            b.iter_custom(|n| paced(n, &no_backlog, |_| drop(black_box(span.enter()))))
        });
    });

    // The floor for any layer that reads a field value: tracing-core offers no way to read
    // one field, so a layer must walk them all, here with a visitor that does nothing.
    let walk = Dispatch::new(tracing_subscriber::registry().with(WalkFields));
    tracing::dispatcher::with_default(&walk, || {
        g.bench_function("floor/field_walk", |b| {
            b.iter_custom(|n| paced(n, &no_backlog, |i| event_with_session!(OTHER_SESSION, black_box(i))))
        });
    });

    // What copying a captured event's fields costs before any of the reporter's work.
    let copy = Dispatch::new(tracing_subscriber::registry().with(CopyOnly { session: SESSION }));
    tracing::dispatcher::with_default(&copy, || {
        g.bench_function("floor/copy_only", |b| {
            b.iter_custom(|n| paced(n, &no_backlog, |i| event_with_session!(SESSION, black_box(i))))
        });
    });
}

/// `tinker/captured_2_threads`: two threads emitting at once.
fn captured_2_threads(g: &mut BenchmarkGroup<'_, WallTime>, sink: &Sink) {
    with_reporter("captured_2_threads", sink, |d, backlog| {
        g.bench_function("tinker/captured_2_threads", |b| {
            b.iter_custom(|n| {
                let start = Barrier::new(2);
                let per_thread = std::thread::scope(|scope| {
                    let threads: Vec<_> = (0..2)
                        .map(|_| {
                            scope.spawn(|| {
                                tracing::dispatcher::with_default(d, || {
                                    start.wait();
                                    paced(n, backlog, |i| event_with_session!(SESSION, black_box(i)))
                                })
                            })
                        })
                        .collect();
                    threads
                        .into_iter()
                        .map(|t| t.join().expect("an emitting thread panicked"))
                        .collect::<Vec<_>>()
                });
                // Each thread emitted `n` events: the mean of their times is the cost per
                // event on one of two threads emitting at once.
                per_thread.iter().sum::<Duration>() / 2
            })
        });
    });
}

/// `opentelemetry/captured`: the peer, paced.
fn opentelemetry_paced(g: &mut BenchmarkGroup<'_, WallTime>) {
    // The peer: the OpenTelemetry bridge over a BatchLogProcessor whose exporter discards
    // (and counts, so that the producer can be paced the same way).
    let exporter = CountingExporter::default();
    let exported = Arc::clone(&exporter.0);
    let config = BatchConfigBuilder::default().with_max_queue_size(65_536).build();
    let processor = BatchLogProcessor::builder(exporter).with_batch_config(config).build();
    let provider = SdkLoggerProvider::builder().with_log_processor(processor).build();
    let bridge = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider);
    let otel = Dispatch::new(tracing_subscriber::registry().with(bridge));
    let emitted = Cell::new(0u64);
    let backlog = || emitted.get().saturating_sub(exported.load(Relaxed));
    tracing::dispatcher::with_default(&otel, || {
        g.bench_function("opentelemetry/captured", |b| {
            b.iter_custom(|n| {
                paced(n, &backlog, |i| {
                    event_with_session!(SESSION, black_box(i));
                    emitted.set(emitted.get() + 1);
                })
            })
        });
    });
    let _ = provider.force_flush();
    let (sent, got) = (emitted.get(), exported.load(Relaxed));
    eprintln!("[opentelemetry] emitted {sent}, exported {got}, lost {}", sent.saturating_sub(got));
    let _ = provider.shutdown();
}

/// `tinker/captured_flood`: the captured event emitted back to back, unpaced; after each
/// sample, untimed, the reporter is drained.
fn captured_flood(g: &mut BenchmarkGroup<'_, WallTime>, sink: &Sink) {
    let (layer, guard) = builder(&sink.base_url()).build().expect("the reporter builds");
    let handle = guard.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        g.bench_function("tinker/captured_flood", |b| {
            b.iter_custom(|n| {
                let settle = || assert!(handle.wait_until_drained(Duration::from_secs(120)));
                flood(n, settle, |i| event_with_session!(SESSION, black_box(i)))
            })
        });
    });
    drop(dispatch);
    let s = guard.shutdown().stats;
    eprintln!(
        "[captured_flood] reporter: accepted {}, delivered {}, dropped {}",
        s.accepted,
        s.delivered,
        s.dropped.total()
    );
}

/// `opentelemetry/captured_flood`: the peer under the same flood, its queue large enough to
/// hold a sample whole; after each sample, untimed, it is flushed.
fn opentelemetry_flood(g: &mut BenchmarkGroup<'_, WallTime>) {
    let exporter = CountingExporter::default();
    let exported = Arc::clone(&exporter.0);
    let config = BatchConfigBuilder::default().with_max_queue_size(1 << 21).build();
    let processor = BatchLogProcessor::builder(exporter).with_batch_config(config).build();
    let provider = SdkLoggerProvider::builder().with_log_processor(processor).build();
    let bridge = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider);
    let otel = Dispatch::new(tracing_subscriber::registry().with(bridge));
    let emitted = Cell::new(0u64);
    tracing::dispatcher::with_default(&otel, || {
        g.bench_function("opentelemetry/captured_flood", |b| {
            b.iter_custom(|n| {
                let settle = || {
                    let _ = provider.force_flush();
                };
                emitted.set(emitted.get() + n);
                flood(n, settle, |i| event_with_session!(SESSION, black_box(i)))
            })
        });
    });
    let (sent, got) = (emitted.get(), exported.load(Relaxed));
    eprintln!("[opentelemetry_flood] emitted {sent}, exported {got}, lost {}", sent.saturating_sub(got));
    let _ = provider.shutdown();
}

/// A layer that walks every event's fields and keeps nothing.
struct WalkFields;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WalkFields {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        event.record(&mut Ignore);
    }
}

/// A visitor that ignores every value, typed or not.
struct Ignore;

impl tracing::field::Visit for Ignore {
    fn record_str(&mut self, _: &tracing::field::Field, value: &str) {
        black_box(value);
    }

    fn record_i64(&mut self, _: &tracing::field::Field, value: i64) {
        black_box(value);
    }

    fn record_u64(&mut self, _: &tracing::field::Field, value: u64) {
        black_box(value);
    }

    fn record_f64(&mut self, _: &tracing::field::Field, value: f64) {
        black_box(value);
    }

    fn record_bool(&mut self, _: &tracing::field::Field, value: bool) {
        black_box(value);
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

/// Discards every batch, counting its records.
#[derive(Debug, Default)]
struct CountingExporter(Arc<AtomicU64>);

impl LogExporter for CountingExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        self.0.fetch_add(batch.iter().count() as u64, Relaxed);
        Ok(())
    }
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
