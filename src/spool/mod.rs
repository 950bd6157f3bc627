//! The durable spool (opt-in, [`Builder::spool_dir`](crate::Builder::spool_dir)): batches the
//! uploader could not send yet, kept on disk so that the next process sends them, or this
//! one once their retries ran out and the server returns.
//!
//! ```text
//! <spool_dir>/                       0700, refused when others can write it
//!   1765090000000-9f…e1.run/         one directory per process run (its start time first)
//!     lock                           held (flock) by the run's owner for its life
//!     00000000000000000007.batch     one batch per file (format.rs), 0600
//!     00000000000000000008.tmp       being written; renamed to .batch once whole
//! ```
//!
//! `build()` ([`open`]) checks the directory, makes this run's directory and locks it, and
//! adopts every other run whose lock it can take: a run whose owner is alive keeps its lock,
//! so it is never adopted; a dead owner's run is adopted by exactly one process. Nothing is
//! read then. The uploader thread does all the rest: [`writer`] writes what the uploader holds
//! at least every `spool_interval` and removes a batch's file once it is settled;
//! [`backlog`] walks the adopted runs oldest first, one file at a time, and keeps the spool
//! within `spool_max_bytes` and `spool_max_age`; [`replay`] sends what it reads.

pub(crate) mod backlog;
pub(crate) mod format;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backlog::Backlog;
use writer::Writer;

/// What a spool file's write waits for before the file counts as written; see
/// [`Builder::spool_sync`](crate::Builder::spool_sync).
///
/// Every file is written under a temporary name and renamed into place, so a crash never
/// leaves half a file under a valid name, whichever is chosen.
///
/// # Examples
/// ```
/// use tinker_telemetry::{SpoolSync, TinkerTelemetryLayer};
///
/// let builder = TinkerTelemetryLayer::builder()
///     .spool_dir("/var/tmp/my-app-telemetry")
///     .spool_sync(SpoolSync::Never);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpoolSync {
    /// No `fsync`: a written file survives the process being killed (the kernel holds it),
    /// not a power cut or an operating-system crash.
    Never,
    /// `fsync` every file before it is renamed into place, and its directory after: a written
    /// file survives a power cut too. The default.
    #[default]
    Always,
}

/// The spool's options, as `build()` checked them.
#[derive(Debug, Clone)]
pub(crate) struct SpoolConfig {
    pub(crate) dir: PathBuf,
    pub(crate) interval: Duration,
    pub(crate) max_bytes: u64,
    pub(crate) max_age: Duration,
    pub(crate) sync: SpoolSync,
    /// Makes every fsync fail, for the tests of that fault.
    pub(crate) fail_fsync: bool,
}

/// An open spool: this run's writer and the runs adopted from earlier processes.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) writer: Writer,
    pub(crate) backlog: Arc<Backlog>,
    pub(crate) interval: Duration,
}

/// Opens the spool for a reporter sending to `endpoint`: checks (or makes) the directory,
/// makes and locks this run's directory, and adopts the runs whose lock can be taken. Lists
/// the directory and reads nothing. Fails with one line in words; the caller turns the spool
/// off and goes on.
pub(crate) fn open(config: &SpoolConfig, endpoint: &str) -> Result<Opened, String> {
    let root = run::prepare_dir(&config.dir)?;
    let own = run::create_run(&root)
        .map_err(|e| format!("spool off: cannot make a run directory in {}: {e}", root.display()))?;
    let (adopted, foreign) = run::adopt(&root, &own.name);
    let backlog = Arc::new(Backlog::new(adopted, endpoint, config.max_bytes, config.max_age, foreign));
    let writer = Writer::new(own, config, Arc::clone(&backlog));
    Ok(Opened { writer, backlog, interval: config.interval })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A spool directory of its own for each test, removed at the end.

    use std::path::{Path, PathBuf};

    /// A fresh directory under the system's temporary directory.
    #[derive(Debug)]
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tt-spool-{tag}-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            }
            TempDir(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A configuration for `dir` with the defaults' bounds.
    pub(crate) fn config(dir: &Path) -> super::SpoolConfig {
        super::SpoolConfig {
            dir: dir.to_owned(),
            interval: std::time::Duration::from_secs(1),
            max_bytes: 64 << 20,
            max_age: std::time::Duration::from_secs(7 * 24 * 3600),
            sync: super::SpoolSync::Always,
            fail_fsync: false,
        }
    }
}
