//! Emits events of one shape through a reporter, for a profiler to look at:
//! `profile <captured|request|in_span|other|other_span|none|http_span|bare|copy_only|copy_only_request> [events]`
//! (`bare`: the captured event's shape through a registry with no layer; `copy_only` and
//! `copy_only_request`: the captured and request shapes through a layer that only copies
//! the fields, `copy_only::CopyOnly`; `request`: a
//! captured event with a constant message, `info!(session_id, event_name, duration_ms,
//! status, "request complete")`; `http_span`: the open and close of a captured
//! `http.request` span, the shape the uploader's analysis reads).

use std::hint::black_box;

use tinker_telemetry_bench::copy_only::CopyOnly;
use tinker_telemetry_bench::{
    OTHER_SESSION, SESSION, Sink, builder, event_with_session, event_without_session, paced,
};
use tracing_subscriber::prelude::*;

#[inline(never)]
fn emit_captured(i: u64) {
    event_with_session!(SESSION, i);
}

#[inline(never)]
fn emit_request(i: u64) {
    tracing::info!(
        session_id = SESSION,
        event_name = "http.call",
        duration_ms = i,
        status = "ok",
        "request complete"
    );
}

#[inline(never)]
fn emit_other(i: u64) {
    event_with_session!(OTHER_SESSION, i);
}

#[inline(never)]
fn emit_none(i: u64) {
    event_without_session!(i);
}

#[inline(never)]
fn emit_http_span() {
    drop(tracing::info_span!(
        "http.request",
        session_id = SESSION,
        method = "GET",
        path = "/x",
        status = 200
    ));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "captured".into());
    let n: u64 = args.next().map_or(200_000, |s| s.parse().expect("a count"));
    let sink = Sink::start().expect("the sink starts");
    let (layer, guard) = builder(&sink.base_url()).build().expect("the reporter builds");
    let handle = guard.handle();
    let backlog = || handle.stats().queued;
    let dispatch = if mode == "bare" {
        tracing::Dispatch::new(tracing_subscriber::registry())
    } else if mode.starts_with("copy_only") {
        tracing::Dispatch::new(tracing_subscriber::registry().with(CopyOnly { session: SESSION }))
    } else {
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
    };
    let sched = || {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        let v: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
        (v[0], v[1], v[2])
    };
    let before = sched();
    let took = tracing::dispatcher::with_default(&dispatch, || match mode.as_str() {
        "captured" | "bare" | "copy_only" => paced(n, &backlog, |i| emit_captured(black_box(i))),
        "request" | "copy_only_request" => paced(n, &backlog, |i| emit_request(black_box(i))),
        "other" => paced(n, &backlog, |i| emit_other(black_box(i))),
        "none" => paced(n, &backlog, |i| emit_none(black_box(i))),
        "http_span" => paced(n, &backlog, |_| emit_http_span()),
        "in_span" | "other_span" => {
            let session = if mode == "in_span" { SESSION } else { OTHER_SESSION };
            let span = tracing::info_span!("session", session_id = session);
            let _in = span.enter();
            paced(n, &backlog, |i| emit_none(black_box(i)))
        }
        other => panic!("unknown mode {other}"),
    });
    let after = sched();
    eprintln!(
        "on-cpu {:.1} ns/event, runqueue wait {:.1} ns/event, slices {}",
        (after.0 - before.0) as f64 / n as f64,
        (after.1 - before.1) as f64 / n as f64,
        after.2 - before.2
    );
    drop(dispatch);
    let report = guard.shutdown();
    eprintln!(
        "{mode}: {:.1} ns/event, delivered {}",
        took.as_nanos() as f64 / n as f64,
        report.stats.delivered
    );
}
