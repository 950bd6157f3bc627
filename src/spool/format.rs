//! The spool's file format: one file per batch, holding the request body exactly as it is
//! sent, so that a later process can send it again unchanged.
//!
//! ```text
//! offset  size  field
//!      0     4  magic, b"TTSP"
//!      4     2  format version, little endian (1)
//!      6     2  events in the batch
//!      8     4  payload length in bytes, little endian
//!     12     4  CRC-32 (IEEE, crc32fast) of bytes 4..12 and of the payload
//!     16     …  payload: key length (1 byte), idempotency key, endpoint length (2 bytes LE),
//!               endpoint URL, then the request body (the events' JSON after redaction and
//!               URL scrubbing, and the envelope with the original session and process)
//! ```
//!
//! A file is written under a temporary name and renamed into place, so a name that parses
//! always holds a whole file; the checksum catches what the disk did to it since.

use std::fmt;

/// The first bytes of every spool file.
pub(crate) const MAGIC: [u8; 4] = *b"TTSP";
/// The format version this crate writes and reads.
pub(crate) const VERSION: u16 = 1;
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 16;
/// Longest idempotency key kept (a dashed UUID is 36 bytes).
const MAX_KEY: usize = u8::MAX as usize;
/// Longest endpoint URL kept.
const MAX_ENDPOINT: usize = 4096;

/// One batch as the spool keeps it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SpoolBatch {
    /// The batch's idempotency key: the same in every process that sends it.
    pub(crate) key: String,
    /// The URL the batch was for; it is sent to no other.
    pub(crate) endpoint: String,
    /// How many events the body holds.
    pub(crate) events: u16,
    /// The request body, as sent.
    pub(crate) body: Vec<u8>,
}

impl fmt::Debug for SpoolBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolBatch")
            .field("key", &self.key)
            .field("endpoint", &self.endpoint)
            .field("events", &self.events)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why a file is not a batch this crate can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Shorter than its header says (cut short, or empty).
    Truncated,
    /// Not a spool file: wrong magic (a NUL-filled file, say).
    NotSpool,
    /// Written by a newer version of the crate: left for it.
    NewerVersion,
    /// The checksum does not match: the disk changed it.
    Checksum,
    /// Longer than its header says, or a field that does not fit.
    Malformed,
}

/// The file's bytes for `batch`.
pub(crate) fn encode(batch: &SpoolBatch) -> Vec<u8> {
    let key = &batch.key.as_bytes()[..batch.key.len().min(MAX_KEY)];
    let endpoint = &batch.endpoint.as_bytes()[..batch.endpoint.len().min(MAX_ENDPOINT)];
    let payload_len = 1 + key.len() + 2 + endpoint.len() + batch.body.len();
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&batch.events.to_le_bytes());
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&(endpoint.len() as u16).to_le_bytes());
    out.extend_from_slice(endpoint);
    out.extend_from_slice(&batch.body);
    let crc = checksum(&out);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

/// CRC-32 of bytes 4..12 and of the payload of a file's bytes.
fn checksum(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[4..12]);
    hasher.update(&bytes[HEADER_LEN..]);
    hasher.finalize()
}

/// The header fields of a file: its version and event count, once the magic is checked.
/// Enough to count what a file held without reading the rest.
pub(crate) fn header(bytes: &[u8]) -> Result<(u16, u16, usize), Bad> {
    if bytes.len() < HEADER_LEN {
        return Err(if bytes.iter().all(|b| *b == 0) && !bytes.is_empty() {
            Bad::NotSpool
        } else {
            Bad::Truncated
        });
    }
    if bytes[..4] != MAGIC {
        return Err(Bad::NotSpool);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let events = u16::from_le_bytes([bytes[6], bytes[7]]);
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    Ok((version, events, len))
}

/// Reads a file's bytes back into a batch, checking everything.
pub(crate) fn decode(bytes: &[u8]) -> Result<SpoolBatch, Bad> {
    let (version, events, len) = header(bytes)?;
    if version > VERSION {
        return Err(Bad::NewerVersion);
    }
    if version == 0 {
        return Err(Bad::NotSpool);
    }
    let payload = &bytes[HEADER_LEN..];
    if payload.len() < len {
        return Err(Bad::Truncated);
    }
    if payload.len() > len {
        return Err(Bad::Malformed);
    }
    let stored = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if stored != checksum(bytes) {
        return Err(Bad::Checksum);
    }
    let mut rest = payload;
    let key = take(&mut rest, 1).map(|n| n[0] as usize).and_then(|n| take(&mut rest, n))?;
    let endpoint_len = take(&mut rest, 2).map(|n| u16::from_le_bytes([n[0], n[1]]) as usize)?;
    let endpoint = take(&mut rest, endpoint_len)?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Bad::Malformed);
    Ok(SpoolBatch { key: text(key)?, endpoint: text(endpoint)?, events, body: rest.to_vec() })
}

/// The next `n` bytes of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], Bad> {
    if rest.len() < n {
        return Err(Bad::Malformed);
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> SpoolBatch {
        SpoolBatch {
            key: "0b6f0c1e-4d2a-4c7b-9e11-2f3a4b5c6d7e".into(),
            endpoint: "http://127.0.0.1:9/api/v1/telemetry".into(),
            events: 2,
            body: br#"{"events":[{"a":1},{"b":2}],"session_id":"s"}"#.to_vec(),
        }
    }

    #[test]
    fn a_batch_reads_back_as_written() {
        let bytes = encode(&batch());
        assert_eq!(&bytes[..4], b"TTSP");
        assert_eq!(decode(&bytes), Ok(batch()));
        assert_eq!(header(&bytes), Ok((VERSION, 2, bytes.len() - HEADER_LEN)));
    }

    #[test]
    fn every_kind_of_damage_is_told_apart() {
        let good = encode(&batch());
        assert_eq!(decode(&[]), Err(Bad::Truncated), "empty");
        assert_eq!(decode(&good[..10]), Err(Bad::Truncated), "cut in the header");
        assert_eq!(decode(&good[..good.len() - 1]), Err(Bad::Truncated), "cut in the body");
        assert_eq!(decode(&vec![0; 4096]), Err(Bad::NotSpool), "NUL-filled");
        assert_eq!(decode(&[0; 8]), Err(Bad::NotSpool), "a few NULs");
        let mut longer = good.clone();
        longer.push(b'x');
        assert_eq!(decode(&longer), Err(Bad::Malformed));
        for at in [6, 9, HEADER_LEN + 3, good.len() - 2] {
            let mut flipped = good.clone();
            flipped[at] ^= 0x20;
            let got = decode(&flipped);
            assert!(
                matches!(got, Err(Bad::Checksum | Bad::Truncated | Bad::Malformed)),
                "byte {at}: {got:?}"
            );
        }
        let mut newer = good.clone();
        newer[4] = 2;
        assert_eq!(decode(&newer), Err(Bad::NewerVersion));
        let mut zero = good;
        zero[4] = 0;
        assert_eq!(decode(&zero), Err(Bad::NotSpool));
    }

    #[test]
    fn a_length_field_cannot_make_decode_read_past_the_bytes() {
        let mut bytes = encode(&batch());
        // A payload length near 4 GiB in a small file: refused, nothing allocated for it.
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bytes), Err(Bad::Truncated));
        // A key length past the payload, with a checksum that matches.
        let mut b = batch();
        b.key = String::new();
        let mut bytes = encode(&b);
        bytes[HEADER_LEN] = 200;
        let crc = checksum(&bytes);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode(&bytes), Err(Bad::Malformed) | Ok(_)));
    }

    #[test]
    fn debug_shows_no_body() {
        let shown = format!("{:?}", batch());
        assert!(!shown.contains("events\":["), "{shown}");
    }
}
