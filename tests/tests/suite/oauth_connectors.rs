//! OAuth 2.0 connectors end to end against the identity emulator: linking once per account,
//! reauthorizing the same account only, tokens that refresh once under a storm and survive
//! restarts, revoked grants that deauthorize, and every way an authorization can be refused.

use chrono::Duration;
use connector_client::pb;
use connector_server::clock::Clock as _;
use connector_tests::{
    Backend, OAuthWorld, RETURN_URL, assert_error, assert_invalid_field, callback_request,
    confirm_at_callback, on_both_backends, query_param, token_storm, unique_parent,
};
use identity_emulator::{Failure, fixtures};
use tonic::Code;

const CONSUMER: &str = "connectorTypes/onedrive-consumer";
const BUSINESS_USER: &str = "connectorTypes/onedrive-for-business-user";
const OFFICE: &str = "connectorTypes/office-365";

on_both_backends!(
    a_user_links_a_personal_onedrive_once,
    a_work_account_is_identified_by_tenant_and_object_id,
    the_callback_redirects_to_the_return_url,
    reauthorization_keeps_the_connector_and_requires_the_same_account,
    access_tokens_refresh_and_the_rotated_token_survives_a_restart,
    a_refresh_storm_refreshes_once,
    a_failing_refresh_is_unavailable_and_deauthorizes_nothing,
    a_revoked_grant_deauthorizes_the_connector,
    an_expired_refresh_token_deauthorizes_as_expired,
    states_are_single_use_expire_and_bind_the_pkce_verifier,
    access_denied_creates_nothing,
    return_urls_must_match_the_allowlist_exactly,
    office_365_links_a_tenant_by_admin_consent,
    credential_and_unconfigured_types_are_refused,
    a_scoped_key_cannot_complete_another_accounts_authorization,
    delete_revokes_where_the_provider_can_and_never_waits_for_it,
    throttling_and_timeouts_are_unavailable_with_retry_information,
    the_callback_page_says_what_happened,
    a_refresh_cut_off_by_the_callers_deadline_is_still_committed,
    withdrawn_office_365_consent_deauthorizes_the_connector,
    a_completion_interrupted_by_an_outage_says_to_start_again,
    the_orchestrator_can_complete_the_authorization_itself,
);

/// Many connectors refreshing at once on PostgreSQL: each refresh holds a pooled connection in a
/// transaction (the row lock) while the provider answers, so at most half the pool (4 in tests)
/// is held that way, and the rest stays free for every other query. All refreshes succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refreshes_of_many_connectors_hold_at_most_half_the_pool() {
    const CONNECTORS: usize = 8;
    let world = OAuthWorld::start(Backend::Postgres).await;
    let mut names = Vec::new();
    for _ in 0..CONNECTORS {
        names.push(
            world
                .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
                .await
                .expect("linked")
                .name,
        );
    }
    world.server.clock.advance(Duration::hours(2));
    world.emulator.reset_counters();
    world
        .emulator
        .set_token_delay(std::time::Duration::from_millis(300));
    let client = world.server.client().await;
    let mut refreshes = tokio::task::JoinSet::new();
    for name in names {
        let client = client.clone();
        refreshes.spawn(async move {
            client
                .get_access_token(pb::GetAccessTokenRequest { name })
                .await
        });
    }
    // Sessions waiting (idle in a transaction) while holding a row lock on a connector: the
    // token locks held across a provider call.
    let held = "SELECT COUNT(DISTINCT activity.pid) FROM pg_stat_activity activity \
                JOIN pg_locks lock ON lock.pid = activity.pid \
                WHERE activity.datname = current_database() \
                AND activity.state = 'idle in transaction' \
                AND lock.relation = 'connector'::regclass AND lock.mode = 'RowShareLock'";
    let mut most_held = 0;
    while !refreshes.is_empty() {
        most_held = most_held.max(world.server.query_i64(held).await);
        while let Some(done) = refreshes.try_join_next() {
            done.expect("task").expect("refreshed");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    world.emulator.set_token_delay(std::time::Duration::ZERO);
    assert_eq!(world.emulator.counters().refresh, CONNECTORS as u64);
    assert!(most_held >= 1, "the sampling saw refreshes in flight");
    assert!(
        most_held <= 2,
        "{most_held} connections held across provider calls (pool of 4)"
    );
}

fn connectors_in_database(world: &OAuthWorld) -> impl std::future::Future<Output = i64> + '_ {
    world.server.query_i64("SELECT COUNT(*) FROM connector")
}

async fn a_user_links_a_personal_onedrive_once(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let parent = unique_parent();
    let linked = world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    assert_eq!(linked.connector_type, CONSUMER);
    assert_eq!(linked.state(), pb::connector::State::Authorized);
    assert_eq!(linked.auth_method(), pb::AuthMethod::Oauth2Delegated);
    let external = linked.external_account.clone().unwrap();
    assert!(
        external.id.ends_with(fixtures::ALICE_OBJECT_ID),
        "identified by ids, not e-mail: {}",
        external.id
    );
    assert!(!external.id.contains('@'));
    assert_eq!(external.label, fixtures::ALICE_UPN);
    assert_eq!(
        linked.display_name,
        fixtures::ALICE_UPN,
        "defaults to the label"
    );

    // Signing in with the same account again under the same customer account.
    let again = world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect_err("once per account");
    let metadata = assert_error(&again, Code::AlreadyExists, "CONNECTOR_ALREADY_EXISTS");
    assert_eq!(metadata.get("connector"), Some(&linked.name));
    assert_eq!(connectors_in_database(&world).await, 1);
    let unchanged = world
        .server
        .client()
        .await
        .get_connector(pb::GetConnectorRequest {
            name: linked.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(unchanged, linked);

    // Another account, or another customer account, links fine.
    world
        .link(&parent, CONSUMER, fixtures::BOB_UPN)
        .await
        .expect("another personal account");
    world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("same account, other customer");
}

async fn a_work_account_is_identified_by_tenant_and_object_id(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let linked = world
        .link(&unique_parent(), BUSINESS_USER, fixtures::ADELE_UPN)
        .await
        .expect("linked");
    let external = linked.external_account.unwrap();
    assert_eq!(
        external.id,
        format!(
            "{}/{}",
            fixtures::CONTOSO_TENANT_ID,
            fixtures::ADELE_OBJECT_ID
        )
    );
    assert_eq!(external.label, fixtures::ADELE_UPN);
}

/// A deployment that opted in to linking at the callback: the user confirms on a page naming
/// the customer account, and the browser then goes to the return URL with the connector.
async fn the_callback_redirects_to_the_return_url(backend: Backend) {
    let world = OAuthWorld::start_confirming(backend).await;
    let client = world.server.client().await;
    let parent = unique_parent();
    let started = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.clone(),
            connector_type: CONSUMER.into(),
            display_name: "Alice's OneDrive".into(),
            return_url: RETURN_URL.into(),
            ..Default::default()
        })
        .await
        .expect("started");
    assert!(started.expire_time.is_some());
    let redirect = world
        .emulator
        .complete_authorization(&started.authorization_url, fixtures::ALICE_UPN)
        .expect("signed in");
    assert!(
        redirect.starts_with(&world.server.redirect_uri()),
        "{redirect}"
    );

    // The browser arrives at the callback, the user confirms, and it is sent to the return URL.
    let account = parent.trim_start_matches("accounts/");
    let response = confirm_at_callback(&redirect, account, "confirm").await;
    assert_eq!(
        response.status().as_u16(),
        303,
        "{:?}",
        response.text().await
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(RETURN_URL), "{location}");
    let name = query_param(&location, "connector").expect("connector parameter");
    let connector = client
        .get_connector(pb::GetConnectorRequest { name })
        .await
        .expect("created");
    assert_eq!(connector.display_name, "Alice's OneDrive");

    // Opening the callback again (a replayed state) is refused, without a redirect.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let replay = http.get(&redirect).send().await.expect("callback answers");
    assert_eq!(replay.status().as_u16(), 400);
    assert!(replay.text().await.unwrap().contains("not valid"));
}

async fn reauthorization_keeps_the_connector_and_requires_the_same_account(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    // Ten days pass for the service and the provider alike (id tokens are checked for expiry).
    world.server.clock.advance(Duration::days(10));
    world
        .emulator
        .advance_clock(std::time::Duration::from_secs(10 * 24 * 3600));

    let reauthorize = |account: &'static str| {
        let client = client.clone();
        let name = linked.name.clone();
        let emulator = &world.emulator;
        async move {
            let started = client
                .start_reauthorization(pb::StartReauthorizationRequest {
                    name,
                    ..Default::default()
                })
                .await
                .expect("started");
            let redirect = emulator
                .complete_authorization(&started.authorization_url, account)
                .expect("signed in");
            client
                .complete_authorization(callback_request(&redirect))
                .await
        }
    };
    let mismatch = reauthorize(fixtures::BOB_UPN)
        .await
        .expect_err("another account");
    let metadata = assert_error(&mismatch, Code::FailedPrecondition, "ACCOUNT_MISMATCH");
    assert_eq!(metadata.get("connector"), Some(&linked.name));
    let unchanged = client
        .get_connector(pb::GetConnectorRequest {
            name: linked.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(unchanged, linked);

    let renewed = reauthorize(fixtures::ALICE_UPN)
        .await
        .expect("same account");
    assert_eq!(renewed.name, linked.name);
    assert_eq!(renewed.display_name, linked.display_name);
    assert_eq!(renewed.state(), pb::connector::State::Authorized);
    assert_eq!(
        renewed.authorize_time.map(|t| t.seconds),
        Some(world.server.clock.now().timestamp())
    );
    assert_eq!(connectors_in_database(&world).await, 1);
}

async fn access_tokens_refresh_and_the_rotated_token_survives_a_restart(backend: Backend) {
    let mut world = OAuthWorld::start(backend).await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    let name = linked.name.clone();
    let token = |server: &connector_tests::TestServer| {
        let name = name.clone();
        let endpoint = server.endpoint();
        async move {
            connector_client::ConnectorClient::connect(endpoint, connector_tests::ADMIN_KEY)
                .await
                .unwrap()
                .get_access_token(pb::GetAccessTokenRequest { name })
                .await
        }
    };
    let first = token(&world.server).await.expect("token");
    assert_eq!(
        first.token_type(),
        pb::get_access_token_response::TokenType::Bearer
    );
    assert!(!first.access_token.is_empty());
    assert_eq!(
        world.emulator.counters().refresh,
        0,
        "fresh token served as is"
    );

    // Past expiry: one refresh, a new token; the old refresh token is rotated away.
    world.server.clock.advance(Duration::hours(2));
    let second = token(&world.server).await.expect("refreshed");
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(world.emulator.counters().refresh, 1);

    // Restart right after the refresh: the rotated refresh token was committed, so the next
    // refresh works (the emulator rejects any refresh token but the latest).
    world.server.restart().await;
    world.server.clock.advance(Duration::hours(2));
    let third = token(&world.server).await.expect("refreshed after restart");
    assert_ne!(third.access_token, second.access_token);
    assert_eq!(world.emulator.counters().refresh, 2);
    let shown = world
        .server
        .client()
        .await
        .get_connector(pb::GetConnectorRequest { name })
        .await
        .unwrap();
    assert_eq!(shown.state(), pb::connector::State::Authorized);
}

async fn a_refresh_storm_refreshes_once(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    // On PostgreSQL the storm is spread over two server processes sharing the database.
    let second = match backend {
        Backend::Postgres => Some(world.second_server().await),
        Backend::Sqlite => None,
    };
    world.server.clock.advance(Duration::hours(2));
    if let Some(second) = &second {
        second.clock.advance(Duration::hours(2));
    }
    world.emulator.reset_counters();
    // A slow token endpoint keeps every caller in the refresh window at once.
    world
        .emulator
        .set_token_delay(std::time::Duration::from_millis(200));
    let clients = [
        world.server.client().await,
        match &second {
            Some(second) => second.client().await,
            None => world.server.client().await,
        },
    ];
    let mut tokens = std::collections::HashSet::new();
    for result in token_storm(&clients, &linked.name).await {
        tokens.insert(result.expect("every caller gets a token").access_token);
    }
    assert_eq!(world.emulator.counters().refresh, 1, "exactly one refresh");
    assert_eq!(tokens.len(), 1, "every caller got the same token");
}

async fn a_failing_refresh_is_unavailable_and_deauthorizes_nothing(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world.server.clock.advance(Duration::hours(2));
    world.emulator.fail_next_token_calls(1, Failure::Status500);
    world.emulator.reset_counters();
    let mut unavailable = 0;
    let mut tokens = std::collections::HashSet::new();
    for result in token_storm(std::slice::from_ref(&client), &linked.name).await {
        match result {
            Ok(token) => {
                tokens.insert(token.access_token);
            }
            Err(status) => {
                assert_error(&status, Code::Unavailable, "PROVIDER_UNAVAILABLE");
                unavailable += 1;
            }
        }
    }
    assert!(
        unavailable >= 1,
        "the caller that met the 500 is told to retry"
    );
    assert!(tokens.len() <= 1, "at most one new token");
    let counters = world.emulator.counters();
    assert_eq!(
        counters.refresh, 2,
        "the failed refresh and exactly one retry"
    );
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: linked.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(shown.state(), pb::connector::State::Authorized);
    // The refresh token was kept: a later refresh works.
    world.server.clock.advance(Duration::hours(2));
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect("refresh still works");
}

async fn a_revoked_grant_deauthorizes_the_connector(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world
        .emulator
        .revoke_user_grant(fixtures::ALICE_UPN, fixtures::CLIENT_ID)
        .expect("revoke");
    world.server.clock.advance(Duration::hours(2));
    let error = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect_err("revoked");
    let metadata = assert_error(&error, Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED");
    assert_eq!(
        metadata.get("deauthorization_reason").map(String::as_str),
        Some("REVOKED")
    );
    assert_eq!(
        metadata.get("reauthorize_with").map(String::as_str),
        Some("StartReauthorization")
    );
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: linked.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(shown.state(), pb::connector::State::Deauthorized);
    assert_eq!(
        shown.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Revoked
    );
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0,
        "tokens erased"
    );
}

async fn an_expired_refresh_token_deauthorizes_as_expired(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world
        .emulator
        .fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 700082 });
    world.server.clock.advance(Duration::hours(2));
    let error = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect_err("expired");
    let metadata = assert_error(&error, Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED");
    assert_eq!(
        metadata.get("deauthorization_reason").map(String::as_str),
        Some("EXPIRED")
    );
}

async fn states_are_single_use_expire_and_bind_the_pkce_verifier(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let parent = unique_parent();

    // Replay: the second completion with the same state is refused.
    let url = world.authorization_url(&parent, CONSUMER).await;
    let redirect = world
        .emulator
        .complete_authorization(&url, fixtures::ALICE_UPN)
        .unwrap();
    let first = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect("first completion");
    let replay = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect_err("replayed state");
    assert_error(
        &replay,
        Code::FailedPrecondition,
        "AUTHORIZATION_STATE_INVALID",
    );
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: first.name,
            etag: String::new(),
        })
        .await
        .unwrap();

    // Unknown state.
    let mut unknown = callback_request(&redirect);
    unknown.state = "0".repeat(64);
    let error = client
        .complete_authorization(unknown)
        .await
        .expect_err("unknown");
    assert_error(
        &error,
        Code::FailedPrecondition,
        "AUTHORIZATION_STATE_INVALID",
    );

    // Expired: eleven minutes later.
    let url = world.authorization_url(&parent, CONSUMER).await;
    let redirect = world
        .emulator
        .complete_authorization(&url, fixtures::ALICE_UPN)
        .unwrap();
    world.server.clock.advance(Duration::minutes(11));
    let error = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect_err("expired");
    assert_error(&error, Code::FailedPrecondition, "AUTHORIZATION_EXPIRED");

    // PKCE: a code issued for one authorization does not complete another (its verifier does
    // not match the code's challenge).
    let url_a = world.authorization_url(&parent, CONSUMER).await;
    let url_b = world.authorization_url(&parent, CONSUMER).await;
    let redirect_a = world
        .emulator
        .complete_authorization(&url_a, fixtures::ALICE_UPN)
        .unwrap();
    let mut crossed = callback_request(&redirect_a);
    crossed.state = query_param(&url_b, "state").expect("state in the URL");
    let error = client
        .complete_authorization(crossed)
        .await
        .expect_err("PKCE mismatch");
    assert_error(
        &error,
        Code::FailedPrecondition,
        "AUTHORIZATION_CODE_REJECTED",
    );

    let missing_state = client
        .complete_authorization(pb::CompleteAuthorizationRequest::default())
        .await
        .expect_err("no state");
    assert_invalid_field(&missing_state, "state");
    assert_eq!(connectors_in_database(&world).await, 0, "nothing created");
}

async fn access_denied_creates_nothing(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let started = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: CONSUMER.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let redirect = world
        .emulator
        .deny_authorization(&started.authorization_url)
        .unwrap();
    let error = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect_err("denied");
    assert_error(&error, Code::PermissionDenied, "ACCESS_DENIED");
    assert_eq!(connectors_in_database(&world).await, 0);
}

async fn return_urls_must_match_the_allowlist_exactly(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    for return_url in [
        format!("{RETURN_URL}%0a"),
        format!("{RETURN_URL}%09"),
        format!("{RETURN_URL}\n"),
        format!("{RETURN_URL}/"),
        format!("{RETURN_URL}?next=//evil.example"),
        "//evil.example/connectors/done".to_owned(),
        "https://evil.example/connectors/done".to_owned(),
        "https://orchestrator.example.evil.example/connectors/done".to_owned(),
        RETURN_URL.to_uppercase(),
    ] {
        let error = client
            .start_authorization(pb::StartAuthorizationRequest {
                parent: unique_parent(),
                connector_type: CONSUMER.into(),
                return_url: return_url.clone(),
                ..Default::default()
            })
            .await
            .expect_err(&return_url);
        assert_invalid_field(&error, "return_url");
    }
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM authorization_attempt")
            .await,
        0,
        "no state was handed out"
    );
}

async fn office_365_links_a_tenant_by_admin_consent(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let parent = unique_parent();
    let url = world.authorization_url(&parent, OFFICE).await;
    assert_eq!(
        query_param(&url, "prompt").as_deref(),
        Some("admin_consent")
    );
    // An administrator of Contoso signs in and consents for the tenant.
    let redirect = world
        .emulator
        .complete_authorization(&url, fixtures::ADELE_UPN)
        .unwrap();
    let linked = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect("consented");
    assert_eq!(linked.auth_method(), pb::AuthMethod::Oauth2AdminConsent);
    let external = linked.external_account.clone().unwrap();
    assert_eq!(external.id, fixtures::CONTOSO_TENANT_ID);
    assert_eq!(external.label, fixtures::CONTOSO_DOMAIN);

    // Another customer cannot take Contoso by editing the callback: the tenant comes from the
    // id token of whoever signed in (here a Fabrikam administrator), not from a parameter.
    let url = world.authorization_url(&unique_parent(), OFFICE).await;
    let redirect = world
        .emulator
        .complete_authorization(&url, fixtures::DIEGO_UPN)
        .unwrap();
    let mut forged = callback_request(&redirect);
    forged.tenant = fixtures::CONTOSO_TENANT_ID.to_owned();
    forged.admin_consent = "True".to_owned();
    let theirs = client
        .complete_authorization(forged)
        .await
        .expect("their own tenant");
    assert_eq!(
        theirs.external_account.unwrap().id,
        fixtures::FABRIKAM_TENANT_ID
    );

    // App-only tokens: minted at consent, served from the store until near expiry.
    world.emulator.reset_counters();
    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect("token");
    assert_eq!(world.emulator.counters().client_credentials, 0);
    world.server.clock.advance(Duration::hours(2));
    let renewed = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect("minted again");
    assert_ne!(renewed.access_token, token.access_token);
    assert_eq!(world.emulator.counters().client_credentials, 1);
}

async fn credential_and_unconfigured_types_are_refused(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let azure = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: "connectorTypes/azure-blob-storage".into(),
            ..Default::default()
        })
        .await
        .expect_err("credential type");
    assert_error(&azure, Code::FailedPrecondition, "CREDENTIALS_REQUIRED");

    // A server without OAuth apps configured.
    let bare = connector_tests::TestServer::start(backend).await;
    let error = bare
        .client()
        .await
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: CONSUMER.into(),
            ..Default::default()
        })
        .await
        .expect_err("not configured");
    assert_error(
        &error,
        Code::FailedPrecondition,
        "CONNECTOR_TYPE_NOT_CONFIGURED",
    );
}

async fn a_scoped_key_cannot_complete_another_accounts_authorization(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let admin = world.server.client().await;
    let scoped = world
        .server
        .client_with_key(connector_tests::SCOPED_KEY)
        .await;
    let started = admin
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: CONSUMER.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let redirect = world
        .emulator
        .complete_authorization(&started.authorization_url, fixtures::ALICE_UPN)
        .unwrap();
    let error = scoped
        .complete_authorization(callback_request(&redirect))
        .await
        .expect_err("another account's state");
    assert_error(
        &error,
        Code::FailedPrecondition,
        "AUTHORIZATION_STATE_INVALID",
    );
    assert_eq!(connectors_in_database(&world).await, 0);
    // The refused attempt did not burn the state: its own account can still complete it.
    admin
        .complete_authorization(callback_request(&redirect))
        .await
        .expect("the state is still good for its account");
    let denied = scoped
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: CONSUMER.into(),
            ..Default::default()
        })
        .await
        .expect_err("another account");
    assert_error(&denied, Code::PermissionDenied, "ACCOUNT_ACCESS_DENIED");
}

async fn delete_revokes_where_the_provider_can_and_never_waits_for_it(backend: Backend) {
    let world = OAuthWorld::start_with_revocation(backend, true).await;
    let client = world.server.client().await;
    let parent = unique_parent();
    let linked = world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world.emulator.reset_counters();
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: linked.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("deleted");
    wait_for_revocations(&world, 1).await;

    // The provider hanging: the delete still answers at once and the secrets are gone.
    let linked = world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked again");
    world.emulator.fail_next_revoke_calls(1, Failure::Timeout);
    // The provider call times out after 15 s; the delete must not wait for it.
    let delete = client.delete_connector(pb::DeleteConnectorRequest {
        name: linked.name.clone(),
        etag: String::new(),
    });
    tokio::time::timeout(std::time::Duration::from_secs(5), delete)
        .await
        .expect("the delete did not wait for the hanging provider")
        .expect("deleted although revocation hangs");
    wait_for_revocations(&world, 2).await;
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0
    );
}

/// Waits until the emulator has seen `count` revocation requests (they run in the background
/// after a delete answers).
async fn wait_for_revocations(world: &OAuthWorld, count: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while world.emulator.counters().revoke < count {
        assert!(
            std::time::Instant::now() < deadline,
            "no revocation request reached the provider"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The storm across two operating-system processes: this test's server and a second
/// `connector-server` binary on the same PostgreSQL database. Both run on real time, so the
/// stored access token is removed (as if it had expired) instead of moving a clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_storm_over_two_server_processes_refreshes_once() {
    let storm = two_process_storm(false).await;
    assert_eq!(storm.refreshes, 1, "exactly one refresh");
    assert_eq!(storm.unavailable, 0);
    assert_eq!(storm.tokens.len(), 1, "every caller got the same token");
}

/// The same storm with the token endpoint failing once with 500: the callers that met the
/// failure are told to retry, nothing is deauthorized, the refresh token is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_storm_over_two_processes_with_one_500_deauthorizes_nothing() {
    let storm = two_process_storm(true).await;
    assert!(
        storm.unavailable >= 1,
        "the 500 reached a caller as UNAVAILABLE"
    );
    assert!(storm.tokens.len() <= 1, "at most one new token");
    assert_eq!(
        storm.refreshes, 2,
        "the failed refresh and exactly one more"
    );
    let client = storm.world.server.client().await;
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: storm.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(shown.state(), pb::connector::State::Authorized);
    client
        .get_access_token(pb::GetAccessTokenRequest { name: storm.name })
        .await
        .expect("the kept refresh token still works");
}

struct Storm {
    world: OAuthWorld,
    name: String,
    refreshes: u64,
    unavailable: usize,
    tokens: std::collections::HashSet<String>,
}

async fn two_process_storm(fail_first: bool) -> Storm {
    let world = OAuthWorld::start(Backend::Postgres).await;
    world.server.clock.set(chrono::Utc::now());
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");

    let workdir = tempfile::tempdir().unwrap();
    let config = workdir.path().join("connector.toml");
    connector_tests::write_file(
        &config,
        &format!(
            "database_url = \"{database}\"\n\
             microsoft_login = \"{base}\"\n\
             microsoft_graph = \"{base}\"\n\
             [[api_keys]]\nid = \"admin\"\nsha256 = \"{hash}\"\n\
             [oauth.onedrive-consumer]\nclient_id = \"{client}\"\nclient_secret = \"{secret}\"\n",
            database = world.server.database_url,
            base = world.emulator.base_url(),
            hash = hex::encode(connector_server::access::ApiKey::hash(
                connector_tests::ADMIN_KEY
            )),
            client = fixtures::CLIENT_ID,
            secret = fixtures::CLIENT_SECRET,
        ),
    );
    // Every log line, to check below that no token reaches the logs.
    let (mut second, endpoint) = connector_tests::start_second_process(
        workdir.path(),
        &config,
        world
            .server
            .master_key
            .as_deref()
            .expect("PostgreSQL has a key"),
        "trace",
        std::fs::File::create(workdir.path().join("server.log"))
            .unwrap()
            .into(),
    )
    .await;

    world
        .server
        .execute_sql("DELETE FROM connector_secret WHERE field = 'access_token'")
        .await;
    world.emulator.reset_counters();
    if fail_first {
        world.emulator.fail_next_token_calls(1, Failure::Status500);
    }
    // A slow token endpoint: both processes are surely refreshing at the same time.
    world
        .emulator
        .set_token_delay(std::time::Duration::from_millis(300));
    let clients = [
        world.server.client().await,
        connector_client::ConnectorClient::connect(endpoint, connector_tests::ADMIN_KEY)
            .await
            .expect("connect to the second process"),
    ];
    let mut tokens = std::collections::HashSet::new();
    let mut unavailable = 0;
    for result in token_storm(&clients, &linked.name).await {
        match result {
            Ok(token) => {
                tokens.insert(token.access_token);
            }
            Err(status) => {
                assert_error(&status, Code::Unavailable, "PROVIDER_UNAVAILABLE");
                unavailable += 1;
            }
        }
    }
    let _ = second.kill();
    let _ = second.wait();
    let logs = std::fs::read_to_string(workdir.path().join("server.log")).unwrap_or_default();
    assert!(
        logs.contains("TRACE"),
        "the second process logged at trace level"
    );
    for token in &tokens {
        assert!(
            !logs.contains(token.as_str()),
            "an access token reached the logs"
        );
    }
    world.emulator.set_token_delay(std::time::Duration::ZERO);
    Storm {
        refreshes: world.emulator.counters().refresh,
        name: linked.name,
        world,
        unavailable,
        tokens,
    }
}

async fn throttling_and_timeouts_are_unavailable_with_retry_information(backend: Backend) {
    use tonic_types::StatusExt as _;
    let emulator = identity_emulator::Emulator::start().await.unwrap();
    let mut options = connector_tests::ServerOptions::new(backend);
    options.oauth = Some(connector_tests::oauth_options(&emulator, None));
    options.provider_timeout = Some(std::time::Duration::from_millis(500));
    let server = connector_tests::TestServer::start_with(options).await;
    emulator
        .add_redirect_uri(fixtures::CLIENT_ID, &server.redirect_uri())
        .unwrap();
    let world = OAuthWorld { emulator, server };
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world.server.clock.advance(Duration::hours(2));
    let token = || {
        client.get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
    };

    world
        .emulator
        .fail_next_token_calls(1, Failure::Status429 { retry_after: 7 });
    let throttled = token().await.expect_err("429");
    assert_error(&throttled, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    let retry = throttled.get_details_retry_info().expect("RetryInfo");
    assert_eq!(
        retry.retry_delay,
        Some(std::time::Duration::from_secs(7)),
        "the provider's Retry-After"
    );

    world.emulator.fail_next_token_calls(1, Failure::Timeout);
    let timed_out = token().await.expect_err("timeout");
    assert_error(&timed_out, Code::Unavailable, "PROVIDER_UNAVAILABLE");

    // Neither deauthorized anything; the kept refresh token still works.
    token().await.expect("refreshed after the outage");
    assert_eq!(world.emulator.counters().refresh, 3);
}

/// A deployment that opted in to linking at the callback: the pages say what happened.
async fn the_callback_page_says_what_happened(backend: Backend) {
    let world = OAuthWorld::start_confirming(backend).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let parent = unique_parent();
    let account = parent.trim_start_matches("accounts/").to_owned();
    let read = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["cache-control"].to_str().unwrap(),
            "no-store"
        );
        (status, response.text().await.unwrap())
    };

    let linked = world
        .emulator
        .complete_authorization(
            &world.authorization_url(&parent, CONSUMER).await,
            fixtures::ALICE_UPN,
        )
        .unwrap();
    let (status, page) = read(confirm_at_callback(&linked, &account, "confirm").await).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account linked"), "{page}");

    let again = world
        .emulator
        .complete_authorization(
            &world.authorization_url(&parent, CONSUMER).await,
            fixtures::ALICE_UPN,
        )
        .unwrap();
    let (status, page) = read(confirm_at_callback(&again, &account, "confirm").await).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("Account already linked"), "{page}");

    let denied = world
        .emulator
        .deny_authorization(&world.authorization_url(&parent, CONSUMER).await)
        .unwrap();
    let (status, page) = read(http.get(denied).send().await.unwrap()).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Access not granted"), "{page}");

    let cancelled = world
        .emulator
        .complete_authorization(
            &world.authorization_url(&parent, CONSUMER).await,
            fixtures::BOB_UPN,
        )
        .unwrap();
    let (status, page) = read(confirm_at_callback(&cancelled, &account, "cancel").await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Access not granted"), "{page}");

    let late = world
        .emulator
        .complete_authorization(
            &world.authorization_url(&parent, CONSUMER).await,
            fixtures::BOB_UPN,
        )
        .unwrap();
    world.server.clock.advance(Duration::minutes(11));
    let (status, page) = read(http.get(late).send().await.unwrap()).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("Link expired"), "{page}");
    assert_eq!(connectors_in_database(&world).await, 1);
}

async fn a_refresh_cut_off_by_the_callers_deadline_is_still_committed(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world.server.clock.advance(Duration::hours(2));
    world.emulator.reset_counters();
    world
        .emulator
        .set_token_delay(std::time::Duration::from_millis(300));
    // The caller gives up while the provider is rotating the refresh token.
    let cut_off = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        client.get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        }),
    )
    .await;
    assert!(cut_off.is_err(), "the call was cut off");
    world.emulator.set_token_delay(std::time::Duration::ZERO);
    // The rotated token was committed anyway: the next call works, with no second refresh
    // (a lost rotation would make the provider answer invalid_grant and deauthorize).
    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect("the connector still works");
    assert!(!token.access_token.is_empty());
    assert_eq!(world.emulator.counters().refresh, 1);
}

async fn withdrawn_office_365_consent_deauthorizes_the_connector(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), OFFICE, fixtures::ADELE_UPN)
        .await
        .expect("linked");
    assert!(
        world
            .emulator
            .revoke_admin_consent(fixtures::CONTOSO_TENANT_ID, fixtures::CLIENT_ID)
    );
    world.server.clock.advance(Duration::hours(2));
    let error = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect_err("consent withdrawn");
    let metadata = assert_error(&error, Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED");
    assert_eq!(
        metadata.get("deauthorization_reason").map(String::as_str),
        Some("REVOKED")
    );
}

/// The token endpoint fails while an authorization completes: the `state` is used up, so the
/// answer is ABORTED `AUTHORIZATION_INTERRUPTED` (start again, after `RetryInfo`), not a
/// retryable UNAVAILABLE; the same redirect then answers `AUTHORIZATION_STATE_INVALID`, and a
/// new authorization links the account.
async fn a_completion_interrupted_by_an_outage_says_to_start_again(backend: Backend) {
    use tonic_types::StatusExt as _;
    let world = OAuthWorld::start(backend).await;
    let parent = unique_parent();
    let client = world.server.client().await;
    let url = world.authorization_url(&parent, CONSUMER).await;
    let redirect = world
        .emulator
        .complete_authorization(&url, fixtures::ALICE_UPN)
        .expect("signed in");
    world
        .emulator
        .fail_next_token_calls(1, Failure::Status429 { retry_after: 9 });
    let interrupted = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect_err("the provider is throttling");
    assert_error(&interrupted, Code::Aborted, "AUTHORIZATION_INTERRUPTED");
    assert_eq!(
        interrupted
            .get_details_retry_info()
            .and_then(|retry| retry.retry_delay)
            .map(|delay| delay.as_secs()),
        Some(9)
    );
    let replayed = client
        .complete_authorization(callback_request(&redirect))
        .await
        .expect_err("the state is used up");
    assert_error(
        &replayed,
        Code::FailedPrecondition,
        "AUTHORIZATION_STATE_INVALID",
    );
    assert_eq!(connectors_in_database(&world).await, 0);
    world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("starting again links the account");
}

/// `orchestrator_completes`: the callback links nothing; it forwards the browser to the return
/// URL with the provider's parameters, and the orchestrator (after checking its own session)
/// completes the authorization with them.
async fn the_orchestrator_can_complete_the_authorization_itself(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let parent = unique_parent();
    let without_return_url = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.clone(),
            connector_type: CONSUMER.into(),
            orchestrator_completes: true,
            ..Default::default()
        })
        .await
        .expect_err("the browser must have somewhere to go");
    assert_invalid_field(&without_return_url, "return_url");

    let started = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.clone(),
            connector_type: CONSUMER.into(),
            return_url: RETURN_URL.into(),
            orchestrator_completes: true,
            ..Default::default()
        })
        .await
        .expect("started");
    let state = query_param(&started.authorization_url, "state").expect("a state");
    let redirect = world
        .emulator
        .complete_authorization(&started.authorization_url, fixtures::ALICE_UPN)
        .expect("signed in");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http.get(&redirect).send().await.expect("callback answers");
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(RETURN_URL), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(state.as_str())
    );
    assert_eq!(
        query_param(&location, "code"),
        query_param(&redirect, "code"),
        "the provider's code, forwarded"
    );
    assert!(query_param(&location, "connector").is_none());
    assert_eq!(
        connectors_in_database(&world).await,
        0,
        "nothing linked yet"
    );

    // The orchestrator checked its session; it completes the authorization.
    let linked = client
        .complete_authorization(callback_request(&location))
        .await
        .expect("linked by the orchestrator");
    assert_eq!(linked.external_account.unwrap().label, fixtures::ALICE_UPN);
    // The state is used up now: the callback no longer forwards it.
    let replay = http.get(&redirect).send().await.expect("callback answers");
    assert_eq!(replay.status().as_u16(), 400);

    // Nor an expired one: the browser sees the expiry page, and nothing is forwarded.
    let started = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: CONSUMER.into(),
            return_url: RETURN_URL.into(),
            orchestrator_completes: true,
            ..Default::default()
        })
        .await
        .expect("started");
    let redirect = world
        .emulator
        .complete_authorization(&started.authorization_url, fixtures::BOB_UPN)
        .expect("signed in");
    world.server.clock.advance(Duration::minutes(11));
    let expired = http.get(&redirect).send().await.expect("callback answers");
    assert_eq!(expired.status().as_u16(), 410);
    assert!(expired.headers().get("location").is_none());
}
