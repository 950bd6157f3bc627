//! Bounds on the labels an operation carries: error types, servers (host and port), queue
//! states and the program's own operation labels come from the program and the network, so
//! each is held to a fixed number of distinct values per reporter; past it a new value is
//! [`OTHER_VALUE`] (a port: none). With the key cap on routes, this bounds the summaries'
//! alert types and the exporters' series whatever the program records.

use std::collections::HashSet;

use super::sink::Operation;

/// What a label's value becomes when it is past its bound, or not a value the label can
/// hold: `_OTHER`, as the OpenTelemetry conventions name a value outside the known set.
pub(crate) const OTHER_VALUE: &str = "_OTHER";
/// The error type of a failure that names none (or names it in a way that is not a short
/// name), and the error type past [`MAX_ERROR_TYPES`].
pub(crate) const OTHER_ERROR_TYPE: &str = OTHER_VALUE;
/// The method of a request whose method is not one of the standard nine.
pub(crate) const OTHER_METHOD: &str = OTHER_VALUE;
/// A host past [`MAX_HOSTS`], or one that is no host name or address.
pub(crate) const OTHER_HOST: &str = OTHER_VALUE;
/// A queue state past [`MAX_QUEUE_STATES`], or a change that names no state.
pub(crate) const OTHER_QUEUE_STATE: &str = OTHER_VALUE;
/// An operation label's value past [`MAX_LABEL_VALUES`], or one longer than
/// [`MAX_LABEL_VALUE_BYTES`].
pub(crate) const OTHER_LABEL_VALUE: &str = OTHER_VALUE;

/// Distinct error types kept (statuses, `timeout`, the program's `error.type` names).
pub(crate) const MAX_ERROR_TYPES: usize = 64;
/// Distinct hosts kept.
pub(crate) const MAX_HOSTS: usize = 32;
/// Distinct ports kept.
pub(crate) const MAX_PORTS: usize = 16;
/// Distinct queue states kept.
pub(crate) const MAX_QUEUE_STATES: usize = 32;
/// Distinct values kept of each operation label.
pub(crate) const MAX_LABEL_VALUES: usize = 32;
/// The longest operation label value kept.
pub(crate) const MAX_LABEL_VALUE_BYTES: usize = 64;
/// The longest host kept; a longer one, or one with a character no host name or address
/// has, is [`OTHER_HOST`].
const MAX_HOST_BYTES: usize = 255;

/// At most `cap` distinct values, the first ones seen.
#[derive(Debug)]
struct Vocabulary<T> {
    known: HashSet<T>,
    cap: usize,
}

impl<T: std::hash::Hash + Eq> Vocabulary<T> {
    fn new(cap: usize) -> Self {
        Vocabulary { known: HashSet::new(), cap }
    }

    /// Whether `value` is, or now becomes, one of the values kept.
    fn admits<Q>(&mut self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        if self.known.contains(value) {
            return true;
        }
        if self.known.len() >= self.cap {
            return false;
        }
        self.known.insert(value.to_owned());
        true
    }
}

/// The label bounds of one reporter.
#[derive(Debug)]
pub(crate) struct Labels {
    error_types: Vocabulary<String>,
    hosts: Vocabulary<String>,
    ports: Vocabulary<u16>,
    queue_states: Vocabulary<String>,
    /// One per operation label, made as the labels are first seen.
    operation_labels: Vec<Vocabulary<String>>,
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            error_types: Vocabulary::new(MAX_ERROR_TYPES),
            hosts: Vocabulary::new(MAX_HOSTS),
            ports: Vocabulary::new(MAX_PORTS),
            queue_states: Vocabulary::new(MAX_QUEUE_STATES),
            operation_labels: Vec::new(),
        }
    }
}

impl Labels {
    /// Holds `op`'s error type, server and queue state to their bounds.
    pub(crate) fn bound(&mut self, op: &mut Operation<'_>) {
        if op.error_type.is_some_and(|t| !self.error_types.admits(t)) {
            op.error_type = Some(OTHER_ERROR_TYPE);
        }
        if let Some(host) = op.server_address {
            if !is_host(host) || !self.hosts.admits(host) {
                op.server_address = Some(OTHER_HOST);
            }
        }
        if op.server_port.is_some_and(|p| !self.ports.admits(&p)) {
            op.server_port = None;
        }
        if let Some(to) = op.queue_to {
            op.queue_to = Some(self.queue_state(to));
        }
    }

    /// `to`, or [`OTHER_QUEUE_STATE`] once [`MAX_QUEUE_STATES`] other states were seen.
    pub(crate) fn queue_state<'a>(&mut self, to: &'a str) -> &'a str {
        if self.queue_states.admits(to) { to } else { OTHER_QUEUE_STATE }
    }

    /// `value` of operation label `i` as kept: itself, or [`OTHER_LABEL_VALUE`] once
    /// [`MAX_LABEL_VALUES`] other values of that label were seen or when it is longer than
    /// [`MAX_LABEL_VALUE_BYTES`].
    pub(crate) fn operation_label<'a>(&mut self, i: usize, value: &'a str) -> &'a str {
        if self.operation_labels.len() <= i {
            self.operation_labels.resize_with(i + 1, || Vocabulary::new(MAX_LABEL_VALUES));
        }
        let fits = value.len() <= MAX_LABEL_VALUE_BYTES;
        if fits && self.operation_labels[i].admits(value) { value } else { OTHER_LABEL_VALUE }
    }
}

/// Whether `host` reads as a host name or address (letters, digits, `.`, `-`, `_`, and the
/// `:` and brackets of an IPv6 address), so that nothing else (a URL, a credential, a
/// sentence) becomes a label.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_BYTES
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<'a>(error_type: &'a str, host: &'a str, port: u16, to: &'a str) -> Operation<'a> {
        Operation {
            server_address: Some(host),
            server_port: Some(port),
            error_type: Some(error_type),
            queue_to: Some(to),
            ..Operation::get_for_tests(None)
        }
    }

    #[test]
    fn values_past_each_bound_fold() {
        let mut labels = Labels::default();
        let names: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        let (mut types, mut hosts, mut ports, mut states) =
            (HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new());
        for (i, name) in names.iter().enumerate() {
            let mut op = op(name, name, i as u16 + 1, name);
            labels.bound(&mut op);
            types.insert(op.error_type.unwrap());
            hosts.insert(op.server_address.unwrap());
            ports.insert(op.server_port);
            states.insert(op.queue_to.unwrap());
        }
        let counts = [types.len(), hosts.len(), ports.len(), states.len()];
        assert_eq!(counts, [MAX_ERROR_TYPES + 1, MAX_HOSTS + 1, MAX_PORTS + 1, MAX_QUEUE_STATES + 1]);
        // A value kept before the bound was reached stays itself.
        let mut again = op("v0", "v0", 1, "v0");
        labels.bound(&mut again);
        assert_eq!(again, op("v0", "v0", 1, "v0"));
    }

    #[test]
    fn only_host_names_and_addresses_are_hosts() {
        for host in ["api.tinker.example", "127.0.0.1", "[::1]", "my_host-2"] {
            assert!(is_host(host), "{host}");
        }
        for host in ["", "user:pw@h.example", "h.example/path", "a b", &"a".repeat(256)] {
            assert!(!is_host(host), "{host}");
        }
        let mut labels = Labels::default();
        let mut op = op("500", "user:pw@h.example", 443, "active");
        labels.bound(&mut op);
        assert_eq!(op.server_address, Some(OTHER_HOST));
    }

    #[test]
    fn each_operation_label_keeps_its_own_values() {
        let mut labels = Labels::default();
        let values: Vec<String> = (0..100).map(|i| format!("loss_{i}")).collect();
        let kept: HashSet<&str> = values.iter().map(|v| labels.operation_label(1, v)).collect();
        assert_eq!(kept.len(), MAX_LABEL_VALUES + 1, "32 values and _OTHER");
        assert!(kept.contains(OTHER_LABEL_VALUE));
        assert_eq!(labels.operation_label(0, "loss_99"), "loss_99", "another label has its own bound");
        assert_eq!(labels.operation_label(1, "loss_0"), "loss_0", "a value kept stays itself");
        let long = "x".repeat(MAX_LABEL_VALUE_BYTES + 1);
        assert_eq!(labels.operation_label(0, &long), OTHER_LABEL_VALUE);
    }
}
