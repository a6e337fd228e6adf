//! The knobs and counters: injected failures (500, 429, a hang, `invalid_grant` with a chosen
//! AADSTS code) that leave the grant untouched, request counters, the `/_emulator` HTTP admin
//! API, and the `identity-emulator` binary.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use identity_emulator::{Counters, Emulator, Failure, IdTokenForgery, fixtures};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn an_injected_500_leaves_the_refresh_token_usable() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    emulator.fail_next_token_calls(1, Failure::Status500);
    let failed = refresh(&emulator, "consumers", refresh_token).await;
    assert_aad_error(
        &failed,
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        50000,
    );

    let answer = refresh(&emulator, "consumers", refresh_token).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the failure must not have rotated the token"
    );
    let counters = emulator.counters();
    assert_eq!(
        (
            counters.refresh,
            counters.injected_failures,
            counters.tokens_issued
        ),
        (2, 1, 2)
    );
}

/// The `exp` claim of a token answer's id token.
fn id_token_expiry(tokens: &Value) -> i64 {
    use base64::Engine as _;
    let id_token = tokens["id_token"].as_str().expect("an id token");
    let payload = id_token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    claims["exp"].as_i64().expect("exp")
}

/// Clearing failures is one mutation, whoever asks: the admin API's `DELETE /failures` drops
/// pending id-token forgeries too, as the handle's `clear_failures` does (issue 21: the two had
/// drifted, and the HTTP one left forgeries queued).
#[tokio::test]
async fn clearing_failures_over_http_drops_forged_id_tokens_too() {
    let emulator = emulator().await;
    let now = chrono::Utc::now().timestamp();
    emulator.forge_next_id_tokens([IdTokenForgery::Expired]);
    let forged = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    assert!(id_token_expiry(&forged) < now, "the forgery applies");

    emulator.forge_next_id_tokens([IdTokenForgery::Expired]);
    let cleared = http()
        .delete(format!("{}/_emulator/failures", emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let honest = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    assert!(id_token_expiry(&honest) > now, "the forgery was dropped");
}

#[tokio::test]
async fn failures_are_served_in_order_429_with_retry_after() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    emulator.fail_next_token_calls(2, Failure::Status429 { retry_after: 7 });
    emulator.fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 70008 });
    emulator.fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 50173 });
    emulator.fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 700082 });

    for _ in 0..2 {
        let throttled = refresh(&emulator, "consumers", refresh_token).await;
        assert_aad_error(
            &throttled,
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            90055,
        );
        assert_eq!(throttled.headers["retry-after"], "7");
    }
    for code in [70008, 50173, 700082] {
        let answer = refresh(&emulator, "consumers", refresh_token).await;
        assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", code);
    }
    assert_eq!(
        refresh(&emulator, "consumers", refresh_token).await.status,
        StatusCode::OK
    );

    // Failures apply to every grant type, and can be cleared.
    emulator.fail_next_token_calls(3, Failure::Status500);
    emulator.clear_failures();
    let (code, verifier) = sign_in(&emulator, "consumers", fixtures::ALICE_UPN, SCOPES).await;
    assert_eq!(
        redeem(&emulator, "consumers", &code, &verifier)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_timeout_holds_the_call_until_the_client_gives_up() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = serde_urlencoded::to_string([
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", fixtures::CLIENT_ID),
        ("client_secret", fixtures::CLIENT_SECRET),
    ])
    .unwrap();

    emulator.fail_next_token_calls(2, Failure::Timeout);
    let impatient = http()
        .post(emulator.token_url("consumers"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the emulator never answers");
    assert!(impatient.is_timeout(), "{impatient}");

    // The second held call is released by shutdown, which does not wait forever.
    let url = emulator.token_url("consumers");
    let held = tokio::spawn(async move {
        http()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map(|response| response.status())
    });
    while emulator.counters().injected_failures < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counters = emulator.counters();
    tokio::time::timeout(Duration::from_secs(10), emulator.shutdown())
        .await
        .expect("shutdown releases held calls");
    let released = held.await.unwrap();
    assert!(
        released
            .as_ref()
            .map_or(true, |status| *status == StatusCode::SERVICE_UNAVAILABLE),
        "{released:?}"
    );
    assert_eq!(counters.refresh, 2);
    assert_eq!(
        counters.tokens_issued, 1,
        "only the code redemption issued tokens"
    );
}

#[tokio::test]
async fn revoke_calls_can_fail_too() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    emulator.fail_next_revoke_calls(1, Failure::Status500);
    let form = [("token", refresh_token)];
    let credentials = Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET));
    let failed = post_form(&emulator.revoke_url(), &form, credentials).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Not revoked by the failed call.
    let rotated = refresh(&emulator, "consumers", refresh_token).await.json();
    let form = [("token", rotated["refresh_token"].as_str().unwrap())];
    assert_eq!(
        post_form(&emulator.revoke_url(), &form, credentials)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn counters_count_every_endpoint_and_reset() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, "consumers", fixtures::ALICE_UPN).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    refresh(&emulator, "consumers", refresh_token).await;
    refresh(&emulator, "consumers", refresh_token).await; // rejected: still counted
    post_form(
        &emulator.token_url("consumers"),
        &[("grant_type", "password")],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    get(&format!("{}/me", emulator.graph_url())).await;
    get(&format!("{}/organization", emulator.graph_url())).await;
    post_form(&emulator.revoke_url(), &[("token", "x")], None).await;
    get(&emulator.admin_consent_url("organizations")).await;

    let expected = Counters {
        authorize: 1,
        authorize_decisions: 1,
        token: 4,
        authorization_code: 1,
        refresh: 2,
        client_credentials: 0,
        tokens_issued: 2,
        injected_failures: 0,
        adminconsent: 1,
        adminconsent_decisions: 0,
        me: 1,
        organization: 1,
        revoke: 1,
    };
    assert_eq!(emulator.counters(), expected);
    assert_eq!(emulator.reset_counters(), expected);
    assert_eq!(emulator.counters(), Counters::default());
}

async fn admin(emulator: &Emulator, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let url = format!("{}/_emulator{path}", emulator.base_url());
    let request = match body {
        Some(body) => http()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => http().get(url),
    };
    let answer = Answer::read(request.send().await.unwrap()).await;
    (answer.status, answer.json())
}

#[tokio::test]
async fn the_admin_http_api_mirrors_the_library() {
    let emulator = Emulator::builder()
        .without_default_fixtures()
        .start()
        .await
        .unwrap();
    assert_eq!(admin(&emulator, "/health", None).await.1["status"], "ok");

    // Registrations.
    let tenant = json!({"tenant_id": "11111111-2222-3333-4444-555555555555",
        "default_domain": "northwind.onmicrosoft.com", "display_name": "Northwind"});
    let user = json!({"kind": "work", "tenant_id": "11111111-2222-3333-4444-555555555555",
        "object_id": "66666666-7777-8888-9999-000000000000",
        "user_principal_name": "nancy@northwind.onmicrosoft.com", "display_name": "Nancy"});
    let client = json!({"client_id": "orchestrator-app", "client_secret": "s3cret",
        "redirect_uris": ["http://127.0.0.1:9/cb"]});
    assert_eq!(
        admin(&emulator, "/users", Some(user.clone())).await.0,
        StatusCode::NOT_FOUND,
        "tenant first"
    );
    assert_eq!(
        admin(&emulator, "/tenants", Some(tenant)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        admin(&emulator, "/users", Some(user)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        admin(&emulator, "/clients", Some(client)).await.0,
        StatusCode::OK
    );
    let (status, _) = admin(
        &emulator,
        "/clients/orchestrator-app/redirect_uris",
        Some(json!({"redirect_uri": CALLBACK})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = admin(
        &emulator,
        "/clients",
        Some(json!({"client_id": "x", "redirect_uris": ["not a url"]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let registrations = admin(&emulator, "/registrations", None).await.1;
    assert_eq!(
        registrations["users"][0]["user_principal_name"],
        "nancy@northwind.onmicrosoft.com"
    );
    assert_eq!(registrations["clients"][0]["redirect_uris"][1], CALLBACK);

    // Lifetimes.
    let (_, lifetimes) = admin(
        &emulator,
        "/lifetimes",
        Some(json!({"access_token_secs": 120})),
    )
    .await;
    assert_eq!(
        lifetimes,
        json!({"access_token_secs": 120, "refresh_token_secs": 7776000, "code_secs": 600})
    );
    assert_eq!(emulator.lifetimes().access_token, Duration::from_secs(120));

    // The browser step, then tokens for the new client.
    let (verifier, challenge) = pkce();
    let authorization_url = format!(
        "{}?{}",
        emulator.authorize_url("organizations"),
        serde_urlencoded::to_string([
            ("client_id", "orchestrator-app"),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("scope", SCOPES),
            ("state", "h"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap()
    );
    let (status, step) = admin(
        &emulator,
        "/authorize",
        Some(json!({"authorization_url": authorization_url, "account": "nancy@northwind.onmicrosoft.com", "consent": "accept"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{step}");
    let location = url::Url::parse(step["location"].as_str().unwrap()).unwrap();
    let code = query(&location)["code"].clone();
    let tokens = post_form(
        &emulator.token_url("organizations"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
        Some(("orchestrator-app", "s3cret")),
    )
    .await
    .json();
    assert_eq!(tokens["expires_in"], 120);

    // Failures, grant revocation, clock, counters.
    let (status, pending) = admin(
        &emulator,
        "/failures/token",
        Some(json!({"count": 2, "failure": {"kind": "status_429", "retry_after": 3}})),
    )
    .await;
    assert_eq!(
        (status, pending["pending"].clone()),
        (StatusCode::OK, json!(2))
    );
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let credentials = Some(("orchestrator-app", "s3cret"));
    let throttled = post_form(
        &emulator.token_url("organizations"),
        &refresh_form,
        credentials,
    )
    .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    let cleared = http()
        .delete(format!("{}/_emulator/failures", emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let (_, revoked) = admin(
        &emulator,
        "/grants/revoke",
        Some(json!({"user": "66666666-7777-8888-9999-000000000000", "client_id": "orchestrator-app"})),
    )
    .await;
    assert_eq!(revoked["revoked"], 1);
    let answer = post_form(
        &emulator.token_url("organizations"),
        &refresh_form,
        credentials,
    )
    .await;
    assert_aad_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant", 50173);

    assert_eq!(
        admin(&emulator, "/clock/advance", Some(json!({"secs": 60})))
            .await
            .0,
        StatusCode::OK
    );
    let (_, consent) = admin(
        &emulator,
        "/admin_consents",
        Some(json!({"tenant_id": "northwind.onmicrosoft.com", "client_id": "orchestrator-app"})),
    )
    .await;
    assert_eq!(consent["ok"], true);
    assert!(emulator.has_admin_consent("11111111-2222-3333-4444-555555555555", "orchestrator-app"));
    let (_, revoked) = admin(
        &emulator,
        "/admin_consents/revoke",
        Some(json!({"tenant_id": "11111111-2222-3333-4444-555555555555", "client_id": "orchestrator-app"})),
    )
    .await;
    assert_eq!(revoked["revoked"], true);

    let (_, counters) = admin(&emulator, "/counters", None).await;
    assert_eq!(counters["refresh"], 2);
    assert_eq!(counters["injected_failures"], 1);
    assert_eq!(counters["authorize_decisions"], 1);
    let (_, before) = admin(&emulator, "/counters/reset", Some(json!({}))).await;
    assert_eq!(before, counters);
    assert_eq!(admin(&emulator, "/counters", None).await.1["token"], 0);

    let (status, error) = admin(
        &emulator,
        "/failures/token",
        Some(json!({"failure": {"kind": "nope"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
}

#[tokio::test]
async fn the_binary_prints_its_url_and_serves_the_configured_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("emulator.toml");
    std::fs::write(
        &config,
        r#"
access_token_lifetime_secs = 90

[[tenants]]
tenant_id = "11111111-2222-3333-4444-555555555555"
default_domain = "northwind.onmicrosoft.com"
display_name = "Northwind"

[[users]]
kind = "work"
tenant_id = "11111111-2222-3333-4444-555555555555"
object_id = "66666666-7777-8888-9999-000000000000"
user_principal_name = "nancy@northwind.onmicrosoft.com"
display_name = "Nancy Davolio"

[[admin_consents]]
tenant_id = "11111111-2222-3333-4444-555555555555"
client_id = "a274c1a9-9b58-4ea0-92e7-9cf9d367148a"
"#,
    )
    .unwrap();
    let url_file = dir.path().join("url");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_identity-emulator"))
            .arg("--config")
            .arg(&config)
            .args(["--redirect-uri", CALLBACK, "--url-file"])
            .arg(&url_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line.trim().to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    assert_eq!(std::fs::read_to_string(&url_file).unwrap().trim(), base_url);

    let registrations = get(&format!("{base_url}/_emulator/registrations"))
        .await
        .json();
    let names: Vec<&str> = registrations["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["user_principal_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"nancy@northwind.onmicrosoft.com") && names.contains(&fixtures::ALICE_UPN)
    );
    assert_eq!(registrations["clients"][0]["redirect_uris"][1], CALLBACK);

    let tokens = post_form(
        &format!("{base_url}/northwind.onmicrosoft.com/oauth2/v2.0/token"),
        &[
            ("grant_type", "client_credentials"),
            ("scope", identity_emulator::GRAPH_DEFAULT_SCOPE),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert_eq!(tokens.json()["expires_in"], 90);

    drop(child);

    // A bad configuration is reported, not ignored.
    std::fs::write(&config, "unknown_key = 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_identity-emulator"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown_key"));
}

/// Kills the spawned emulator even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
