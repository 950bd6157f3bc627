//! The analyzer the uploader drives: it reads each captured span's record as an operation,
//! counts it in the [`Operations`] table and hands it to the metrics sinks, and makes the
//! `performance.summary` and `alert.error_spike` events.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::operation::{Scratch, read};
use super::operations::{OTHER_KEY, Operations};
use super::process::{measurements, runtime};
use super::sink::Sink;
use super::spike::SpikeRule;
use crate::handoff::record::{Body, FieldSource, Record};
use crate::handoff::stats::Stats;

/// The event name of a summary.
pub(crate) const SUMMARY_EVENT: &str = "performance.summary";
/// The event name of an error-spike alert.
pub(crate) const SPIKE_EVENT: &str = "alert.error_spike";

/// What the analyzer is told at build time: the builder's analysis options (their defaults
/// and checks are in `config/analysis.rs`).
#[derive(Debug, Clone)]
pub(crate) struct AnalysisConfig {
    /// Make summaries and alerts (the sinks are fed either way).
    pub(crate) enabled: bool,
    pub(crate) summary_interval: Duration,
    pub(crate) spike: Option<SpikeRule>,
    pub(crate) max_operations: usize,
    /// Span names counted in summaries instead of sent one event each.
    pub(crate) summary_only: Vec<Box<str>>,
}

/// What became of a record the analyzer saw.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Observed {
    /// The span is summary-only: counted, not sent.
    pub(crate) summarized: bool,
    /// An `alert.error_spike` to send, its `event_data`.
    pub(crate) alert: Option<Value>,
}

/// The analysis state of one reporter, owned by its uploader.
#[derive(Debug)]
pub(crate) struct Analyzer {
    config: AnalysisConfig,
    operations: Operations,
    scratch: Scratch,
    sinks: Vec<Box<dyn Sink>>,
    window_started: Instant,
    /// The tokio runtime the reporter was built in, measured in each summary.
    runtime: Option<tokio::runtime::Handle>,
}

impl Analyzer {
    pub(crate) fn new(
        config: AnalysisConfig,
        sinks: Vec<Box<dyn Sink>>,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Self {
        let spike = config.spike.filter(|_| config.enabled);
        Analyzer {
            operations: Operations::new(config.max_operations, spike),
            config,
            scratch: Scratch::default(),
            sinks,
            window_started: Instant::now(),
            runtime,
        }
    }

    /// Whether summaries are made, and how often.
    pub(crate) fn summary_interval(&self) -> Option<Duration> {
        self.config.enabled.then_some(self.config.summary_interval)
    }

    /// Reads `record`, stamped `at`, as an operation if it is a captured span.
    pub(crate) fn observe(&mut self, record: &Record, at: SystemTime) -> Observed {
        let Body::Fields(fields) = &record.body else { return Observed::default() };
        if !self.config.enabled && self.sinks.is_empty() {
            return Observed::default();
        }
        let Some(name) = fields.name().map(|n| fields.text(n)) else { return Observed::default() };
        // Without summaries a summary-only span would be lost: it is sent instead.
        let summarized = self.config.enabled && self.config.summary_only.iter().any(|s| &**s == name);
        let mut op = read(name, record.severity, fields, &mut self.scratch);
        // The record is stamped when the span opened; the operation ended a duration later.
        let recorded = self.operations.record(&op, at + op.duration);
        if recorded.folded && op.route.is_some() {
            // The exporters' series are capped with the table's keys.
            op.route = Some(OTHER_KEY);
        }
        for sink in &mut self.sinks {
            sink.operation(&op);
        }
        Observed { summarized, alert: recorded.alert }
    }

    /// Passes the reporter's counters to the sinks.
    pub(crate) fn delivery(&mut self, stats: impl FnOnce() -> Stats) {
        if self.sinks.is_empty() {
            return;
        }
        let stats = stats();
        for sink in &mut self.sinks {
            sink.delivery(&stats);
        }
    }

    /// The `performance.summary` event data for the window ending `now`, if anything happened
    /// in it: `{"window_s", "operations", "top", "process"}`, with `process.tokio` when the
    /// reporter was built in a tokio runtime.
    pub(crate) fn summary(&mut self, now: Instant) -> Option<Value> {
        if !self.config.enabled {
            return None;
        }
        let mut data = self.operations.summary()?;
        let window = now.saturating_duration_since(self.window_started);
        self.window_started = now;
        data.insert("window_s".into(), json!((window.as_secs_f64() * 1000.0).round() / 1000.0));
        let mut process = measurements();
        if let Some(handle) = &self.runtime {
            process.insert("tokio".into(), Value::Object(runtime(handle)));
        }
        data.insert("process".into(), Value::Object(process));
        Some(Value::Object(data))
    }
}
