//! What every emulator test needs, written once: an HTTP client that follows no redirects,
//! PKCE pairs, the browser leg over real HTTP (fetch the page, post its form back), token
//! calls, and parsing of `Location` headers, JSON errors and id tokens.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity_emulator::{Emulator, fixtures};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The redirect URI the tests register on the default client.
pub(crate) const CALLBACK: &str = "http://127.0.0.1:65000/oauth/callback";

/// The scopes Connector Service asks for OneDrive Consumer.
pub(crate) const SCOPES: &str = "openid profile offline_access User.Read Files.ReadWrite.All";

/// An emulator with the default fixtures and [`CALLBACK`] registered.
pub(crate) async fn emulator() -> Emulator {
    Emulator::builder()
        .redirect_uri(CALLBACK)
        .start()
        .await
        .expect("emulator starts")
}

/// A client that never follows redirects: tests read `Location` themselves.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// A PKCE pair: (verifier, S256 challenge).
pub(crate) fn pkce() -> (String, String) {
    let verifier = format!("verifier-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization URL as a client builds it.
pub(crate) fn authorization_url(
    emulator: &Emulator,
    tenant: &str,
    scopes: &str,
    challenge: &str,
    state: &str,
) -> String {
    let query = serde_urlencoded::to_string([
        ("client_id", fixtures::CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", scopes),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    format!("{}?{query}", emulator.authorize_url(tenant))
}

/// A response, read whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) async fn read(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body reads"),
        }
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }

    /// The `Location` of a 302, as a URL.
    pub(crate) fn location(&self) -> url::Url {
        assert_eq!(self.status, StatusCode::FOUND, "{}", self.text);
        let location = self.headers[LOCATION].to_str().unwrap();
        url::Url::parse(location).expect("absolute Location")
    }
}

/// The query of a URL as a map.
pub(crate) fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

pub(crate) async fn get(url: &str) -> Answer {
    Answer::read(http().get(url).send().await.expect("GET answers")).await
}

pub(crate) async fn get_with_bearer(url: &str, token: &str) -> Answer {
    Answer::read(
        http()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET answers"),
    )
    .await
}

/// POSTs a form, optionally with HTTP Basic client credentials.
pub(crate) async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Answer {
    let mut request = http()
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    Answer::read(request.send().await.expect("POST answers")).await
}

/// The hidden fields and action of the page's form, as a browser would submit them.
pub(crate) fn form_fields(html: &str) -> (String, Vec<(String, String)>) {
    let action = between(html, "action=\"", "\"").expect("form has an action");
    let mut fields = Vec::new();
    for input in html.split("<input type=\"hidden\" ").skip(1) {
        let name = between(input, "name=\"", "\"").unwrap();
        let value = between(input, "value=\"", "\"").unwrap();
        fields.push((unescape(&name), unescape(&value)));
    }
    (unescape(&action), fields)
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The browser leg over HTTP: GET the page, submit its form with `account` and `consent`
/// (`accept` or `deny`), and return the 302's `Location`.
pub(crate) async fn browse(
    emulator: &Emulator,
    url: &str,
    field: &str,
    choice: &str,
    consent: &str,
) -> url::Url {
    let page = get(url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let (action, mut fields) = form_fields(&page.text);
    fields.push((field.to_owned(), choice.to_owned()));
    fields.push(("consent".to_owned(), consent.to_owned()));
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_form(&format!("{}{action}", emulator.base_url()), &form, None)
        .await
        .location()
}

/// Signs in as `account` at `tenant` over HTTP; returns (code, verifier).
pub(crate) async fn sign_in(
    emulator: &Emulator,
    tenant: &str,
    account: &str,
    scopes: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorization_url(emulator, tenant, scopes, &challenge, "state-1");
    let location = browse(emulator, &url, "account", account, "accept").await;
    let params = query(&location);
    assert_eq!(params["state"], "state-1");
    (params["code"].clone(), verifier)
}

/// Redeems a code with the default client (HTTP Basic).
pub(crate) async fn redeem(
    emulator: &Emulator,
    tenant: &str,
    code: &str,
    verifier: &str,
) -> Answer {
    post_form(
        &emulator.token_url(tenant),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
        Some((fixtures::CLIENT_ID, fixtures::CLIENT_SECRET)),
    )
    .await
}

/// Signs in and redeems; returns the token response.
pub(crate) async fn tokens_for(emulator: &Emulator, tenant: &str, account: &str) -> Value {
    let (code, verifier) = sign_in(emulator, tenant, account, SCOPES).await;
    let answer = redeem(emulator, tenant, &code, &verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

/// Refreshes with the default client (secret in the body).
pub(crate) async fn refresh(emulator: &Emulator, tenant: &str, refresh_token: &str) -> Answer {
    post_form(
        &emulator.token_url(tenant),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", fixtures::CLIENT_ID),
            ("client_secret", fixtures::CLIENT_SECRET),
        ],
        None,
    )
    .await
}

/// Asserts Microsoft's error shape with `error` and AADSTS `code`.
pub(crate) fn assert_aad_error(answer: &Answer, status: StatusCode, error: &str, code: u64) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(
            body[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} in {body}"
        );
    }
}

/// The claims of a JWT (signature not checked here).
pub(crate) fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
