//! Which spans each thread is inside, as each reporter layer saw them entered: the session of
//! an event's enclosing span without asking the registry.
//!
//! Asking the registry for the current span and then for its extensions takes two slab
//! look-ups and a read lock, six atomic read-modify-writes in all, on every event that has no
//! `session_id` of its own. Instead each layer mirrors the registry's per-thread stack of
//! entered spans (same rule: a span entered again while already on the stack is not the
//! current one) and caches, per entry, whether that span belongs to its session. The first
//! event inside a span looks the span up once; the next ones read the cache.
//!
//! A span's session can change after it was entered, when `session_id` is recorded later:
//! the layer then moves a global epoch on, and cached answers from before are looked up again.
//! Whenever the mirror cannot be kept (the thread's locals are torn down, or a re-entrant call
//! finds it borrowed), it says so, and the caller asks the registry as before.
//!
//! A layer's clones share its mirror, so a clone swapped in through a reload handle knows the
//! spans entered before it. Where the mirror and the registry can disagree, both involve a
//! span stack that is already off: an `Entered` guard that is forgotten (the registry stops
//! counting the span once it closes; the mirror keeps it until the thread exits it); a layer
//! beneath this one that logs from its own `on_enter` or `on_exit` (the registry has moved,
//! the mirror not yet); and one layer cloned into two registries whose spans are entered on
//! the same thread (the mirror sees the spans of both).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

/// `DEPTH` once an enter or exit could not be recorded: the mirror no longer matches the
/// registry, and is not used again on the thread.
const BROKEN: usize = usize::MAX;

/// Moves on whenever a span's session is recorded after its creation.
static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    /// Entries in `STACK`, readable without touching it (most events are emitted outside any
    /// span, and for them this one load is the whole look-up), or [`BROKEN`].
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The last answer `current` gave, while no span has been entered or exited since: most
    /// events in a span find it here without touching `STACK`.
    static LAST: Cell<Last> = const { Cell::new(Last::NONE) };
}

#[derive(Clone, Copy)]
struct Last {
    /// The layer it was for; 0 (no layer has it) when there is none.
    layer: u64,
    epoch: u64,
    /// `Known`'s answer, or `None` for [`Enclosing::None`].
    matched: Option<bool>,
}

impl Last {
    const NONE: Last = Last { layer: 0, epoch: 0, matched: None };
}

struct Entry {
    /// The reporter layer (its clones included) that saw the span entered.
    layer: u64,
    span: u64,
    /// The span was already on the stack when entered: not the current span (the registry's
    /// rule).
    duplicate: bool,
    /// Whether the span belongs to the layer's session, and the epoch of that answer.
    session: Option<(bool, u64)>,
}

/// What the mirror knows of the span enclosing a contextual event, for one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enclosing {
    /// The layer saw no span entered on this thread.
    None,
    /// The current span belongs to the layer's session, or not.
    Known(bool),
    /// The current span's id, whose session is not cached (or is stale).
    Unknown(u64),
    /// The mirror is out of step: ask the registry.
    Unreliable,
}

/// Records that `layer` saw `span` entered on this thread.
pub(crate) fn enter(layer: u64, span: u64) {
    with_entries(|entries| {
        let duplicate = entries.iter().any(|e| e.layer == layer && e.span == span);
        entries.push(Entry { layer, span, duplicate, session: None });
    });
}

/// Records that `layer` saw `span` exited on this thread: its latest entry goes, as in the
/// registry.
pub(crate) fn exit(layer: u64, span: u64) {
    with_entries(|entries| {
        if let Some(at) = entries.iter().rposition(|e| e.layer == layer && e.span == span) {
            entries.remove(at);
        }
    });
}

/// The span enclosing a contextual event on this thread, for `layer`.
#[inline]
pub(crate) fn current(layer: u64) -> Enclosing {
    match DEPTH.get() {
        0 => Enclosing::None,
        BROKEN => Enclosing::Unreliable,
        _ => {
            let epoch = epoch();
            let last = LAST.get();
            if last.layer == layer && last.epoch == epoch {
                return last.matched.map_or(Enclosing::None, Enclosing::Known);
            }
            let answer = current_entered(layer, epoch);
            match answer {
                Enclosing::None => LAST.set(Last { layer, epoch, matched: None }),
                Enclosing::Known(matched) => LAST.set(Last { layer, epoch, matched: Some(matched) }),
                Enclosing::Unknown(_) | Enclosing::Unreliable => {}
            }
            answer
        }
    }
}

/// [`current`] on a thread inside some span, from the stack itself.
fn current_entered(layer: u64, epoch: u64) -> Enclosing {
    STACK
        .try_with(|entries| {
            let Ok(entries) = entries.try_borrow() else { return Enclosing::Unreliable };
            match entries.iter().rev().find(|e| e.layer == layer && !e.duplicate) {
                None => Enclosing::None,
                Some(Entry { session: Some((matched, at)), .. }) if *at == epoch => {
                    Enclosing::Known(*matched)
                }
                Some(e) => Enclosing::Unknown(e.span),
            }
        })
        .unwrap_or(Enclosing::Unreliable)
}

/// Caches whether `span`, current for `layer`, belongs to the layer's session, as looked up
/// at `epoch` (read with [`epoch`] before the look-up).
pub(crate) fn remember(layer: u64, span: u64, matched: bool, epoch: u64) {
    with_entries(|entries| {
        // The entry `current` reads: the non-duplicate one.
        if let Some(e) = entries.iter_mut().rev().find(|e| e.layer == layer && e.span == span && !e.duplicate)
        {
            e.session = Some((matched, epoch));
        }
    });
}

/// The current epoch, to pass to [`remember`].
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// Marks every cached answer stale: a span's session was recorded after its creation.
pub(crate) fn session_changed() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

fn with_entries(f: impl FnOnce(&mut Vec<Entry>)) {
    let recorded = STACK.try_with(|entries| match entries.try_borrow_mut() {
        Ok(mut entries) if DEPTH.get() != BROKEN => {
            f(&mut entries);
            DEPTH.set(entries.len());
            LAST.set(Last::NONE);
            true
        }
        // Nothing here calls out while holding the borrow; should that change, the mirror
        // stops being trusted on this thread rather than going wrong.
        _ => false,
    });
    // Also once the thread's locals are being torn down.
    if recorded != Ok(true) {
        DEPTH.set(BROKEN);
    }
}
