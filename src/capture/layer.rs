//! The `tracing_subscriber::Layer` that turns the session's events into telemetry records.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use smallvec::SmallVec;
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::capture::callsite::{self, Fields};
use crate::capture::entered::{self, Enclosing};
use crate::capture::event::{EventVisitor, Scratch, WideVisitor};
use crate::capture::http;
use crate::capture::roles::{SESSION_ID, SessionProbe};
use crate::capture::span::{SharedCapture, SpanCapture};
use crate::capture::visit::FieldVisitor;
use crate::errors::classify::Classifier;
use crate::handoff::Handoff;
use crate::handoff::clock::Stamp;
use crate::handoff::record::{Body, ExceptionRecord, FieldSource, Record, Text};
use crate::severity::Severity;

/// The layer's share of the configuration.
#[derive(Debug)]
pub(crate) struct LayerConfig {
    pub(crate) session_id: Box<str>,
    pub(crate) sessionless: bool,
    pub(crate) min_level: Level,
    /// Span names that become events when they close.
    pub(crate) capture_spans: Box<[Box<str>]>,
    /// How error fields are classified.
    pub(crate) classifier: Arc<Classifier>,
}

/// A [`tracing_subscriber::Layer`] that sends the events of one Tinker session to the
/// Tinker telemetry endpoint.
///
/// An event is captured when its level is at least
/// [`Builder::min_level`](crate::Builder::min_level) and its own `session_id` field, or else
/// the nearest enclosing span's, equals the layer's session (a session-less layer captures
/// every event). The event becomes a `GENERIC_EVENT`; see the crate docs for how fields map
/// to the wire. Serialization and I/O happen on the uploader thread, never on the thread that
/// emits. The layer never filters what other layers see.
///
/// Create it with [`TinkerTelemetryLayer::builder`](crate::TinkerTelemetryLayer::builder).
///
/// # Examples
/// ```
/// use tracing_subscriber::prelude::*;
/// use tinker_telemetry::TinkerTelemetryLayer;
///
/// let (layer, _guard) = TinkerTelemetryLayer::builder()
///     .session_id("6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11")
///     .enabled(false) // this example sends nothing
///     .build()?;
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(session_id = "6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11", event_name = "user.action");
/// });
/// # Ok::<(), tinker_telemetry::BuildError>(())
/// ```
// Capturing costs the emitting thread one walk of the event's fields into the thread's scratch
// (entries on the stack, text in a reused buffer) and a copy of both into its lane, which
// allocates only while the lane grows to its working size; the uploader makes the record.
// BENCHMARKS.md and tests/alloc.rs have the figures.
#[derive(Clone)]
pub struct TinkerTelemetryLayer {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    id: u64,
    config: LayerConfig,
    handoff: Arc<Handoff>,
}

impl fmt::Debug for TinkerTelemetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TinkerTelemetryLayer");
        match &self.inner {
            Some(inner) => d
                .field("session_id", &inner.config.session_id)
                .field("sessionless", &inner.config.sessionless)
                .field("min_level", &inner.config.min_level),
            None => d.field("enabled", &false),
        };
        d.finish_non_exhaustive()
    }
}

/// A span extension with one value per reporter layer: several reporters in one registry
/// share the one extension of each type. `PerLayer<bool>` is whether the span's own
/// `session_id` is that layer's session's, set when it is recorded; `PerLayer<Arc<SharedCapture>>`
/// is a captured span's fields so far.
#[derive(Debug)]
struct PerLayer<T>(SmallVec<[(u64, T); 1]>);

impl<T: Send + Sync + 'static> PerLayer<T> {
    /// Sets `layer`'s value on `span`, replacing the one it had.
    fn set<S>(span: &SpanRef<'_, S>, layer: u64, value: T)
    where
        S: for<'a> LookupSpan<'a>,
    {
        let mut ext = span.extensions_mut();
        match ext.get_mut::<PerLayer<T>>() {
            Some(values) => match values.0.iter_mut().find(|(l, _)| *l == layer) {
                Some(slot) => slot.1 = value,
                None => values.0.push((layer, value)),
            },
            None => ext.insert(PerLayer::<T>(smallvec::smallvec![(layer, value)])),
        }
    }

    /// Removes `layer`'s value from `span`.
    fn take<S>(span: &SpanRef<'_, S>, layer: u64) -> Option<T>
    where
        S: for<'a> LookupSpan<'a>,
    {
        let mut ext = span.extensions_mut();
        let values = ext.get_mut::<PerLayer<T>>()?;
        let at = values.0.iter().position(|(l, _)| *l == layer)?;
        Some(values.0.swap_remove(at).1)
    }
}

impl<T: Clone + Send + Sync + 'static> PerLayer<T> {
    /// `layer`'s value stored on `span`.
    fn get<S>(span: &SpanRef<'_, S>, layer: u64) -> Option<T>
    where
        S: for<'a> LookupSpan<'a>,
    {
        let ext = span.extensions();
        ext.get::<PerLayer<T>>()?.0.iter().find(|(l, _)| *l == layer).map(|(_, v)| v.clone())
    }
}

/// Tells reporter layers apart in [`PerLayer`] extensions and in the threads' mirrors of
/// their entered spans (clones share theirs, so that a clone swapped in by a reload handle
/// knows the spans already entered).
static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The event being captured, its room reused across events on this thread.
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

impl TinkerTelemetryLayer {
    pub(crate) fn enabled(config: LayerConfig, handoff: Arc<Handoff>) -> Self {
        let id = NEXT_LAYER_ID.fetch_add(1, Relaxed);
        TinkerTelemetryLayer { inner: Some(Arc::new(Inner { id, config, handoff })) }
    }

    pub(crate) fn disabled() -> Self {
        TinkerTelemetryLayer { inner: None }
    }

    /// The id under which this layer mirrors the spans each thread enters, when it needs to:
    /// an enabled layer with a session.
    fn mirrored(&self) -> Option<u64> {
        self.inner.as_ref().filter(|inner| !inner.config.sessionless).map(|inner| inner.id)
    }

    /// Whether this layer sends anything (false when telemetry is disabled).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The layer, or `None` when telemetry is disabled: register this to make a disabled
    /// layer free. A disabled layer does nothing with what it is given, but only `None` (as
    /// an `Option` layer) tells the subscriber it wants nothing at all, so that with no other
    /// layer interested tracing's macros skip their callsites at one comparison each; other
    /// layers keep what they want.
    ///
    /// # Examples
    /// ```
    /// use tracing_subscriber::prelude::*;
    ///
    /// let (layer, _guard) = tinker_telemetry::TinkerTelemetryLayer::builder().enabled(false).build()?;
    /// let subscriber = tracing_subscriber::registry().with(layer.into_option());
    /// assert_eq!(
    ///     tracing::Subscriber::max_level_hint(&subscriber),
    ///     Some(tracing::level_filters::LevelFilter::OFF)
    /// );
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    #[must_use]
    pub fn into_option(self) -> Option<Self> {
        self.is_enabled().then_some(self)
    }
}

impl Inner {
    /// Whether the event's nearest enclosing span belongs to this layer's session. For a
    /// contextual event the thread's mirror of entered spans answers, or names the span to
    /// look up once; otherwise the registry does.
    #[inline(always)]
    fn span_in_session<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if event.is_contextual() {
            match entered::current(self.id) {
                Enclosing::None => return false,
                Enclosing::Known(matched) => return matched,
                Enclosing::Unknown(span) => return self.look_up_current(span, ctx),
                Enclosing::Unreliable => {}
            }
        }
        ctx.event_span(event).and_then(|span| self.span_session(&span)).unwrap_or(false)
    }

    /// Looks up whether `span`, the thread's current one, belongs to this layer's session,
    /// and caches the answer in the thread's mirror.
    fn look_up_current<S>(&self, span: u64, ctx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let epoch = entered::epoch();
        let matched =
            ctx.span(&Id::from_u64(span)).and_then(|span| self.span_session(&span)).unwrap_or(false);
        entered::remember(self.id, span, matched, epoch);
        matched
    }

    /// Captures `event` in one walk of its fields and queues it. With `check`, the event has
    /// a `session_id` field (`fields` says which): the walk compares it and gives up on another
    /// session's event; `in_span` decides when the field is declared but was not recorded.
    ///
    /// The fields go into the lane as they came; the uploader names the event and gives it
    /// its severity. Only an event with neither a message nor an `event_name`, and a name
    /// that says nothing, is named here, after its span (the instrumented function), as the
    /// span is at hand only here; the error event `#[instrument(err)]` emits (one `error`
    /// field, nothing else) becomes an exception naming that span.
    ///
    /// A `WIDE` callsite's fields are told by name ([`WideVisitor`]).
    #[inline(always)]
    fn capture<const WIDE: bool>(
        &self,
        event: &Event<'_>,
        scratch: &mut Scratch,
        fields: Fields,
        check: bool,
        in_span: impl FnOnce() -> bool,
        span_name: impl FnOnce() -> Option<&'static str>,
    ) {
        let want = if check { Some(&*self.config.session_id) } else { None };
        let roles = if WIDE { fields.plain() } else { fields };
        let mut visitor = EventVisitor::new(scratch, roles, want, &self.config.classifier);
        if WIDE {
            event.record(&mut WideVisitor::new(&mut visitor));
        } else {
            event.record(&mut visitor);
        }
        let EventVisitor { session, named, error, .. } = visitor;
        if check && !session.unwrap_or_else(in_span) {
            return;
        }
        self.queue_captured::<WIDE>(event.metadata(), scratch, fields, named, error, span_name);
    }

    /// Queues the event captured in `scratch`, or the error record it became; a `WIDE`
    /// callsite's with the fields no entry could hold counted as dropped.
    #[inline(always)]
    fn queue_captured<const WIDE: bool>(
        &self,
        meta: &'static tracing::Metadata<'static>,
        scratch: &mut Scratch,
        fields: Fields,
        named: bool,
        error: Option<Box<Record>>,
        span_name: impl FnOnce() -> Option<&'static str>,
    ) {
        if let Some(error) = error {
            return self.push_error(*error, scratch, meta);
        }
        let mut name = None;
        if !named && fields.default_name() {
            match span_name() {
                Some(span) if is_instrument_error(meta) => {
                    return self.push_instrument_error(scratch, meta, span);
                }
                Some(span) => name = Some(scratch.push_name(span)),
                None => name = Some(Text::Static(meta.name())),
            }
        }
        let unheld = if WIDE { scratch.unheld() } else { 0 };
        let (event, lane) = scratch.captured_for_lane(meta, name, unheld);
        self.handoff.push_captured(lane, &event);
    }

    /// Queues the exception an `#[instrument(err)]` error event in `span` becomes.
    #[cold]
    fn push_instrument_error(
        &self,
        scratch: &Scratch,
        meta: &'static tracing::Metadata<'static>,
        span: &str,
    ) {
        let (fields, explicit) = scratch.captured(meta, None).read();
        let message = fields.get_str(INSTRUMENT_ERROR).unwrap_or_default().to_owned();
        let severity = explicit.unwrap_or_else(|| Severity::from(meta.level()));
        self.handoff.push(instrument_error(span, message, severity));
    }

    /// Queues the event an error field became. A user error is always a WARNING; an
    /// exception takes the event's severity.
    #[cold]
    fn push_error(&self, mut record: Record, scratch: &Scratch, meta: &'static tracing::Metadata<'static>) {
        if matches!(record.body, Body::Exception(_)) {
            let (_, explicit) = scratch.captured(meta, None).read();
            record.severity = explicit.unwrap_or_else(|| Severity::from(meta.level()));
        }
        self.handoff.push(record);
    }

    /// Records an event's fields into its span's capture, if the span is captured: how
    /// tower-http's status and failure reach its request span.
    fn absorb_into_span<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.event_span(event) else { return };
        let Some(capture) = PerLayer::<Arc<SharedCapture>>::get(&span, self.id) else { return };
        capture.record(|draft, text| event.record(&mut FieldVisitor::new(draft, text, true)));
    }

    fn captures_span(&self, name: &str) -> bool {
        self.config.capture_spans.iter().any(|n| &**n == name)
    }

    /// Whether `span` is this layer's session's: the answer of its own `session_id`, or of
    /// its nearest ancestor's that has one.
    fn span_session<S>(&self, span: &SpanRef<'_, S>) -> Option<bool>
    where
        S: for<'a> LookupSpan<'a>,
    {
        // A span that knew no session when it was made asks its ancestors again: one of them
        // may have recorded its `session_id` since.
        PerLayer::<bool>::get(span, self.id)
            .or_else(|| span.scope().skip(1).find_map(|span| PerLayer::<bool>::get(&span, self.id)))
    }
}

/// The one field of the event `#[instrument(err)]` emits.
const INSTRUMENT_ERROR: &str = "error";

/// Whether the event is shaped like the one `#[instrument(err)]` emits on an `Err`:
/// `error!(error = %e)` (or `?e`), its only field.
fn is_instrument_error(meta: &tracing::Metadata<'_>) -> bool {
    let mut fields = meta.fields().iter();
    *meta.level() == Level::ERROR
        && fields.next().is_some_and(|f| f.name() == INSTRUMENT_ERROR)
        && fields.next().is_none()
}

/// The exception for an `#[instrument(err)]` error event in the span `function`: the error's
/// type is unknown (only its text was recorded), the function is named in the traceback.
fn instrument_error(function: &str, message: String, severity: Severity) -> Record {
    let record = ExceptionRecord {
        error_type: "Error".to_owned(),
        error_message: message,
        traceback: Some(format!("in {function}")),
    };
    Record { time: Stamp::now(), severity, body: Body::Exception(Box::new(record)) }
}

impl<S> tracing_subscriber::Layer<S> for TinkerTelemetryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(inner) = &self.inner else { return };
        let Some(span) = ctx.span(id) else { return };
        let meta = attrs.metadata();
        let mut session = None;
        // The span declares a `session_id` it has not recorded yet: it may still be ours.
        let mut own_later = false;
        if !inner.config.sessionless {
            if meta.fields().field(SESSION_ID).is_some() {
                let mut probe = SessionProbe::new(&inner.config.session_id);
                attrs.record(&mut probe);
                session = probe.found;
                own_later = session.is_none();
                if let Some(matched) = session {
                    PerLayer::set(&span, inner.id, matched);
                }
            }
            // What the span inherits is asked of its ancestors whenever it is looked up, not
            // kept: an ancestor may record its `session_id` later.
            if session.is_none() {
                session = span.parent().and_then(|parent| inner.span_session(&parent));
            }
        }
        // A span known to belong to another session is not captured; one whose session is
        // not known yet is, in case `session_id` is recorded later, and so is one that
        // inherits another session's but may record its own.
        let instrumentation = http::is_instrumentation(meta);
        if (session != Some(false) || own_later) && (instrumentation || inner.captures_span(meta.name())) {
            let mut capture = Box::new(SpanCapture::new(*meta.level(), instrumentation));
            let SpanCapture { draft, text, .. } = &mut *capture;
            attrs.record(&mut FieldVisitor::new(draft, text, true));
            PerLayer::set(&span, inner.id, SharedCapture::new(capture));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        let Some(inner) = &self.inner else { return };
        let Some(span) = ctx.span(id) else { return };
        if !inner.config.sessionless && span.metadata().fields().field(SESSION_ID).is_some() {
            let mut probe = SessionProbe::new(&inner.config.session_id);
            values.record(&mut probe);
            if let Some(matched) = probe.found {
                PerLayer::set(&span, inner.id, matched);
                entered::session_changed();
            }
        }
        // Recorded outside the span's extensions: a value's Debug impl may log, and the event
        // it logs looks up this span's extensions.
        let Some(capture) = PerLayer::<Arc<SharedCapture>>::get(&span, inner.id) else { return };
        capture.record(|draft, text| values.record(&mut FieldVisitor::new(draft, text, true)));
    }

    fn on_enter(&self, id: &Id, _: Context<'_, S>) {
        if let Some(layer) = self.mirrored() {
            entered::enter(layer, id.into_u64());
        }
    }

    fn on_exit(&self, id: &Id, _: Context<'_, S>) {
        if let Some(layer) = self.mirrored() {
            entered::exit(layer, id.into_u64());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(inner) = &self.inner else { return };
        let Some(span) = ctx.span(&id) else { return };
        let Some(shared) = PerLayer::<Arc<SharedCapture>>::take(&span, inner.id) else { return };
        let Some(capture) = shared.take() else { return };
        // A captured span is sent whatever its level: naming it is the request.
        if inner.config.sessionless || inner.span_session(&span) == Some(true) {
            inner.handoff.push(capture.finish(span.name()));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(inner) = &self.inner else { return };
        let meta = event.metadata();
        if *meta.level() > inner.config.min_level {
            return inner.below_level(event, &ctx);
        }
        // The event's own `session_id` wins, checked during the one walk of its fields;
        // without one, the nearest span decides before any field is visited.
        let fields = callsite::fields(meta);
        if fields.session().is_some() && !inner.config.sessionless {
            inner.capture_in_scratch::<S, true>(event, &ctx, fields);
        } else {
            inner.without_session_field(event, &ctx, fields);
        }
    }
}

impl Inner {
    /// An event below the layer's level: tower-http reports a response at DEBUG; it belongs
    /// to its request span.
    #[inline(never)]
    fn below_level<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if http::is_tower_http_report(event.metadata()) {
            self.absorb_into_span(event, ctx);
        }
    }

    /// An event whose callsite declares no `session_id`, or any event of a session-less
    /// layer: the nearest span decides, unless the layer is session-less.
    #[inline(never)]
    fn without_session_field<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, fields: Fields)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.config.sessionless || self.span_in_session(event, ctx) {
            self.capture_in_scratch::<S, false>(event, ctx, fields);
        }
    }
}

impl Inner {
    /// [`capture`](Self::capture) with a scratch of its own: re-entered from a Debug impl
    /// that logs, or logged from a thread-local's destructor once SCRATCH is gone.
    #[cold]
    #[inline(never)]
    fn capture_apart<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, fields: Fields, check: bool)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let in_span = || self.span_in_session(event, ctx);
        let span_name = || ctx.event_span(event).map(|span| span.name());
        self.capture::<false>(event, &mut Scratch::default(), fields, check, in_span, span_name);
    }

    /// An event whose callsite's events go apart: tower-http's report of a response goes to
    /// its request span; a wide callsite's event is captured with its fields told by name.
    #[cold]
    #[inline(never)]
    fn capture_special<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, fields: Fields, check: bool)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if fields.tower_http() {
            return self.absorb_into_span(event, ctx);
        }
        let in_span = || self.span_in_session(event, ctx);
        let span_name = || ctx.event_span(event).map(|span| span.name());
        let wide =
            |scratch: &mut Scratch| self.capture::<true>(event, scratch, fields, check, in_span, span_name);
        let captured = SCRATCH.try_with(|scratch| scratch.try_borrow_mut().map(|mut s| wide(&mut s)).is_ok());
        if captured != Ok(true) {
            wide(&mut Scratch::default());
        }
    }

    /// [`capture`](Self::capture) with the thread's scratch buffer, `CHECK` saying whether the
    /// event's `session_id` field decides. Kept out of `on_event` so that ignoring an event
    /// pays none of its set-up; one copy for each answer, so that neither tests it.
    #[inline(never)]
    fn capture_in_scratch<S, const CHECK: bool>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        fields: Fields,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if fields.apart() {
            return self.capture_special(event, ctx, fields, CHECK);
        }
        let in_span = || self.span_in_session(event, ctx);
        let span_name = || ctx.event_span(event).map(|span| span.name());
        let captured = SCRATCH.try_with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else { return false };
            self.capture::<false>(event, &mut scratch, fields, CHECK, in_span, span_name);
            true
        });
        if captured != Ok(true) {
            self.capture_apart(event, ctx, fields, CHECK);
        }
    }
}
