//! OAuth 2.0 providers beyond Microsoft (issue 11): `google-drive`, `dropbox` and `box`, each
//! defined by a configuration profile, end to end through gRPC on SQLite and PostgreSQL against
//! the identity emulator playing each provider (its flavour: who rotates refresh tokens, the
//! id token's issuer, the identity calls and the revocation endpoints).

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use connector_client::pb;
use connector_server::{clock::Clock as _, config::OAuthAppConfig};
use connector_tests::{
    Backend, OAuthOptions, ServerOptions, TestServer, assert_error, callback_request,
    on_both_backends, server_events, token_storm, unique_parent,
};
use identity_emulator::{Client, Emulator, Flavour, fixtures};
use pb::connector_event::{Kind, RevocationOutcome as Outcome};

/// The storm over two operating-system processes: this test's server and a second
/// `connector-server` binary on the same PostgreSQL database, configured from a file with each
/// provider's endpoints at the emulator. Exactly one refresh per provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_over_two_server_processes_refreshes_each_provider_once() {
    let (emulator, server) = world(Backend::Postgres).await;
    // The second process runs on the real clock.
    server.clock.set(chrono::Utc::now());
    let mut linked = Vec::new();
    for provider in &PROVIDERS {
        linked.push((provider, link_alice(&emulator, &server, provider).await.1));
    }
    let workdir = tempfile::tempdir().expect("temp dir");
    let config = workdir.path().join("connector.toml");
    let mut toml = format!(
        "database_url = \"{database}\"\n\
         [[api_keys]]\nid = \"admin\"\nsha256 = \"{hash}\"\n",
        database = server.database_url,
        hash = hex::encode(connector_server::access::ApiKey::hash(
            connector_tests::ADMIN_KEY
        )),
    );
    for provider in &PROVIDERS {
        let (connector_type, app) = app(&emulator, provider);
        let optional = |name: &str, value: &Option<String>| {
            value
                .as_ref()
                .map(|value| format!("{name} = \"{value}\"\n"))
                .unwrap_or_default()
        };
        toml.push_str(&format!(
            "[oauth.{id}]\nclient_id = \"{client}\"\nclient_secret = \"{secret}\"\n{rest}",
            id = connector_type,
            client = app.client_id,
            secret = fixtures::CLIENT_SECRET,
            rest = [
                optional("authorize_url", &app.authorize_url),
                optional("token_url", &app.token_url),
                optional("identity_url", &app.identity_url),
                optional("revocation_url", &app.revocation_url),
                optional("issuer", &app.issuer),
            ]
            .concat(),
        ));
    }
    connector_tests::write_file(&config, &toml);
    let (mut second, endpoint) = connector_tests::start_second_process(
        workdir.path(),
        &config,
        server.master_key.as_deref().expect("PostgreSQL has a key"),
        "info",
        std::process::Stdio::null(),
    )
    .await;
    let clients = [
        server.client().await,
        connector_client::ConnectorClient::connect(endpoint, connector_tests::ADMIN_KEY)
            .await
            .expect("connect to the second process"),
    ];
    for (provider, connector) in linked {
        // Due now: the stored access token is gone, so both processes must refresh.
        let id = connector.name.rsplit('/').next().expect("an id");
        server
            .execute_sql(&format!(
                "DELETE FROM connector_secret WHERE connector_id = '{id}' AND field = 'access_token'"
            ))
            .await;
        emulator.reset_counters();
        emulator.set_token_delay(StdDuration::from_millis(300));
        let mut tokens = std::collections::HashSet::new();
        for result in token_storm(&clients, &connector.name).await {
            let token = result.unwrap_or_else(|status| {
                panic!(
                    "{}: every caller gets a token: {status:?}",
                    provider.connector_type
                )
            });
            tokens.insert(token.access_token);
        }
        emulator.set_token_delay(StdDuration::ZERO);
        assert_eq!(
            emulator.counters().refresh,
            1,
            "{}: exactly one refresh over two processes",
            provider.connector_type
        );
        assert_eq!(
            tokens.len(),
            1,
            "{}: one token for all",
            provider.connector_type
        );
    }
    let _ = second.kill();
    let _ = second.wait();
}

on_both_backends!(
    each_provider_links_once_refreshes_and_really_revokes_on_delete,
    a_refresh_storm_refreshes_each_provider_once,
    a_lost_grant_deauthorizes_and_revocation_outlasts_an_outage,
    inactivity_deauthorizes_and_revokes_the_grant,
    a_code_brought_back_with_another_providers_state_is_refused,
);

/// One provider as the test sees it.
struct Provider {
    connector_type: &'static str,
    client_id: &'static str,
    flavour: Flavour,
}

const PROVIDERS: [Provider; 3] = [
    Provider {
        connector_type: "connectorTypes/google-drive",
        client_id: "google-client",
        flavour: Flavour::Google,
    },
    Provider {
        connector_type: "connectorTypes/dropbox",
        client_id: "dropbox-client",
        flavour: Flavour::Dropbox,
    },
    Provider {
        connector_type: "connectorTypes/box",
        client_id: "box-client",
        flavour: Flavour::Box,
    },
];

/// The app registration of a provider at the emulator, its endpoints overridden.
fn app(emulator: &Emulator, provider: &Provider) -> (&'static str, OAuthAppConfig) {
    let base = emulator.base_url();
    let (connector_type, identity_url, revocation_url, issuer) = match provider.flavour {
        Flavour::Google => (
            "google-drive",
            None,
            format!("{base}/google/revoke"),
            Some(format!("{base}/google")),
        ),
        Flavour::Dropbox => (
            "dropbox",
            Some(format!("{base}/dropbox/2/users/get_current_account")),
            format!("{base}/dropbox/2/auth/token/revoke"),
            None,
        ),
        Flavour::Box | Flavour::Microsoft => (
            "box",
            Some(format!("{base}/box/2.0/users/me")),
            format!("{base}/box/oauth2/revoke"),
            None,
        ),
    };
    (
        connector_type,
        OAuthAppConfig {
            client_id: provider.client_id.to_owned(),
            client_secret: fixtures::CLIENT_SECRET.to_owned().into(),
            tenant: None,
            scopes: None,
            revocation_url: Some(revocation_url),
            authorize_url: Some(emulator.authorize_url("common")),
            token_url: Some(emulator.token_url("common")),
            identity_url,
            issuer,
        },
    )
}

/// Moves the server's and the emulator's clocks together (the id tokens the emulator issues
/// must be current by the server's clock).
fn advance(emulator: &Emulator, server: &TestServer, by: Duration) {
    server.clock.advance(by);
    emulator.advance_clock(by.to_std().expect("forward"));
}

/// Links Alice with `provider` under a new parent: (parent, connector).
async fn link_alice(
    emulator: &Emulator,
    server: &TestServer,
    provider: &Provider,
) -> (String, pb::Connector) {
    let parent = unique_parent();
    let linked = link(
        emulator,
        server,
        &parent,
        provider.connector_type,
        fixtures::ALICE_UPN,
    )
    .await
    .unwrap_or_else(|status| panic!("{}: {status:?}", provider.connector_type));
    (parent, linked)
}

async fn world(backend: Backend) -> (Emulator, TestServer) {
    let emulator = Emulator::start().await.expect("emulator");
    let mut options = ServerOptions::new(backend);
    options.oauth = Some(OAuthOptions {
        login_base: emulator.base_url().to_owned(),
        graph_base: emulator.base_url().to_owned(),
        apps: PROVIDERS
            .iter()
            .map(|provider| app(&emulator, provider))
            .collect(),
        return_urls: Vec::new(),
    });
    let server = TestServer::start_with(options).await;
    for provider in &PROVIDERS {
        emulator
            .register_client(
                Client::new(
                    provider.client_id,
                    fixtures::CLIENT_SECRET,
                    [server.redirect_uri()],
                )
                .with_flavour(provider.flavour),
            )
            .expect("register the client");
    }
    (emulator, server)
}

/// Starts an authorization and signs in at the emulator as `user`; the provider's redirect.
async fn sign_in(
    emulator: &Emulator,
    server: &TestServer,
    parent: &str,
    connector_type: &str,
    user: &str,
) -> String {
    let started = server
        .client()
        .await
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.to_owned(),
            connector_type: connector_type.to_owned(),
            ..Default::default()
        })
        .await
        .expect("started");
    emulator
        .complete_authorization(&started.authorization_url, user)
        .expect("signed in")
}

async fn link(
    emulator: &Emulator,
    server: &TestServer,
    parent: &str,
    connector_type: &str,
    user: &str,
) -> Result<pb::Connector, tonic::Status> {
    let redirect = sign_in(emulator, server, parent, connector_type, user).await;
    server
        .client()
        .await
        .complete_authorization(callback_request(&redirect))
        .await
}

/// Waits for the `REVOCATION_FINISHED` event of `parent`.
async fn revocation_outcome(server: &TestServer, parent: &str) -> Outcome {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        if let Some(event) = server_events(server, parent)
            .await
            .into_iter()
            .find(|event| event.kind() == Kind::RevocationFinished)
        {
            return event.revocation_outcome();
        }
        assert!(Instant::now() < deadline, "no revocation outcome recorded");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn each_provider_links_once_refreshes_and_really_revokes_on_delete(backend: Backend) {
    let (emulator, server) = world(backend).await;
    let client = server.client().await;
    for provider in &PROVIDERS {
        let parent = unique_parent();
        let linked = link(
            &emulator,
            &server,
            &parent,
            provider.connector_type,
            fixtures::ALICE_UPN,
        )
        .await
        .unwrap_or_else(|status| panic!("{}: {status:?}", provider.connector_type));
        assert_eq!(linked.state(), pb::connector::State::Authorized);
        let account = linked.external_account.clone().expect("an account");
        assert!(!account.id.is_empty());
        assert_ne!(account.id, fixtures::ALICE_UPN, "never the e-mail");
        assert_eq!(
            account.label,
            fixtures::ALICE_UPN,
            "{}",
            provider.connector_type
        );

        // Once per account.
        let again = link(
            &emulator,
            &server,
            &parent,
            provider.connector_type,
            fixtures::ALICE_UPN,
        )
        .await
        .unwrap_err();
        assert_error(
            &again,
            tonic::Code::AlreadyExists,
            "CONNECTOR_ALREADY_EXISTS",
        );

        // A reauthorization must come back with the same account.
        let started = client
            .start_reauthorization(pb::StartReauthorizationRequest {
                name: linked.name.clone(),
                ..Default::default()
            })
            .await
            .expect("started");
        let redirect = emulator
            .complete_authorization(&started.authorization_url, fixtures::BOB_UPN)
            .expect("signed in as Bob");
        let mismatch = client
            .complete_authorization(callback_request(&redirect))
            .await
            .unwrap_err();
        assert_error(
            &mismatch,
            tonic::Code::FailedPrecondition,
            "ACCOUNT_MISMATCH",
        );

        // Reauthorizing the same account renews the connector: same name and account.
        let started = client
            .start_reauthorization(pb::StartReauthorizationRequest {
                name: linked.name.clone(),
                ..Default::default()
            })
            .await
            .expect("started");
        let redirect = emulator
            .complete_authorization(&started.authorization_url, fixtures::ALICE_UPN)
            .expect("signed in as Alice again");
        let renewed = client
            .complete_authorization(callback_request(&redirect))
            .await
            .unwrap_or_else(|status| panic!("{}: {status:?}", provider.connector_type));
        assert_eq!(renewed.name, linked.name);
        assert_eq!(renewed.external_account, linked.external_account);
        assert_eq!(renewed.state(), pb::connector::State::Authorized);

        // The access token is handed out, and refreshed once it expires.
        let token = |name: String| client.get_access_token(pb::GetAccessTokenRequest { name });
        let first = token(linked.name.clone()).await.expect("a token");
        let refreshes = emulator.counters().refresh;
        server.clock.advance(Duration::hours(2));
        let second = token(linked.name.clone()).await.expect("refreshed");
        assert_ne!(first.access_token, second.access_token);
        assert_eq!(emulator.counters().refresh, refreshes + 1);
        // Refreshing again works whether or not the provider rotates refresh tokens.
        server.clock.advance(Duration::hours(2));
        token(linked.name.clone()).await.expect("refreshed again");

        // Deleting revokes the grant at the provider: its refresh token stops working there.
        let revocations = emulator.counters().revoke;
        client
            .delete_connector(pb::DeleteConnectorRequest {
                name: linked.name.clone(),
                etag: String::new(),
            })
            .await
            .expect("deleted");
        assert_eq!(
            revocation_outcome(&server, &parent).await,
            Outcome::Revoked,
            "{}",
            provider.connector_type
        );
        assert!(emulator.counters().revoke > revocations);
        assert_eq!(
            emulator
                .revoke_user_grant(fixtures::ALICE_UPN, provider.client_id)
                .expect("known user"),
            0,
            "{}: no live grant is left",
            provider.connector_type
        );
    }
}

/// 200 callers, over two server processes on PostgreSQL, ask for an expired token at once:
/// exactly one refresh per provider (Box's single-use refresh tokens would break on a second),
/// and every caller gets the same token.
async fn a_refresh_storm_refreshes_each_provider_once(backend: Backend) {
    let (emulator, server) = world(backend).await;
    let second = match backend {
        Backend::Postgres => Some(TestServer::start_with(server.sharing_options()).await),
        Backend::Sqlite => None,
    };
    let clients = [
        server.client().await,
        match &second {
            Some(second) => second.client().await,
            None => server.client().await,
        },
    ];
    for provider in &PROVIDERS {
        let (_, linked) = link_alice(&emulator, &server, provider).await;
        server.clock.advance(Duration::hours(2));
        if let Some(second) = &second {
            second.clock.advance(Duration::hours(2));
        }
        emulator.reset_counters();
        // A slow token endpoint keeps every caller in the refresh window at once.
        emulator.set_token_delay(StdDuration::from_millis(200));
        let mut tokens = std::collections::HashSet::new();
        for result in token_storm(&clients, &linked.name).await {
            let token = result.unwrap_or_else(|status| {
                panic!(
                    "{}: every caller gets a token: {status:?}",
                    provider.connector_type
                )
            });
            tokens.insert(token.access_token);
        }
        emulator.set_token_delay(StdDuration::ZERO);
        assert_eq!(
            emulator.counters().refresh,
            1,
            "{}: exactly one refresh",
            provider.connector_type
        );
        assert_eq!(
            tokens.len(),
            1,
            "{}: one token for all",
            provider.connector_type
        );
    }
}

/// A grant withdrawn at the provider deauthorizes the connector (`invalid_grant` on refresh);
/// a revocation that meets an outage is retried until the provider revokes.
async fn a_lost_grant_deauthorizes_and_revocation_outlasts_an_outage(backend: Backend) {
    let (emulator, server) = world(backend).await;
    let client = server.client().await;
    for provider in &PROVIDERS {
        let (_, linked) = link_alice(&emulator, &server, provider).await;
        emulator
            .revoke_user_grant(fixtures::ALICE_UPN, provider.client_id)
            .expect("known user");
        advance(&emulator, &server, Duration::hours(2));
        let gone = client
            .get_access_token(pb::GetAccessTokenRequest {
                name: linked.name.clone(),
            })
            .await
            .unwrap_err();
        let info = assert_error(
            &gone,
            tonic::Code::FailedPrecondition,
            "CONNECTOR_DEAUTHORIZED",
        );
        assert_eq!(
            info["deauthorization_reason"], "REVOKED",
            "{}",
            provider.connector_type
        );

        // Another link, deleted while the revocation endpoint is down once.
        let (parent, linked) = link_alice(&emulator, &server, provider).await;
        emulator.fail_next_revoke_calls(1, identity_emulator::Failure::Status500);
        let before = emulator.counters().revoke;
        client
            .delete_connector(pb::DeleteConnectorRequest {
                name: linked.name.clone(),
                etag: String::new(),
            })
            .await
            .expect("an outage does not hold up a delete");
        // Once the failed try is recorded (its error and next try in the outbox), move the
        // clock past the backoff; moving it before would only push the next try further out.
        let id = linked.name.rsplit('/').next().expect("an id");
        let deadline = Instant::now() + StdDuration::from_secs(20);
        let due_in = loop {
            let recorded = format!(
                "SELECT COUNT(*) FROM revocation WHERE connector_id = '{id}' \
                 AND attempts = 1 AND last_error IS NOT NULL"
            );
            if server.query_i64(&recorded).await == 1 {
                let next = server
                    .query_i64(&format!(
                        "SELECT next_attempt_time FROM revocation WHERE connector_id = '{id}'"
                    ))
                    .await;
                break Duration::microseconds(next - server.clock.now().timestamp_micros());
            }
            assert!(
                Instant::now() < deadline,
                "the failed try was never recorded"
            );
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        };
        assert!(emulator.counters().revoke > before);
        advance(&emulator, &server, due_in + Duration::seconds(1));
        assert_eq!(
            revocation_outcome(&server, &parent).await,
            Outcome::Revoked,
            "{}",
            provider.connector_type
        );
        assert!(emulator.counters().revoke >= before + 2);
    }
}

/// 90 days without transfers deauthorize the connector (`INACTIVITY`), and its grant is revoked
/// at the provider.
async fn inactivity_deauthorizes_and_revokes_the_grant(backend: Backend) {
    let (emulator, mut server) = world(backend).await;
    let mut linked = Vec::new();
    for provider in &PROVIDERS {
        linked.push((provider, link_alice(&emulator, &server, provider).await));
    }
    server.clock.advance(Duration::days(91));
    // The sweeper runs at start-up.
    server.restart().await;
    for (provider, (parent, connector)) in linked {
        assert_eq!(
            revocation_outcome(&server, &parent).await,
            Outcome::Revoked,
            "{}",
            provider.connector_type
        );
        let log = server_events(&server, &parent).await;
        assert!(log.iter().any(|event| event.kind() == Kind::Deauthorized
            && event.deauthorization_reason() == pb::connector::DeauthorizationReason::Inactivity
            && event.connector == connector.name));
        assert_eq!(
            emulator
                .revoke_user_grant(fixtures::ALICE_UPN, provider.client_id)
                .expect("known user"),
            0,
            "{}: no live grant is left",
            provider.connector_type
        );
    }
}

/// Mix-up. A code Google issued (its response names Google in `iss`, RFC 9207), brought back
/// with the `state` of a Dropbox authorization, is refused before any token endpoint sees it.
/// A Dropbox code (no `iss`) brought back with a Google `state` goes to Google's token endpoint
/// only (the state says which provider), which refuses a code it did not issue. Nothing is
/// linked either way.
async fn a_code_brought_back_with_another_providers_state_is_refused(backend: Backend) {
    let (emulator, server) = world(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let google = sign_in(
        &emulator,
        &server,
        &parent,
        PROVIDERS[0].connector_type,
        fixtures::ALICE_UPN,
    )
    .await;
    let dropbox_started = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.clone(),
            connector_type: PROVIDERS[1].connector_type.to_owned(),
            ..Default::default()
        })
        .await
        .expect("started");
    let dropbox_state =
        connector_tests::query_param(&dropbox_started.authorization_url, "state").expect("a state");
    let mut mixed = callback_request(&google);
    assert!(!mixed.iss.is_empty(), "Google names itself");
    mixed.state = dropbox_state;
    let redemptions = emulator.counters().authorization_code;
    let refused = client.complete_authorization(mixed).await.unwrap_err();
    assert_error(
        &refused,
        tonic::Code::FailedPrecondition,
        "AUTHORIZATION_CODE_REJECTED",
    );
    assert_eq!(
        emulator.counters().authorization_code,
        redemptions,
        "the code went to no token endpoint"
    );

    let dropbox = emulator
        .complete_authorization(&dropbox_started.authorization_url, fixtures::ALICE_UPN)
        .expect("signed in at Dropbox");
    let google_started = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.clone(),
            connector_type: PROVIDERS[0].connector_type.to_owned(),
            ..Default::default()
        })
        .await
        .expect("started");
    let mut mixed = callback_request(&dropbox);
    assert!(mixed.iss.is_empty(), "Dropbox sends no iss");
    mixed.state =
        connector_tests::query_param(&google_started.authorization_url, "state").expect("a state");
    let refused = client.complete_authorization(mixed).await.unwrap_err();
    assert_error(
        &refused,
        tonic::Code::FailedPrecondition,
        "AUTHORIZATION_CODE_REJECTED",
    );
    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            ..Default::default()
        })
        .await
        .expect("listed");
    assert!(listed.connectors.is_empty(), "nothing linked");
}
