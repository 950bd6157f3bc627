//! The programs in `tests/programs/` (a crate of its own, built with `panic = "abort"`, free to
//! use `unsafe` for `fork`): built once per test binary run, then run as child processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// A command for the program `name` (a file in `tests/programs/src/bin/`), built first if
/// this test binary has not built the programs yet. Proxy variables are cleared.
pub fn program(name: &str) -> Command {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build);
    let mut cmd = Command::new(dir.join(name));
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_ascii_lowercase());
    }
    cmd
}

/// `cargo build` of the programs crate into `target/programs`; returns where the binaries are.
fn build() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target").join("programs");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let out = Command::new(cargo)
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(root.join("tests/programs/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building tests/programs failed (after a dependency change, update its Cargo.lock with \
         `cargo update --manifest-path tests/programs/Cargo.toml --workspace`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("built tests/programs in {:.1} s", started.elapsed().as_secs_f64());
    target.join("debug")
}
