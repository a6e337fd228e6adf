//! Azure Blob Storage connectors end to end against Azurite: create, once per account, get,
//! reauthorize, delete, SAS tokens that Azurite accepts, transfers.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::{Duration, Utc};
use connector_client::pb;
use connector_server::clock::Clock as _;
use connector_tests::{
    Azurite, Backend, ServerOptions, StorageAccount, TestServer, assert_error,
    assert_invalid_field, azure_create, azure_create_with_key, azure_credentials,
    azure_error_endpoint, free_port, on_both_backends, unique_parent,
};
use tonic::Code;

on_both_backends!(
    create_checks_the_key_and_links_the_storage_account,
    wrong_key_is_rejected_and_nothing_is_saved,
    unreachable_endpoint_is_unavailable_and_nothing_is_saved,
    oauth_types_are_not_created_with_credentials,
    one_connector_per_storage_account_and_customer_account,
    concurrent_creates_for_one_storage_account_make_one_connector,
    reauthorize_keeps_name_and_display_name,
    reauthorize_with_another_storage_account_changes_nothing,
    reauthorize_with_a_wrong_key_changes_nothing,
    delete_is_permanent,
    sas_from_get_access_token_works_at_azurite,
    sas_is_not_issued_after_delete,
    record_transfer_sets_last_transfer_time,
    reauthorize_stores_the_new_key,
    reauthorize_while_the_storage_service_is_unreachable_changes_nothing,
    a_storage_service_that_hangs_is_unavailable_after_the_provider_timeout,
    a_call_past_the_server_deadline_is_deadline_exceeded,
    a_key_rotated_by_the_customer_deauthorizes_the_connector,
    an_unreachable_storage_service_does_not_deauthorize,
    a_storage_firewall_refusal_does_not_deauthorize,
);

async fn create_checks_the_key_and_links_the_storage_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();

    let created = client
        .create_connector(azure_create(
            &parent,
            azurite.account(0),
            "Marketing archive",
        ))
        .await
        .expect("created");

    assert!(created.name.starts_with(&format!("{parent}/connectors/")));
    assert_eq!(created.connector_type, "connectorTypes/azure-blob-storage");
    assert_eq!(created.display_name, "Marketing archive");
    assert_eq!(created.state(), pb::connector::State::Authorized);
    assert_eq!(created.auth_method(), pb::AuthMethod::AccountKey);
    let external = created.external_account.clone().expect("external account");
    assert_eq!(external.id, "store00");
    let now = server.clock.now().timestamp();
    assert_eq!(created.create_time.as_ref().map(|t| t.seconds), Some(now));
    assert_eq!(
        created.authorize_time.as_ref().map(|t| t.seconds),
        Some(now)
    );
    assert!(created.last_transfer_time.is_none());
    assert!(!created.etag.is_empty());

    let fetched = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get");
    assert_eq!(fetched, created);
}

async fn wrong_key_is_rejected_and_nothing_is_saved(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();
    let account = azurite.account(1);

    // A well-formed key that is not the account's.
    let error = client
        .create_connector(azure_create_with_key(
            &parent,
            &account.name,
            &azurite.account(2).key1,
            "x",
        ))
        .await
        .expect_err("rejected");
    assert_error(&error, Code::InvalidArgument, "CREDENTIALS_REJECTED");
    assert!(
        !error.message().contains(&azurite.account(2).key1),
        "the key is never echoed"
    );

    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(listed.connectors.is_empty());
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0
    );
}

async fn unreachable_endpoint_is_unavailable_and_nothing_is_saved(backend: Backend) {
    // Nothing listens on this port: the check cannot be made.
    let closed_port = connector_tests::free_port();
    let mut options = ServerOptions::new(backend);
    options.azure_blob_endpoint = Some(format!("http://127.0.0.1:{closed_port}/{{account}}"));
    let server = TestServer::start_with(options).await;
    let client = server.client().await;
    let parent = unique_parent();

    let error = client
        .create_connector(azure_create(&parent, Azurite::shared().account(0), "x"))
        .await
        .expect_err("unavailable");
    assert_error(&error, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    use tonic_types::StatusExt as _;
    assert!(
        error.get_details_retry_info().is_some(),
        "tells when to retry"
    );
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
}

async fn oauth_types_are_not_created_with_credentials(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    for connector_type in [
        "connectorTypes/onedrive-consumer",
        "connectorTypes/office-365",
        "connectorTypes/onedrive-for-business-user",
    ] {
        let mut request = azure_create(&unique_parent(), Azurite::shared().account(0), "x");
        request.connector.as_mut().unwrap().connector_type = connector_type.to_owned();
        let error = client.create_connector(request).await.expect_err("refused");
        assert_error(
            &error,
            Code::FailedPrecondition,
            "OAUTH_AUTHORIZATION_REQUIRED",
        );
        assert!(
            error.message().contains("StartAuthorization"),
            "{}",
            error.message()
        );
    }
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
}

async fn one_connector_per_storage_account_and_customer_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();

    let first = client
        .create_connector(azure_create(&parent, azurite.account(3), "first"))
        .await
        .expect("first");
    // Same storage account, other key, other display name: still the same external account.
    let mut again = azure_create(&parent, azurite.account(3), "second");
    again.credentials = Some(azure_credentials(
        &azurite.account(3).name,
        &azurite.account(3).key2,
    ));
    let error = client.create_connector(again).await.expect_err("duplicate");
    let metadata = assert_error(&error, Code::AlreadyExists, "CONNECTOR_ALREADY_EXISTS");
    assert_eq!(metadata.get("connector"), Some(&first.name));

    // Another customer account may link the same storage account.
    let other = client
        .create_connector(azure_create(&unique_parent(), azurite.account(3), "other"))
        .await
        .expect("other customer");
    assert_ne!(other.name, first.name);

    // And the first customer may link another storage account.
    client
        .create_connector(azure_create(&parent, azurite.account(4), "fourth"))
        .await
        .expect("another storage account");
}

async fn concurrent_creates_for_one_storage_account_make_one_connector(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let attempts = (0..8).map(|i| {
        let client = client.clone();
        let request = azure_create(&parent, Azurite::shared().account(5), &format!("try {i}"));
        tokio::spawn(async move { client.create_connector(request).await })
    });
    let mut created = Vec::new();
    let mut duplicates = 0;
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(connector) => created.push(connector),
            Err(status) => {
                assert_error(&status, Code::AlreadyExists, "CONNECTOR_ALREADY_EXISTS");
                duplicates += 1;
            }
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins");
    assert_eq!(duplicates, 7);
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 1);
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        1
    );
}

async fn reauthorize_keeps_name_and_display_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(6);
    let created = client
        .create_connector(azure_create(&unique_parent(), account, "Finance archive"))
        .await
        .expect("created");

    server.clock.advance(Duration::days(30));
    let renewed = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(&account.name, &account.key2)),
        })
        .await
        .expect("reauthorized");
    assert_eq!(renewed.name, created.name);
    assert_eq!(renewed.display_name, "Finance archive");
    assert_eq!(renewed.state(), pb::connector::State::Authorized);
    assert_eq!(renewed.create_time, created.create_time);
    assert_eq!(
        renewed.authorize_time.as_ref().map(|t| t.seconds),
        Some(server.clock.now().timestamp())
    );
    assert_ne!(renewed.etag, created.etag);

    // The renewed connector works: a SAS signed with the new key is accepted. Azurite checks
    // SAS times against its own clock, so ours goes back to real time first.
    server.clock.set(Utc::now());
    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("token");
    assert_eq!(
        Azurite::shared()
            .use_sas(&account.name, &token.access_token)
            .await,
        201
    );
}

async fn reauthorize_with_another_storage_account_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let created = client
        .create_connector(azure_create(&unique_parent(), azurite.account(7), "seven"))
        .await
        .expect("created");
    server.clock.advance(Duration::days(1));
    let error = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(
                &azurite.account(8).name,
                &azurite.account(8).key1,
            )),
        })
        .await
        .expect_err("other account");
    let metadata = assert_error(&error, Code::FailedPrecondition, "ACCOUNT_MISMATCH");
    assert_eq!(metadata.get("connector"), Some(&created.name));
    let unchanged = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get");
    assert_eq!(unchanged, created);
}

async fn reauthorize_with_a_wrong_key_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let created = client
        .create_connector(azure_create(&unique_parent(), azurite.account(9), "nine"))
        .await
        .expect("created");
    let error = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(
                &azurite.account(9).name,
                &azurite.account(10).key1,
            )),
        })
        .await
        .expect_err("wrong key");
    assert_error(&error, Code::InvalidArgument, "CREDENTIALS_REJECTED");
    let unchanged = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get");
    assert_eq!(unchanged, created);
    // The stored key is still the good one.
    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("token");
    assert_eq!(azurite.use_sas("store09", &token.access_token).await, 201);
}

async fn delete_is_permanent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let created = client
        .create_connector(azure_create(
            &parent,
            Azurite::shared().account(11),
            "eleven",
        ))
        .await
        .expect("created");

    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("deleted");

    let get = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect_err("gone");
    assert_error(&get, Code::NotFound, "CONNECTOR_NOT_FOUND");
    let again = client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("gone");
    assert_error(&again, Code::NotFound, "CONNECTOR_NOT_FOUND");
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0,
        "secrets destroyed"
    );

    // Deleted for good: adding the same storage account again makes a new connector.
    let readded = client
        .create_connector(azure_create(
            &parent,
            Azurite::shared().account(11),
            "eleven again",
        ))
        .await
        .expect("re-added");
    assert_ne!(readded.name, created.name);
    assert_eq!(readded.display_name, "eleven again");
}

async fn sas_from_get_access_token_works_at_azurite(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let account = azurite.account(12);
    let created = client
        .create_connector(azure_create(&unique_parent(), account, "twelve"))
        .await
        .expect("created");

    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("token");
    assert_eq!(
        token.token_type(),
        pb::get_access_token_response::TokenType::AzureSas
    );
    assert_eq!(token.resource_url, azurite.endpoint(&account.name));
    assert!(
        !token.access_token.contains(&account.key1),
        "never the key itself"
    );
    assert!(
        token.access_token.contains("ss=b&"),
        "blob service only: {}",
        token.access_token
    );
    let lifetime = token.expire_time.as_ref().unwrap().seconds - server.clock.now().timestamp();
    assert!(
        (1..=3600).contains(&lifetime),
        "expires within an hour, got {lifetime}s"
    );

    assert_eq!(
        azurite.use_sas(&account.name, &token.access_token).await,
        201
    );
    let container = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    assert_eq!(
        azurite
            .create_container_with_sas(&account.name, &container, &token.access_token)
            .await,
        201
    );
    // A tampered signature is refused by Azurite: the 200 above is the signature's doing.
    let tampered = token.access_token.replace("sig=", "sig=AAAA");
    assert_eq!(azurite.use_sas(&account.name, &tampered).await, 403);
}

async fn sas_is_not_issued_after_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(13),
            "thirteen",
        ))
        .await
        .expect("created");
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("token while it exists");
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("deleted");
    let error = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect_err("no SAS for a deleted connector");
    assert_error(&error, Code::NotFound, "CONNECTOR_NOT_FOUND");
}

async fn record_transfer_sets_last_transfer_time(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(14),
            "fourteen",
        ))
        .await
        .expect("created");

    server.clock.advance(Duration::days(3));
    let idle = client
        .record_transfer(pb::RecordTransferRequest {
            name: created.name.clone(),
            bytes_transferred: 0,
        })
        .await
        .expect("zero bytes");
    assert!(
        idle.last_transfer_time.is_none(),
        "zero bytes is not activity"
    );

    server.clock.advance(Duration::days(2));
    let moved = client
        .record_transfer(pb::RecordTransferRequest {
            name: created.name.clone(),
            bytes_transferred: 4096,
        })
        .await
        .expect("transfer");
    assert_eq!(
        moved.last_transfer_time.as_ref().map(|t| t.seconds),
        Some(server.clock.now().timestamp())
    );

    let negative = client
        .record_transfer(pb::RecordTransferRequest {
            name: created.name.clone(),
            bytes_transferred: -1,
        })
        .await
        .expect_err("negative");
    assert_invalid_field(&negative, "bytes_transferred");
}

async fn reauthorize_stores_the_new_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(6);
    let created = client
        .create_connector(azure_create(&unique_parent(), account, "rotating"))
        .await
        .expect("created");
    let sealed_length = || async {
        server
            .query_blobs("SELECT ciphertext FROM connector_secret")
            .await
            .remove(0)
            .len()
    };
    let key_length = |key: &str| BASE64.decode(key).unwrap().len();
    // The test keys differ in length, so the ciphertext length (key + 16-byte tag) tells which
    // key is stored without opening it.
    assert_ne!(key_length(&account.key1), key_length(&account.key2));
    assert_eq!(sealed_length().await, key_length(&account.key1) + 16);
    client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name,
            credentials: Some(azure_credentials(&account.name, &account.key2)),
        })
        .await
        .expect("reauthorized");
    assert_eq!(sealed_length().await, key_length(&account.key2) + 16);
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        1
    );
}

async fn reauthorize_while_the_storage_service_is_unreachable_changes_nothing(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let account = Azurite::shared().account(7);
    let created = server
        .client()
        .await
        .create_connector(azure_create(&unique_parent(), account, "seven"))
        .await
        .expect("created");
    server.stop().await;
    server.options.azure_blob_endpoint = Some(format!(
        "http://127.0.0.1:{}/{{account}}",
        connector_tests::free_port()
    ));
    server.boot().await.expect("restart");
    let client = server.client().await;
    server.clock.advance(Duration::days(1));
    let error = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(&account.name, &account.key2)),
        })
        .await
        .expect_err("unreachable");
    assert_error(&error, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    let unchanged = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get");
    assert_eq!(unchanged, created);
}

async fn a_storage_service_that_hangs_is_unavailable_after_the_provider_timeout(backend: Backend) {
    let (endpoint, _hanging) = connector_tests::hanging_endpoint().await;
    let mut options = ServerOptions::new(backend);
    options.azure_blob_endpoint = Some(endpoint);
    options.provider_timeout = Some(std::time::Duration::from_millis(300));
    let server = TestServer::start_with(options).await;
    let error = server
        .client()
        .await
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(8),
            "slow",
        ))
        .await
        .expect_err("timed out");
    assert_error(&error, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    assert!(error.message().contains("timed out"), "{}", error.message());
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
}

async fn a_call_past_the_server_deadline_is_deadline_exceeded(backend: Backend) {
    let (endpoint, _hanging) = connector_tests::hanging_endpoint().await;
    let mut options = ServerOptions::new(backend);
    options.azure_blob_endpoint = Some(endpoint);
    options.provider_timeout = Some(std::time::Duration::from_secs(60));
    options.request_timeout = Some(std::time::Duration::from_millis(300));
    let server = TestServer::start_with(options).await;
    let error = server
        .client()
        .await
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(8),
            "slow",
        ))
        .await
        .expect_err("deadline");
    assert_error(&error, Code::DeadlineExceeded, "REQUEST_TIMEOUT");
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
}

/// The customer regenerates both keys of the storage account: the next `GetAccessToken` checks
/// the key we hold, finds it rejected and deauthorizes the connector (reason `REVOKED`), with
/// its events; reauthorizing with a new key brings it back under the same name.
async fn a_key_rotated_by_the_customer_deauthorizes_the_connector(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let account = Azurite::shared().account(6).clone();
    let created = client
        .create_connector(azure_create(&parent, &account, "rotated"))
        .await
        .expect("created");
    let name = created.name.clone();
    let token = |client: connector_client::ConnectorClient, name: String| async move {
        client
            .get_access_token(pb::GetAccessTokenRequest { name })
            .await
    };
    token(client.clone(), name.clone())
        .await
        .expect("the key works");

    // The same storage account with new keys (a private Azurite stands in for it).
    let rotated = Azurite::start_with(vec![StorageAccount {
        name: account.name.clone(),
        key1: BASE64.encode(format!("rotated-primary-key-of-{}", account.name)),
        key2: BASE64.encode(format!("rotated-secondary-key-of-{}", account.name)),
    }]);
    server.options.azure_blob_endpoint = Some(rotated.endpoint_template());
    server.restart().await;
    let client = server.client().await;

    let error = token(client.clone(), name.clone())
        .await
        .expect_err("the key was rotated");
    let metadata = assert_error(&error, Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED");
    assert_eq!(metadata["deauthorization_reason"], "REVOKED");
    assert_eq!(metadata["reauthorize_with"], "ReauthorizeConnector");
    let read = client
        .get_connector(pb::GetConnectorRequest { name: name.clone() })
        .await
        .expect("still readable");
    assert_eq!(read.state(), pb::connector::State::Deauthorized);
    assert_eq!(
        read.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Revoked
    );
    let id = name.rsplit('/').next().unwrap();
    assert_eq!(
        server
            .query_i64(&format!(
                "SELECT COUNT(*) FROM connector_secret WHERE connector_id = '{id}'"
            ))
            .await,
        0,
        "the rejected key is erased"
    );
    let events = client
        .list_connector_events(pb::ListConnectorEventsRequest {
            parent: parent.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("events")
        .events;
    use pb::connector_event::{Kind, RevocationOutcome};
    let kinds: Vec<Kind> = events.iter().map(|event| event.kind()).collect();
    assert_eq!(
        kinds,
        [
            Kind::Authorized,
            Kind::Deauthorized,
            Kind::RevocationFinished
        ]
    );
    assert_eq!(
        events[1].deauthorization_reason(),
        pb::connector::DeauthorizationReason::Revoked
    );
    assert_eq!(
        events[2].revocation_outcome(),
        RevocationOutcome::NotSupported
    );

    // Reauthorizing with the new key brings it back under the same name and display name.
    let renewed = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: name.clone(),
            credentials: Some(azure_credentials(
                &account.name,
                &BASE64.encode(format!("rotated-primary-key-of-{}", account.name)),
            )),
        })
        .await
        .expect("reauthorized");
    assert_eq!(renewed.state(), pb::connector::State::Authorized);
    assert_eq!(
        (renewed.name, renewed.display_name),
        (created.name, created.display_name)
    );
    token(client, name).await.expect("the new key works");
}

/// A storage service that cannot be reached says nothing about the key: the SAS (signed here,
/// needing nothing from Azure) is handed out and the connector stays authorized.
async fn an_unreachable_storage_service_does_not_deauthorize(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(7),
            "offline",
        ))
        .await
        .expect("created");
    // Nothing listens on this port: every check is refused at once.
    server.options.azure_blob_endpoint =
        Some(format!("http://127.0.0.1:{}/{{account}}", free_port()));
    server.restart().await;
    let client = server.client().await;
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("a SAS all the same");
    let read = client
        .get_connector(pb::GetConnectorRequest { name: created.name })
        .await
        .unwrap();
    assert_eq!(read.state(), pb::connector::State::Authorized);
}

/// A storage account that refuses us for another reason than the key (its firewall no longer
/// admits this server's address; key access disabled) says nothing about the key: nothing is
/// deauthorized or erased, and the SAS is handed out (the transfer workers may well be allowed).
async fn a_storage_firewall_refusal_does_not_deauthorize(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let created = server
        .client()
        .await
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(8),
            "behind a firewall",
        ))
        .await
        .expect("created");
    for (code, message) in [
        (
            "AuthorizationFailure",
            "This request is not authorized to perform this operation.",
        ),
        (
            "KeyBasedAuthenticationNotPermitted",
            "Key based authentication is not permitted on this storage account.",
        ),
    ] {
        let (endpoint, _refusing) = azure_error_endpoint(403, code, message).await;
        server.options.azure_blob_endpoint = Some(endpoint);
        // A restart forgets which keys were checked: the next call checks again.
        server.restart().await;
        let client = server.client().await;
        client
            .get_access_token(pb::GetAccessTokenRequest {
                name: created.name.clone(),
            })
            .await
            .unwrap_or_else(|error| panic!("{code}: a SAS all the same, got {error:?}"));
        let read = client
            .get_connector(pb::GetConnectorRequest {
                name: created.name.clone(),
            })
            .await
            .unwrap();
        assert_eq!(read.state(), pb::connector::State::Authorized, "{code}");
    }
    let id = created.name.rsplit('/').next().unwrap();
    assert_eq!(
        server
            .query_i64(&format!(
                "SELECT COUNT(*) FROM connector_secret WHERE connector_id = '{id}'"
            ))
            .await,
        1,
        "the key is kept"
    );
}
