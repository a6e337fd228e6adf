//! The `connector-server` binary as an operator runs it: with no configuration it serves on the
//! embedded default and creates its key files privately; SIGTERM stops it cleanly; a PostgreSQL
//! database without a master key is refused with a clear message; health follows the database.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use connector_client::{ConnectorClient, pb};
use connector_tests::{
    Backend, ServerOptions, TestServer, drop_postgres_database, free_port, fresh_postgres_database,
    on_both_backends, random_master_key, wait_for_port, workspace_binary,
};

on_both_backends!(binary_serves_with_defaults_and_stops_on_sigterm);

struct Binary {
    child: Child,
    port: u16,
}

impl Binary {
    fn start(workdir: &Path, env: &[(&str, String)]) -> Binary {
        let port = free_port();
        let child = Command::new(workspace_binary("connector-server"))
            .current_dir(workdir)
            .env("CONNECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start connector-server");
        Binary { child, port }
    }

    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let output = self.child.wait_with_output().expect("output");
                let logs = String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr);
                return (status, logs);
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|_| panic!("{} exists", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn binary_serves_with_defaults_and_stops_on_sigterm(backend: Backend) {
    let workdir = tempfile::tempdir().unwrap();
    let mut env = Vec::new();
    let mut database = None;
    if backend == Backend::Postgres {
        let url = fresh_postgres_database().await;
        env.push(("DATABASE_URL", url.clone()));
        env.push(("CONNECTOR_MASTER_KEY", random_master_key()));
        database = Some(url);
    }
    let binary = Binary::start(workdir.path(), &env);
    let port = binary.port;
    tokio::task::spawn_blocking(move || wait_for_port(port, Duration::from_secs(30)))
        .await
        .unwrap();

    let data = workdir.path().join("data");
    let key_file = data.join(connector_server::ADMIN_KEY_FILE);
    assert_eq!(mode_of(&key_file), 0o600, "the admin key file is private");
    if backend == Backend::Sqlite {
        assert_eq!(
            mode_of(&data.join(connector_server::MASTER_KEY_FILE)),
            0o600
        );
        assert!(data.join("connectors.db").exists(), "SQLite in ./data");
    }
    let admin_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    let client = ConnectorClient::connect(format!("http://127.0.0.1:{port}"), &admin_key)
        .await
        .expect("connect");
    let types = client
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect("the generated admin key works");
    assert_eq!(types.connector_types.len(), 4);

    let (status, logs) = tokio::task::spawn_blocking(move || binary.terminate())
        .await
        .unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM, got {status}; logs:\n{logs}"
    );
    assert!(logs.contains("SIGTERM"), "logs say why it stopped:\n{logs}");
    assert!(
        logs.contains(&*key_file.file_name().unwrap().to_string_lossy()),
        "logs say where the key file is"
    );
    assert!(!logs.contains(&admin_key), "logs never show the key");
    if let Some(url) = database {
        drop_postgres_database(&url).await;
    }
}

#[tokio::test]
async fn postgres_without_a_master_key_is_refused_with_a_clear_message() {
    let workdir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database().await;
    let output = Command::new(workspace_binary("connector-server"))
        .current_dir(workdir.path())
        .env("CONNECTOR_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DATABASE_URL", &url)
        .env_remove("CONNECTOR_MASTER_KEY")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a master key configured"), "{stderr}");
    drop_postgres_database(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_not_serving_when_the_database_goes_away() {
    let mut options = ServerOptions::new(Backend::Postgres);
    options.health_check_interval = Some(Duration::from_millis(100));
    let server = TestServer::start_with(options).await;
    assert_eq!(server.health_status().await.expect("health"), 1, "SERVING");

    drop_postgres_database(&server.database_url).await;
    // Wait for the health watcher's next probe (it runs on its own interval, not the test clock).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if server.health_status().await.expect("health answers") == 2 {
            break; // NOT_SERVING
        }
        assert!(
            Instant::now() < deadline,
            "health still SERVING 15 s after the database went away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = server
        .client()
        .await
        .list_connectors(pb::ListConnectorsRequest {
            parent: "accounts/anyone".into(),
            ..Default::default()
        })
        .await
        .expect_err("no database");
    connector_tests::assert_error(&error, tonic::Code::Unavailable, "DATABASE_UNAVAILABLE");
}
