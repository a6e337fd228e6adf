//! The administrator connector's path: admin consent, app-only tokens by client credentials
//! (only where an admin consented), and the Graph endpoints that tell a client who and which
//! organization it is talking to.

mod support;

use identity_emulator::{Client, GRAPH_DEFAULT_SCOPE, fixtures};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use support::*;

fn admin_consent_url(emulator: &identity_emulator::Emulator, tenant: &str, state: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("client_id", fixtures::CLIENT_ID),
        ("redirect_uri", CALLBACK),
        ("state", state),
        ("scope", GRAPH_DEFAULT_SCOPE),
    ])
    .unwrap();
    format!("{}?{query}", emulator.admin_consent_url(tenant))
}

async fn client_credentials(
    emulator: &identity_emulator::Emulator,
    tenant: &str,
    scope: &str,
) -> Answer {
    post_form(
        &emulator.token_url(tenant),
        &[("grant_type", "client_credentials"), ("scope", scope)],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await
}

#[tokio::test]
async fn client_credentials_work_only_after_admin_consent() {
    let emulator = emulator().await;
    let before =
        client_credentials(&emulator, fixtures::CONTOSO_TENANT_ID, GRAPH_DEFAULT_SCOPE).await;
    assert_aad_error(
        &before,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
    );

    // The page offers every work tenant at `organizations`, with stable ids.
    let url = admin_consent_url(&emulator, "organizations", "admin-state");
    let page = get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    for id in ["id=\"tenant\"", "id=\"accept\"", "id=\"deny\""] {
        assert!(page.text.contains(id), "{id} missing");
    }
    assert!(page.text.contains(fixtures::CONTOSO_TENANT_ID));
    assert!(page.text.contains(fixtures::FABRIKAM_TENANT_ID));

    let location = browse(
        &emulator,
        &url,
        "tenant",
        fixtures::CONTOSO_TENANT_ID,
        "accept",
    )
    .await;
    assert_eq!(location.as_str().split('?').next().unwrap(), CALLBACK);
    let params = query(&location);
    assert_eq!(params["tenant"], fixtures::CONTOSO_TENANT_ID);
    assert_eq!(params["admin_consent"], "True");
    assert_eq!(params["state"], "admin-state");
    assert_eq!(params["scope"], GRAPH_DEFAULT_SCOPE);
    assert!(emulator.has_admin_consent(fixtures::CONTOSO_TENANT_ID, fixtures::CLIENT_ID));

    let answer =
        client_credentials(&emulator, fixtures::CONTOSO_TENANT_ID, GRAPH_DEFAULT_SCOPE).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    for absent in ["refresh_token", "id_token", "scope"] {
        assert!(tokens.get(absent).is_none(), "{absent} in {tokens}");
    }
    // By domain as well as by id; Fabrikam never consented.
    let by_domain =
        client_credentials(&emulator, fixtures::CONTOSO_DOMAIN, GRAPH_DEFAULT_SCOPE).await;
    assert_eq!(by_domain.status, StatusCode::OK);
    let fabrikam =
        client_credentials(&emulator, fixtures::FABRIKAM_TENANT_ID, GRAPH_DEFAULT_SCOPE).await;
    assert_aad_error(
        &fabrikam,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
    );

    // The app-only token reads the organization, not /me.
    let token = tokens["access_token"].as_str().unwrap();
    let organization =
        get_with_bearer(&format!("{}/organization", emulator.graph_url()), token).await;
    assert_eq!(organization.status, StatusCode::OK);
    let organization = organization.json();
    assert_eq!(organization["value"][0]["id"], fixtures::CONTOSO_TENANT_ID);
    assert_eq!(organization["value"][0]["displayName"], "Contoso");
    assert_eq!(
        organization["value"][0]["verifiedDomains"][0]["name"],
        fixtures::CONTOSO_DOMAIN
    );
    assert_eq!(
        organization["value"][0]["verifiedDomains"][0]["isDefault"],
        true
    );
    let me = get_with_bearer(&format!("{}/me", emulator.graph_url()), token).await;
    assert_eq!(me.status, StatusCode::BAD_REQUEST);

    let counters = emulator.counters();
    assert_eq!(
        (
            counters.client_credentials,
            counters.adminconsent,
            counters.adminconsent_decisions
        ),
        (4, 2, 1)
    );
    assert_eq!((counters.organization, counters.me), (1, 1));
}

#[tokio::test]
async fn client_credentials_need_a_tenant_and_a_default_scope() {
    let emulator = emulator().await;
    emulator
        .grant_admin_consent(fixtures::FABRIKAM_TENANT_ID, fixtures::CLIENT_ID)
        .unwrap();
    let answer = client_credentials(&emulator, fixtures::FABRIKAM_TENANT_ID, "User.Read").await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_scope", 1002012);
    let answer = client_credentials(&emulator, "organizations", GRAPH_DEFAULT_SCOPE).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_request", 900023);
    let answer = client_credentials(
        &emulator,
        "00000000-1111-2222-3333-444444444444",
        GRAPH_DEFAULT_SCOPE,
    )
    .await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_request", 90002);

    // A public client cannot use client credentials at all.
    emulator
        .register_client(Client {
            client_secret: None,
            ..Client::new("public-app", "", [CALLBACK])
        })
        .unwrap();
    emulator
        .grant_admin_consent(fixtures::FABRIKAM_TENANT_ID, "public-app")
        .unwrap();
    let answer = post_form(
        &emulator.token_url(fixtures::FABRIKAM_TENANT_ID),
        &[
            ("grant_type", "client_credentials"),
            ("scope", GRAPH_DEFAULT_SCOPE),
            ("client_id", "public-app"),
        ],
        None,
    )
    .await;
    assert_aad_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 7000218);
}

#[tokio::test]
async fn admin_consent_can_be_denied_and_checks_the_redirect_uri() {
    let emulator = emulator().await;
    let url = admin_consent_url(&emulator, fixtures::FABRIKAM_TENANT_ID, "s1");
    let page = get(&url).await;
    assert!(
        !page.text.contains(fixtures::CONTOSO_TENANT_ID),
        "a tenant URL offers only that tenant"
    );
    let location = browse(
        &emulator,
        &url,
        "tenant",
        fixtures::FABRIKAM_TENANT_ID,
        "deny",
    )
    .await;
    let params = query(&location);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "s1");
    assert!(!params.contains_key("tenant"));
    assert!(!emulator.has_admin_consent(fixtures::FABRIKAM_TENANT_ID, fixtures::CLIENT_ID));

    let wrong = url.replace("65000%2Foauth", "65001%2Foauth");
    let page = get(&wrong).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.headers.get(LOCATION).is_none());
    assert!(page.text.contains("AADSTS50011"));

    let personal = get(&admin_consent_url(&emulator, "consumers", "s")).await;
    assert_eq!(personal.status, StatusCode::BAD_REQUEST);

    // The library's admin: a tenant the URL does not offer is refused.
    let error = emulator
        .complete_admin_consent(&url, fixtures::CONTOSO_TENANT_ID)
        .unwrap_err();
    assert_eq!(error.aadsts, 90002);
    let location = emulator
        .complete_admin_consent(&url, fixtures::FABRIKAM_TENANT_ID)
        .unwrap();
    assert!(location.contains("admin_consent=True"), "{location}");
}

#[tokio::test]
async fn revoking_admin_consent_stops_app_tokens() {
    let emulator = emulator().await;
    emulator
        .grant_admin_consent(fixtures::CONTOSO_DOMAIN, fixtures::CLIENT_ID)
        .unwrap();
    let tokens = client_credentials(&emulator, fixtures::CONTOSO_TENANT_ID, GRAPH_DEFAULT_SCOPE)
        .await
        .json();
    assert!(emulator.revoke_admin_consent(fixtures::CONTOSO_TENANT_ID, fixtures::CLIENT_ID));
    let organization = get_with_bearer(
        &format!("{}/organization", emulator.graph_url()),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(organization.status, StatusCode::UNAUTHORIZED);
    let again =
        client_credentials(&emulator, fixtures::CONTOSO_TENANT_ID, GRAPH_DEFAULT_SCOPE).await;
    assert_aad_error(
        &again,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
    );
}

#[tokio::test]
async fn graph_answers_delegated_tokens_and_refuses_bad_ones() {
    let emulator = emulator().await;
    let graph = emulator.graph_url();

    let work = tokens_for(&emulator, fixtures::CONTOSO_TENANT_ID, fixtures::MEGAN_UPN).await;
    let token = work["access_token"].as_str().unwrap();
    let me = get_with_bearer(&format!("{graph}/me"), token).await.json();
    assert_eq!(me["id"], fixtures::MEGAN_OBJECT_ID);
    assert_eq!(me["userPrincipalName"], fixtures::MEGAN_UPN);
    assert_eq!(me["displayName"], "Megan Bowen");
    let organization = get_with_bearer(&format!("{graph}/organization"), token)
        .await
        .json();
    assert_eq!(organization["value"][0]["id"], fixtures::CONTOSO_TENANT_ID);

    let personal = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let organization = get_with_bearer(
        &format!("{graph}/organization"),
        personal["access_token"].as_str().unwrap(),
    )
    .await
    .json();
    assert_eq!(organization["value"], serde_json::json!([]));

    // A token without a profile permission is forbidden.
    let (code, verifier) = sign_in(
        &emulator,
        "consumers",
        fixtures::ALICE_UPN,
        "openid Files.Read",
    )
    .await;
    let files_only = redeem(&emulator, "consumers", &code, &verifier)
        .await
        .json();
    let forbidden = get_with_bearer(
        &format!("{graph}/me"),
        files_only["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json()["error"]["code"],
        "Authorization_RequestDenied"
    );

    for answer in [
        get(&format!("{graph}/me")).await,
        get_with_bearer(&format!("{graph}/me"), "not-a-token").await,
        get_with_bearer(&format!("{graph}/organization"), "not-a-token").await,
    ] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.headers.contains_key("www-authenticate"));
        let error = &answer.json()["error"];
        assert_eq!(error["code"], "InvalidAuthenticationToken");
        assert!(error["innerError"]["request-id"].is_string());
    }
}
