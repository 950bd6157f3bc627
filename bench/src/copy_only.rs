//! What a plain layer that keeps an event's fields does on the emitting thread, as a
//! reference for the reporter's instruction counts: [`CopyOnly`] compares the `session_id` by name, copies each
//! other field (its index, then its bytes or its `Debug` output) into a thread's buffer, and
//! appends that buffer to one locked `Vec`. It has none of the reporter's work: no time
//! stamp, no bound on what it holds, no callsite or field kinds for a reader, no budget, no
//! wake-up of a reader, nothing for errors or names; and nothing ever reads what it keeps.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::Mutex;

use tracing::field::{Field, Visit};

/// What it keeps: emptied whenever it passes 1 MiB.
static KEPT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A layer that copies the fields of `session`'s events and appends them to one locked
/// buffer, and does nothing else.
pub struct CopyOnly {
    /// The session whose events it keeps.
    pub session: &'static str,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CopyOnly {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            let mut copy = CopyFields { buf, session: self.session, mine: false };
            event.record(&mut copy);
            if copy.mine {
                let mut kept = KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() > 1 << 20 {
                    kept.clear();
                }
                kept.extend_from_slice(buf);
            }
        });
    }
}

/// Visits an event's fields into the thread's buffer.
struct CopyFields<'a> {
    buf: &'a mut Vec<u8>,
    session: &'static str,
    mine: bool,
}

impl Visit for CopyFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "session_id" {
            self.mine = value == self.session;
            return;
        }
        self.buf.push(field.index() as u8);
        self.buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(value.as_bytes());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.buf.push(field.index() as u8);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.buf.push(field.index() as u8);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.buf.push(field.index() as u8);
        let _ = write!(Bytes(self.buf), "{value:?}");
    }
}

/// Appends what is formatted to a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
