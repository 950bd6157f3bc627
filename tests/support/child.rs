//! Tests that need a process of their own (environment variables, signals, aborts): the test
//! binary runs itself again with one test selected and a marker variable set.

use std::process::{Command, Output};

/// Set in a child process to the name of the test it runs as.
pub const CHILD_MARKER: &str = "TINKER_TELEMETRY_TEST_CHILD";

/// Whether this process is the child started for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_MARKER).is_ok_and(|v| v == test)
}

/// A command that runs this test binary's `test` alone, as a child: proxy variables cleared,
/// the marker set. Add environment and run it.
pub fn child(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]).env(CHILD_MARKER, test);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_ascii_lowercase());
    }
    cmd
}

/// Runs `cmd` to the end; panics with its output when it did not succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "child failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
