//! One Microsoft connector type's app registration as the domain sees it: an
//! [`OAuthProvider`].
//!
//! Two shapes share it. A **delegated** type (OneDrive Consumer, OneDrive for Business (User))
//! signs one user in with `prompt=select_account` (a reauthorization must let the user choose the
//! account), keeps the rotating refresh token, and names the user by tenant and object id. A
//! **tenant-wide** type (Office 365) has an administrator sign in with `prompt=admin_consent`;
//! the tenant is taken from that administrator's verified id token (never from the callback's
//! `tenant` parameter, which anyone can edit), a client-credentials token for it proves the
//! consent, and the connector keeps no refresh token: fresh app-only tokens come from the app's
//! own credentials for the tenant.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{Microsoft, OAuthApp};
use crate::providers::{
    Error,
    oauth::{AuthorizationRequest, AuthorizationStart, GrantLoss, Identity, OAuthProvider, Tokens},
};

/// AADSTS codes of a refresh token or grant that ran out rather than being withdrawn: expired
/// (70008), expired for inactivity (700082), past its maximum age (700084).
const EXPIRED_GRANT_CODES: [u32; 3] = [70008, 700082, 700084];

/// A Microsoft app registration for one connector type.
#[derive(Debug, Clone)]
pub struct MicrosoftApp {
    microsoft: Microsoft,
    app: OAuthApp,
    tenant_wide: bool,
    resource_url: String,
}

impl MicrosoftApp {
    /// `tenant_wide` for administrator consent (Office 365); `resource_url` is Graph's base URL,
    /// where the tokens are used.
    pub fn new(microsoft: Microsoft, app: OAuthApp, tenant_wide: bool, resource_url: &str) -> Self {
        Self {
            microsoft,
            app,
            tenant_wide,
            resource_url: resource_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The tenant of the administrator whose id token came with `tokens`.
    fn consenting_tenant(
        &self,
        tokens: &Tokens,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        self.microsoft
            .signed_in_tenant(tokens, &self.app.client_id, nonce, now)
    }
}

#[async_trait::async_trait]
impl OAuthProvider for MicrosoftApp {
    fn authorization_url(
        &self,
        request: AuthorizationRequest<'_>,
    ) -> Result<AuthorizationStart, Error> {
        let prompt = if self.tenant_wide {
            "admin_consent"
        } else {
            "select_account"
        };
        self.microsoft.authorization_url(
            &self.app,
            request.redirect_uri,
            request.state,
            request.nonce,
            prompt,
        )
    }

    async fn exchange(
        &self,
        request: AuthorizationRequest<'_>,
        code: &str,
        pkce_verifier: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let signed_in = self
            .microsoft
            .exchange_code(&self.app, request.redirect_uri, code, pkce_verifier, now)
            .await?;
        if !self.tenant_wide {
            return Ok(signed_in);
        }
        let tenant = self.consenting_tenant(&signed_in, request.nonce, now)?;
        let mut app_only = self.microsoft.app_token(&self.app, &tenant, now).await?;
        // `identify` reads the administrator's id token again to name the tenant.
        app_only.id_token = signed_in.id_token;
        Ok(app_only)
    }

    async fn identify(
        &self,
        tokens: &Tokens,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, Error> {
        if self.tenant_wide {
            let tenant = self.consenting_tenant(tokens, nonce, now)?;
            self.microsoft.tenant(&tenant, tokens).await
        } else {
            self.microsoft
                .signed_in_user(tokens, &self.app.client_id, nonce, now)
                .await
        }
    }

    fn keeps_refresh_token(&self) -> bool {
        !self.tenant_wide
    }

    async fn refresh(
        &self,
        external_account_id: &str,
        refresh_token: Option<&SecretString>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        if self.tenant_wide {
            // The external account of a tenant-wide connector is its tenant id.
            return self
                .microsoft
                .app_token(&self.app, external_account_id, now)
                .await;
        }
        let refresh_token =
            refresh_token.ok_or_else(|| Error::Protocol("no refresh token is stored".into()))?;
        self.microsoft.refresh(&self.app, refresh_token, now).await
    }

    fn grant_lost(&self, error: &Error) -> Option<GrantLoss> {
        match error {
            Error::InvalidGrant {
                aadsts: Some(code), ..
            } if EXPIRED_GRANT_CODES.contains(code) => Some(GrantLoss::Expired),
            Error::InvalidGrant { .. } => Some(GrantLoss::Revoked),
            // A refused client-credentials request (unauthorized_client) means the tenant's
            // consent was withdrawn.
            Error::CredentialsRejected(_) if self.tenant_wide => Some(GrantLoss::Revoked),
            _ => None,
        }
    }

    fn revokes(&self) -> bool {
        self.app.revocation_url.is_some()
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<bool, Error> {
        self.microsoft.revoke(&self.app, refresh_token).await
    }

    fn resource_url(&self) -> &str {
        &self.resource_url
    }

    fn accepts_issuer(&self, iss: &str) -> bool {
        self.microsoft.is_issuer(iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(tenant_wide: bool) -> MicrosoftApp {
        MicrosoftApp::new(
            Microsoft::new(reqwest::Client::new(), "http://login", "http://graph"),
            OAuthApp {
                client_id: "client".into(),
                client_secret: SecretString::from("secret"),
                tenant: "organizations".into(),
                scopes: vec![],
                revocation_url: None,
            },
            tenant_wide,
            "http://graph/",
        )
    }

    fn invalid_grant(aadsts: Option<u32>) -> Error {
        Error::InvalidGrant {
            aadsts,
            description: String::new(),
        }
    }

    #[test]
    fn aadsts_codes_tell_an_expired_grant_from_a_revoked_one() {
        let delegated = app(false);
        for code in EXPIRED_GRANT_CODES {
            assert_eq!(
                delegated.grant_lost(&invalid_grant(Some(code))),
                Some(GrantLoss::Expired)
            );
        }
        assert_eq!(
            delegated.grant_lost(&invalid_grant(Some(50173))),
            Some(GrantLoss::Revoked)
        );
        assert_eq!(
            delegated.grant_lost(&invalid_grant(None)),
            Some(GrantLoss::Revoked)
        );
        let refused = Error::CredentialsRejected("unauthorized_client".into());
        assert_eq!(delegated.grant_lost(&refused), None);
        assert_eq!(app(true).grant_lost(&refused), Some(GrantLoss::Revoked));
        assert_eq!(
            delegated.grant_lost(&Error::ClientRejected("secret expired".into())),
            None,
            "our own app's credentials are an operator's problem"
        );
        assert_eq!(app(true).resource_url(), "http://graph");
    }

    #[test]
    fn only_this_platforms_issuers_are_accepted() {
        let delegated = app(false);
        assert!(delegated.accepts_issuer("http://login/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"));
        for other in [
            "http://login/google",
            "http://login//v2.0",
            "http://login/a/b/v2.0",
            "https://accounts.google.com",
            "http://login.evil/x/v2.0",
        ] {
            assert!(!delegated.accepts_issuer(other), "{other}");
        }
    }
}
