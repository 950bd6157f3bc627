//! Batches of serialized events and the request body around them.

use uuid::Uuid;

use crate::spool::writer::Slot;

/// One event, serialized on the uploader thread when it was taken from the queue.
#[derive(Debug)]
pub(crate) struct EventJson {
    pub(crate) json: Box<[u8]>,
}

/// Up to `max_batch_size` events sent together, and retried together.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The `event_session_index` of the first event; later events follow contiguously.
    pub(crate) first_index: u64,
    pub(crate) events: Vec<EventJson>,
    /// Holds SESSION_START: sent alone, before anything else.
    pub(crate) has_start: bool,
    /// Holds SESSION_END: sent after everything else.
    pub(crate) has_end: bool,
    /// The events' JSON, in bytes: what the batch counts against the queue's byte bound.
    pub(crate) bytes: usize,
    /// The idempotency key of the batch sent whole: the same on every retry and, through the
    /// spool, in every process.
    pub(crate) key: Box<str>,
    /// The batch's file in the spool, once written, and how many events it held then.
    pub(crate) spooled: Option<(Slot, usize)>,
    /// A spool tick has seen the batch: the next one writes it.
    pub(crate) seen: bool,
}

impl Batch {
    pub(crate) fn new(first_index: u64, capacity: usize) -> Self {
        Batch {
            first_index,
            events: Vec::with_capacity(capacity),
            has_start: false,
            has_end: false,
            bytes: 0,
            key: idempotency_key().into(),
            spooled: None,
            seen: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }
}

/// The parts of the body that are the same for every request of a reporter.
#[derive(Debug)]
pub(crate) struct Envelope {
    suffix: Vec<u8>,
}

impl Envelope {
    pub(crate) fn new(session_id: &str, platform: &str, process_uuid: &str, sdk_version: &str) -> Self {
        #[derive(serde::Serialize)]
        struct Tail<'a> {
            platform: &'a str,
            process_uuid: &'a str,
            sdk_version: &'a str,
            session_id: &'a str,
        }
        let tail = Tail { platform, process_uuid, sdk_version, session_id };
        // Serializing four strings into a Vec cannot fail.
        let tail = serde_json::to_vec(&tail).unwrap_or_default();
        // `{"platform":…}` becomes `],"platform":…}` after the events array.
        let mut suffix = b"],".to_vec();
        suffix.extend_from_slice(tail.get(1..).unwrap_or_default());
        Envelope { suffix }
    }

    /// The JSON body for `events`.
    pub(crate) fn body(&self, events: &[EventJson]) -> Vec<u8> {
        let size: usize = events.iter().map(|e| e.json.len() + 1).sum::<usize>() + self.suffix.len() + 16;
        let mut body = Vec::with_capacity(size);
        body.extend_from_slice(b"{\"events\":[");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&e.json);
        }
        body.extend_from_slice(&self.suffix);
        body
    }
}

/// A fresh idempotency key: one per request payload (a batch, or a part of one split after a
/// 413), the same on every retry of it.
pub(crate) fn idempotency_key() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_events_array_and_envelope() {
        let env = Envelope::new("s\"1", "Linux", "p", "0.1.0");
        let events = vec![
            EventJson { json: b"{\"a\":1}".to_vec().into() },
            EventJson { json: b"{\"b\":2}".to_vec().into() },
        ];
        let body: serde_json::Value = serde_json::from_slice(&env.body(&events)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "events": [{"a": 1}, {"b": 2}],
                "platform": "Linux",
                "process_uuid": "p",
                "sdk_version": "0.1.0",
                "session_id": "s\"1",
            })
        );
    }
}
