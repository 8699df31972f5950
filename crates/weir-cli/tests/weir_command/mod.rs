//! Running the `weir` binary from the Kafka tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `weir` binary of this build.
pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// Runs `weir ARGS`; panics with its output unless it succeeds; returns its stdout.
pub fn weir(args: &[&str]) -> String {
    let out = Command::new(WEIR)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "weir {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The repository's `fixtures/`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
