//! Configuration: the [`Builder`](builder::Builder), the defaults, and the validation
//! `build()` does before anything starts. Runs on the thread that calls `build()`.

pub(crate) mod analysis;
pub(crate) mod builder;
pub(crate) mod check;
pub(crate) mod defaults;
pub(crate) mod exports;
pub(crate) mod spool;
