//! The profiles of the providers this service knows, from their public documentation. Every
//! endpoint can be overridden ([`Endpoints`]: tests, or a provider's regional or sovereign
//! cloud). Where the documentation is silent, the decision is written beside the field.

use super::{ClientAuth, IdentitySource, Profile, Revocation};

/// Endpoint overrides of a profile; `None` keeps the provider's own.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// The authorization endpoint.
    pub authorize_url: Option<String>,
    /// The token endpoint.
    pub token_url: Option<String>,
    /// The call that names the account (providers identified by a call).
    pub identity_url: Option<String>,
    /// The revocation endpoint.
    pub revocation_url: Option<String>,
    /// The id token issuer (providers identified by an id token).
    pub issuer: Option<String>,
}

fn or(given: &Option<String>, default: &str) -> String {
    given.clone().unwrap_or_else(|| default.to_owned())
}

fn scopes_or(given: Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    given.unwrap_or_else(|| default.iter().map(|scope| (*scope).to_owned()).collect())
}

/// Google Drive: OpenID Connect with offline access. `prompt=consent` makes Google issue a
/// refresh token on every authorization (it otherwise does only on the first), which a
/// reauthorization needs. The account is the id token's `sub`, never the e-mail. Refresh tokens
/// do not rotate. Google answers `invalid_grant` "Token has been expired or revoked." for both
/// cases, so a lost grant counts as revoked.
pub fn google_drive(scopes: Option<Vec<String>>, endpoints: &Endpoints) -> Profile {
    Profile {
        authorize_url: or(
            &endpoints.authorize_url,
            "https://accounts.google.com/o/oauth2/v2/auth",
        ),
        token_url: or(&endpoints.token_url, "https://oauth2.googleapis.com/token"),
        scopes: scopes_or(
            scopes,
            &["openid", "email", "https://www.googleapis.com/auth/drive"],
        ),
        authorize_params: vec![
            ("access_type".into(), "offline".into()),
            ("prompt".into(), "consent".into()),
        ],
        pkce: true,
        client_auth: ClientAuth::RequestBody,
        identity: IdentitySource::IdToken {
            id_claim: "sub".into(),
            label_claims: vec!["email".into(), "name".into()],
        },
        issuer: Some(or(&endpoints.issuer, "https://accounts.google.com")),
        keeps_refresh_token: true,
        revocation: Some(Revocation::Rfc7009 {
            url: or(
                &endpoints.revocation_url,
                "https://oauth2.googleapis.com/revoke",
            ),
        }),
        expired_grant_descriptions: Vec::new(),
        resource_url: "https://www.googleapis.com/drive/v3".into(),
    }
}

/// Dropbox: short-lived access tokens with `token_access_type=offline` for a refresh token,
/// which does not rotate. The account is `get_current_account`'s `account_id`. Revoking takes
/// an access token (`/2/auth/token/revoke`), which ends the refresh token behind it too.
pub fn dropbox(scopes: Option<Vec<String>>, endpoints: &Endpoints) -> Profile {
    Profile {
        authorize_url: or(
            &endpoints.authorize_url,
            "https://www.dropbox.com/oauth2/authorize",
        ),
        token_url: or(
            &endpoints.token_url,
            "https://api.dropboxapi.com/oauth2/token",
        ),
        scopes: scopes_or(
            scopes,
            &[
                "account_info.read",
                "files.metadata.read",
                "files.content.read",
                "files.content.write",
            ],
        ),
        authorize_params: vec![("token_access_type".into(), "offline".into())],
        pkce: true,
        client_auth: ClientAuth::Basic,
        identity: IdentitySource::Call {
            method: reqwest::Method::POST,
            url: or(
                &endpoints.identity_url,
                "https://api.dropboxapi.com/2/users/get_current_account",
            ),
            body: Some("null".into()),
            id_pointer: "/account_id".into(),
            label_pointers: vec!["/email".into(), "/name/display_name".into()],
        },
        issuer: None,
        keeps_refresh_token: true,
        revocation: Some(Revocation::BearerAccessToken {
            url: or(
                &endpoints.revocation_url,
                "https://api.dropboxapi.com/2/auth/token/revoke",
            ),
        }),
        expired_grant_descriptions: vec!["expired".into()],
        resource_url: "https://api.dropboxapi.com/2".into(),
    }
}

/// Box: refresh tokens rotate on every use and are single use (the single-flight refresh is
/// what keeps a connector alive). Box documents no PKCE, so none is sent: its codes are bound
/// to the client secret and our `state`. The account is `users/me`'s `id`.
pub fn box_drive(scopes: Option<Vec<String>>, endpoints: &Endpoints) -> Profile {
    Profile {
        authorize_url: or(
            &endpoints.authorize_url,
            "https://account.box.com/api/oauth2/authorize",
        ),
        token_url: or(&endpoints.token_url, "https://api.box.com/oauth2/token"),
        scopes: scopes_or(scopes, &["root_readwrite"]),
        authorize_params: Vec::new(),
        pkce: false,
        client_auth: ClientAuth::RequestBody,
        identity: IdentitySource::Call {
            method: reqwest::Method::GET,
            url: or(&endpoints.identity_url, "https://api.box.com/2.0/users/me"),
            body: None,
            id_pointer: "/id".into(),
            label_pointers: vec!["/login".into(), "/name".into()],
        },
        issuer: None,
        keeps_refresh_token: true,
        revocation: Some(Revocation::Rfc7009 {
            url: or(
                &endpoints.revocation_url,
                "https://api.box.com/oauth2/revoke",
            ),
        }),
        expired_grant_descriptions: vec!["expired".into()],
        resource_url: "https://api.box.com/2.0".into(),
    }
}
