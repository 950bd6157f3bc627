//! Records the analysis workload through tinker-telemetry's aggregation or one of its peers,
//! for callgrind: instructions per record do not move with the machine's load, so the
//! ratios between them hold across sessions, where the `metrics` bench's times move.
//!
//! ```text
//! record <tinker|prometheus|prometheus_templated|opentelemetry|opentelemetry_templated|export_metrics|export_opentelemetry> [records]
//! valgrind --tool=callgrind --toggle-collect='*record_chunk*' target/release/record tinker 100000
//! ```
//!
//! Records are made in chunks of 1,000 by `record_chunk` (counted); the Prometheus modes run
//! the recorder's upkeep after each chunk, inside it, since the upkeep is what puts the
//! buffered samples in their buckets. The `export_…` modes record through tinker-telemetry's
//! exporter sinks (the `metrics` one into the same Prometheus recorder), given the route
//! template as the analysis hands it over. It also prints the time per record, for what it is
//! worth on a shared machine.

use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use opentelemetry::metrics::Histogram;
use tinker_telemetry::{AnalysisBench, ExportBench};
use tinker_telemetry_bench::peers::{
    Inputs, Route, opentelemetry, prometheus, record_export, record_metrics, record_opentelemetry,
    record_tinker, tinker,
};

const CHUNK: u64 = 1_000;

enum Target<'a> {
    Tinker(&'a mut AnalysisBench),
    Metrics(&'a PrometheusHandle, Route),
    OpenTelemetry(&'a Histogram<f64>, Route),
    Export(&'a mut ExportBench, Option<&'a PrometheusHandle>),
}

#[inline(never)]
fn record_chunk(target: &mut Target<'_>, inputs: &mut Inputs, from: u64) {
    match target {
        Target::Tinker(t) => {
            for i in from..from + CHUNK {
                std::hint::black_box(record_tinker(t, inputs, i));
            }
        }
        Target::Metrics(handle, route) => {
            for i in from..from + CHUNK {
                record_metrics(inputs, *route, i);
            }
            handle.run_upkeep();
        }
        Target::OpenTelemetry(h, route) => {
            for i in from..from + CHUNK {
                record_opentelemetry(h, inputs, *route, i);
            }
        }
        Target::Export(e, handle) => {
            for i in from..from + CHUNK {
                record_export(e, inputs, i);
            }
            if let Some(handle) = handle {
                handle.run_upkeep();
            }
        }
    }
}

fn run(mut target: Target<'_>, inputs: &mut Inputs, records: u64) -> f64 {
    let start = Instant::now();
    let mut from = 0;
    while from < records {
        record_chunk(&mut target, inputs, from);
        from += CHUNK;
    }
    start.elapsed().as_nanos() as f64 / from as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "tinker".into());
    let records: u64 = args.next().map_or(1_000_000, |s| s.parse().expect("a count"));
    let records = records.div_ceil(CHUNK) * CHUNK;
    let mut inputs = Inputs::default();
    let ns = match mode.as_str() {
        "tinker" => {
            let mut t = tinker();
            run(Target::Tinker(&mut t), &mut inputs, records)
        }
        "prometheus" | "prometheus_templated" => {
            let route = if mode == "prometheus" { Route::Static } else { Route::Templated };
            let recorder = prometheus();
            let handle = recorder.handle();
            metrics::with_local_recorder(&recorder, || {
                run(Target::Metrics(&handle, route), &mut inputs, records)
            })
        }
        "opentelemetry" | "opentelemetry_templated" => {
            let route = if mode == "opentelemetry" { Route::Static } else { Route::Templated };
            let (provider, h, exported) = opentelemetry();
            let ns = run(Target::OpenTelemetry(&h, route), &mut inputs, records);
            provider.shutdown().expect("the meter provider shuts down");
            let got = exported.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(got, records, "every record is exported");
            ns
        }
        "export_metrics" => {
            let recorder = prometheus();
            let handle = recorder.handle();
            metrics::with_local_recorder(&recorder, || {
                let mut e = ExportBench::metrics();
                run(Target::Export(&mut e, Some(&handle)), &mut inputs, records)
            })
        }
        "export_opentelemetry" => {
            let (provider, _, _) = opentelemetry();
            let mut e = ExportBench::opentelemetry(&provider);
            let ns = run(Target::Export(&mut e, None), &mut inputs, records);
            provider.shutdown().expect("the meter provider shuts down");
            ns
        }
        other => panic!("unknown mode {other}"),
    };
    println!("{mode}: {records} records, {ns:.1} ns/record");
}
