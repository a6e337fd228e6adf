//! Where the tests find the tools and binaries they run: environment variables set by
//! `scripts/test`, and the workspace's own binaries next to the test binary.

use std::path::{Path, PathBuf};

/// A required environment variable set by `scripts/test`.
pub fn tool_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with `scripts/test`, which installs and starts the tools the tests need")
    })
}

/// Path of a workspace binary (built by `scripts/test` before the tests run).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> → target/debug/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("target directory");
    assert!(
        path.exists(),
        "{} is missing: `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}
