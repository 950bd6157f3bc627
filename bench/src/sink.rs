//! A fast local Tinker telemetry sink for the benchmarks: HTTP/1.1 on 127.0.0.1, a thread
//! per connection, keep-alive, `200 {"status":"accepted"}` to every request.
//!
//! Unlike `examples/common/collector.rs` it never parses JSON: it counts the events of a body
//! by the `{"event":"` that opens each of them (the uploader writes `event` first), so that the
//! sink costs the two-core machine as little as possible while the uploader is measured.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What opens every event object on the wire.
const EVENT_OPENING: &[u8] = b"{\"event\":\"";

const REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"status\":\"accepted\"}";

/// A running sink; it stops accepting connections when dropped.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
    stop: AtomicBool,
}

impl Sink {
    /// Binds 127.0.0.1:0 and starts accepting.
    ///
    /// # Errors
    /// When the socket cannot be bound or the accept thread cannot be started.
    pub fn start() -> io::Result<Sink> {
        Sink::start_on(TcpListener::bind("127.0.0.1:0")?)
    }

    /// Starts accepting on `listener` (bound to a port chosen earlier).
    ///
    /// # Errors
    /// When the listener has no address or the accept thread cannot be started.
    pub fn start_on(listener: TcpListener) -> io::Result<Sink> {
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        std::thread::Builder::new().name("sink-accept".into()).spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let counters = Arc::clone(&shared);
                let _ = std::thread::Builder::new()
                    .name("sink-conn".into())
                    .spawn(move || serve(stream, &counters));
            }
        })?;
        Ok(Sink { addr, counters })
    }

    /// `http://127.0.0.1:PORT`, to pass as the base URL.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Events received so far.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.counters.events.load(Relaxed)
    }

    /// Requests received so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Relaxed)
    }

    /// Body bytes received so far.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.counters.stop.store(true, Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn serve(stream: TcpStream, counters: &Counters) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut line = Vec::with_capacity(256);
    let mut body = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_ascii_end();
            if header.is_empty() {
                break;
            }
            if let Some(value) = strip_prefix_ignore_case(header, b"content-length:") {
                length = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        counters.events.fetch_add(count(&body, EVENT_OPENING), Relaxed);
        counters.bytes.fetch_add(length as u64, Relaxed);
        counters.requests.fetch_add(1, Relaxed);
        writer.write_all(REPLY)?;
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Occurrences of `needle` (whose first byte occurs nowhere else in it) in `hay`.
fn count(hay: &[u8], needle: &[u8]) -> u64 {
    let (first, rest) = (needle[0], &needle[1..]);
    let mut n = 0;
    let mut i = 0;
    while let Some(p) = hay[i..].iter().position(|&b| b == first) {
        let at = i + p;
        if hay[at + 1..].starts_with(rest) {
            n += 1;
            i = at + needle.len();
        } else {
            i = at + 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_event_openings() {
        let body = br#"{"events":[{"event":"A","x":{"event":1}},{"event":"B"}],"session_id":"s"}"#;
        assert_eq!(count(body, super::EVENT_OPENING), 2);
        assert_eq!(count(b"", super::EVENT_OPENING), 0);
    }
}
