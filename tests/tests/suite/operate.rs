//! Operating the server binary (issue 12, first part): `--version` names the crate version and
//! the git commit, and `check-config` validates a configuration as start-up does, without
//! opening the database or writing a file, naming what is wrong.

use std::path::Path;
use std::process::{Command, Output};

use connector_tests::{workspace_binary, write_file};

/// Runs `connector-server` in `dir` with `args`, a clean environment for its own variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(workspace_binary("connector-server"));
    command.current_dir(dir).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("CONNECTOR_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run connector-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["--version"], &[]);
    assert!(output.status.success());
    let printed = text(&output.stdout);
    let expected_commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| text(&output.stdout).trim().to_owned());
    assert!(
        printed.starts_with(&format!(
            "connector-server {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{printed}"
    );
    if let Some(commit) = expected_commit {
        // The binary is built from this checkout (it may be behind HEAD only while a commit is
        // being made; scripts/test builds first).
        assert!(
            printed.contains(&commit),
            "{printed} does not name {commit}"
        );
    }
}

#[test]
fn check_config_accepts_the_embedded_default_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["check-config"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    assert!(
        printed.starts_with("configuration OK: Sqlite database"),
        "{printed}"
    );
    assert!(
        printed.contains("metrics: off, logs: text"),
        "metrics are off and logs text by default: {printed}"
    );
    let output = run(
        dir.path(),
        &["check-config"],
        &[
            ("CONNECTOR_METRICS_LISTEN", "127.0.0.1:9464"),
            ("CONNECTOR_LOG_FORMAT", "json"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("metrics: http://127.0.0.1:9464/metrics, logs: json"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no data directory, key file or database was created"
    );
}

#[test]
fn check_config_names_what_is_wrong_without_touching_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connector.toml");

    // An OAuth endpoint that would carry the client secret in the clear.
    write_file(
        &config,
        "[oauth.dropbox]\nclient_id = \"id\"\nclient_secret = \"secret\"\n\
         token_url = \"http://idp.example.com/token\"\n",
    );
    let output = run(
        dir.path(),
        &["check-config", "--config", "connector.toml"],
        &[],
    );
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(
        said.contains("token_url") && said.contains("plain http"),
        "{said}"
    );

    // A PostgreSQL database without a master key: named, and nothing listens at that address,
    // so any attempt to connect would have failed differently.
    let port = connector_tests::free_port();
    let database = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    write_file(&config, &format!("database_url = \"{database}\"\n"));
    let output = run(
        dir.path(),
        &["check-config", "--config", "connector.toml"],
        &[],
    );
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(said.contains("master key"), "{said}");

    // A master key that is not 32 bytes of base64.
    let output = run(
        dir.path(),
        &["check-config", "--config", "connector.toml"],
        &[
            ("CONNECTOR_MASTER_KEY", "not-a-key"),
            ("CONNECTOR_MASTER_KEY_ID", "k1"),
        ],
    );
    assert!(!output.status.success());
    let said = text(&output.stderr).to_lowercase();
    assert!(said.contains("master key") || said.contains("k1"), "{said}");

    // Plaintext off loopback.
    std::fs::remove_file(&config).unwrap();
    let output = run(
        dir.path(),
        &["check-config"],
        &[("CONNECTOR_LISTEN", "0.0.0.0:50051")],
    );
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("without TLS"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

/// Issue 20, defect 9: a start that is refused never binds its port; it validates first. The
/// test holds the very address the server is told to listen on: a server that bound first would
/// fail with "address in use" instead of naming the real problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_start_names_its_reason_without_binding_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let everywhere = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let listen = format!("0.0.0.0:{}", everywhere.local_addr().unwrap().port());
    let output = run(dir.path(), &[], &[("CONNECTOR_LISTEN", &listen)]);
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(
        said.contains(&format!("refusing to listen on {listen} without TLS"))
            && !said.contains("cannot listen"),
        "{said}"
    );

    // A master key that does not open the data the first start sealed.
    let port = connector_tests::free_port();
    let first = connector_tests::ServerBinary::start(
        dir.path(),
        port,
        &[("CONNECTOR_MASTER_KEY", connector_tests::random_master_key())],
    )
    .ready()
    .await;
    let (status, _) = tokio::task::spawn_blocking(move || first.signal("-TERM"))
        .await
        .unwrap();
    assert!(status.success());
    let held = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let other_key = connector_tests::random_master_key();
    let output = run(
        dir.path(),
        &[],
        &[
            ("CONNECTOR_LISTEN", &format!("127.0.0.1:{port}")),
            ("CONNECTOR_MASTER_KEY", &other_key),
        ],
    );
    drop(held);
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(
        said.contains("master key") && !said.contains("cannot listen"),
        "{said}"
    );
}

/// Issue 20: once `[[api_keys]]` is configured, the generated `data/admin-api-key` no longer
/// works; start-up says so instead of letting the key fail silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_api_key_says_the_generated_admin_key_no_longer_works() {
    let dir = tempfile::tempdir().unwrap();
    let key = connector_tests::random_master_key();
    let start = |env: Vec<(&'static str, String)>| {
        let dir = dir.path().to_owned();
        async move {
            let binary =
                connector_tests::ServerBinary::start(&dir, connector_tests::free_port(), &env)
                    .ready()
                    .await;
            let (status, logs) = tokio::task::spawn_blocking(move || binary.signal("-TERM"))
                .await
                .unwrap();
            assert!(status.success(), "{logs}");
            logs
        }
    };
    start(vec![("CONNECTOR_MASTER_KEY", key.clone())]).await;
    assert!(dir.path().join("data/admin-api-key").exists());
    let config = dir.path().join("connector.toml");
    write_file(
        &config,
        "[[api_keys]]\nid = \"ops\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
    );
    let logs = start(vec![
        ("CONNECTOR_MASTER_KEY", key),
        ("CONNECTOR_CONFIG", config.display().to_string()),
    ])
    .await;
    assert!(
        logs.contains("no longer works"),
        "start-up says the key file is unused:\n{logs}"
    );
}
