//! Batches of serialized events and the request body around them.

use std::ops::Range;

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
        join(events.iter().map(|e| &e.json[..]), &self.suffix)
    }
}

/// A fresh idempotency key: one per batch, the same on every retry of it.
pub(crate) fn idempotency_key() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// The key of the part `part` (event positions) of the batch keyed `key`, split after a 413:
/// the same part of the same batch has the same key on every try, in every process.
pub(crate) fn part_key(key: &str, part: &Range<usize>) -> String {
    format!("{key}.{}-{}", part.start, part.end)
}

/// The bytes of each event in a request body as [`Envelope::body`] writes it, and the suffix
/// after them (`],` and the envelope's fields): a stored body taken apart to be split.
/// `None` when the body is not of that shape.
pub(crate) fn body_parts(body: &[u8]) -> Option<(Vec<&[u8]>, &[u8])> {
    const HEAD: &[u8] = b"{\"events\":[";
    let mut rest = body.strip_prefix(HEAD)?;
    let mut events = Vec::new();
    loop {
        // One JSON value, walked without being built; its end is where its bytes end.
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
        values.next()?.ok()?;
        let (event, after) = rest.split_at(values.byte_offset());
        events.push(event);
        match after.first()? {
            b',' => rest = &after[1..],
            b']' => return Some((events, after)),
            _ => return None,
        }
    }
}

/// A body holding `events` (parts of a body from [`body_parts`]) and `suffix`.
pub(crate) fn join_body(events: &[&[u8]], suffix: &[u8]) -> Vec<u8> {
    join(events.iter().copied(), suffix)
}

/// `{"events":[`, the events separated by commas, then `suffix`.
fn join<'a>(events: impl Iterator<Item = &'a [u8]> + Clone, suffix: &[u8]) -> Vec<u8> {
    let size = events.clone().map(|e| e.len() + 1).sum::<usize>() + suffix.len() + 16;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(b"{\"events\":[");
    for (i, e) in events.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.extend_from_slice(suffix);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_taken_apart_and_joined_again_is_the_same_bytes() {
        let env = Envelope::new("s\"1", "Linux", "p", "0.1.0");
        let events: Vec<EventJson> = [&br#"{"a":[1,{"b":"],"}]}"#[..], b"{\"c\":\"\\\"\"}", b"{}"]
            .iter()
            .map(|j| EventJson { json: j.to_vec().into() })
            .collect();
        let body = env.body(&events);
        let (parts, suffix) = body_parts(&body).unwrap();
        assert_eq!(parts, events.iter().map(|e| &e.json[..]).collect::<Vec<_>>());
        assert_eq!(join_body(&parts, suffix), body);
        assert_eq!(join_body(&parts[..1], suffix), env.body(&events[..1]));
        for bad in [&b""[..], b"{\"events\":[", b"{\"events\":[{}x", b"[1,2]", b"{\"events\":[{\"a\""] {
            assert!(body_parts(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

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
