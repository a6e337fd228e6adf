//! An OAuth 2.0 provider defined by configuration: a [`Profile`] says where the endpoints are,
//! which scopes and authorize parameters to send, whether PKCE is used, how the client
//! authenticates, where the account's stable id and label sit, whether refresh tokens rotate,
//! how tokens are revoked and which errors mean an expired grant. Most providers (Google, Box,
//! Dropbox) need nothing else; what genuinely differs stays in a small module of its own.
//!
//! Token endpoint answers are read per RFC 6749 §5: `invalid_grant` means the grant is gone
//! ([`Error::InvalidGrant`]), `invalid_client` that our app's credentials are refused, 5xx and
//! 429 are transient (with `Retry-After`), anything else a rejection.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use super::{
    Error, id_token,
    oauth::{AuthorizationRequest, AuthorizationStart, GrantLoss, Identity, OAuthProvider, Tokens},
    retry_after,
};

pub mod known;
mod profile;

pub use profile::{Client, ClientAuth, IdentitySource, Profile, Revocation};

/// A provider defined by a [`Profile`].
#[derive(Debug, Clone)]
pub struct StandardOAuth {
    http: reqwest::Client,
    client: Client,
    profile: Profile,
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    scope: Option<String>,
    id_token: Option<String>,
}

/// An error answer (RFC 6749 §5.2).
#[derive(serde::Deserialize, Default)]
struct ErrorAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl StandardOAuth {
    /// A provider for one app registration.
    pub fn new(http: reqwest::Client, client: Client, profile: Profile) -> Self {
        Self {
            http,
            client,
            profile,
        }
    }

    /// Sends a form to an endpoint with the client's credentials; the answer when it is a
    /// success, or the classified error.
    async fn post_form(
        &self,
        url: &str,
        mut form: Vec<(&str, String)>,
    ) -> Result<reqwest::Response, Error> {
        let mut request = self.http.post(url);
        match self.profile.client_auth {
            ClientAuth::RequestBody => {
                form.push(("client_id", self.client.id.clone()));
                form.push((
                    "client_secret",
                    self.client.secret.expose_secret().to_owned(),
                ));
            }
            ClientAuth::Basic => {
                request = request.basic_auth(
                    form_encode(&self.client.id),
                    Some(form_encode(self.client.secret.expose_secret())),
                );
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(name, value)| (*name, value.as_str())))
            .finish();
        let answer = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|error| unavailable(format!("{url}: {}", error.without_url()), None))?;
        let status = answer.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(
                format!("{url} answered {status}"),
                retry_after(answer.headers()),
            ));
        }
        if status.is_success() {
            return Ok(answer);
        }
        let body = answer.bytes().await.unwrap_or_default();
        let error: ErrorAnswer = serde_json::from_slice(&body).unwrap_or_default();
        Err(match error.error.as_str() {
            "invalid_grant" => Error::InvalidGrant {
                aadsts: None,
                description: error.error_description,
            },
            "invalid_client" | "unauthorized_client" => {
                Error::ClientRejected(error.error_description)
            }
            "" => Error::Protocol(format!("{url} answered {status}")),
            code => Error::CredentialsRejected(format!("{code}: {}", error.error_description)),
        })
    }

    async fn token_request(
        &self,
        form: Vec<(&str, String)>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let answer = self.post_form(&self.profile.token_url, form).await?;
        let body = answer.bytes().await.map_err(|error| {
            unavailable(
                format!("reading the token answer: {}", error.without_url()),
                None,
            )
        })?;
        let tokens: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| Error::Protocol("the token endpoint sent an unreadable answer".into()))?;
        Ok(Tokens {
            access_token: tokens.access_token.into(),
            refresh_token: tokens.refresh_token.map(Into::into),
            expire_time: now
                + chrono::Duration::seconds(
                    i64::try_from(tokens.expires_in.unwrap_or(3600)).unwrap_or(3600),
                ),
            scopes: tokens
                .scope
                .map(|scope| scope.split(' ').map(str::to_owned).collect())
                .unwrap_or_default(),
            id_token: tokens.id_token,
        })
    }

    async fn identity_call(
        &self,
        tokens: &Tokens,
        method: &reqwest::Method,
        url: &str,
        body: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(tokens.access_token.expose_secret());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let answer = request
            .send()
            .await
            .map_err(|error| unavailable(format!("{url}: {}", error.without_url()), None))?;
        let status = answer.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("{url} answered {status}"), None));
        }
        if !status.is_success() {
            return Err(Error::CredentialsRejected(format!(
                "{url} refused the new access token ({status})"
            )));
        }
        let body = answer
            .bytes()
            .await
            .map_err(|error| unavailable(format!("{url}: {}", error.without_url()), None))?;
        serde_json::from_slice(&body)
            .map_err(|_| Error::Protocol(format!("{url} sent an unreadable answer")))
    }
}

/// `application/x-www-form-urlencoded` encoding of a Basic credential part (RFC 6749 §2.3.1).
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn unavailable(message: String, retry_after: Option<Duration>) -> Error {
    Error::Unavailable {
        message: format!("the identity provider is unavailable: {message}"),
        retry_after: retry_after.unwrap_or(Duration::from_secs(5)),
    }
}

/// The first of `candidates` that is a non-empty string in `value`.
fn first_text<'a>(candidates: impl IntoIterator<Item = &'a serde_json::Value>) -> Option<String> {
    candidates.into_iter().find_map(|value| match value {
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

#[async_trait::async_trait]
impl OAuthProvider for StandardOAuth {
    fn authorization_url(
        &self,
        request: AuthorizationRequest<'_>,
    ) -> Result<AuthorizationStart, Error> {
        let mut url = reqwest::Url::parse(&self.profile.authorize_url)
            .map_err(|error| Error::Protocol(format!("the authorize URL is invalid: {error}")))?;
        let mut verifier = String::new();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client.id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("state", request.state);
            if !self.profile.scopes.is_empty() {
                query.append_pair("scope", &self.profile.scopes.join(" "));
            }
            if matches!(self.profile.identity, IdentitySource::IdToken { .. }) {
                query.append_pair("nonce", request.nonce);
            }
            if self.profile.pkce {
                let mut random = [0u8; 32];
                rand::rng().fill_bytes(&mut random);
                verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            for (name, value) in &self.profile.authorize_params {
                query.append_pair(name, value);
            }
        }
        Ok(AuthorizationStart {
            url: url.to_string(),
            pkce_verifier: verifier.into(),
        })
    }

    async fn exchange(
        &self,
        request: AuthorizationRequest<'_>,
        code: &str,
        pkce_verifier: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", request.redirect_uri.to_owned()),
        ];
        if self.profile.pkce {
            form.push(("code_verifier", pkce_verifier.expose_secret().to_owned()));
        }
        self.token_request(form, now).await
    }

    async fn identify(
        &self,
        tokens: &Tokens,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, Error> {
        let (id, label) = match &self.profile.identity {
            IdentitySource::IdToken {
                id_claim,
                label_claims,
            } => {
                let claims: serde_json::Map<String, serde_json::Value> = id_token::verified_claims(
                    tokens.id_token.as_deref(),
                    &self.client.id,
                    nonce,
                    now,
                )?;
                if let Some(issuer) = &self.profile.issuer
                    && claims.get("iss").and_then(|iss| iss.as_str()) != Some(issuer.as_str())
                {
                    return Err(Error::IdTokenRejected(
                        "it was not issued by the provider's issuer".into(),
                    ));
                }
                (
                    first_text(claims.get(id_claim)),
                    first_text(label_claims.iter().filter_map(|claim| claims.get(claim))),
                )
            }
            IdentitySource::Call {
                method,
                url,
                body,
                id_pointer,
                label_pointers,
            } => {
                let answer = self
                    .identity_call(tokens, method, url, body.as_deref())
                    .await?;
                (
                    first_text(answer.pointer(id_pointer)),
                    first_text(
                        label_pointers
                            .iter()
                            .filter_map(|pointer| answer.pointer(pointer)),
                    ),
                )
            }
        };
        let id = id.ok_or_else(|| {
            Error::Protocol("the provider named no stable id for the account".into())
        })?;
        Ok(Identity {
            label: label.unwrap_or_else(|| id.clone()),
            id,
            pinned: None,
        })
    }

    fn keeps_refresh_token(&self) -> bool {
        self.profile.keeps_refresh_token
    }

    async fn refresh(
        &self,
        _external_account_id: &str,
        refresh_token: Option<&SecretString>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let refresh_token =
            refresh_token.ok_or_else(|| Error::Protocol("no refresh token is stored".into()))?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ];
        if !self.profile.scopes.is_empty() {
            form.push(("scope", self.profile.scopes.join(" ")));
        }
        // A provider whose refresh tokens do not rotate answers without one: the stored token
        // stays (only the fields returned are replaced).
        self.token_request(form, now).await
    }

    fn grant_lost(&self, error: &Error) -> Option<GrantLoss> {
        match error {
            Error::InvalidGrant { description, .. } => {
                let description = description.to_lowercase();
                let expired = self
                    .profile
                    .expired_grant_descriptions
                    .iter()
                    .any(|expired| description.contains(&expired.to_lowercase()));
                Some(if expired {
                    GrantLoss::Expired
                } else {
                    GrantLoss::Revoked
                })
            }
            _ => None,
        }
    }

    fn revokes(&self) -> bool {
        self.profile.revocation.is_some()
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<bool, Error> {
        match &self.profile.revocation {
            None => Ok(false),
            Some(Revocation::Rfc7009 { url }) => {
                let form = vec![
                    ("token", refresh_token.expose_secret().to_owned()),
                    ("token_type_hint", "refresh_token".to_owned()),
                ];
                match self.post_form(url, form).await {
                    Ok(_) => Ok(true),
                    // RFC 7009 §2.2: an invalid token is already as good as revoked.
                    Err(Error::CredentialsRejected(message))
                        if message.starts_with("invalid_token") =>
                    {
                        Ok(true)
                    }
                    Err(Error::CredentialsRejected(message))
                        if message.starts_with("unsupported_token_type") =>
                    {
                        Ok(false)
                    }
                    Err(error) => Err(error),
                }
            }
            Some(Revocation::BearerAccessToken { url }) => {
                let tokens = match self.refresh("", Some(refresh_token), Utc::now()).await {
                    Ok(tokens) => tokens,
                    // The grant is already gone: nothing is left to revoke.
                    Err(Error::InvalidGrant { .. }) => return Ok(true),
                    Err(error) => return Err(error),
                };
                let answer = self
                    .http
                    .post(url)
                    .bearer_auth(tokens.access_token.expose_secret())
                    .send()
                    .await
                    .map_err(|error| {
                        unavailable(format!("{url}: {}", error.without_url()), None)
                    })?;
                let status = answer.status();
                if status.is_success() {
                    Ok(true)
                } else if status.is_server_error() || status.as_u16() == 429 {
                    Err(unavailable(format!("{url} answered {status}"), None))
                } else {
                    Err(Error::Protocol(format!("{url} answered {status}")))
                }
            }
        }
    }

    fn resource_url(&self) -> &str {
        &self.profile.resource_url
    }

    fn accepts_issuer(&self, iss: &str) -> bool {
        self.profile.issuer.as_deref() == Some(iss)
    }
}
