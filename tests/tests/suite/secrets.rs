//! Secrets at rest: account keys are sealed with AES-256-GCM, bound to their connector, and a
//! server refuses to start with a master key that does not open existing data. Generated key
//! files are private to their owner.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use connector_client::pb;
use connector_tests::{
    Azurite, Backend, ServerOptions, TestServer, assert_error, azure_create, contains_bytes,
    on_both_backends, random_master_key, read_bytes, unique_parent,
};
use tonic::Code;

on_both_backends!(
    account_keys_are_sealed_at_rest,
    ciphertext_copied_to_another_connector_does_not_open,
    a_wrong_master_key_refuses_to_start,
    rotated_master_key_still_opens_old_secrets,
    rewrap_reseals_online_so_the_previous_key_can_go,
);

async fn account_keys_are_sealed_at_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(0);
    let created = client
        .create_connector(azure_create(&unique_parent(), account, "sealed"))
        .await
        .expect("create");
    let raw_key = BASE64.decode(&account.key1).unwrap();

    let ciphertexts = server
        .query_blobs("SELECT ciphertext FROM connector_secret")
        .await;
    assert_eq!(ciphertexts.len(), 1);
    assert!(!contains_bytes(&ciphertexts[0], &raw_key));
    assert!(!contains_bytes(&ciphertexts[0], account.key1.as_bytes()));
    assert_eq!(
        ciphertexts[0].len(),
        raw_key.len() + 16,
        "AES-GCM: ciphertext plus a 16-byte tag"
    );
    let nonces = server
        .query_blobs("SELECT nonce FROM connector_secret")
        .await;
    assert_eq!(
        nonces[0].len(),
        13,
        "the format byte (sealed with a derived sub-key) and the 12-byte GCM nonce"
    );
    assert_eq!(nonces[0][0], 1);
    assert_eq!(
        server
            .query_string("SELECT key_id FROM connector_secret")
            .await,
        key_id(&server)
    );

    if backend == Backend::Sqlite {
        // Nothing in the database files (main file and write-ahead log) holds the key.
        for file in ["connectors.db", "connectors.db-wal"] {
            let bytes = read_bytes(&server.data_dir.join(file));
            assert!(
                !contains_bytes(&bytes, &raw_key),
                "{file} holds the raw key"
            );
            assert!(
                !contains_bytes(&bytes, account.key1.as_bytes()),
                "{file} holds the base64 key"
            );
        }
    }
    // Every read of the connector keeps the key out of the answer.
    let shown = client
        .get_connector(pb::GetConnectorRequest { name: created.name })
        .await
        .expect("get");
    assert!(!format!("{shown:?}").contains(&account.key1));
}

fn key_id(server: &TestServer) -> String {
    if server.master_key.is_some() {
        "test-key"
    } else {
        "local"
    }
    .to_owned()
}

async fn ciphertext_copied_to_another_connector_does_not_open(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();
    let victim = client
        .create_connector(azure_create(&parent, azurite.account(1), "victim"))
        .await
        .expect("victim");
    let thief = client
        .create_connector(azure_create(&parent, azurite.account(2), "thief"))
        .await
        .expect("thief");
    let id = |name: &str| name.rsplit('/').next().unwrap().to_owned();
    // Copy the victim's sealed key (nonce and ciphertext) into the thief's row.
    server
        .execute_sql(&format!(
            "UPDATE connector_secret SET \
               nonce = (SELECT nonce FROM connector_secret WHERE connector_id = '{victim}'), \
               ciphertext = (SELECT ciphertext FROM connector_secret WHERE connector_id = '{victim}') \
             WHERE connector_id = '{thief}'",
            victim = id(&victim.name),
            thief = id(&thief.name),
        ))
        .await;

    let error = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: thief.name.clone(),
        })
        .await
        .expect_err("moved ciphertext must not open");
    assert_error(&error, Code::Internal, "INTERNAL");
    assert_eq!(
        error.message(),
        "internal error",
        "no detail leaks to the caller"
    );
    // The victim's own connector is unaffected.
    client
        .get_access_token(pb::GetAccessTokenRequest { name: victim.name })
        .await
        .expect("victim still works");
}

async fn a_wrong_master_key_refuses_to_start(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(3),
            "keyed",
        ))
        .await
        .expect("create");
    server.stop().await;

    // Same key id, different key.
    let original = server.master_key.clone();
    let mut config = server.config();
    match &original {
        Some(_) => {
            config.master_key = Some(connector_server::config::MasterKeyConfig {
                id: "test-key".into(),
                key_base64: random_master_key().into(),
            });
        }
        None => {
            // The embedded default: someone replaced the generated key file.
            std::fs::write(
                server.data_dir.join(connector_server::MASTER_KEY_FILE),
                random_master_key(),
            )
            .unwrap();
        }
    }
    let refused = server.boot_with(config).await.expect_err("must refuse");
    assert!(refused.contains("master key"), "{refused}");
    assert!(refused.contains("not the key that sealed"), "{refused}");

    // A new key id while secrets sealed with the old one exist.
    let mut config = server.config();
    config.master_key = Some(connector_server::config::MasterKeyConfig {
        id: "another-id".into(),
        key_base64: random_master_key().into(),
    });
    let refused = server.boot_with(config).await.expect_err("must refuse");
    assert!(refused.contains("not configured"), "{refused}");

    // The right key starts, and the stored key still signs a working SAS.
    if original.is_none() {
        return; // the generated key file was overwritten above: nothing can open that data now
    }
    server.boot().await.expect("right key starts");
    let token = server
        .client()
        .await
        .get_access_token(pb::GetAccessTokenRequest { name: created.name })
        .await
        .expect("token");
    assert_eq!(
        Azurite::shared()
            .use_sas("store03", &token.access_token)
            .await,
        201
    );
}

async fn rotated_master_key_still_opens_old_secrets(backend: Backend) {
    let mut options = ServerOptions::new(backend);
    options.configure_master_key = true;
    let mut server = TestServer::start_with(options).await;
    let client = server.client().await;
    let parent = unique_parent();
    let old = client
        .create_connector(azure_create(&parent, Azurite::shared().account(4), "old"))
        .await
        .expect("create");
    server.stop().await;

    let mut config = server.config();
    let old_key = config.master_key.take().unwrap();
    config.master_key = Some(connector_server::config::MasterKeyConfig {
        id: "rotated".into(),
        key_base64: random_master_key().into(),
    });
    config.previous_master_keys = vec![old_key];
    server
        .boot_with(config)
        .await
        .expect("starts with the rotated key");
    let client = server.client().await;
    client
        .get_access_token(pb::GetAccessTokenRequest { name: old.name })
        .await
        .expect("old secret opens with the previous key");
    client
        .create_connector(azure_create(&parent, Azurite::shared().account(5), "new"))
        .await
        .expect("create with the new key");
    let key_ids = server
        .query_i64("SELECT COUNT(DISTINCT key_id) FROM connector_secret")
        .await;
    assert_eq!(key_ids, 2, "new secrets are sealed with the new key");
}

/// Issue 8, fix 10: `rewrap` seals every secret again under the current key while the server
/// runs, in batches; afterwards the server starts without the previous key and everything
/// still opens.
async fn rewrap_reseals_online_so_the_previous_key_can_go(backend: Backend) {
    let mut options = ServerOptions::new(backend);
    options.configure_master_key = true;
    let mut server = TestServer::start_with(options).await;
    let client = server.client().await;
    let parent = unique_parent();
    let mut old = Vec::new();
    for (i, account) in [6, 7, 8].into_iter().enumerate() {
        old.push(
            client
                .create_connector(azure_create(
                    &parent,
                    Azurite::shared().account(account),
                    &format!("old {i}"),
                ))
                .await
                .expect("create"),
        );
    }
    server.stop().await;

    let mut config = server.config();
    let old_key = config.master_key.take().unwrap();
    config.master_key = Some(connector_server::config::MasterKeyConfig {
        id: "rotated".into(),
        key_base64: random_master_key().into(),
    });
    config.previous_master_keys = vec![old_key];
    server.boot_with(config.clone()).await.expect("rotated");
    // Online: the server keeps serving while the rewrap runs, two rows per transaction.
    let report = connector_server::rewrap(&config, 2).await.expect("rewrap");
    assert_eq!(report.resealed, 3, "{report:?}");
    assert_eq!(report.unopenable, 0, "{report:?}");
    let again = connector_server::rewrap(&config, 2).await.expect("rewrap");
    assert_eq!((again.resealed, again.current), (0, 3), "{again:?}");
    assert_eq!(
        server
            .query_string("SELECT DISTINCT key_id FROM connector_secret")
            .await,
        "rotated"
    );
    server.stop().await;

    config.previous_master_keys.clear();
    server
        .boot_with(config)
        .await
        .expect("starts without the previous key");
    let client = server.client().await;
    for connector in old {
        client
            .get_access_token(pb::GetAccessTokenRequest {
                name: connector.name,
            })
            .await
            .expect("the resealed secret opens with the current key alone");
    }
}

/// SQLite only: PostgreSQL keeps dead rows until its own vacuum, which is outside what the
/// service controls (see the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_keep_no_copy_of_a_deleted_secret() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(6),
            "gone",
        ))
        .await
        .expect("create");
    let ciphertext = server
        .query_blobs("SELECT ciphertext FROM connector_secret")
        .await
        .remove(0);
    let files = || {
        ["connectors.db", "connectors.db-wal"]
            .map(|file| read_bytes(&server.data_dir.join(file)))
            .concat()
    };
    assert!(
        contains_bytes(&files(), &ciphertext),
        "the ciphertext is on disk while the connector exists"
    );
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name,
            etag: String::new(),
        })
        .await
        .expect("delete");
    assert!(
        !contains_bytes(&files(), &ciphertext),
        "a deleted secret leaves no copy on disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_in_wal_mode() {
    let server = TestServer::start(Backend::Sqlite).await;
    assert_eq!(server.query_string("PRAGMA journal_mode").await, "wal");
}

/// The `connector-server rewrap` command, on the real binary's own data directory (SQLite):
/// after it, a configuration without the previous key starts and opens everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rewrap_command_lets_the_previous_key_be_removed() {
    use connector_tests::{ServerBinary, free_port, workspace_binary, write_file};
    let workdir = tempfile::tempdir().unwrap();
    let (old_key, new_key) = (random_master_key(), random_master_key());
    let config_file = workdir.path().join("connector.toml");
    let key_hash = hex::encode(connector_server::access::ApiKey::hash("rewrap-key"));
    let config = |previous: bool| {
        let mut text = format!(
            "[master_key]\nid = \"new\"\nkey = \"{new_key}\"\n[[api_keys]]\nid = \"ops\"\nsha256 = \"{key_hash}\"\n"
        );
        if previous {
            text.push_str(&format!(
                "[[previous_master_keys]]\nid = \"old\"\nkey = \"{old_key}\"\n"
            ));
        }
        text
    };
    let azure = (
        "CONNECTOR_AZURE_BLOB_ENDPOINT",
        Azurite::shared().endpoint_template(),
    );
    // A secret sealed with the old key.
    write_file(
        &config_file,
        &format!("[[api_keys]]\nid = \"ops\"\nsha256 = \"{key_hash}\"\n"),
    );
    let port = free_port();
    let env = |key: &str| {
        vec![
            ("CONNECTOR_CONFIG", config_file.display().to_string()),
            ("CONNECTOR_MASTER_KEY", key.to_owned()),
            ("CONNECTOR_MASTER_KEY_ID", "old".to_owned()),
            azure.clone(),
        ]
    };
    let binary = ServerBinary::start(workdir.path(), port, &env(&old_key))
        .ready()
        .await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = connector_client::ConnectorClient::connect(endpoint.clone(), "rewrap-key")
        .await
        .unwrap();
    let connector = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(9),
            "rewrapped",
        ))
        .await
        .expect("create");
    let (status, _) = binary.signal("-TERM");
    assert!(status.success());

    // Rotate in the file (new current, old previous) and rewrap with the command.
    write_file(&config_file, &config(true));
    let output = std::process::Command::new(workspace_binary("connector-server"))
        .args(["rewrap", "--batch", "1", "--config"])
        .arg(&config_file)
        .current_dir(workdir.path())
        .output()
        .expect("run rewrap");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("1 resealed"), "{printed}");

    // Without the previous key the server starts, and the secret opens.
    write_file(&config_file, &config(false));
    let binary = ServerBinary::start(
        workdir.path(),
        port,
        &[
            ("CONNECTOR_CONFIG", config_file.display().to_string()),
            azure,
        ],
    )
    .ready()
    .await;
    let client = connector_client::ConnectorClient::connect(endpoint, "rewrap-key")
        .await
        .unwrap();
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: connector.name,
        })
        .await
        .expect("opens with the new key alone");
    binary.signal("-TERM");
}
