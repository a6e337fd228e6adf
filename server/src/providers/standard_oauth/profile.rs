//! What defines a configured OAuth 2.0 provider: its [`Profile`] and the app's [`Client`].

use secrecy::SecretString;

/// How the client proves who it is at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    RequestBody,
    /// HTTP Basic (`client_secret_basic`).
    Basic,
}

/// Where the external account's stable id and label come from.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// The OpenID Connect id token that came with the tokens (checked: audience, lifetime,
    /// nonce, and the issuer when the profile names one).
    IdToken {
        /// The claim with the stable id (`sub`).
        id_claim: String,
        /// Claims to try for the label, in order (`email`, `name`).
        label_claims: Vec<String>,
    },
    /// An API call with the access token (JSON answer).
    Call {
        /// `GET` or `POST`.
        method: reqwest::Method,
        /// Its URL.
        url: String,
        /// The body to send, as JSON text (Dropbox's RPC endpoints take `null`).
        body: Option<String>,
        /// JSON pointer (RFC 6901) to the stable id, for example `/account_id`.
        id_pointer: String,
        /// JSON pointers to try for the label, in order.
        label_pointers: Vec<String>,
    },
}

/// How tokens are revoked.
#[derive(Debug, Clone)]
pub enum Revocation {
    /// RFC 7009: `POST token=…&token_type_hint=refresh_token` with the client's credentials.
    Rfc7009 {
        /// The revocation endpoint.
        url: String,
    },
    /// The provider revokes the grant behind an access token presented as a bearer token
    /// (Dropbox's `/2/auth/token/revoke`): a fresh access token is minted from the refresh token
    /// first.
    BearerAccessToken {
        /// The revocation endpoint.
        url: String,
    },
}

/// Everything that defines a provider for one connector type.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Extra authorize parameters (`access_type=offline`, `prompt=consent`,
    /// `token_access_type=offline`).
    pub authorize_params: Vec<(String, String)>,
    /// Whether to send a PKCE S256 challenge.
    pub pkce: bool,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
    /// Where the account comes from.
    pub identity: IdentitySource,
    /// The issuer the id token (and an RFC 9207 `iss` callback parameter) must name, if the
    /// provider has one.
    pub issuer: Option<String>,
    /// Whether the connector keeps a refresh token (every provider here does).
    pub keeps_refresh_token: bool,
    /// How tokens are revoked, if the provider can.
    pub revocation: Option<Revocation>,
    /// `invalid_grant` descriptions (substrings, case-insensitive) that mean the grant ran out
    /// rather than being withdrawn.
    pub expired_grant_descriptions: Vec<String>,
    /// Where the access tokens are used.
    pub resource_url: String,
}

/// The app registration: who we are at the provider.
#[derive(Clone)]
pub struct Client {
    /// Client id.
    pub id: String,
    /// Client secret.
    pub secret: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
