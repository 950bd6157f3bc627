//! The text an event or a span keeps of a value, within its budget, and the buffer an
//! event's text is written into on the emitting thread.
//!
//! A span's text is a `String`; an event's is a [`TextBuf`], reused from one event to the
//! next, which copies a value of up to 16 bytes (most names, statuses and short messages) as
//! two overlapping words instead of calling `memcpy`: the copy is a few instructions, and the
//! function that makes it calls nothing, so it keeps nothing across a call.

use std::fmt::{self, Write as _};

use crate::handoff::record::TextRange;
use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_VALUE_BYTES, TRUNCATION_MARKER, floor_char_boundary};

/// Values this long or shorter are copied without `memcpy`.
const SHORT: usize = 16;

/// Room a [`TextBuf`] starts with: most events need far less.
const START_ROOM: usize = 512;

/// Where captured text goes: appended, and told where it went by its length before.
pub(crate) trait TextOut: fmt::Write {
    /// Bytes written so far.
    fn len(&self) -> usize;
    /// Appends `s`.
    fn push(&mut self, s: &str);
    /// Appends `s` if that takes no call (it is short and the room allows); false, nothing
    /// written, otherwise.
    fn push_short(&mut self, s: &str) -> bool;
}

impl TextOut for String {
    #[inline(always)]
    fn len(&self) -> usize {
        String::len(self)
    }

    #[inline(always)]
    fn push(&mut self, s: &str) {
        self.push_str(s);
    }

    #[inline(always)]
    fn push_short(&mut self, _: &str) -> bool {
        false
    }
}

/// An event's text as the emitting thread writes it: a zeroed buffer whose length is its
/// room, and how much of it is in use. Holds only whole `&str` values and cuts on character
/// boundaries, so what is in use is always UTF-8.
#[derive(Debug, Default)]
pub(crate) struct TextBuf {
    buf: Vec<u8>,
    used: usize,
}

impl TextBuf {
    /// An empty one, without room yet.
    pub(crate) const fn new() -> Self {
        TextBuf { buf: Vec::new(), used: 0 }
    }

    /// An empty one with room for most events.
    pub(crate) fn with_room() -> Self {
        TextBuf { buf: vec![0; START_ROOM], used: 0 }
    }

    /// Empties it, keeping its room.
    #[inline(always)]
    pub(crate) fn clear(&mut self) {
        self.used = 0;
    }

    /// Keeps only the first `len` bytes in use, which end on a character boundary.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.used = self.used.min(len);
    }

    /// What is in use.
    #[inline(always)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.used).unwrap_or_default()
    }

    /// The text of `range`.
    pub(crate) fn get(&self, range: TextRange) -> &str {
        let bytes = self.as_bytes().get(range.0 as usize..range.1 as usize).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Appends `s`: a short one as two overlapping words when the room allows.
    #[inline(always)]
    fn push_bytes(&mut self, s: &[u8]) {
        if !self.push_short_bytes(s) {
            self.push_long(s);
        }
    }

    /// Appends `s` if it is short and the room allows, without calling anything; false
    /// (nothing written) otherwise.
    #[inline(always)]
    fn push_short_bytes(&mut self, s: &[u8]) -> bool {
        let at = self.used;
        match self.buf.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<SHORT>) {
            Some(room) if s.len() <= SHORT => {
                copy_short(room, s);
                self.used = at + s.len();
                true
            }
            _ => false,
        }
    }

    /// Appends `s`, which is long or does not fit the room left, growing the room first.
    #[cold]
    #[inline(never)]
    fn push_long(&mut self, s: &[u8]) {
        let end = self.used + s.len();
        if self.buf.len() < end + SHORT {
            self.buf.resize((end + SHORT).next_power_of_two().max(START_ROOM), 0);
        }
        if let Some(to) = self.buf.get_mut(self.used..end) {
            to.copy_from_slice(s);
        }
        self.used = end;
    }
}

impl TextOut for TextBuf {
    #[inline(always)]
    fn len(&self) -> usize {
        self.used
    }

    #[inline(always)]
    fn push(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    #[inline(always)]
    fn push_short(&mut self, s: &str) -> bool {
        self.push_short_bytes(s.as_bytes())
    }
}

impl fmt::Write for TextBuf {
    #[inline(always)]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes());
        Ok(())
    }
}

/// Copies `s` (at most [`SHORT`] bytes) to the front of `to`: its first and last words, which
/// overlap for a value shorter than two; what lies beyond `s` is left to be overwritten.
#[inline(always)]
fn copy_short(to: &mut [u8; SHORT], s: &[u8]) {
    let n = s.len();
    if let (Some(first), Some(last)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        to[..8].copy_from_slice(first);
        if let Some(end) = to.get_mut(n - 8..n) {
            end.copy_from_slice(last);
        }
    } else if let (Some(first), Some(last)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        to[..4].copy_from_slice(first);
        if let Some(end) = to.get_mut(n - 4..n) {
            end.copy_from_slice(last);
        }
    } else if let (Some(&first), Some(&mid), Some(&last)) = (s.first(), s.get(n / 2), s.last()) {
        // One to three bytes: the first, the middle and the last cover them.
        to[0] = first;
        to[n / 2] = mid;
        to[n - 1] = last;
    }
}

/// The bytes a value may still add to text of which `used` bytes count: at most
/// [`MAX_VALUE_BYTES`], and what is left of [`MAX_EVENT_TEXT_BYTES`].
#[inline(always)]
pub(crate) fn budget(used: usize) -> usize {
    MAX_VALUE_BYTES.min(MAX_EVENT_TEXT_BYTES.saturating_sub(used))
}

/// Appends `s` to `text`, cut to `budget` bytes (on a character boundary) and marked when
/// longer; returns where it went.
#[inline(always)]
pub(crate) fn push_str(text: &mut impl TextOut, s: &str, budget: usize) -> TextRange {
    let start = text.len();
    if s.len() <= budget {
        text.push(s);
    } else {
        text.push(floor_char_boundary(s, budget));
        text.push(TRUNCATION_MARKER);
    }
    range(start, text.len())
}

/// Appends `value`'s `Debug` output to `text`, cut to `budget` bytes and marked when longer;
/// returns where it went.
pub(crate) fn push_debug(text: &mut impl TextOut, value: &dyn fmt::Debug, budget: usize) -> TextRange {
    let start = text.len();
    let mut w = Limited { out: text, left: budget, cut: false };
    // A Debug impl that fails leaves what it wrote so far.
    let _ = write!(w, "{value:?}");
    if w.cut {
        text.push(TRUNCATION_MARKER);
    }
    range(start, text.len())
}

/// [`push_debug`] of a `Display` value.
pub(crate) fn push_display(text: &mut impl TextOut, value: &dyn fmt::Display, budget: usize) -> TextRange {
    struct AsDebug<'a>(&'a dyn fmt::Display);
    impl fmt::Debug for AsDebug<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(self.0, f)
        }
    }
    push_debug(text, &AsDebug(value), budget)
}

/// Appends `value`'s decimal digits to `text` (an integer too wide for 64 bits: a few dozen
/// bytes, outside the budget); returns where they went.
pub(crate) fn push_big(text: &mut impl TextOut, value: &dyn fmt::Display) -> TextRange {
    let start = text.len();
    let _ = write!(text, "{value}");
    range(start, text.len())
}

fn range(start: usize, end: usize) -> TextRange {
    // Text is bounded by MAX_EVENT_TEXT_BYTES per event, far below u32::MAX.
    TextRange(start as u32, end as u32)
}

/// Writes up to `left` bytes (on a character boundary), then refuses.
struct Limited<'a, T> {
    out: &'a mut T,
    left: usize,
    cut: bool,
}

impl<T: TextOut> fmt::Write for Limited<'_, T> {
    /// A short piece within the budget is copied without a call; any other is
    /// [`write_apart`](Limited::write_apart)'s.
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.left && self.out.push_short(s) {
            self.left -= s.len();
            return Ok(());
        }
        self.write_apart(s)
    }
}

impl<T: TextOut> Limited<'_, T> {
    /// Writes `s` whole if it fits what is left of the budget; else what fits, and refuses
    /// the rest.
    #[inline(never)]
    fn write_apart(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.left {
            self.out.push(s);
            self.left -= s.len();
            return Ok(());
        }
        let keep = floor_char_boundary(s, self.left);
        self.out.push(keep);
        self.left = 0;
        self.cut = true;
        Err(fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to past the short copy's, from empty and from part-full buffers, and
    /// at the end of the room: what is in use is what was pushed, in order.
    #[test]
    fn text_pushed_in_pieces_of_every_length_reads_back_whole() {
        let source: String = ('a'..='z').cycle().take(40).collect();
        for start_room in [0, 20, START_ROOM] {
            let mut buf = TextBuf { buf: vec![0; start_room], used: 0 };
            let mut want = String::new();
            for n in 0..=source.len() {
                let piece = &source[..n];
                let room = budget(buf.len());
                let range = push_str(&mut buf, piece, room);
                assert_eq!(buf.get(range), piece, "room {start_room}, length {n}");
                want.push_str(piece);
            }
            assert_eq!(buf.as_bytes(), want.as_bytes());
            buf.clear();
            assert_eq!(buf.as_bytes(), b"");
        }
    }

    #[test]
    fn a_value_past_its_budget_is_cut_on_a_character_boundary_and_marked() {
        let mut buf = TextBuf::with_room();
        let range = push_str(&mut buf, "ééé", 3);
        assert_eq!(buf.get(range), format!("é{TRUNCATION_MARKER}"));
        let mut text = String::new();
        let range = push_debug(&mut text, &"abcdef", 4);
        assert_eq!(&text[range.0 as usize..range.1 as usize], format!("\"abc{TRUNCATION_MARKER}"));
    }
}
