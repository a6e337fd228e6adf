//! The delegated flows as a client meets them over HTTP: authorization code with PKCE, the
//! errors around it (redirect URI, PKCE, replay, expiry, client authentication), refresh token
//! rotation, revoked grants and RFC 7009 revocation.

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use identity_emulator::{CONSUMER_TENANT_ID, Client, Emulator, ID_TOKEN_SIGNING_KEY, fixtures};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use sha2::Sha256;
use support::*;

#[tokio::test]
async fn code_flow_with_pkce_end_to_end() {
    let emulator = emulator().await;
    let (verifier, challenge) = pkce();
    let url = format!(
        "{}&login_hint={}",
        authorization_url(&emulator, "consumers", SCOPES, &challenge, "xyz"),
        fixtures::BOB_UPN
    );

    // The page: stable ids, personal accounts only at `consumers`, the hint preselected.
    let page = get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    for id in ["id=\"account\"", "id=\"accept\"", "id=\"deny\""] {
        assert!(page.text.contains(id), "{id} missing");
    }
    assert!(page.text.contains(fixtures::ALICE_UPN));
    assert!(
        page.text
            .contains(&format!("value=\"{}\" selected", fixtures::BOB_UPN))
    );
    assert!(
        !page.text.contains(fixtures::ADELE_UPN),
        "work users are not offered at consumers"
    );

    // Posting the form answers a 302 to the redirect URI with a code and the state.
    let location = browse(&emulator, &url, "account", fixtures::BOB_UPN, "accept").await;
    assert_eq!(location.as_str().split('?').next().unwrap(), CALLBACK);
    let params = query(&location);
    assert_eq!(params["state"], "xyz");
    let code = &params["code"];

    let answer = redeem(&emulator, "consumers", code, &verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], SCOPES);
    assert_eq!(tokens["expires_in"], 3600);
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        tokens["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // The id token: HS256 under the published key, Microsoft's claims.
    let id_token = tokens["id_token"].as_str().unwrap();
    let (signing_input, signature) = id_token.rsplit_once('.').unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(ID_TOKEN_SIGNING_KEY).unwrap();
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap())
        .expect("HS256 signature verifies");
    let claims = jwt_claims(id_token);
    assert_eq!(claims["aud"], fixtures::CLIENT_ID);
    assert_eq!(claims["tid"], CONSUMER_TENANT_ID);
    assert_eq!(claims["oid"], fixtures::BOB_OBJECT_ID);
    assert_eq!(claims["preferred_username"], fixtures::BOB_UPN);
    assert_eq!(claims["email"], fixtures::BOB_UPN);
    assert_eq!(claims["name"], "Bob Personal");
    assert_eq!(
        claims["iss"],
        format!("{}/{CONSUMER_TENANT_ID}/v2.0", emulator.base_url())
    );
    assert!(claims["sub"].as_str().is_some_and(|sub| !sub.is_empty()));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    // The access token works at Graph.
    let me = get_with_bearer(
        &format!("{}/me", emulator.graph_url()),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    let me = me.json();
    assert_eq!(me["id"], fixtures::BOB_OBJECT_ID);
    assert_eq!(me["userPrincipalName"], fixtures::BOB_UPN);
    assert_eq!(me["mail"], fixtures::BOB_UPN);
    assert_eq!(me["displayName"], "Bob Personal");
}

#[tokio::test]
async fn work_accounts_sign_in_at_organizations_with_the_secret_in_the_body() {
    let emulator = emulator().await;
    let (verifier, challenge) = pkce();
    let url = authorization_url(&emulator, "organizations", SCOPES, &challenge, "s");
    let page = get(&url).await;
    assert!(page.text.contains(fixtures::ADELE_UPN));
    assert!(page.text.contains(fixtures::DIEGO_UPN));
    assert!(
        !page.text.contains(fixtures::ALICE_UPN),
        "no personal users at organizations"
    );

    let location = browse(&emulator, &url, "account", fixtures::ADELE_UPN, "accept").await;
    let code = query(&location)["code"].clone();
    let answer = post_form(
        &emulator.token_url("organizations"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
            ("client_id", fixtures::CLIENT_ID),
            ("client_secret", fixtures::CLIENT_SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let claims = jwt_claims(answer.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["tid"], fixtures::CONTOSO_TENANT_ID);
    assert_eq!(claims["oid"], fixtures::ADELE_OBJECT_ID);

    // A personal account cannot be chosen at organizations.
    let (_, challenge) = pkce();
    let url = authorization_url(&emulator, "organizations", SCOPES, &challenge, "s");
    let error = emulator
        .complete_authorization(&url, fixtures::ALICE_UPN)
        .unwrap_err();
    assert_eq!(error.aadsts, 50020);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let emulator = emulator().await;
    let (_, challenge) = pkce();
    let url = authorization_url(&emulator, "consumers", SCOPES, &challenge, "st@te 1");
    let location = browse(&emulator, &url, "account", fixtures::ALICE_UPN, "deny").await;
    let params = query(&location);
    assert_eq!(params["error"], "access_denied");
    assert!(params["error_description"].starts_with("AADSTS65004:"));
    assert_eq!(params["state"], "st@te 1");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn untrusted_client_or_redirect_uri_gets_an_error_page_not_a_redirect() {
    let emulator = emulator().await;
    let (_, challenge) = pkce();
    let good = authorization_url(&emulator, "consumers", SCOPES, &challenge, "s");
    let cases = [
        (
            good.replace("65000%2Foauth%2Fcallback", "65000%2Foauth%2Fcallback%2F"),
            "AADSTS50011",
        ),
        (
            good.replace("%2F%2F127.0.0.1%3A", "%2F%2Fevil.example%3A"),
            "AADSTS50011",
        ),
        (
            good.replace(fixtures::CLIENT_ID, "not-registered"),
            "AADSTS700016",
        ),
        (
            good.replace("/consumers/", "/no-such-tenant/"),
            "AADSTS90002",
        ),
    ];
    for (url, code) in cases {
        let page = get(&url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(
            page.headers.get(LOCATION).is_none(),
            "{url} must not redirect"
        );
        assert!(page.text.contains(code), "{url}: {}", page.text);
        // Posting the same parameters is refused the same way.
        let form: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .chain([
                ("account".into(), fixtures::ALICE_UPN.into()),
                ("consent".into(), "accept".into()),
            ])
            .collect();
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let posted = post_form(url.split('?').next().unwrap(), &form, None).await;
        assert!(
            posted.headers.get(LOCATION).is_none(),
            "POST {url} must not redirect"
        );
    }
}

#[tokio::test]
async fn pkce_s256_is_required() {
    let emulator = emulator().await;
    let (_, challenge) = pkce();
    let good = authorization_url(&emulator, "consumers", SCOPES, &challenge, "s");
    for url in [
        good.replace("&code_challenge_method=S256", ""),
        good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
        good.replace(&format!("&code_challenge={challenge}"), ""),
        good.replace(&challenge, "too-short"),
    ] {
        let answer = get(&url).await;
        let params = query(&answer.location());
        assert_eq!(params["error"], "invalid_request", "{url}");
        assert_eq!(params["state"], "s");
        assert!(!params.contains_key("code"));
    }
}

#[tokio::test]
async fn pkce_mismatch_is_invalid_grant() {
    let emulator = emulator().await;
    let (code, _) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    let (other_verifier, _) = pkce();
    let answer = redeem(&emulator, "consumers", &code, &other_verifier).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 501481);

    // A missing verifier too; and the code is spent by the failed attempt.
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    let answer = post_form(
        &emulator.token_url("consumers"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 501481);
    let answer = redeem(&emulator, "consumers", &code, &verifier).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 54005);
}

#[tokio::test]
async fn the_token_redirect_uri_must_match_the_authorization_one() {
    let emulator = emulator().await;
    let other = "http://127.0.0.1:65000/other";
    emulator
        .add_redirect_uri(fixtures::CLIENT_ID, other)
        .unwrap();
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    let answer = post_form(
        &emulator.token_url("consumers"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", other),
            ("code_verifier", &verifier),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 500112);
}

#[tokio::test]
async fn a_code_is_single_use_expires_and_belongs_to_its_client() {
    let emulator = emulator().await;
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    assert_eq!(
        redeem(&emulator, "consumers", &code, &verifier)
            .await
            .status,
        StatusCode::OK
    );
    let replay = redeem(&emulator, "consumers", &code, &verifier).await;
    assert_aad_error(&replay, StatusCode::BAD_REQUEST, "invalid_grant", 54005);

    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    emulator.advance_clock(Duration::from_secs(601));
    let expired = redeem(&emulator, "consumers", &code, &verifier).await;
    assert_aad_error(&expired, StatusCode::BAD_REQUEST, "invalid_grant", 70008);

    let unknown = redeem(&emulator, "consumers", "M.C1.made-up", &verifier).await;
    assert_aad_error(&unknown, StatusCode::BAD_REQUEST, "invalid_grant", 9002313);

    emulator
        .register_client(Client::new("other-app", "other-secret", [CALLBACK]))
        .unwrap();
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    let stolen = post_form(
        &emulator.token_url("consumers"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
        Some(("other-app", "other-secret")),
    )
    .await;
    assert_aad_error(&stolen, StatusCode::BAD_REQUEST, "invalid_grant", 70000);
    // Another client's attempt does not burn the code.
    assert_eq!(
        redeem(&emulator, "consumers", &code, &verifier)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn client_authentication_is_checked() {
    let emulator = emulator().await;
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let url = emulator.token_url("consumers");
    let wrong = post_form(&url, &form, Some((fixtures::CLIENT_ID, "wrong"))).await;
    assert_aad_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_client", 7000215);
    let unknown = post_form(&url, &form, Some(("nobody", "x"))).await;
    assert_aad_error(
        &unknown,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
    );
    let mut no_secret = form.to_vec();
    no_secret.push(("client_id", fixtures::CLIENT_ID));
    let missing = post_form(&url, &no_secret, None).await;
    assert_aad_error(
        &missing,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000218,
    );
    // None of that spent the code.
    assert_eq!(
        redeem(&emulator, "consumers", &code, &verifier)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_tokens_need_offline_access_and_codes_their_tenant() {
    let emulator = emulator().await;
    let (code, verifier) = sign_in(
        &emulator,
        "consumers",
        fixtures::ALICE_UPN,
        "openid User.Read",
    )
    .await;
    let tokens = redeem(&emulator, "consumers", &code, &verifier)
        .await
        .json();
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert!(tokens.get("id_token").is_some());

    let (code, verifier) = sign_in(
        &emulator,
        "consumers",
        fixtures::ALICE_UPN,
        "offline_access User.Read",
    )
    .await;
    let tokens = redeem(&emulator, "consumers", &code, &verifier)
        .await
        .json();
    assert!(tokens.get("refresh_token").is_some());
    assert!(
        tokens.get("id_token").is_none(),
        "no openid, no id token: {tokens}"
    );

    // A personal account's code cannot be redeemed at organizations.
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    let answer = redeem(&emulator, "organizations", &code, &verifier).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 50020);
}

#[tokio::test]
async fn refresh_rotates_and_an_old_refresh_token_is_rejected() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    let answer = refresh(&emulator, "consumers", &first).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let rotated = answer.json();
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_ne!(rotated["access_token"], tokens["access_token"]);
    assert_eq!(rotated["scope"], SCOPES);
    assert_eq!(
        jwt_claims(rotated["id_token"].as_str().unwrap())["oid"],
        fixtures::ALICE_OBJECT_ID
    );

    let reused = refresh(&emulator, "consumers", &first).await;
    assert_aad_error(&reused, StatusCode::BAD_REQUEST, "invalid_grant", 70008);

    let third = refresh(&emulator, "consumers", &second).await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(emulator.counters().refresh, 3);
    assert_eq!(emulator.counters().tokens_issued, 3);
}

#[tokio::test]
async fn refresh_scopes_must_have_been_consented() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let narrower = post_form(
        &emulator.token_url("consumers"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("scope", "User.Read offline_access"),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.text);
    let narrower = narrower.json();
    assert_eq!(narrower["scope"], "User.Read offline_access");
    let wider = post_form(
        &emulator.token_url("consumers"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", narrower["refresh_token"].as_str().unwrap()),
            ("scope", "Mail.Read"),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    assert_aad_error(&wider, StatusCode::BAD_REQUEST, "invalid_grant", 65001);
}

#[tokio::test]
async fn a_revoked_grant_is_invalid_grant_50173_until_the_user_signs_in_again() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "organizations", fixtures::ADELE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (pending_code, pending_verifier) =
        sign_in(&emulator, "organizations", fixtures::ADELE_UPN, SCOPES).await;

    assert_eq!(
        emulator.revoke_user_grant(fixtures::ADELE_UPN, fixtures::CLIENT_ID),
        Ok(1)
    );

    let answer = refresh(&emulator, "organizations", refresh_token).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 50173);
    let answer = redeem(&emulator, "organizations", &pending_code, &pending_verifier).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 50173);
    let me = get_with_bearer(
        &format!("{}/me", emulator.graph_url()),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    // Megan's grant is untouched; Adele signing in again gets a fresh, working grant.
    let megan = tokens_for(&emulator, "organizations", fixtures::MEGAN_UPN).await;
    assert_eq!(
        refresh(
            &emulator,
            "organizations",
            megan["refresh_token"].as_str().unwrap()
        )
        .await
        .status,
        StatusCode::OK
    );
    let again = tokens_for(&emulator, "organizations", fixtures::ADELE_OBJECT_ID).await;
    assert_eq!(
        refresh(
            &emulator,
            "organizations",
            again["refresh_token"].as_str().unwrap()
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_tokens_and_access_tokens_expire() {
    let emulator = emulator().await;
    emulator.set_refresh_token_lifetime(Duration::from_secs(3600));
    emulator.set_access_token_lifetime(Duration::from_secs(60));
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    assert_eq!(tokens["expires_in"], 60);

    emulator.advance_clock(Duration::from_secs(61));
    let me = get_with_bearer(
        &format!("{}/me", emulator.graph_url()),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.json()["error"]["code"], "InvalidAuthenticationToken");
    assert!(
        me.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    emulator.advance_clock(Duration::from_secs(3600));
    let answer = refresh(
        &emulator,
        "consumers",
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 700082);
}

#[tokio::test]
async fn rfc7009_revocation_kills_the_grant() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let revoke = |token: String, basic: Option<(&'static str, &'static str)>| {
        let url = emulator.revoke_url();
        async move {
            post_form(
                &url,
                &[("token", &token), ("token_type_hint", "refresh_token")],
                basic,
            )
            .await
        }
    };
    let credentials = Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET));

    // Client authentication is required, and only the owner may revoke.
    let anonymous = revoke(refresh_token.to_owned(), None).await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);
    emulator
        .register_client(Client::new("other-app", "other-secret", [CALLBACK]))
        .unwrap();
    let foreign = revoke(
        refresh_token.to_owned(),
        Some(("other-app", "other-secret")),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert_eq!(foreign.json()["error"], "unauthorized_client");

    let done = revoke(refresh_token.to_owned(), credentials).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.is_empty());
    let answer = refresh(&emulator, "consumers", refresh_token).await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 50173);
    let me = get_with_bearer(
        &format!("{}/me", emulator.graph_url()),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    // Unknown tokens are fine (RFC 7009 §2.2), and so is revoking twice.
    assert_eq!(
        revoke("never-issued".into(), credentials).await.status,
        StatusCode::OK
    );
    assert_eq!(
        revoke(refresh_token.to_owned(), credentials).await.status,
        StatusCode::OK
    );
    assert_eq!(emulator.counters().revoke, 5);
}

#[tokio::test]
async fn the_library_plays_the_browser() {
    let emulator = Emulator::builder()
        .redirect_uri(CALLBACK)
        .code_lifetime(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let url = authorization_url(&emulator, "common", SCOPES, &challenge, "lib");
    let location = emulator
        .complete_authorization(&url, fixtures::DIEGO_OBJECT_ID)
        .unwrap();
    let location = url::Url::parse(&location).unwrap();
    let params = query(&location);
    assert_eq!(params["state"], "lib");
    let answer = redeem(&emulator, "common", &params["code"], &verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    let denied = emulator.deny_authorization(&url).unwrap();
    assert!(denied.contains("error=access_denied"), "{denied}");
    let bad = url.replace("127.0.0.1%3A65000", "127.0.0.1%3A1");
    assert_eq!(
        emulator
            .complete_authorization(&bad, fixtures::ALICE_UPN)
            .unwrap_err()
            .aadsts,
        50011
    );
    assert_eq!(emulator.counters().authorize_decisions, 3);
    assert_eq!(emulator.counters().authorize, 0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn pages_escape_parameters_and_duplicates_are_refused() {
    let emulator = emulator().await;
    let (verifier, challenge) = pkce();
    let state = "\"><script>alert(1)</script>&x=<b>";
    let url = authorization_url(&emulator, "consumers", SCOPES, &challenge, state);
    let page = get(&url).await;
    assert!(!page.text.contains("<script>"), "{}", page.text);
    // The escaped state survives the round trip through the form.
    let location = browse(&emulator, &url, "account", fixtures::ALICE_UPN, "accept").await;
    let params = query(&location);
    assert_eq!(params["state"], state);
    assert_eq!(
        redeem(&emulator, "consumers", &params["code"], &verifier)
            .await
            .status,
        StatusCode::OK
    );

    let page = get(&format!("{url}&state=again")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text.contains("AADSTS9000411"));
    let answer = post_form(
        &emulator.token_url("consumers"),
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_request", 9000411);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_rotate_exactly_once() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let calls = (0..40).map(|_| {
        let url = emulator.token_url("consumers");
        let refresh_token = refresh_token.clone();
        tokio::spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
            ];
            post_form(
                &url,
                &form,
                Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
            )
            .await
            .status
        })
    });
    let mut statuses = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        statuses.push(call.await.unwrap());
    }
    let succeeded = statuses
        .iter()
        .filter(|status| **status == StatusCode::OK)
        .count();
    assert_eq!(succeeded, 1, "{statuses:?}");
    assert_eq!(emulator.counters().refresh, 40);
}
