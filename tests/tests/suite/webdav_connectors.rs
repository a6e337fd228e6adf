//! `webdav` connectors (issue 10): a WebDAV collection linked with a username and password,
//! checked with an authenticated PROPFIND against a real WebDAV server (wsgidav), end to end
//! through gRPC on SQLite and PostgreSQL. A password has no short-lived form: a worker gets it
//! from `RevealConnectorCredentials` with a key holding the `reveal` capability.

use std::collections::BTreeSet;

use chrono::Duration;
use connector_client::pb;
use connector_server::access::{ApiKey, Capability, Scope};
use connector_tests::{
    Backend, ConfigHook, ServerOptions, TestServer, WebDavServer, assert_error, create_request,
    named_credentials, on_both_backends, unique_parent, violated_fields,
};
use tonic::Code;

on_both_backends!(
    a_webdav_connector_links_once_per_account_and_reveals_only_to_reveal_keys,
    a_wrong_password_or_another_user_is_refused_and_nothing_is_saved,
    a_password_changed_at_the_server_deauthorizes_until_reauthorized,
    percent_encoding_does_not_make_a_second_connector,
    a_private_endpoint_is_refused_by_policy_without_blaming_the_password,
);

const WORKER_KEY: &str = "csk_worker_without_reveal";

/// A server that may reach the loopback WebDAV server, with a worker key that has the default
/// capabilities (no `reveal`).
async fn server(backend: Backend) -> TestServer {
    let mut options = ServerOptions::new(backend);
    options.configure = Some(ConfigHook::new(|config| {
        config.allow_private_endpoints = true;
        config.api_keys.push(ApiKey {
            id: "worker".to_owned(),
            sha256: ApiKey::hash(WORKER_KEY),
            scope: Scope::AllAccounts,
            capabilities: Capability::DEFAULT.into_iter().collect::<BTreeSet<_>>(),
        });
    }));
    TestServer::start_with(options).await
}

fn credentials(url: &str, user: &str, password: &str) -> pb::Credentials {
    named_credentials(&[
        ("base_url", url),
        ("username", user),
        ("password", password),
    ])
}

fn create(parent: &str, credentials: pb::Credentials) -> pb::CreateConnectorRequest {
    create_request(parent, "webdav", "File server", credentials)
}

async fn a_webdav_connector_links_once_per_account_and_reveals_only_to_reveal_keys(
    backend: Backend,
) {
    let dav = WebDavServer::start(&[("alice", "s3cret")]);
    let server = server(backend).await;
    let client = server.client().await;
    let parent = unique_parent();

    let created = client
        .create_connector(create(&parent, credentials(&dav.url(), "alice", "s3cret")))
        .await
        .expect("linked after the server accepted the password");
    assert_eq!(created.state(), pb::connector::State::Authorized);
    let account = created
        .external_account
        .clone()
        .expect("an external account");
    assert_eq!(account.id, format!("http://alice@127.0.0.1:{}/", dav.port));

    // Once per account: the same URL and user, written differently, is the same account.
    let again = client
        .create_connector(create(
            &parent,
            credentials(&format!("HTTP://127.0.0.1:{}", dav.port), "alice", "s3cret"),
        ))
        .await
        .unwrap_err();
    assert_error(&again, Code::AlreadyExists, "CONNECTOR_ALREADY_EXISTS");

    // No short-lived token: GetAccessToken points to the reveal RPC.
    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap_err();
    let info = assert_error(&token, Code::FailedPrecondition, "USE_REVEAL_CREDENTIALS");
    assert_eq!(info["rpc"], "RevealConnectorCredentials");

    let revealed = client
        .reveal_connector_credentials(pb::RevealConnectorCredentialsRequest {
            name: created.name.clone(),
        })
        .await
        .expect("revealed to a key with `reveal`")
        .fields;
    assert_eq!(revealed["base_url"], dav.url());
    assert_eq!(revealed["username"], "alice");
    assert_eq!(revealed["password"], "s3cret");

    let worker = server.client_with_key(WORKER_KEY).await;
    let refused = worker
        .reveal_connector_credentials(pb::RevealConnectorCredentialsRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&refused, Code::PermissionDenied, "CAPABILITY_MISSING");

    // The password never shows on the connector.
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    assert!(!format!("{shown:?}").contains("s3cret"));

    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("deleted");
}

async fn a_wrong_password_or_another_user_is_refused_and_nothing_is_saved(backend: Backend) {
    let dav = WebDavServer::start(&[("alice", "s3cret"), ("bob", "b0b")]);
    let server = server(backend).await;
    let client = server.client().await;
    let parent = unique_parent();

    let wrong = client
        .create_connector(create(&parent, credentials(&dav.url(), "alice", "wrong")))
        .await
        .unwrap_err();
    assert_error(&wrong, Code::InvalidArgument, "CREDENTIALS_REJECTED");

    let malformed = client
        .create_connector(create(&parent, credentials("dav.example.com", "a:b", "x")))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&malformed),
        [
            "credentials.fields.values.base_url",
            "credentials.fields.values.username",
        ]
    );

    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(listed.connectors.is_empty(), "nothing was saved");

    let created = client
        .create_connector(create(&parent, credentials(&dav.url(), "alice", "s3cret")))
        .await
        .expect("linked");
    let other_user = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(credentials(&dav.url(), "bob", "b0b")),
        })
        .await
        .unwrap_err();
    assert_error(&other_user, Code::FailedPrecondition, "ACCOUNT_MISMATCH");
}

async fn a_password_changed_at_the_server_deauthorizes_until_reauthorized(backend: Backend) {
    let dav = WebDavServer::start(&[("alice", "s3cret")]);
    let server = server(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(create(
            &unique_parent(),
            credentials(&dav.url(), "alice", "s3cret"),
        ))
        .await
        .expect("linked");
    let reveal = || {
        client.reveal_connector_credentials(pb::RevealConnectorCredentialsRequest {
            name: created.name.clone(),
        })
    };
    reveal().await.expect("revealed");

    // The customer changes the password at the server; once the last check is older than the
    // check interval, the next reveal checks again and finds it rejected.
    let dav = dav.restart_with(&[("alice", "n3w")]);
    server.clock.advance(Duration::minutes(16));
    let revoked = reveal().await.unwrap_err();
    let info = assert_error(&revoked, Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED");
    assert_eq!(info["deauthorization_reason"], "REVOKED");

    let renewed = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(credentials(&dav.url(), "alice", "n3w")),
        })
        .await
        .expect("reauthorized with the new password");
    assert_eq!(renewed.name, created.name);
    assert_eq!(renewed.state(), pb::connector::State::Authorized);
    assert_eq!(reveal().await.expect("revealed").fields["password"], "n3w");
}

/// Issue 20, defect 4: `%64av` is `dav` (RFC 3986 §6.2.2.2), so it is the same collection and
/// the same account, as `/x/../dav/` already was.
async fn percent_encoding_does_not_make_a_second_connector(backend: Backend) {
    let dav = WebDavServer::start(&[("alice", "s3cret")]);
    let server = server(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let created = client
        .create_connector(create(
            &parent,
            credentials(&format!("{}dav/", dav.url()), "alice", "s3cret"),
        ))
        .await
        .expect("linked");
    let account = created.external_account.clone().expect("an account").id;
    assert_eq!(account, format!("http://alice@127.0.0.1:{}/dav/", dav.port));
    for same in ["%64av/", "%64%61%76", "x/../dav/", "x/%2e%2e/d%61v/"] {
        let again = client
            .create_connector(create(
                &parent,
                credentials(&format!("{}{same}", dav.url()), "alice", "s3cret"),
            ))
            .await
            .unwrap_err();
        let info = assert_error(&again, Code::AlreadyExists, "CONNECTOR_ALREADY_EXISTS");
        assert_eq!(info["connector"], created.name, "{same}");
    }
    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.connectors.len(), 1);
}

/// Issue 20, defect 2: on a default server (private endpoints not allowed), a loopback WebDAV
/// URL is refused as a policy (`ENDPOINT_NOT_ALLOWED`, naming the field and the rule), not as
/// rejected credentials: nothing was contacted. A plain-http URL is a field violation that
/// says https is needed. Nothing is saved.
async fn a_private_endpoint_is_refused_by_policy_without_blaming_the_password(backend: Backend) {
    let dav = WebDavServer::start(&[("alice", "s3cret")]);
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();

    let loopback = format!("https://127.0.0.1:{}/", dav.port);
    for url in [
        loopback.as_str(),
        "https://localhost/dav/",
        "https://[::1]/",
    ] {
        let refused = client
            .create_connector(create(&parent, credentials(url, "alice", "s3cret")))
            .await
            .unwrap_err();
        let info = assert_error(&refused, Code::InvalidArgument, "ENDPOINT_NOT_ALLOWED");
        assert_eq!(info["field"], "credentials.fields.values.base_url", "{url}");
        assert_eq!(info["rule"], "PUBLIC_ADDRESS_REQUIRED");
        assert_eq!(
            violated_fields(&refused),
            ["credentials.fields.values.base_url"]
        );
        assert!(
            refused.message().contains("private network")
                && !refused.message().contains("rejected"),
            "{}",
            refused.message()
        );
    }

    let plain = client
        .create_connector(create(
            &parent,
            credentials("http://dav.example.com/", "alice", "s3cret"),
        ))
        .await
        .unwrap_err();
    let info = assert_error(&plain, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(info.is_empty() || !info.contains_key("credentials"));
    assert_eq!(
        violated_fields(&plain),
        ["credentials.fields.values.base_url"]
    );
    assert!(
        plain.message().contains("must be https"),
        "{}",
        plain.message()
    );

    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(listed.connectors.is_empty(), "nothing was saved");
}
