//! A reporter inherited by a forked child. The parent builds a reporter aimed at
//! `$TINKER_BASE_URL` (panic hook installed), logs three events and waits for them, then
//! forks. The child, depending on the first argument:
//!
//! - `drop`: calls every method that would wait for the uploader (which stayed in the
//!   parent) or read what it publishes (the analysis, which holds an operation in the
//!   parent), then drops the guard, and exits 0 if each returned what a child should get;
//! - `panic`: panics, and so aborts (`panic = "abort"`) once the hook returns.
//!
//! The parent waits for the child, logs one more event, drops its guard, and prints
//! `CHILD status=<exit code or -signal> elapsed_ms=<fork to child's end>`.

use std::time::{Duration, Instant};

use serde_json::json;
use tinker_telemetry::{HttpError, Severity};
use tinker_telemetry_programs::reporter_with_operation;

fn main() {
    let mode = std::env::args().nth(1).expect("a mode: drop or panic");
    let (guard, handle) = reporter_with_operation("fork-session", "before.fork", 3);
    assert!(handle.wait_until_drained(Duration::from_secs(10)));
    assert_eq!(handle.operations().operations.len(), 1, "the parent's analysis holds the operation");
    let forked_at = Instant::now();
    // SAFETY: the child only calls the crate's methods, which check the process id before
    // touching a lock or the uploader, and then ends with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = match mode.as_str() {
            "drop" => {
                let waited = handle.wait_until_drained(Duration::from_secs(10));
                let fatal =
                    handle.log_fatal_exception(&HttpError::new(500, "in the child"), Severity::Critical);
                let read = handle.operations().operations.is_empty() && handle.usage().top.is_empty();
                let report = handle.shutdown(Duration::from_secs(10));
                drop(guard);
                !waited && !fatal && read && !report.drained
            }
            _ => panic!("boom in the child"),
        };
        // SAFETY: ends the child without running the parent's exit handlers twice.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` outlives the call.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid failed");
    let elapsed = forked_at.elapsed();
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
    handle.log("after.fork", json!({}), Severity::Info);
    let report = guard.shutdown();
    assert!(report.drained, "{report:?}");
    println!("CHILD status={code} elapsed_ms={}", elapsed.as_millis());
}
