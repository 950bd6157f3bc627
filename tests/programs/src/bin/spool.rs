//! A reporter with a spool, for the spool's tests: `$TINKER_BASE_URL`, `$TINKER_API_KEY` and
//! `$TINKER_TELEMETRY_SPOOL_DIR` as a user would set them, the rest from variables of this
//! program:
//!
//! - `SPOOL_SESSION`: the session id; `SPOOL_EVENTS`: how many `spool.test` events to log
//!   (each with its number `n`, a `password` field and a URL with a token in `link`);
//! - `SPOOL_FLUSH_TIMEOUT_MS` (default 10,000), `SPOOL_HTTP_TIMEOUT_MS` (default 2,000),
//!   `SPOOL_MAX_RETRIES` (default 3),
//!   `SPOOL_MAX_BYTES` (default the crate's), `SPOOL_DEBUG=1` (`Builder::debug`);
//! - `SPOOL_FSIZE_LIMIT`: a file size limit (`setrlimit(RLIMIT_FSIZE)`) in bytes, to make
//!   the disk "full" for this process (SIGXFSZ is ignored, so a write fails with EFBIG);
//! - `SPOOL_AS_UID`: run as this user (and group) id, when started as root, so that file
//!   permissions apply to it as to any user's program.
//!
//! The first argument says how it ends: `hang` prints `EMITTED` and waits to be killed;
//! `stdin` prints `EMITTED`, logs a `spool.nudge` event and flushes for each line `nudge` on
//! stdin, and shuts down at any other line or the end of stdin; `exit` shuts down at
//! once. Both of those print `REPORT <json>`: the shutdown's counters and the last delivery
//! error.

use std::io::BufRead;
use std::time::Duration;

use serde_json::json;
use tinker_telemetry::{Severity, TinkerTelemetryLayer};

fn var(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let mode = std::env::args().nth(1).expect("a mode: hang, stdin or exit");
    if let Some(limit) = var("SPOOL_FSIZE_LIMIT") {
        limit_file_size(limit);
    }
    if let Some(id) = var("SPOOL_AS_UID") {
        become_user(id as libc::uid_t);
    }
    let session = std::env::var("SPOOL_SESSION").expect("SPOOL_SESSION");
    let mut builder = TinkerTelemetryLayer::builder()
        .session_id(session)
        .flush_interval(Duration::from_secs(3600))
        .retry_base_delay(Duration::from_millis(20))
        .http_timeout(Duration::from_millis(var("SPOOL_HTTP_TIMEOUT_MS").unwrap_or(2_000)))
        .spool_interval(Duration::from_millis(100))
        .max_retries(var("SPOOL_MAX_RETRIES").unwrap_or(3) as u32)
        .flush_timeout(Duration::from_millis(var("SPOOL_FLUSH_TIMEOUT_MS").unwrap_or(10_000)))
        .debug(var("SPOOL_DEBUG") == Some(1));
    if let Some(bytes) = var("SPOOL_MAX_BYTES") {
        builder = builder.spool_max_bytes(bytes);
    }
    let (_layer, guard) = builder.build().expect("a reporter");
    let handle = guard.handle();
    for n in 0..var("SPOOL_EVENTS").unwrap_or(0) {
        let data = json!({
            "n": n,
            "password": "hunter2-not-on-disk",
            "link": "https://files.example/x?token=URLTOKEN-not-on-disk",
        });
        assert!(handle.log("spool.test", data, Severity::Info));
    }
    if mode != "exit" {
        println!("EMITTED");
    }
    match mode.as_str() {
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "stdin" => {
            for line in std::io::stdin().lock().lines() {
                if line.as_deref().map_or(true, |l| l.trim() != "nudge") {
                    break;
                }
                handle.log("spool.nudge", json!({}), Severity::Info);
                handle.flush();
            }
        }
        _ => {}
    }
    let report = guard.shutdown();
    let s = report.stats;
    let error = handle.last_delivery_error().map(|e| e.message);
    let line = json!({
        "accepted": s.accepted,
        "delivered": s.delivered,
        "dropped": s.dropped.total(),
        "unsent_at_shutdown": s.dropped.unsent_at_shutdown,
        "spooled": s.spool.spooled,
        "replayed": s.spool.replayed,
        "spool_dropped": s.spool.dropped.total(),
        "over_size": s.spool.dropped.over_size,
        "too_old": s.spool.dropped.too_old,
        "bad_files": s.spool.bad_files,
        "queued": s.queued,
        "summarized": s.summarized,
        "last_error": error,
    });
    println!("REPORT {line}");
}

/// Limits the size of any file this process writes, and ignores the signal the kernel
/// sends past it, so that the write fails as on a full disk.
fn limit_file_size(bytes: u64) {
    let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
    // SAFETY: plain system calls with valid arguments, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// Gives up root for user and group `id` (as `setpriv --reuid --regid --clear-groups`); a
/// process that is not root already has its user's permissions.
fn become_user(id: libc::uid_t) {
    // SAFETY: plain system calls with valid arguments, before any thread is started.
    unsafe {
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
            assert_eq!(libc::setgid(id as libc::gid_t), 0);
            assert_eq!(libc::setuid(id), 0);
        }
    }
}
