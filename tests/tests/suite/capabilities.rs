//! Capability-scoped API keys (issue 8), through the real binary with keys from its
//! configuration file: each key may make only the kinds of calls its capabilities name
//! (`read`, `manage`, `tokens`), and anything else answers PERMISSION_DENIED
//! `CAPABILITY_MISSING` naming the capability, before any connector is looked at.

use std::path::Path;

use connector_client::{ConnectorClient, pb};
use connector_server::access::ApiKey;
use connector_tests::{
    Azurite, ServerBinary, assert_error, azure_create, free_port, random_master_key, unique_parent,
    write_file,
};
use tonic::{Code, Status};

/// (key id, capabilities line or none for "absent = all").
const KEYS: [(&str, Option<&str>); 5] = [
    ("admin", None),
    ("orchestrator", Some(r#"["read", "manage"]"#)),
    ("worker", Some(r#"["tokens", "read"]"#)),
    ("auditor", Some(r#"["read"]"#)),
    ("mover", Some(r#"["tokens"]"#)),
];

fn key_secret(id: &str) -> String {
    format!("capability-test-key-{id}")
}

fn config_text() -> String {
    let mut text = String::new();
    for (id, capabilities) in KEYS {
        text.push_str(&format!(
            "[[api_keys]]\nid = \"{id}\"\nsha256 = \"{}\"\n",
            hex::encode(ApiKey::hash(&key_secret(id)))
        ));
        if let Some(capabilities) = capabilities {
            text.push_str(&format!("capabilities = {capabilities}\n"));
        }
    }
    text
}

fn start(workdir: &Path, config: &str) -> (ServerBinary, u16) {
    let file = workdir.join("connector.toml");
    write_file(&file, config);
    let port = free_port();
    let binary = ServerBinary::start(
        workdir,
        port,
        &[
            ("CONNECTOR_CONFIG", file.display().to_string()),
            ("CONNECTOR_MASTER_KEY", random_master_key()),
            (
                "CONNECTOR_AZURE_BLOB_ENDPOINT",
                Azurite::shared().endpoint_template(),
            ),
        ],
    );
    (binary, port)
}

/// Every RPC that touches connectors, called by `client` on `name` (under `parent`); returns
/// the RPC's name and its result reduced to the status (if any).
async fn every_call(
    client: &ConnectorClient,
    parent: &str,
    name: &str,
) -> Vec<(&'static str, Option<Status>)> {
    fn status<T>(result: Result<T, Status>) -> Option<Status> {
        result.err()
    }
    let mut watch = client.watch_events(parent, 0);
    // A permitted watch stays open with nothing to deliver; a refused one ends with its error.
    let watched = tokio::time::timeout(std::time::Duration::from_secs(2), watch.next())
        .await
        .ok()
        .flatten()
        .and_then(Result::err);
    vec![
        (
            "read: GetConnector",
            status(
                client
                    .get_connector(pb::GetConnectorRequest {
                        name: name.to_owned(),
                    })
                    .await,
            ),
        ),
        (
            "read: ListConnectors",
            status(
                client
                    .list_connectors(pb::ListConnectorsRequest {
                        parent: parent.to_owned(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "read: ListConnectorEvents",
            status(
                client
                    .list_connector_events(pb::ListConnectorEventsRequest {
                        parent: parent.to_owned(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        ("read: WatchConnectorEvents", watched),
        (
            "manage: StartAuthorization",
            status(
                client
                    .start_authorization(pb::StartAuthorizationRequest {
                        parent: parent.to_owned(),
                        connector_type: "connectorTypes/onedrive-consumer".to_owned(),
                        display_name: "never linked".to_owned(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "manage: StartReauthorization",
            status(
                client
                    .start_reauthorization(pb::StartReauthorizationRequest {
                        name: name.to_owned(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "manage: CompleteAuthorization",
            status(
                client
                    .complete_authorization(pb::CompleteAuthorizationRequest {
                        state: "0".repeat(64),
                        code: "code".to_owned(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "manage: UpdateConnector",
            status(
                client
                    .update_connector(pb::UpdateConnectorRequest {
                        connector: Some(pb::Connector {
                            name: name.to_owned(),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["labels".to_owned()],
                        }),
                    })
                    .await,
            ),
        ),
        (
            "manage: ReauthorizeConnector",
            status(
                client
                    .reauthorize_connector(pb::ReauthorizeConnectorRequest {
                        name: name.to_owned(),
                        credentials: None,
                    })
                    .await,
            ),
        ),
        (
            "manage: DeleteAccount",
            status(
                client
                    .delete_account(pb::DeleteAccountRequest {
                        name: format!("{parent}-other"),
                    })
                    .await,
            ),
        ),
        (
            "tokens: GetAccessToken",
            status(
                client
                    .get_access_token(pb::GetAccessTokenRequest {
                        name: name.to_owned(),
                    })
                    .await,
            ),
        ),
        (
            "tokens: RecordTransfer",
            status(
                client
                    .record_transfer(pb::RecordTransferRequest {
                        name: name.to_owned(),
                        bytes_transferred: 1,
                    })
                    .await,
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_makes_only_the_calls_its_capabilities_name() {
    let workdir = tempfile::tempdir().unwrap();
    let (binary, port) = start(workdir.path(), &config_text());
    let binary = binary.ready().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = |id: &str| ConnectorClient::connect(endpoint.clone(), key_secret(id));

    // The orchestrator's key creates; the worker's key gets working credentials.
    let parent = unique_parent();
    let storage = Azurite::shared().account(0);
    let orchestrator = client("orchestrator").await.unwrap();
    let connector = orchestrator
        .create_connector(azure_create(&parent, storage, "Capabilities"))
        .await
        .expect("the orchestrator's key creates connectors");
    let worker = client("worker").await.unwrap();
    let token = worker
        .get_access_token(pb::GetAccessTokenRequest {
            name: connector.name.clone(),
        })
        .await
        .expect("the worker's key gets credentials");
    assert_eq!(
        Azurite::shared()
            .use_sas(&storage.name, &token.access_token)
            .await,
        201,
        "the SAS the worker got works"
    );

    for (id, capabilities) in KEYS {
        let granted: Vec<&str> = match capabilities {
            None => vec!["read", "manage", "tokens"],
            Some(list) => list
                .trim_matches(['[', ']'])
                .split(',')
                .map(|name| name.trim().trim_matches('"'))
                .collect(),
        };
        let key = client(id).await.unwrap();
        for (call, outcome) in every_call(&key, &parent, &connector.name).await {
            let needed = call.split(':').next().unwrap();
            let denied = outcome
                .as_ref()
                .is_some_and(|status| status.code() == Code::PermissionDenied);
            if granted.contains(&needed) {
                assert!(!denied, "key {id} was refused {call}: {outcome:?}");
            } else {
                let status = outcome.unwrap_or_else(|| panic!("key {id} was allowed {call}"));
                let metadata = assert_error(&status, Code::PermissionDenied, "CAPABILITY_MISSING");
                assert_eq!(metadata["capability"], needed, "{call} by {id}");
            }
        }
    }

    // Still there: nothing a refused key did took effect, and the orchestrator deletes it.
    let still = orchestrator
        .get_connector(pb::GetConnectorRequest {
            name: connector.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(still.display_name, "Capabilities");
    let denied = worker
        .delete_connector(pb::DeleteConnectorRequest {
            name: connector.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&denied, Code::PermissionDenied, "CAPABILITY_MISSING");
    orchestrator
        .delete_connector(pb::DeleteConnectorRequest {
            name: connector.name.clone(),
            ..Default::default()
        })
        .await
        .expect("the orchestrator's key deletes");
    binary.signal("-TERM");
}

#[test]
fn an_unknown_capability_refuses_to_start() {
    let workdir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[api_keys]]\nid = \"typo\"\nsha256 = \"{}\"\ncapabilities = [\"raed\"]\n",
        hex::encode(ApiKey::hash("typo-key"))
    );
    let (binary, _) = start(workdir.path(), &config);
    let (status, logs) = binary.exit_within(std::time::Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        logs.contains("capability `raed`"),
        "the refusal names the capability: {logs}"
    );
}

/// The audit trail (issue 8), from the real binary's JSON logs: one record per credential
/// issued (key id, connector, token type, expiry; never the token), per create and delete, and
/// per refused call, rate-limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_credentials_changes_and_refusals() {
    let workdir = tempfile::tempdir().unwrap();
    let file = workdir.path().join("connector.toml");
    write_file(&file, &config_text());
    let port = free_port();
    let binary = ServerBinary::start(
        workdir.path(),
        port,
        &[
            ("CONNECTOR_CONFIG", file.display().to_string()),
            ("CONNECTOR_MASTER_KEY", random_master_key()),
            (
                "CONNECTOR_AZURE_BLOB_ENDPOINT",
                Azurite::shared().endpoint_template(),
            ),
            ("CONNECTOR_LOG_FORMAT", "json".to_owned()),
        ],
    )
    .ready()
    .await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = |id: &str| ConnectorClient::connect(endpoint.clone(), key_secret(id));
    let orchestrator = client("orchestrator").await.unwrap();
    let connector = orchestrator
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(1),
            "Audited",
        ))
        .await
        .unwrap();
    let token = client("worker")
        .await
        .unwrap()
        .get_access_token(pb::GetAccessTokenRequest {
            name: connector.name.clone(),
        })
        .await
        .unwrap();
    let refused = client("auditor")
        .await
        .unwrap()
        .get_access_token(pb::GetAccessTokenRequest {
            name: connector.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    orchestrator
        .delete_connector(pb::DeleteConnectorRequest {
            name: connector.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // A flood of bad keys.
    let stranger = ConnectorClient::connect(endpoint.clone(), "not-a-key")
        .await
        .unwrap();
    for _ in 0..200 {
        let refused = stranger
            .list_connector_types(pb::ListConnectorTypesRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    let (_, logs) = binary.signal("-TERM");

    let audit: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|record| record["target"] == "audit")
        .collect();
    let find = |action: &str| -> Vec<&serde_json::Value> {
        audit
            .iter()
            .filter(|record| record["action"] == action)
            .collect()
    };
    let issued = find("credential_issued");
    assert_eq!(issued.len(), 1, "{audit:#?}");
    assert_eq!(issued[0]["key_id"], "worker");
    assert_eq!(issued[0]["connector"], connector.name.as_str());
    assert_eq!(issued[0]["token_type"], "TOKEN_TYPE_AZURE_SAS");
    assert!(
        issued[0]["expire_time"]
            .as_str()
            .is_some_and(|time| time.starts_with("20")),
        "{:?}",
        issued[0]
    );
    assert!(
        !logs.contains(&token.access_token),
        "the SAS itself reached the logs"
    );
    let created = find("connector_created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["key_id"], "orchestrator");
    assert_eq!(created[0]["resource"], connector.name.as_str());
    let deleted = find("connector_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["key_id"], "orchestrator");

    let refusals = find("refused");
    let capability: Vec<_> = refusals
        .iter()
        .filter(|record| record["reason"] == "CAPABILITY_MISSING")
        .collect();
    assert_eq!(capability.len(), 1, "{refusals:#?}");
    assert_eq!(capability[0]["key_id"], "auditor");
    assert_eq!(capability[0]["detail"], "tokens");
    let bad_keys: Vec<_> = refusals
        .iter()
        .filter(|record| record["reason"] == "API_KEY_INVALID")
        .collect();
    assert!(!bad_keys.is_empty());
    assert!(
        bad_keys[0]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(
        bad_keys.len() < 200,
        "refusals are rate-limited: {} records for 200 refusals",
        bad_keys.len()
    );
    println!(
        "200 refused calls left {} audit records (at most {} a second)",
        bad_keys.len(),
        connector_server::audit::REFUSALS_PER_SECOND
    );
}
