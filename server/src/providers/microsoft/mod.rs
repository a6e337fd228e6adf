//! Microsoft identity platform (OAuth 2.0 v2 endpoints) and the two Microsoft Graph calls that
//! identify who signed in: the protocol side of the OneDrive Consumer, OneDrive for Business
//! (User) and Office 365 connector types.
//!
//! The `oauth2` crate speaks the protocol; it gets a small HTTP adapter over the reqwest client
//! the rest of the server uses (redirects disabled, timeouts set), which also turns 5xx and 429
//! answers into transient errors before `oauth2` tries to parse them. Endpoints are configurable
//! so tests (and sovereign clouds) can point them elsewhere. Checking who signed in (the id
//! token and Graph) lives in `identity`; `app` is the [`super::oauth::OAuthProvider`] the
//! domain sees, one per connector type: everything Microsoft-specific (tenant, `prompt`,
//! AADSTS codes, Graph, the resource URL) stays behind it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse as _, TokenUrl,
    basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
        BasicTokenIntrospectionResponse, BasicTokenType,
    },
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::oauth::{AuthorizationStart, Identity, Tokens};
use super::{Error, retry_after};

mod app;
mod identity;

pub use app::MicrosoftApp;
pub use identity::CONSENTING_ROLES;

/// An app registration for one connector type: who we are at the identity platform.
#[derive(Clone)]
pub struct OAuthApp {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Tenant segment of the authorize and token URLs for delegated sign-in (`consumers`,
    /// `organizations`), or the one used for admin consent (`organizations`).
    pub tenant: String,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// An RFC 7009 revocation endpoint, for providers that have one (Microsoft has none).
    pub revocation_url: Option<String>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("revocation_url", &self.revocation_url)
            .finish_non_exhaustive()
    }
}

/// The `id_token` field Microsoft adds to token responses.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient<HasAuth, HasRevocation, HasToken> = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuth,
    EndpointNotSet,
    EndpointNotSet,
    HasRevocation,
    HasToken,
>;

/// Why an HTTP exchange with the provider failed before `oauth2` could read an answer.
#[derive(Debug, thiserror::Error)]
#[allow(unreachable_pub)] // public only as the adapter's associated error type
pub enum Transport {
    /// The request could not be sent or the answer not read.
    #[error("{0}")]
    Request(String),
    /// A 5xx or 429 answer.
    #[error("the provider answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The provider's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// The Microsoft identity platform and Graph, at configurable base URLs.
#[derive(Debug, Clone)]
pub struct Microsoft {
    http: reqwest::Client,
    login_base: String,
    graph_base: String,
}

impl Microsoft {
    /// `login_base` is `https://login.microsoftonline.com` in production, `graph_base`
    /// `https://graph.microsoft.com`.
    pub fn new(http: reqwest::Client, login_base: &str, graph_base: &str) -> Self {
        Self {
            http,
            login_base: login_base.trim_end_matches('/').to_owned(),
            graph_base: graph_base.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether `iss` is an issuer of this identity platform: `{login}/{tenant}/v2.0`.
    pub fn is_issuer(&self, iss: &str) -> bool {
        iss.strip_prefix(&self.login_base)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_suffix("/v2.0"))
            .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
    }

    fn client(
        &self,
        app: &OAuthApp,
        tenant: &str,
    ) -> Result<OAuthClient<EndpointSet, EndpointNotSet, EndpointSet>, Error> {
        let base = format!("{}/{tenant}/oauth2/v2.0", self.login_base);
        Ok(oauth2::Client::new(ClientId::new(app.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                app.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::new(format!("{base}/authorize")).map_err(misconfigured)?)
            .set_token_uri(TokenUrl::new(format!("{base}/token")).map_err(misconfigured)?))
    }

    /// The authorization URL for a delegated sign-in, with PKCE S256 and our `state`.
    pub fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        prompt: &str,
    ) -> Result<AuthorizationStart, Error> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self
            .client(app, &app.tenant)?
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(misconfigured)?);
        let state = state.to_owned();
        let (url, _) = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(app.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            // `select_account`: reauthorizing must let the user choose the account;
            // `admin_consent`: an administrator consents for the whole tenant.
            .add_extra_param("prompt", prompt.to_owned())
            // Echoed in the id token: ties the token to this authorization (OIDC Core §3.1.2.1).
            .add_extra_param("nonce", nonce.to_owned())
            .url();
        Ok(AuthorizationStart {
            url: url.to_string(),
            pkce_verifier: verifier.secret().clone().into(),
        })
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        app: &OAuthApp,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let client = self
            .client(app, &app.tenant)?
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(misconfigured)?);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(self)
            .await
            .map_err(token_error)?;
        Ok(tokens(response, now))
    }

    /// Redeems a refresh token. Microsoft rotates refresh tokens: the answer carries a new one,
    /// which replaces the old.
    pub async fn refresh(
        &self,
        app: &OAuthApp,
        refresh_token: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let response = self
            .client(app, &app.tenant)?
            .exchange_refresh_token(&refresh_token)
            .add_scopes(app.scopes.iter().cloned().map(Scope::new))
            .request_async(self)
            .await
            .map_err(token_error)?;
        Ok(tokens(response, now))
    }

    /// An app-only token for a tenant (client credentials grant), as admin consent allows.
    pub async fn app_token(
        &self,
        app: &OAuthApp,
        tenant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let response = self
            .client(app, tenant_id)?
            .exchange_client_credentials()
            // App-only tokens take the resource's `.default` scope and nothing else.
            .add_scopes(
                app.scopes
                    .iter()
                    .filter(|scope| scope.ends_with("/.default"))
                    .cloned()
                    .map(Scope::new),
            )
            .request_async(self)
            .await
            .map_err(token_error)?;
        Ok(tokens(response, now))
    }

    /// Revokes a refresh token at an RFC 7009 endpoint, where the app has one: `true` when
    /// revoked, `false` when there is no endpoint or it does not revoke refresh tokens. Sent directly
    /// rather than through `oauth2`, which refuses non-HTTPS revocation URLs (and with them the
    /// emulator in tests); production endpoints are HTTPS by configuration.
    pub async fn revoke(
        &self,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<bool, Error> {
        let Some(revocation_url) = &app.revocation_url else {
            return Ok(false);
        };
        let form = [
            ("token", refresh_token.expose_secret()),
            ("token_type_hint", "refresh_token"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose_secret()),
        ];
        let body = form
            .iter()
            .map(|(name, value)| {
                format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(
                        value,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .http
            .post(revocation_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let response = send_checked(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        // RFC 7009 §2.2.1: the server does not revoke this kind of token. Other refusals
        // (`invalid_client` after a secret rotation, say) may be fixed by configuration, so they
        // are retried like outages.
        let body = response.bytes().await.unwrap_or_default();
        let error = serde_json::from_slice::<OAuthErrorBody>(&body)
            .map(|body| body.error)
            .unwrap_or_default();
        if error == "unsupported_token_type" {
            return Ok(false);
        }
        Err(Error::Protocol(format!(
            "the revocation endpoint answered {status}{}{error}",
            if error.is_empty() { "" } else { " " }
        )))
    }

    /// The HTTP adapter `oauth2` calls: reqwest with our timeouts and no redirects; 5xx and 429
    /// become transient errors here.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Transport> {
        let request = reqwest::Request::try_from(request)
            .map_err(|error| Transport::Request(describe(&error)))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|error| Transport::Request(describe(&error)))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Transport::Status {
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let mut builder = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| Transport::Request(describe(&error)))?;
        builder
            .body(body.to_vec())
            .map_err(|error| Transport::Request(error.to_string()))
    }
}

/// `oauth2` drives its requests through this: a boxed, `Send` future per call (a plain closure
/// would not be `Send` for every lifetime `oauth2` asks for).
impl<'c> oauth2::AsyncHttpClient<'c> for Microsoft {
    type Error = Transport;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, Transport>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

fn tokens(response: TokenResponse, now: DateTime<Utc>) -> Tokens {
    let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3600));
    Tokens {
        access_token: response.access_token().secret().clone().into(),
        refresh_token: response
            .refresh_token()
            .map(|token| token.secret().clone().into()),
        expire_time: now
            + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1)),
        scopes: response
            .scopes()
            .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
            .unwrap_or_default(),
        id_token: response.extra_fields().id_token.clone(),
    }
}

/// Classifies a token endpoint failure: `invalid_grant` (with Microsoft's AADSTS code) means the
/// grant is gone; transport trouble, 5xx and 429 are transient; anything else is a rejection.
fn token_error(error: RequestTokenError<Transport, BasicErrorResponse>) -> Error {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let description = response.error_description().cloned().unwrap_or_default();
            match response.error() {
                BasicErrorResponseType::InvalidGrant => Error::InvalidGrant {
                    aadsts: aadsts_code(&description),
                    description,
                },
                BasicErrorResponseType::InvalidClient => Error::ClientRejected(description),
                other => Error::CredentialsRejected(format!("{other}: {description}")),
            }
        }
        RequestTokenError::Request(transport) => transient(transport),
        RequestTokenError::Parse(_, _) => {
            Error::Protocol("the token endpoint sent an unreadable answer".into())
        }
        RequestTokenError::Other(message) => Error::Protocol(message),
    }
}

/// Sends a request outside `oauth2`; transport failures, 5xx and 429 are transient errors.
async fn send_checked(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
    let response = request
        .send()
        .await
        .map_err(|error| transient(Transport::Request(describe(&error))))?;
    let status = response.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(transient(Transport::Status {
            status: status.as_u16(),
            retry_after: retry_after(response.headers()),
        }));
    }
    Ok(response)
}

fn transient(transport: Transport) -> Error {
    let retry_after = match &transport {
        Transport::Status { retry_after, .. } => retry_after.unwrap_or(Duration::from_secs(5)),
        Transport::Request(_) => Duration::from_secs(5),
    };
    Error::Unavailable {
        message: format!("the identity provider is unavailable: {transport}"),
        retry_after,
    }
}

/// `AADSTS70008: …` → 70008.
fn aadsts_code(description: &str) -> Option<u32> {
    let digits: String = description
        .strip_prefix("AADSTS")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

fn misconfigured(error: impl std::fmt::Display) -> Error {
    Error::Protocol(format!("OAuth configuration is invalid: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_are_read_from_descriptions() {
        assert_eq!(
            aadsts_code("AADSTS70008: The refresh token has expired"),
            Some(70008)
        );
        assert_eq!(
            aadsts_code("AADSTS700082: expired due to inactivity"),
            Some(700082)
        );
        assert_eq!(aadsts_code("something else"), None);
    }
}

/// The `error` member of an OAuth 2.0 error response (RFC 6749 §5.2).
#[derive(Debug, Deserialize)]
struct OAuthErrorBody {
    #[serde(default)]
    error: String,
}
