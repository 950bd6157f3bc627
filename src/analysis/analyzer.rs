//! The analyzer the uploader drives: it reads each captured span's record as an operation,
//! counts it in the [`Operations`] table and hands it to the metrics sinks, and makes the
//! `performance.summary` and `alert.error_spike` events.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::labels::{Labels, OTHER};
use super::operation::{Scratch, read};
use super::operations::{OTHER_KEY, Operations};
use super::process::{measurements, runtime};
use super::sink::{OpKind, Sink};
use super::spike::SpikeRule;
use crate::capture::span::QUEUE_STATE_CHANGE;
use crate::handoff::record::{Body, FieldSource, Record};
use crate::handoff::stats::Stats;

/// The event name of a summary.
pub(crate) const SUMMARY_EVENT: &str = "performance.summary";
/// The event name of an error-spike alert.
pub(crate) const SPIKE_EVENT: &str = "alert.error_spike";

/// What the analyzer is told at build time: the builder's analysis options (set in
/// `config/analysis.rs`, defaulted and checked with every other option in `config/`).
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
    labels: Labels,
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
            labels: Labels::default(),
            sinks,
            window_started: Instant::now(),
            runtime,
        }
    }

    /// Whether summaries are made, and how often.
    pub(crate) fn summary_interval(&self) -> Option<Duration> {
        self.config.enabled.then_some(self.config.summary_interval)
    }

    /// Runs `f`. A panic in it (in the application's recorder or meter, or in the analysis)
    /// turns the analysis and the sinks off for the rest of the session instead of ending the
    /// uploader: delivery goes on, summary-only spans are sent one event each.
    fn guarded<R: Default>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(r) => r,
            Err(_) => {
                self.config.enabled = false;
                // A sink that panicked may be in any state: it is let go without being dropped.
                self.sinks.drain(..).for_each(std::mem::forget);
                R::default()
            }
        }
    }

    /// Reads `record`, stamped `at`, as an operation if it is a captured span, or as a queue
    /// state change if it is a `queue.state_change` event.
    pub(crate) fn observe(&mut self, record: &Record, at: SystemTime) -> Observed {
        self.guarded(|analyzer| analyzer.read(record, at))
    }

    fn read(&mut self, record: &Record, at: SystemTime) -> Observed {
        let fields = match &record.body {
            Body::Fields(fields) if self.config.enabled || !self.sinks.is_empty() => fields,
            Body::Packed(event) if !self.sinks.is_empty() => {
                if event.event_name("") == QUEUE_STATE_CHANGE {
                    self.queue_state_change(event.get_str("to"));
                }
                return Observed::default();
            }
            _ => return Observed::default(),
        };
        let Some(name) = fields.name().map(|n| fields.text(n)) else { return Observed::default() };
        // Without summaries a summary-only span would be lost: it is sent instead.
        let summarized = self.config.enabled && self.config.summary_only.iter().any(|s| &**s == name);
        let mut op = read(name, record.severity, fields, &mut self.scratch);
        self.labels.bound(&mut op);
        // The record is stamped when the span opened; the operation ended a duration later.
        let recorded = self.operations.record(&op, at + op.duration);
        if recorded.folded && op.route.is_some() {
            // The exporters' series are capped with the table's keys.
            op.route = Some(OTHER_KEY);
        }
        // `bound` has held the queue state to its bound already.
        let queue_to = (op.kind == OpKind::QueueStateChange).then(|| op.queue_to.unwrap_or(OTHER));
        for sink in &mut self.sinks {
            sink.operation(&op);
            if let Some(to) = queue_to {
                sink.queue_state_change(to);
            }
        }
        Observed { summarized, alert: recorded.alert }
    }

    /// Passes a change into the queue state `to` (bounded; `_OTHER` when it names none) to
    /// the sinks.
    fn queue_state_change(&mut self, to: Option<&str>) {
        let to = self.labels.queue_state(to.unwrap_or(OTHER));
        for sink in &mut self.sinks {
            sink.queue_state_change(to);
        }
    }

    /// Passes the reporter's counters to the sinks.
    pub(crate) fn delivery(&mut self, stats: impl FnOnce() -> Stats) {
        if self.sinks.is_empty() {
            return;
        }
        let stats = stats();
        self.guarded(|analyzer| analyzer.sinks.iter_mut().for_each(|sink| sink.delivery(&stats)));
    }

    /// The `performance.summary` event data for the window ending `now`, if anything happened
    /// in it: `{"window_s", "operations", "top", "process"}`, with `process.tokio` when the
    /// reporter was built in a tokio runtime.
    pub(crate) fn summary(&mut self, now: Instant) -> Option<Value> {
        if !self.config.enabled {
            return None;
        }
        self.guarded(|analyzer| analyzer.summarize(now))
    }

    fn summarize(&mut self, now: Instant) -> Option<Value> {
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
