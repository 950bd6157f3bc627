//! The defaults of every option, and the environment variables read when the builder leaves
//! one unset.

use std::path::PathBuf;
use std::time::Duration;

use tracing::Level;

use crate::spool::SpoolSync;

/// The production endpoint's base URL, used when neither the builder nor `TINKER_BASE_URL`
/// gives one.
pub const DEFAULT_BASE_URL: &str = "https://tinker.thinkingmachines.dev/services/tinker-prod";
/// Default for [`crate::Builder::flush_interval`]: 10 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default for [`crate::Builder::flush_threshold`]: 100 events.
pub const DEFAULT_FLUSH_THRESHOLD: usize = 100;
/// Default for [`crate::Builder::flush_timeout`]: 30 s.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`crate::Builder::http_timeout`]: 5 s.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`crate::Builder::max_retries`]: 3.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default for [`crate::Builder::retry_base_delay`]: 1 s.
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_secs(1);
/// Default for [`crate::Builder::max_queue_size`]: 10,000 events.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 10_000;
/// Default for [`crate::Builder::max_queue_bytes`]: 32 MiB.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Default for [`crate::Builder::max_batch_size`]: 100 events, also the most the server takes.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 100;
/// The largest batch the server accepts.
pub const MAX_BATCH_SIZE_LIMIT: usize = 100;
/// Default for [`crate::Builder::max_in_flight`]: 4 requests.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Default for [`crate::Builder::min_level`]: `INFO`.
pub const DEFAULT_MIN_LEVEL: Level = Level::INFO;

/// Default for [`crate::Builder::spool_interval`]: 1 s.
pub const DEFAULT_SPOOL_INTERVAL: Duration = Duration::from_secs(1);
/// Default for [`crate::Builder::spool_max_bytes`]: 64 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default for [`crate::Builder::spool_max_age`]: 7 days.
pub const DEFAULT_SPOOL_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The environment variable that turns telemetry off (`0`, `false`, `no`, `off`).
pub const ENV_ENABLED: &str = "TINKER_TELEMETRY";
/// The environment variable read when no API key is given.
pub const ENV_API_KEY: &str = "TINKER_API_KEY";
/// The environment variable read when no base URL is given.
pub const ENV_BASE_URL: &str = "TINKER_BASE_URL";
/// The environment variable read when no spool directory is given: a non-empty value turns
/// the spool on ([`crate::Builder::spool_dir`]).
pub const ENV_SPOOL_DIR: &str = "TINKER_TELEMETRY_SPOOL_DIR";

/// Default for [`crate::Builder::summary_interval`]: 60 s.
pub const DEFAULT_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);
/// Default for [`crate::Builder::error_spike`]: 5 errors of one operation …
pub const DEFAULT_SPIKE_THRESHOLD: usize = 5;
/// … within 10 s.
pub const DEFAULT_SPIKE_WINDOW: Duration = Duration::from_secs(10);
/// Default for [`crate::Builder::max_operations`]: 256 distinct operations.
pub const DEFAULT_MAX_OPERATIONS: usize = 256;

/// The spool's options as the builder holds them, with their defaults.
#[derive(Debug, Clone)]
pub(crate) struct SpoolOptions {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) interval: Duration,
    pub(crate) max_bytes: u64,
    pub(crate) max_age: Duration,
    pub(crate) sync: SpoolSync,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            dir: None,
            interval: DEFAULT_SPOOL_INTERVAL,
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            max_age: DEFAULT_SPOOL_MAX_AGE,
            sync: SpoolSync::default(),
        }
    }
}
