//! Records the git commit the server is built from, for `connector-server --version`
//! (`CONNECTOR_GIT_COMMIT`; "unknown" outside a git checkout).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|commit| commit.trim().to_owned())
        .filter(|commit| !commit.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CONNECTOR_GIT_COMMIT={commit}");
    // A new commit moves HEAD (detached) or the branch it names. Git says where they are (in a
    // worktree `.git` is a file, and a path that does not exist would rerun this every build).
    for name in ["HEAD", "refs/heads"] {
        let path = Command::new("git")
            .args(["rev-parse", "--path-format=absolute", "--git-path", name])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok());
        match path {
            Some(path) if std::path::Path::new(path.trim()).exists() => {
                println!("cargo:rerun-if-changed={}", path.trim());
            }
            // Outside a git checkout: nothing moves.
            _ => println!("cargo:rerun-if-changed=build.rs"),
        }
    }
}
