//! `amazon-s3` connectors (issue 10): an access key id and secret, checked with a signed STS
//! `GetCallerIdentity` against moto's server mode (which enforces signatures), the account STS
//! names as the once-per-account key, and short-lived session credentials from
//! `GetSessionToken` for workers, never the secret key. On SQLite and PostgreSQL.

use connector_client::pb;
use connector_server::clock::Clock as _;
use connector_tests::{
    Backend, ConfigHook, Moto, ServerOptions, TestServer, assert_error, create_request,
    named_credentials, on_both_backends, unique_parent, violated_fields,
};
use tonic::Code;

on_both_backends!(
    an_s3_connector_links_its_account_once_and_hands_out_session_credentials,
    a_wrong_secret_or_a_malformed_key_is_refused_and_nothing_is_saved,
);

async fn server(backend: Backend, moto: &Moto) -> TestServer {
    let mut options = ServerOptions::new(backend);
    let url = moto.url.clone();
    options.configure = Some(ConfigHook::new(move |config| {
        config.types.set("amazon-s3", "endpoint", url.clone());
        config.types.set("amazon-s3", "sts_endpoint", url.clone());
    }));
    TestServer::start_with(options).await
}

fn create(parent: &str, key_id: &str, secret: &str) -> pb::CreateConnectorRequest {
    create_request(
        parent,
        "amazon-s3",
        "Archive bucket",
        named_credentials(&[("access_key_id", key_id), ("secret_access_key", secret)]),
    )
}

async fn an_s3_connector_links_its_account_once_and_hands_out_session_credentials(
    backend: Backend,
) {
    let moto = Moto::start();
    let server = server(backend, &moto).await;
    let client = server.client().await;
    let parent = unique_parent();

    let created = client
        .create_connector(create(&parent, &moto.alice.id, &moto.alice.secret))
        .await
        .expect("linked after STS accepted the key");
    let account = created.external_account.clone().expect("an account");
    assert_eq!(account.id, format!("{}/123456789012", moto.url));
    assert_eq!(account.label, moto.alice.arn);

    // Bob's key reaches the same AWS account: once per account.
    let again = client
        .create_connector(create(&parent, &moto.bob.id, &moto.bob.secret))
        .await
        .unwrap_err();
    assert_error(&again, Code::AlreadyExists, "CONNECTOR_ALREADY_EXISTS");

    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("session credentials");
    assert_eq!(
        token.token_type(),
        pb::get_access_token_response::TokenType::AwsSession
    );
    let session = token.aws_session_credentials.clone().expect("a key pair");
    assert_ne!(session.access_key_id, moto.alice.id, "a temporary key");
    assert_ne!(session.secret_access_key, moto.alice.secret);
    assert!(!format!("{token:?}").contains(&session.secret_access_key));
    assert_eq!(token.resource_url, moto.url);
    assert!(!token.access_token.is_empty(), "the session token");
    let expires = token.expire_time.expect("an expiry").seconds;
    let now = server.clock.now().timestamp();
    assert!(
        expires > now && expires <= now + 3600,
        "at most an hour: {expires} vs {now}"
    );
    // (moto issues session credentials but does not accept them back, so their use is not
    // exercised here; STS issuing them for alice's signed request is.)

    // Not a password type: its secret is never revealed.
    let reveal = client
        .reveal_connector_credentials(pb::RevealConnectorCredentialsRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&reveal, Code::FailedPrecondition, "USE_GET_ACCESS_TOKEN");

    // Reauthorizing with another key of the same account keeps the connector.
    let renewed = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: create(&parent, &moto.bob.id, &moto.bob.secret).credentials,
        })
        .await
        .expect("same account, another key");
    assert_eq!(renewed.name, created.name);
}

async fn a_wrong_secret_or_a_malformed_key_is_refused_and_nothing_is_saved(backend: Backend) {
    let moto = Moto::start();
    let server = server(backend, &moto).await;
    let client = server.client().await;
    let parent = unique_parent();

    let wrong = client
        .create_connector(create(&parent, &moto.alice.id, "not-the-secret"))
        .await
        .unwrap_err();
    assert_error(&wrong, Code::InvalidArgument, "CREDENTIALS_REJECTED");

    let malformed = client
        .create_connector(create(&parent, "short", "has spaces in it"))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&malformed),
        [
            "credentials.fields.values.access_key_id",
            "credentials.fields.values.secret_access_key",
        ]
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
