//! The README's shell sessions, run as a new user runs them: the block between its markers,
//! as written, by `bash` at the repository root in a fresh environment. Nothing is substituted
//! and `PATH` is `/usr/bin:/bin`, so a block that relies on a tool it does not install or put
//! on `PATH` itself fails here as it would for the user.
//!
//! What the shell is given, and why:
//! - `HOME`, the real one: where rustup keeps cargo and the toolchain for this user, as a new
//!   user's `~/.cargo` would be (the blocks add `${CARGO_HOME:-$HOME/.cargo}/bin` to `PATH`).
//! - `CARGO_HOME` and `RUSTUP_HOME`, only when the tests run with them set: a toolchain kept
//!   outside `HOME` (as in the official Rust container image), which a user's login shell sets.
//! - An `EXIT` trap that kills the block's background jobs should it fail half-way, and, when
//!   asked for, `set -e`, so a failing command stops the run where it failed.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

/// The repository root.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The `sh` block of README.md between `<!-- {marker}:start -->` and `<!-- {marker}:end -->`,
/// without its fences: the README sessions the tests run as written.
pub fn readme_script(marker: &str) -> String {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).expect("README.md");
    let block = readme
        .split(&format!("<!-- {marker}:start -->"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("<!-- {marker}:end -->")).next())
        .unwrap_or_else(|| panic!("{marker} markers in README.md"));
    block
        .trim()
        .trim_start_matches("```sh")
        .trim_end_matches("```")
        .to_owned()
}

/// How a block is run.
#[derive(Debug, Clone, Copy)]
pub struct FreshShell {
    /// Stop at the first failing command (`set -e`); off for a block that shows errors on
    /// purpose.
    pub stop_on_error: bool,
    /// A bound on the whole run, should it hang. It includes the block's own `cargo build`,
    /// which is quick when the tests' build is fresh but recompiles on a changed tree.
    pub timeout: Duration,
}

/// Runs the README block between the `marker` markers in a fresh shell at the repository root
/// (see the module's header for what the shell is given); returns its output.
pub fn run_readme_block(marker: &str, shell: FreshShell) -> Output {
    let mut script = String::from("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n");
    if shell.stop_on_error {
        script.push_str("set -e\n");
    }
    script.push_str(&readme_script(marker));
    let mut command = Command::new("timeout");
    command
        .arg(shell.timeout.as_secs().to_string())
        .args(["bash", "-c", &script])
        .current_dir(repository_root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env(
            "HOME",
            std::env::var_os("HOME").expect("HOME is set for the tests"),
        );
    for passed in ["CARGO_HOME", "RUSTUP_HOME"] {
        if let Some(value) = std::env::var_os(passed) {
            command.env(passed, value);
        }
    }
    command.output().expect("run bash")
}

/// The files a README session might leave in the repository root, with their modification
/// times (`None`: absent); compare before and after a run to see that it left nothing.
pub fn root_leftovers() -> Vec<(&'static str, Option<std::time::SystemTime>)> {
    [
        "ops.key",
        "connector.toml",
        "data/admin-api-key",
        "data/connectors.db",
    ]
    .into_iter()
    .map(|file| {
        let modified = std::fs::metadata(repository_root().join(file))
            .and_then(|metadata| metadata.modified())
            .ok();
        (file, modified)
    })
    .collect()
}

/// The directory a session printed after `marker` (for example "data in "), to check that the
/// session removed it.
pub fn printed_path(output: &str, marker: &str) -> PathBuf {
    let start = output
        .find(marker)
        .unwrap_or_else(|| panic!("the output names `{marker}…`:\n{output}"))
        + marker.len();
    let path = output[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default();
    PathBuf::from(path)
}
