//! Spans: captured span names become events on close, `http.request` and
//! `queue.state_change` follow their conventions, and `session_id` is inherited through spans,
//! threads and instrumented futures.

mod support;

use serde_json::{Value, json};
use support::{Collector, PATIENCE};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

const SESSION: &str = "span-session";

/// Runs `emit` under a registry with one reporter for SESSION; returns the GENERIC_EVENTs
/// that arrived, by index.
fn captured(emit: impl FnOnce()) -> Vec<Value> {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    generic_events(&collector, guard)
}

/// Drains the reporter and shuts it down; returns the GENERIC_EVENTs that arrived, by index,
/// but for the `performance.summary` the analysis adds before SESSION_END (tests/analysis.rs).
fn generic_events(collector: &Collector, guard: tinker_telemetry::TelemetryGuard) -> Vec<Value> {
    assert!(guard.handle().wait_until_drained(PATIENCE));
    drop(guard);
    collector
        .accepted_by_index()
        .into_iter()
        .filter(|e| e["event"] == "GENERIC_EVENT" && e["event_name"] != "performance.summary")
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event_name"].as_str().unwrap()).collect()
}

#[test]
fn session_id_on_the_span_its_parent_or_grandparent() {
    let events = captured(|| {
        let root = tracing::info_span!("root", session_id = SESSION);
        root.in_scope(|| {
            tracing::info!("in root");
            let child = tracing::info_span!("child");
            child.in_scope(|| {
                tracing::info!("in child");
                tracing::info_span!("grandchild").in_scope(|| tracing::info!("in grandchild"));
                tracing::info_span!("other", session_id = "another").in_scope(|| tracing::info!("in other"));
            });
        });
        tracing::info!("outside");
    });
    assert_eq!(names(&events), ["in root", "in child", "in grandchild"]);
}

#[test]
fn the_nearest_session_id_wins() {
    let events = captured(|| {
        tracing::info_span!("ours", session_id = SESSION).in_scope(|| {
            tracing::info!(session_id = "another", "event says another");
            tracing::info_span!("theirs", session_id = "another").in_scope(|| {
                tracing::info!("span says another");
                tracing::info!(session_id = SESSION, "event says ours");
            });
        });
    });
    assert_eq!(names(&events), ["event says ours"]);
}

#[test]
fn an_explicit_parent_counts_whatever_span_is_entered() {
    let events = captured(|| {
        let ours = tracing::info_span!("ours", session_id = SESSION);
        let theirs = tracing::info_span!("theirs", session_id = "another");
        // No span entered at all on this thread.
        tracing::info!(parent: &ours, "parent ours, nothing entered");
        tracing::info!(parent: &theirs, "parent theirs, nothing entered");
        theirs.in_scope(|| tracing::info!(parent: &ours, "parent ours, theirs entered"));
        ours.in_scope(|| {
            tracing::info!(parent: &theirs, "parent theirs, ours entered");
            tracing::info!(parent: None, "root, ours entered");
        });
        // Entered and exited again: nothing enclosing any more.
        tracing::info!("after the spans");
    });
    assert_eq!(names(&events), ["parent ours, nothing entered", "parent ours, theirs entered"]);
}

#[test]
fn the_current_span_follows_the_registry_through_reentry_and_out_of_order_exits() {
    let events = captured(|| {
        let ours = tracing::info_span!("ours", session_id = SESSION);
        let theirs = tracing::info_span!("theirs", session_id = "another");
        let a = ours.enter();
        tracing::info!("ours");
        let b = theirs.enter();
        tracing::info!("theirs");
        // Entering a span already on the stack does not make it current again.
        let c = ours.enter();
        tracing::info!("ours again, theirs still current");
        drop(c);
        tracing::info!("theirs after re-entry");
        drop(b);
        tracing::info!("ours after theirs exited");
        drop(a);
        tracing::info!("nothing entered");
        // Exiting out of order: the outer span goes, the inner stays current.
        let a = ours.enter();
        let b = theirs.enter();
        drop(a);
        tracing::info!("theirs, ours exited");
        drop(b);
        tracing::info!("nothing entered again");
        let _a = ours.enter();
        tracing::info!("ours, entered afresh");
    });
    assert_eq!(names(&events), ["ours", "ours after theirs exited", "ours, entered afresh"]);
}

#[test]
fn a_session_recorded_while_the_span_is_entered_counts_from_then_on() {
    let events = captured(|| {
        let span = tracing::info_span!("late", session_id = tracing::field::Empty);
        let _in = span.enter();
        tracing::info!("before the session is known");
        tracing::info!("before, again (the answer cached)");
        span.record("session_id", SESSION);
        tracing::info!("after the session is known");
        span.record("session_id", "another");
        tracing::info!("after it changed to another");
    });
    assert_eq!(names(&events), ["after the session is known"]);
}

#[test]
fn a_layer_reloaded_while_a_span_is_entered_keeps_the_span_s_session() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let (reloadable, handle) = tracing_subscriber::reload::Layer::new(Some(layer.clone()));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(reloadable), || {
        let span = tracing::info_span!("ours", session_id = SESSION);
        let entered = span.enter();
        tracing::info!("before");
        handle.reload(None).unwrap();
        tracing::info!("while off");
        handle.reload(Some(layer.clone())).unwrap();
        tracing::info!("after, in the span entered before");
        drop(entered);
        tracing::info!("after the span was exited");
    });
    let events = generic_events(&collector, guard);
    assert_eq!(names(&events), ["before", "after, in the span entered before"]);
}

#[test]
fn under_a_per_layer_filter_the_nearest_span_the_layer_sees_decides() {
    use tracing_subscriber::filter::LevelFilter;
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("ours", session_id = SESSION).in_scope(|| {
            // The layer never sees this span: its events belong to the span around it.
            tracing::debug_span!("theirs", session_id = "another")
                .in_scope(|| tracing::info!("through a hidden span"));
            tracing::info_span!("theirs", session_id = "another")
                .in_scope(|| tracing::info!("in a seen span"));
        });
    });
    let events = generic_events(&collector, guard);
    assert_eq!(names(&events), ["through a hidden span"]);
}

#[test]
fn spans_entered_on_other_threads_and_instrumented_futures_keep_their_session() {
    let events = captured(|| {
        let span = tracing::info_span!("work", session_id = SESSION);
        let moved = span.clone();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                moved.in_scope(|| tracing::info!("on another thread"));
            })
        })
        .join()
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(
            async {
                tokio::task::yield_now().await;
                tracing::info!("in an instrumented future");
            }
            .instrument(span),
        );
    });
    assert_eq!(names(&events), ["on another thread", "in an instrumented future"]);
}

#[test]
fn http_request_spans_become_events_with_normalised_fields() {
    let events = captured(|| {
        tracing::info_span!("session", session_id = SESSION).in_scope(|| {
            let ok = tracing::info_span!(
                "http.request",
                method = "GET",
                path = "/v1/models?key=secret",
                status = tracing::field::Empty
            );
            ok.record("status", 200u64);
            drop(ok);
            tracing::info_span!(
                "http.request",
                method = "POST",
                url = "https://u:pw@api.example.com/v1/x?token=t",
                status = 404
            )
            .in_scope(|| {});
            tracing::info_span!(
                "http.request",
                "http.request.method" = "PUT",
                "url.full" = "https://api.example.com/v1/y?q=1",
                "http.response.status_code" = 503
            )
            .in_scope(|| {});
            tracing::info_span!(
                "http.request",
                method = "GET",
                path = "/z",
                status = 200,
                error = "connection reset"
            )
            .in_scope(|| {});
            tracing::info_span!("not.captured", method = "GET").in_scope(|| {});
        });
    });
    assert_eq!(names(&events), ["http.request"; 4]);
    let data: Vec<&Value> = events.iter().map(|e| &e["event_data"]).collect();
    assert_eq!(
        (data[0]["method"].clone(), data[0]["path"].clone(), data[0]["status"].clone()),
        (json!("GET"), json!("/v1/models"), json!(200))
    );
    assert_eq!(events[0]["severity"], "INFO");
    assert_eq!(data[1]["url"], "https://api.example.com/v1/x");
    assert_eq!(data[1]["path"], "/v1/x");
    assert_eq!(events[1]["severity"], "WARNING");
    assert_eq!(
        (data[2]["method"].clone(), data[2]["path"].clone(), data[2]["status"].clone()),
        (json!("PUT"), json!("/v1/y"), json!(503))
    );
    assert!(data[2].get("http.request.method").is_none());
    assert_eq!(events[2]["severity"], "ERROR");
    assert_eq!(events[3]["severity"], "ERROR", "an error field makes the request an error");
    for d in &data {
        assert!(d["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(!d.to_string().contains("secret") && !d.to_string().contains("pw@"), "{d}");
    }
}

#[test]
fn queue_state_changes_as_spans_and_as_events() {
    let events = captured(|| {
        tracing::info_span!("session", session_id = SESSION).in_scope(|| {
            tracing::info_span!("queue.state_change", from = "active", to = "paused_rate_limit", reason = "429", queue_depth = 12u64).in_scope(|| {});
            tracing::info!(name: "queue.state_change", from = "paused_rate_limit", to = "active", queue_depth = 3u64);
            tracing::info!(event_name = "queue.state_change", from = "active", to = "paused_capacity", reason = "full");
        });
    });
    assert_eq!(names(&events), ["queue.state_change"; 3]);
    let severities: Vec<&str> = events.iter().map(|e| e["severity"].as_str().unwrap()).collect();
    assert_eq!(severities, ["WARNING", "INFO", "WARNING"]);
    assert_eq!(events[0]["event_data"]["queue_depth"], 12);
    assert_eq!(events[0]["event_data"]["reason"], "429");
    assert_eq!(events[1]["event_data"]["to"], "active");
    assert_eq!(events[2]["event_data"]["reason"], "full");
}

#[test]
fn session_id_recorded_after_creation_counts() {
    let events = captured(|| {
        let span = tracing::info_span!(
            "http.request",
            session_id = tracing::field::Empty,
            method = "GET",
            status = 200
        );
        span.record("session_id", SESSION);
        span.in_scope(|| tracing::info!("inside"));
        drop(span);
        let theirs = tracing::info_span!("http.request", session_id = tracing::field::Empty, method = "GET");
        theirs.record("session_id", "another");
        drop(theirs);
    });
    assert_eq!(names(&events), ["inside", "http.request"]);
}

#[test]
fn custom_span_names_and_non_captured_spans() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).capture_spans(["checkpoint.save"]).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("session", session_id = SESSION).in_scope(|| {
            tracing::info_span!("checkpoint.save", step = 7u64).in_scope(|| {});
            tracing::info_span!("http.request", method = "GET").in_scope(|| {});
            tracing::debug_span!("checkpoint.save", step = 8u64).in_scope(|| {});
        });
    });
    let events = generic_events(&collector, guard);
    assert_eq!(
        names(&events),
        ["checkpoint.save", "checkpoint.save"],
        "captured names go whatever their level"
    );
    assert_eq!(events[0]["event_data"]["step"], 7);
    assert_eq!(events[1]["event_data"]["step"], 8);
    assert_eq!(events[1]["severity"], "DEBUG");
}

#[test]
fn composes_under_filters_options_boxes_and_beside_other_layers() {
    use tracing_subscriber::filter::filter_fn;
    let collector = Collector::start();
    let (a, guard_a) = collector.builder("filtered").min_level(tracing::Level::DEBUG).build().unwrap();
    let (b, guard_b) = collector.builder("boxed").build().unwrap();
    let (c, guard_c) = collector.builder("optional").build().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(a.with_filter(filter_fn(|m| m.is_span() || *m.level() <= tracing::Level::WARN)))
        .with(Box::new(b) as Box<dyn tracing_subscriber::Layer<_> + Send + Sync>)
        .with(Some(c))
        .with(None::<tinker_telemetry::TinkerTelemetryLayer>)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(tracing_subscriber::EnvFilter::new("trace"));
    tracing::subscriber::with_default(subscriber, || {
        for session in ["filtered", "boxed", "optional"] {
            tracing::info_span!("s", session_id = session).in_scope(|| {
                tracing::info!("info");
                tracing::warn!("warn");
                tracing::info_span!("http.request", method = "GET", status = 200).in_scope(|| {});
            });
        }
    });
    drop((guard_a, guard_b, guard_c));
    let names_of = |session: &str| -> Vec<String> {
        let events = collector.session_events(session);
        events.iter().filter_map(|e| e["event_name"].as_str().map(str::to_owned)).collect()
    };
    // Each reporter ends with the summary of its own session's spans.
    assert_eq!(
        names_of("filtered"),
        ["warn", "http.request", "performance.summary"],
        "the per-layer filter drops INFO events"
    );
    assert_eq!(names_of("boxed"), ["info", "warn", "http.request", "performance.summary"]);
    assert_eq!(names_of("optional"), ["info", "warn", "http.request", "performance.summary"]);
}

#[test]
fn spans_shaped_like_other_http_crates_map_without_configuration() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("session", session_id = SESSION).in_scope(|| {
            // reqwest-tracing's span and fields
            tracing::info_span!(
                "HTTP request",
                "http.request.method" = "GET",
                "url.full" = "https://api.example.com/v1/a?sig=s3cr3t",
                "http.response.status_code" = 200u64,
                "otel.kind" = "client"
            )
            .in_scope(|| {});
            // tower-http's default span: DEBUG level, `method` and `uri`
            tracing::debug_span!("request", method = %"POST", uri = %"/v1/b?token=s3cr3t", version = ?"HTTP/1.1").in_scope(|| {});
        });
    });
    let events = generic_events(&collector, guard);
    assert_eq!(names(&events), ["http.request", "http.request"]);
    assert_eq!(events[0]["event_data"]["path"], "/v1/a");
    assert_eq!(events[0]["event_data"]["status"], 200);
    assert_eq!(events[0]["event_data"]["host"], "api.example.com");
    assert!(
        events[0]["event_data"].get("otel.kind").is_none() && events[0]["event_data"].get("url").is_none()
    );
    assert_eq!(events[1]["event_data"]["method"], "POST");
    assert_eq!(events[1]["event_data"]["path"], "/v1/b");
    assert!(!events.iter().any(|e| e.to_string().contains("s3cr3t")));
}

#[test]
fn a_debug_impl_that_logs_while_a_span_is_recorded_does_not_deadlock() {
    struct Chatty;
    impl std::fmt::Debug for Chatty {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::info!("logged from inside Debug");
            f.write_str("chatty")
        }
    }
    let events = captured(|| {
        let span = tracing::info_span!(
            "http.request",
            session_id = SESSION,
            method = "GET",
            body = tracing::field::Empty
        );
        let _in = span.enter();
        span.record("body", tracing::field::debug(&Chatty));
        tracing::info!(value = ?Chatty, "event with a chatty field");
    });
    let names = names(&events);
    // Whether the nested events are dispatched at all is tracing's call (it does not
    // re-enter a scoped dispatcher); what matters is that nothing hangs and nothing is lost.
    assert!(names.contains(&"event with a chatty field") && names.contains(&"http.request"), "{names:?}");
    let chatty = events.iter().find(|e| e["event_name"] == "event with a chatty field").unwrap();
    assert_eq!(chatty["event_data"]["value"], "chatty");
    let request = events.iter().find(|e| e["event_name"] == "http.request").unwrap();
    assert_eq!(request["event_data"]["body"], "chatty");
}

#[test]
fn capture_span_adds_a_name_and_keeps_the_defaults() {
    let collector = Collector::start();
    let (layer, guard) = collector.builder(SESSION).capture_span("checkpoint.save").build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("session", session_id = SESSION).in_scope(|| {
            tracing::info_span!("checkpoint.save", step = 7).in_scope(|| {});
            tracing::info_span!("http.request", method = "GET", status = 200).in_scope(|| {});
            tracing::info_span!("not.listed").in_scope(|| {});
        });
    });
    let events = generic_events(&collector, guard);
    assert_eq!(names(&events), ["checkpoint.save", "http.request"]);
}

#[test]
fn a_session_id_a_parent_records_later_reaches_the_spans_made_before() {
    let events = captured(|| {
        let parent = tracing::info_span!("parent", session_id = tracing::field::Empty);
        let _in = parent.enter();
        let child = tracing::info_span!("child");
        let request = tracing::info_span!("http.request", method = "GET", status = 200u64);
        parent.record("session_id", SESSION);
        tracing::info!("in the parent");
        child.in_scope(|| tracing::info!("in the child made before"));
        drop(request);
    });
    assert_eq!(names(&events), ["in the parent", "in the child made before", "http.request"]);
}

#[test]
fn a_span_inside_another_sessions_span_that_records_ours_is_sent() {
    let events = captured(|| {
        tracing::info_span!("theirs", session_id = "another-session").in_scope(|| {
            let request = tracing::info_span!(
                "http.request",
                session_id = tracing::field::Empty,
                method = "GET",
                status = 200u64
            );
            request.record("session_id", SESSION);
            request.in_scope(|| tracing::info!("inside, after the record"));
        });
    });
    assert_eq!(names(&events), ["inside, after the record", "http.request"]);
}

#[test]
fn a_field_recorded_over_and_over_keeps_the_text_budget_for_current_values() {
    let events = captured(|| {
        let span = tracing::info_span!(
            "http.request",
            session_id = SESSION,
            method = "GET",
            progress = tracing::field::Empty,
            error = tracing::field::Empty
        );
        for i in 0..40 {
            span.record("progress", format!("{i:0>1000}").as_str());
        }
        span.record("error", "connection reset");
    });
    let data = &events[0]["event_data"];
    assert_eq!(data["error"], "connection reset", "{data}");
    assert_eq!(data["progress"], format!("{:0>1000}", 39));
}

/// A value whose `Debug` takes a while, so that another thread records meanwhile.
struct Slow;

impl std::fmt::Debug for Slow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::thread::sleep(std::time::Duration::from_millis(200));
        f.write_str("slow")
    }
}

/// A value whose `Debug` records into the span it is recorded into.
struct RecordsItsSpan(tracing::Span);

impl std::fmt::Debug for RecordsItsSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.record("note", "from inside Debug");
        f.write_str("recorded")
    }
}

#[test]
fn two_threads_recording_one_span_at_once_keep_both_values() {
    let events = captured(|| {
        let span = tracing::info_span!(
            "http.request",
            session_id = SESSION,
            method = "GET",
            body = tracing::field::Empty,
            status = tracing::field::Empty,
            note = tracing::field::Empty
        );
        let other = span.clone();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let thread = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                other.record("status", 503u64);
            })
        });
        span.record("body", tracing::field::debug(&Slow));
        thread.join().unwrap();
        // Recording into the span from a value's Debug, on the thread recording it, neither
        // waits for itself nor loses the value being recorded.
        span.record("body", tracing::field::debug(&RecordsItsSpan(span.clone())));
    });
    let data = &events[0]["event_data"];
    assert_eq!((&data["body"], &data["status"]), (&json!("recorded"), &json!(503)), "{data}");
    assert_eq!(events[0]["severity"], "ERROR");
}

#[test]
fn a_middle_span_recording_ours_later_wins_over_another_sessions_grandparent() {
    let events = captured(|| {
        let theirs = tracing::info_span!("theirs", session_id = "another-session");
        let _theirs = theirs.enter();
        let middle = tracing::info_span!("middle", session_id = tracing::field::Empty);
        let _middle = middle.enter();
        let child = tracing::info_span!("child");
        tracing::info!("before the record");
        middle.record("session_id", SESSION);
        child.in_scope(|| tracing::info!("in the child, after the record"));
    });
    assert_eq!(names(&events), ["in the child, after the record"]);
}

/// Spans after the OpenTelemetry conventions give the query and the fragment fields of
/// their own: neither is sent, whatever they carry.
#[test]
fn a_query_or_fragment_field_is_never_sent() {
    let events = captured(|| {
        tracing::info_span!("session", session_id = SESSION).in_scope(|| {
            tracing::info_span!(
                "HTTP request",
                "http.request.method" = "GET",
                "url.path" = "/v1/a",
                "url.query" = "token=SECRET",
                "url.fragment" = "access_token=SECRET",
                "http.response.status_code" = 200u64,
                "otel.kind" = "client"
            )
            .in_scope(|| {});
        });
    });
    assert_eq!(names(&events), ["http.request"]);
    assert_eq!(events[0]["event_data"]["path"], "/v1/a");
    assert!(!serde_json::to_string(&events).unwrap().contains("SECRET"), "{events:?}");
}
