//! The capture side, run on the threads that emit events: the layer, field visiting, the
//! mirror of entered spans, captured spans, the event timestamp, and the record they pack
//! for the hand-off. Nothing here serializes, does I/O, or blocks.

pub(crate) mod clock;
pub(crate) mod entered;
pub(crate) mod layer;
pub(crate) mod record;
pub(crate) mod span;
pub(crate) mod visit;
