//! The builder's spool options: where the durable spool lives, how often the uploader writes
//! to it, its bounds and what a write waits for. See [`crate::spool`] for the files.

use std::path::PathBuf;
use std::time::Duration;

use super::builder::Builder;
use crate::spool::SpoolSync;

impl Builder {
    /// Keeps what the uploader cannot send yet in `dir`, so that the next process that opens
    /// the same directory sends it: events survive the process being killed, a crash loop,
    /// and an outage longer than [`flush_timeout`](Builder::flush_timeout). Default: the
    /// `TINKER_TELEMETRY_SPOOL_DIR` environment variable, else no spool (nothing touches the
    /// disk).
    ///
    /// Every event captured at least [`spool_interval`](Builder::spool_interval) before the
    /// process dies, or still unsent when the drain's deadline passes, is delivered by the
    /// next process that opens the same directory, whatever its session: at least once, with
    /// the same `event_id`, the same session, and the same idempotency key for a batch that
    /// was already tried. Only what would be sent is written (after redaction and URL
    /// scrubbing); never the API key or a header. The uploader thread does every read and
    /// write, never an emitting thread. `dir` is created owner-only (0700, files 0600); an
    /// existing directory that other users can write is refused. A spool that cannot be used
    /// (refused, full, read-only, an fsync error) is turned off for the run with one line
    /// ([`debug`](Builder::debug), [`TelemetryHandle::last_delivery_error`](crate::TelemetryHandle::last_delivery_error)):
    /// delivery goes on from memory and `build()` does not fail. Several processes may share
    /// one directory; each writes its own run, and a dead process's run is sent by exactly one
    /// other. A run is sent only to the endpoint it was written for.
    ///
    /// # Examples
    /// ```no_run
    /// let (layer, guard) = tinker_telemetry::TinkerTelemetryLayer::builder()
    ///     .session_id("6f1c2a9e-5b4e-4d7a-9c1e-0b9f0c7d2e11")
    ///     .spool_dir("/var/tmp/my-trainer/telemetry")
    ///     .build()?;
    /// # Ok::<(), tinker_telemetry::BuildError>(())
    /// ```
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool.dir = Some(dir.into());
        self
    }

    /// How often the uploader writes what it holds to the spool: an event captured this long
    /// before the process dies is on disk. Default:
    /// [`DEFAULT_SPOOL_INTERVAL`](crate::DEFAULT_SPOOL_INTERVAL) (1 s).
    pub fn spool_interval(mut self, interval: Duration) -> Self {
        self.spool.interval = interval;
        self
    }

    /// Most bytes the spool directory's batch files may hold. Past it, the oldest files left
    /// by earlier runs are removed first, then this run's oldest files whose batches ran out
    /// of retries, counted in [`SpoolDropped::over_size`](crate::SpoolDropped::over_size);
    /// when every file left belongs to a batch still in memory, a new batch stays in memory
    /// only. Default:
    /// [`DEFAULT_SPOOL_MAX_BYTES`](crate::DEFAULT_SPOOL_MAX_BYTES) (64 MiB).
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool.max_bytes = bytes;
        self
    }

    /// How old a spool file may get: an older one is removed unsent, counted in
    /// [`SpoolDropped::too_old`](crate::SpoolDropped::too_old). Runs written for another
    /// endpoint wait for a process sending there, up to this age. Default:
    /// [`DEFAULT_SPOOL_MAX_AGE`](crate::DEFAULT_SPOOL_MAX_AGE) (7 days).
    pub fn spool_max_age(mut self, age: Duration) -> Self {
        self.spool.max_age = age;
        self
    }

    /// What a spool write waits for: [`SpoolSync::Always`] (`fsync` each file and its
    /// directory: survives a power cut) or [`SpoolSync::Never`] (survives the process being
    /// killed, not a power cut). Default: [`SpoolSync::Always`]. BENCHMARKS.md measures both.
    pub fn spool_sync(mut self, sync: SpoolSync) -> Self {
        self.spool.sync = sync;
        self
    }
}

/// The spool directory in force: the builder's, else the environment's (empty is unset).
pub(super) fn spool_dir(builder: &Builder, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    builder
        .spool
        .dir
        .clone()
        .filter(|d| !d.as_os_str().is_empty())
        .or_else(|| env(super::defaults::ENV_SPOOL_DIR).filter(|d| !d.trim().is_empty()).map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_wins_over_the_environment_and_empty_is_unset() {
        let env = |name: &str| (name == "TINKER_TELEMETRY_SPOOL_DIR").then(|| "/from/env".to_owned());
        let none = |_: &str| None;
        let blank = |_: &str| Some("  ".to_owned());
        assert_eq!(spool_dir(&Builder::default(), &none), None, "off by default");
        assert_eq!(spool_dir(&Builder::default(), &blank), None);
        assert_eq!(spool_dir(&Builder::default(), &env), Some("/from/env".into()));
        assert_eq!(spool_dir(&Builder::default().spool_dir("/mine"), &env), Some("/mine".into()));
    }
}
