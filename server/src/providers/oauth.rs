//! The boundary between the domain and a connector type that links through OAuth 2.0.
//!
//! An [`OAuthProvider`] is one app registration at one identity provider, for one connector
//! type. It knows the provider's protocol (its authorize parameters, how a code is redeemed, how
//! the account that signed in is named, how tokens are refreshed and revoked, which errors mean
//! the grant is gone) and nothing of connectors or storage. The domain does the rest the same
//! way for every provider: the `state`, PKCE and nonce bookkeeping, once per account, sealing,
//! single-flight refresh, deauthorization, the revocation outbox.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::Error;
pub use super::credentials::Identity;

/// Tokens from a token endpoint. `Debug` shows none of them.
pub struct Tokens {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when one was issued.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires.
    pub expire_time: DateTime<Utc>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The OpenID Connect id token of the sign-in, when one was issued; read by the provider
    /// that issued it to name the account.
    pub id_token: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("expire_time", &self.expire_time)
            .field("scopes", &self.scopes)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A started authorization: the URL for the browser and the PKCE verifier to keep.
pub struct AuthorizationStart {
    /// Where to send the browser.
    pub url: String,
    /// The PKCE verifier for the code exchange; secret until then.
    pub pkce_verifier: SecretString,
}

/// How a grant was lost, as far as the provider's error tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantLoss {
    /// The user, an administrator or the provider withdrew it.
    Revoked,
    /// It ran out (inactivity, maximum age).
    Expired,
}

/// What one authorization asks the provider for.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    /// The redirect URI registered with the provider.
    pub redirect_uri: &'a str,
    /// Our `state`.
    pub state: &'a str,
    /// The OpenID Connect nonce the id token must echo.
    pub nonce: &'a str,
}

/// A connector type that links through OAuth 2.0. See the module documentation.
#[async_trait::async_trait]
pub trait OAuthProvider: Send + Sync + fmt::Debug {
    /// The authorization URL (with PKCE S256, the scopes, and the provider's own parameters
    /// such as an account chooser or tenant-wide consent) and the verifier to keep.
    fn authorization_url(
        &self,
        request: AuthorizationRequest<'_>,
    ) -> Result<AuthorizationStart, Error>;

    /// Redeems an authorization code with its PKCE verifier: the tokens the connector keeps.
    /// `invalid_grant` here means the code is wrong, used or not bound to the verifier.
    async fn exchange(
        &self,
        request: AuthorizationRequest<'_>,
        code: &str,
        pkce_verifier: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error>;

    /// The external account tokens from [`OAuthProvider::exchange`] belong to (stable ids, never
    /// an e-mail address), checking the id token against the request's nonce.
    async fn identify(
        &self,
        tokens: &Tokens,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, Error>;

    /// Whether the connector keeps a refresh token (delegated sign-in); `false` when fresh
    /// tokens come from the app's own credentials for the account (tenant-wide consent).
    fn keeps_refresh_token(&self) -> bool;

    /// Fresh tokens for a linked account: from the stored refresh token when the connector
    /// keeps one, else from the app's own credentials for `external_account_id`.
    async fn refresh(
        &self,
        external_account_id: &str,
        refresh_token: Option<&SecretString>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error>;

    /// Whether the grant behind a failed refresh is gone, and how; `None` for failures that
    /// leave it intact (an outage, our own app's credentials).
    fn grant_lost(&self, error: &Error) -> Option<GrantLoss>;

    /// Whether [`OAuthProvider::revoke`] can revoke anything (an RFC 7009 endpoint).
    fn revokes(&self) -> bool;

    /// Revokes a refresh token: `true` when revoked, `false` when the provider cannot.
    async fn revoke(&self, refresh_token: &SecretString) -> Result<bool, Error>;

    /// Where the access tokens are used (the API's base URL).
    fn resource_url(&self) -> &str;

    /// Whether an authorization response's RFC 9207 `iss` names this provider. One that names
    /// another authorization server is a mix-up: its code is never redeemed here.
    fn accepts_issuer(&self, iss: &str) -> bool;
}
