//! The capture side, run on the threads that emit events: the layer, field visiting, the
//! mirror of entered spans, and captured spans, all packing records for the hand-off.
//! Nothing here serializes, does I/O, or blocks.

pub(crate) mod callsite;
pub(crate) mod entered;
pub(crate) mod event;
pub(crate) mod http;
pub(crate) mod layer;
pub(crate) mod roles;
pub(crate) mod span;
pub(crate) mod text;
pub(crate) mod visit;
