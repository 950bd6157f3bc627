//! The analyzer the uploader drives: it reads each captured span's record as an operation,
//! counts it in the [`Operations`] table and hands it to the metrics sinks, and makes the
//! `performance.summary` and `alert.error_spike` events.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::labels::{Labels, OTHER_QUEUE_STATE};
use super::live::{Live, Publisher};
use super::notify::{Notifier, SpikeCallback};
use super::operation::{Scratch, UNKNOWN_ROUTE, read};
use super::operations::{OTHER_KEY, Operations};
use super::process::{measurements, runtime};
use super::report::{ErrorSpike, SummaryData, round};
use super::sink::{OpKind, Operation, Sink};
use super::spike::SpikeRule;
use crate::handoff::packed::QUEUE_STATE_CHANGE;
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
    /// Span fields whose values are part of an operation's key.
    pub(crate) operation_labels: Vec<Box<str>>,
    /// Called, on a thread of its own, with every error spike.
    pub(crate) on_error_spike: Option<SpikeCallback>,
    /// Tell on stderr, once, about an HTTP span without a route.
    pub(crate) debug: bool,
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
    /// Where the program reads the numbers; `None` without summaries.
    publisher: Option<Publisher>,
    notifier: Option<Notifier>,
    /// An HTTP span without a route was told about ([`AnalysisConfig::debug`]).
    told_unknown_route: bool,
}

impl Analyzer {
    /// The analysis of a reporter whose program reads it through `live`; starts the thread
    /// of the error-spike callback, if there is one (the error is that thread's start).
    pub(crate) fn new(
        config: AnalysisConfig,
        sinks: Vec<Box<dyn Sink>>,
        runtime: Option<tokio::runtime::Handle>,
        live: &Arc<Live>,
    ) -> std::io::Result<Self> {
        let spike = config.spike.filter(|_| config.enabled);
        let notifier = match config.on_error_spike.clone().filter(|_| spike.is_some()) {
            Some(callback) => Some(Notifier::start(callback, Arc::clone(&live.spike_calls))?),
            None => None,
        };
        Ok(Analyzer {
            operations: Operations::new(config.max_operations, spike, &config.operation_labels),
            publisher: config.enabled.then(|| Publisher::new(Arc::clone(live))),
            config,
            scratch: Scratch::default(),
            labels: Labels::default(),
            sinks,
            window_started: Instant::now(),
            runtime,
            notifier,
            told_unknown_route: false,
        })
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
        self.scratch.read_labels(&self.config.operation_labels, fields, &mut self.labels);
        let mut op = read(name, record.severity, fields, &self.config.operation_labels, &mut self.scratch);
        self.labels.bound(&mut op);
        let unknown_route = op.kind == OpKind::Http && op.route == Some(UNKNOWN_ROUTE);
        if unknown_route && self.config.debug && !self.told_unknown_route {
            self.told_unknown_route = true;
            eprintln!("{UNKNOWN_ROUTE_HINT}");
        }
        // The record is stamped when the span opened; the operation ended a duration later.
        let recorded = self.operations.record(&op, at + op.duration);
        if recorded.folded {
            // The exporters' series are capped with the table's keys.
            op.route = op.route.map(|_| OTHER_KEY);
            op.labels.ranges = &[];
        }
        to_sinks(&mut self.sinks, &op);
        let alert = recorded.alert.map(|spike| self.alert(&spike));
        Observed { summarized, alert }
    }

    /// The event data of `spike`'s alert, the spike passed to the program's callback.
    fn alert(&self, spike: &ErrorSpike) -> Value {
        if let Some(notifier) = &self.notifier {
            notifier.notify(spike);
        }
        serde_json::to_value(spike).unwrap_or_default()
    }

    /// Passes a change into the queue state `to` (bounded; `_OTHER` when it names none) to
    /// the sinks.
    fn queue_state_change(&mut self, to: Option<&str>) {
        let to = self.labels.queue_state(to.unwrap_or(OTHER_QUEUE_STATE));
        for sink in &mut self.sinks {
            sink.queue_state_change(to);
        }
    }

    /// After a take: publishes the operations' numbers for the program, and passes the
    /// reporter's counters to the sinks.
    pub(crate) fn delivery(&mut self, stats: impl FnOnce() -> Stats) {
        self.publish();
        if self.sinks.is_empty() {
            return;
        }
        let stats = stats();
        self.guarded(|analyzer| analyzer.sinks.iter_mut().for_each(|sink| sink.delivery(&stats)));
    }

    /// Publishes the operations' numbers, if any changed, for the program to read.
    fn publish(&mut self) {
        if self.publisher.is_some() {
            self.guarded(|analyzer| {
                if let Some(publisher) = &mut analyzer.publisher {
                    publisher.publish(&mut analyzer.operations);
                }
            });
        }
    }

    /// The `performance.summary` event data for the window ending `now`, if anything happened
    /// in it: `{"window_s", "operations", "top", "process"}`, with `process.tokio` when the
    /// reporter was built in a tokio runtime. The program's numbers are published with it.
    pub(crate) fn summary(&mut self, now: Instant) -> Option<Value> {
        if !self.config.enabled {
            return None;
        }
        let data = self.guarded(|analyzer| analyzer.summarize(now));
        self.publish();
        data
    }

    fn summarize(&mut self, now: Instant) -> Option<Value> {
        let (operations, top) = self.operations.summary()?;
        let window = now.saturating_duration_since(self.window_started);
        self.window_started = now;
        if let Some(publisher) = &mut self.publisher {
            publisher.window_closed(SystemTime::now(), window);
        }
        let mut process = measurements();
        process.tokio = self.runtime.as_ref().map(runtime);
        let data = SummaryData { window_s: round(window.as_secs_f64(), 3), operations, top, process };
        serde_json::to_value(data).ok()
    }
}

/// What `debug` prints the first time an HTTP span yields no route.
const UNKNOWN_ROUTE_HINT: &str = "tinker-telemetry: an HTTP span carried no path, so its route is `_unknown`; \
with reqwest-tracing use `SpanBackendWithUrl` (its default span backend records no path), \
or record a `url.path` or `route` field on the span";

/// Passes `op` to every sink, and the queue state it entered if it is a queue state change.
fn to_sinks(sinks: &mut [Box<dyn Sink>], op: &Operation<'_>) {
    // `bound` has held the queue state to its bound already.
    let queue_to = (op.kind == OpKind::QueueStateChange).then(|| op.queue_to.unwrap_or(OTHER_QUEUE_STATE));
    for sink in sinks {
        sink.operation(op);
        if let Some(to) = queue_to {
            sink.queue_state_change(to);
        }
    }
}
