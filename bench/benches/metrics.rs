//! What recording one HTTP request's duration costs, through tinker-telemetry's aggregation
//! (the uploader thread's work for one captured `http.request` span) and through its peers,
//! the `metrics` facade with metrics-exporter-prometheus and the OpenTelemetry SDK's
//! histogram, in one criterion run so that the ratios between them hold.
//!
//! ```text
//! cd bench && cargo bench --bench metrics -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every benchmark cycles through the same twenty requests (`tinker_telemetry_bench::workload`:
//! ids that template to five routes, durations from 2 ms to 8 s, a 500 one time in 50), each
//! recorded as `tinker_telemetry_bench::peers` does. tinker-telemetry is given the raw path
//! and templates it itself; the peers are given the route template as a `&'static str` label
//! (`…/static_route`), and, so that they do the same work, the raw path templated by a copy
//! of the crate's rule into an owned label (`…/templated`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tinker_telemetry::ExportBench;
use tinker_telemetry_bench::peers::{
    Inputs, Route, opentelemetry, prometheus, record_export, record_metrics, record_opentelemetry,
    record_tinker, tinker,
};

/// Records between two upkeeps of the Prometheus recorder (which moves the samples its
/// histograms have buffered into their buckets; the exporter does it every 5 s).
const UPKEEP_EVERY: u64 = 1_000;

fn benches(c: &mut Criterion) {
    let mut inputs = Inputs::default();
    let mut g = c.benchmark_group("record");

    // tinker-telemetry: what the uploader does with one captured http.request span once it
    // has read its fields.
    let mut t = tinker();
    let mut alerts = 0u64;
    g.bench_function("tinker/aggregate", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for i in 0..n {
                alerts += u64::from(record_tinker(&mut t, &inputs, i));
            }
            start.elapsed()
        })
    });
    eprintln!("[tinker] keys {}, alerts raised {alerts}", t.keys());

    // The metrics facade with the Prometheus recorder. `…/static_route` and `…/templated`
    // time the upkeep too, since it is the aggregation of what was recorded;
    // `…/static_route_no_upkeep` leaves it out.
    let recorder = prometheus();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        // tinker-telemetry's `metrics` sink: the same histogram, given the operation the
        // analysis read (the route already templated), with the upkeep timed.
        let mut sink = ExportBench::metrics();
        g.bench_function("tinker/export/metrics_prometheus", |b| {
            b.iter_custom(|n| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < n {
                    let end = (done + UPKEEP_EVERY).min(n);
                    let start = Instant::now();
                    for i in done..end {
                        record_export(&mut sink, &inputs, i);
                    }
                    handle.run_upkeep();
                    timed += start.elapsed();
                    done = end;
                }
                timed
            })
        });
        let mut bench = |name: &str, route: Route, upkeep_timed: bool| {
            g.bench_function(name, |b| {
                b.iter_custom(|n| {
                    let mut timed = Duration::ZERO;
                    let mut done = 0;
                    while done < n {
                        let end = (done + UPKEEP_EVERY).min(n);
                        let start = Instant::now();
                        for i in done..end {
                            record_metrics(&mut inputs, route, i);
                        }
                        let recorded = start.elapsed();
                        let start = Instant::now();
                        handle.run_upkeep();
                        timed += if upkeep_timed { recorded + start.elapsed() } else { recorded };
                        done = end;
                    }
                    timed
                })
            });
        };
        bench("metrics/prometheus/static_route", Route::Static, true);
        bench("metrics/prometheus/static_route_no_upkeep", Route::Static, false);
        bench("metrics/prometheus/templated", Route::Templated, true);
    });
    let rendered = handle.render();
    let series = rendered.lines().filter(|l| l.contains("_count{")).count();
    eprintln!("[metrics] {series} series rendered, {} bytes", rendered.len());

    // The OpenTelemetry SDK: the record call does all of the aggregation.
    let (provider, histogram, exported) = opentelemetry();
    let mut recorded = 0u64;
    // tinker-telemetry's OpenTelemetry sink, on the same provider.
    let mut sink = ExportBench::opentelemetry(&provider);
    g.bench_function("tinker/export/opentelemetry", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for i in 0..n {
                record_export(&mut sink, &inputs, i);
            }
            start.elapsed()
        })
    });
    let mut bench = |name: &str, route: Route| {
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                let start = Instant::now();
                for i in 0..n {
                    record_opentelemetry(&histogram, &mut inputs, route, i);
                }
                recorded += n;
                start.elapsed()
            })
        });
    };
    bench("opentelemetry/histogram/static_route", Route::Static);
    bench("opentelemetry/histogram/templated", Route::Templated);
    provider.shutdown().expect("the meter provider shuts down");
    eprintln!("[opentelemetry] recorded {recorded}, exported {}", exported.load(Relaxed));
    g.finish();
}

criterion_group!(metrics, benches);
criterion_main!(metrics);
