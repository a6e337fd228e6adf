//! The `connector-server` binary as an operator runs it: with no configuration it serves on the
//! embedded default and creates its key files privately; an acknowledged write survives SIGKILL;
//! SIGTERM stops it cleanly; no secret reaches its logs even at `trace`; a PostgreSQL database
//! without a master key is refused with a clear message; health follows the database.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use connector_client::{ConnectorClient, pb};
use connector_server::access::ApiKey;
use connector_tests::{
    Azurite, Backend, ServerBinary, ServerOptions, TestServer, azure_create,
    drop_postgres_database, free_port, fresh_postgres_database, next_event, on_both_backends,
    random_master_key, unique_parent, workspace_binary, write_file,
};

on_both_backends!(
    binary_serves_with_defaults_and_stops_on_sigterm,
    a_watcher_cut_off_by_sigkill_resumes_and_sees_every_event_once,
);

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|_| panic!("{} exists", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The API key given to the PostgreSQL deployment through its config file.
const POSTGRES_API_KEY: &str = "config-file-key";

async fn binary_serves_with_defaults_and_stops_on_sigterm(backend: Backend) {
    let workdir = tempfile::tempdir().unwrap();
    let azurite = Azurite::shared();
    let storage = azurite.account(9);
    let mut env = vec![("CONNECTOR_AZURE_BLOB_ENDPOINT", azurite.endpoint_template())];
    let mut database = None;
    if backend == Backend::Postgres {
        // A PostgreSQL deployment is configured: database, master key and API keys.
        let url = fresh_postgres_database().await;
        let config = workdir.path().join("connector.toml");
        write_file(
            &config,
            &format!(
                "database_url = \"{url}\"\n[[api_keys]]\nid = \"ops\"\nsha256 = \"{}\"\n",
                hex::encode(ApiKey::hash(POSTGRES_API_KEY))
            ),
        );
        env.push(("CONNECTOR_CONFIG", config.display().to_string()));
        env.push(("CONNECTOR_MASTER_KEY", random_master_key()));
        database = Some(url);
    }
    let port = free_port();
    let binary = ServerBinary::start(workdir.path(), port, &env)
        .ready()
        .await;

    let data = workdir.path().join("data");
    let api_key = match backend {
        Backend::Sqlite => {
            let key_file = data.join(connector_server::ADMIN_KEY_FILE);
            assert_eq!(mode_of(&key_file), 0o600, "the admin key file is private");
            assert_eq!(
                mode_of(&data.join(connector_server::MASTER_KEY_FILE)),
                0o600
            );
            assert!(data.join("connectors.db").exists(), "SQLite in ./data");
            // Finding 9: the data directory and the database files are private too.
            assert_eq!(mode_of(&data), 0o700, "the data directory is private");
            for file in ["connectors.db", "connectors.db-wal", "connectors.db-shm"] {
                assert_eq!(mode_of(&data.join(file)), 0o600, "{file} is private");
            }
            std::fs::read_to_string(&key_file)
                .unwrap()
                .trim()
                .to_owned()
        }
        Backend::Postgres => POSTGRES_API_KEY.to_owned(),
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = ConnectorClient::connect(endpoint.clone(), &api_key)
        .await
        .expect("connect");
    let types = client
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect("the API key works");
    assert_eq!(
        types.connector_types.len(),
        connector_server::connector_types::MODULES.len()
    );
    let created = client
        .create_connector(azure_create(&unique_parent(), storage, "durable"))
        .await
        .expect("create");
    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("token");

    // A crash right after the acknowledgement loses nothing.
    tokio::task::spawn_blocking(move || binary.signal("-KILL"))
        .await
        .unwrap();
    let binary = ServerBinary::start(workdir.path(), port, &env)
        .ready()
        .await;
    let client = ConnectorClient::connect(endpoint, &api_key)
        .await
        .expect("connect");
    let survived = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("the acknowledged create survived SIGKILL");
    assert_eq!(survived, created);

    let (status, logs) = tokio::task::spawn_blocking(move || binary.signal("-TERM"))
        .await
        .unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM, got {status}; logs:\n{logs}"
    );
    assert!(logs.contains("SIGTERM"), "logs say why it stopped:\n{logs}");
    let all_logs = logs;
    if backend == Backend::Sqlite {
        assert!(
            all_logs.contains("admin-api-key"),
            "logs say where the key file is"
        );
        // Issue 20: a first start says what the file is for and where the console is.
        assert!(
            all_logs.contains("authorization: Bearer <key>"),
            "logs say the file holds the bearer key:\n{all_logs}"
        );
    }
    assert!(
        all_logs.contains("/console/"),
        "logs name the console's address:\n{all_logs}"
    );
    let signature = token
        .access_token
        .split("sig=")
        .nth(1)
        .expect("a signature");
    for secret in [
        api_key.as_str(),
        storage.key1.as_str(),
        token.access_token.as_str(),
        signature,
    ] {
        assert!(!all_logs.contains(secret), "a secret reached the logs");
    }
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

/// Environment for a binary on `backend` (config file, master key and API key for PostgreSQL),
/// and the API key to use.
async fn binary_setup(
    backend: Backend,
    workdir: &Path,
) -> (Vec<(&'static str, String)>, Option<String>) {
    let mut env = vec![(
        "CONNECTOR_AZURE_BLOB_ENDPOINT",
        Azurite::shared().endpoint_template(),
    )];
    if backend == Backend::Sqlite {
        return (env, None);
    }
    let url = fresh_postgres_database().await;
    let config = workdir.join("connector.toml");
    write_file(
        &config,
        &format!(
            "database_url = \"{url}\"\n[[api_keys]]\nid = \"ops\"\nsha256 = \"{}\"\n",
            hex::encode(ApiKey::hash(POSTGRES_API_KEY))
        ),
    );
    env.push(("CONNECTOR_CONFIG", config.display().to_string()));
    env.push(("CONNECTOR_MASTER_KEY", random_master_key()));
    (env, Some(POSTGRES_API_KEY.to_owned()))
}

async fn a_watcher_cut_off_by_sigkill_resumes_and_sees_every_event_once(backend: Backend) {
    let workdir = tempfile::tempdir().unwrap();
    let (env, configured_key) = binary_setup(backend, workdir.path()).await;
    let port = free_port();
    let binary = ServerBinary::start(workdir.path(), port, &env)
        .ready()
        .await;
    let api_key = configured_key.unwrap_or_else(|| {
        std::fs::read_to_string(
            workdir
                .path()
                .join("data")
                .join(connector_server::ADMIN_KEY_FILE),
        )
        .unwrap()
        .trim()
        .to_owned()
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = ConnectorClient::connect(endpoint.clone(), &api_key)
        .await
        .expect("connect");
    let parent = unique_parent();
    let mut watch = client.watch_events(parent.clone(), 0);
    let azurite = Azurite::shared();
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(
            client
                .create_connector(azure_create(&parent, azurite.account(i), "watched"))
                .await
                .expect("create")
                .name,
        );
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(next_event(&mut watch).await);
    }

    // Cut off: the process dies without a goodbye, then comes back on the same port.
    tokio::task::spawn_blocking(move || binary.signal("-KILL"))
        .await
        .unwrap();
    let binary = ServerBinary::start(workdir.path(), port, &env)
        .ready()
        .await;
    for i in 3..5 {
        created.push(
            client
                .create_connector(azure_create(&parent, azurite.account(i), "watched"))
                .await
                .expect("create after the restart")
                .name,
        );
    }
    while seen.len() < 5 {
        seen.push(next_event(&mut watch).await);
    }
    let names: Vec<String> = seen.iter().map(|event| event.connector.clone()).collect();
    assert_eq!(names, created, "every event exactly once, in order");
    assert!(seen.windows(2).all(|pair| pair[0].cursor < pair[1].cursor));
    // An open watch does not hold up a graceful shutdown.
    let (status, logs) = tokio::task::spawn_blocking(move || binary.signal("-TERM"))
        .await
        .unwrap();
    assert!(
        status.success(),
        "clean exit with a watch open; logs:\n{logs}"
    );
    drop(watch);
}
