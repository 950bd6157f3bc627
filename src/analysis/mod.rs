//! Analysis of the captured spans, on the uploader thread: every captured span is an
//! operation, counted, timed and checked for error spikes where its record already goes, so
//! the emitting thread pays nothing for it.

pub(crate) mod sink;
