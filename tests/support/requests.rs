//! What a test server keeps of the requests it received: each one in arrival order, checked
//! against the official request schema, and a way to wait for them.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use serde_json::Value;

use super::PATIENCE;

/// One received request, whichever server saw it.
pub trait Received: Clone {
    /// The body, parsed (`null` when it was not JSON).
    fn body(&self) -> &Value;

    /// Whether the client got a 2xx answer.
    fn accepted(&self) -> bool;
}

/// A request body's `events`.
pub fn events_of(body: &Value) -> &[Value] {
    body["events"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The requests a server received, checked against the schema as they arrive.
pub struct Requests<S> {
    seen: Mutex<Vec<S>>,
    arrived: Condvar,
    invalid: Mutex<Vec<String>>,
    schema: jsonschema::Validator,
}

impl<S: Received> Requests<S> {
    pub fn new() -> Self {
        Requests {
            seen: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            invalid: Mutex::new(Vec::new()),
            schema: super::schema(),
        }
    }

    /// Notes every way `body` breaks the schema; [`all`](Requests::all) then panics.
    pub fn check(&self, body: &Value) {
        let errors: Vec<String> = self.schema.iter_errors(body).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            self.invalid.lock().unwrap().push(format!("{errors:?} in {body}"));
        }
    }

    /// Records one request and wakes whoever waits for it.
    pub fn push(&self, seen: S) {
        self.seen.lock().unwrap().push(seen);
        self.arrived.notify_all();
    }

    /// Every request so far. Panics if any body broke the schema.
    pub fn all(&self) -> Vec<S> {
        let invalid = self.invalid.lock().unwrap();
        assert!(invalid.is_empty(), "bodies that break the schema: {invalid:#?}");
        self.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived; returns them.
    pub fn wait(&self, n: usize) -> Vec<S> {
        let until = Instant::now() + PATIENCE;
        let mut seen = self.seen.lock().unwrap();
        while seen.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let got = seen.len();
                drop(seen);
                panic!("waited {PATIENCE:?} for {n} requests, got {got}");
            }
            seen = self.arrived.wait_timeout(seen, left).unwrap().0;
        }
        drop(seen);
        self.all()
    }

    /// Events of the requests the client got a 2xx for, in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.all().iter().filter(|s| s.accepted()).flat_map(|s| events_of(s.body()).to_vec()).collect()
    }
}
