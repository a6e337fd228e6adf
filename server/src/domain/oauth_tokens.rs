//! The tokens of OAuth 2.0 connectors: sealing them, handing out the access token, and the
//! single-flight refresh (an in-process lock, plus a row lock on PostgreSQL so several
//! processes refresh once) that commits a rotated refresh token before the access token is
//! handed out, and deauthorizes on `invalid_grant` only.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    access::Access,
    error::{Error, Result},
    model::{
        AccessToken, AccessTokenKind, Connector, ConnectorId, ConnectorName, DeauthorizationReason,
        State,
    },
    records::Records,
};
use crate::{
    crypto::Sealed,
    persistence,
    providers::oauth::{GrantLoss, Tokens},
};

/// Secret field: the refresh token of a delegated connector.
pub(super) const REFRESH_TOKEN_FIELD: &str = "refresh_token";

/// Secret field: the current access token with its expiry and scopes.
pub(super) const ACCESS_TOKEN_FIELD: &str = "access_token";

/// The sealed payload of [`ACCESS_TOKEN_FIELD`].
#[derive(Serialize, Deserialize)]
struct StoredAccessToken {
    token: String,
    expire_time: i64,
    scopes: Vec<String>,
}

impl Records {
    /// The sealed secrets of an OAuth 2.0 connector: its access token (with expiry and
    /// scopes) and, when the provider granted one, its refresh token.
    pub(super) fn seal_tokens(&self, id: &ConnectorId, tokens: &Tokens) -> Vec<(String, Sealed)> {
        let stored = StoredAccessToken {
            token: tokens.access_token.expose_secret().to_owned(),
            expire_time: tokens.expire_time.timestamp_micros(),
            scopes: tokens.scopes.clone(),
        };
        let payload = serde_json::to_vec(&stored).expect("strings serialise");
        let mut secrets = vec![(
            ACCESS_TOKEN_FIELD.to_owned(),
            self.seal_field(id, ACCESS_TOKEN_FIELD, &payload),
        )];
        if let Some(refresh_token) = &tokens.refresh_token {
            secrets.push((
                REFRESH_TOKEN_FIELD.to_owned(),
                self.seal_field(
                    id,
                    REFRESH_TOKEN_FIELD,
                    refresh_token.expose_secret().as_bytes(),
                ),
            ));
        }
        secrets
    }
}

impl Access {
    /// A valid access token for an OAuth 2.0 connector, refreshed (single-flight) when it
    /// expires within the skew.
    pub(super) async fn oauth_access_token(&self, connector: &Connector) -> Result<AccessToken> {
        let now = self.records.clock.now();
        let resource_url = self
            .oauth
            .provider(connector.connector_type)?
            .resource_url();
        if let Some(token) = self
            .stored_access_token(&connector.name, resource_url, None)
            .await?
            && token.expire_time > now + self.oauth.refresh_skew
        {
            return Ok(token);
        }
        // The refresh runs in its own task: if the caller goes away (its deadline, a dropped
        // connection), the provider may already have rotated the refresh token, and the new one
        // must still be committed, or the connector would be left holding a spent token.
        let this = self.clone();
        let name = connector.name.clone();
        tokio::spawn(async move { this.refresh_access_token(&name, now).await })
            .await
            .map_err(|error| Error::Internal(format!("token refresh task failed: {error}")))?
    }

    /// The slow path of [`Self::oauth_access_token`]: single-flight refresh under the locks.
    pub(super) async fn refresh_access_token(
        &self,
        name: &ConnectorName,
        now: DateTime<Utc>,
    ) -> Result<AccessToken> {
        let id = name.connector.as_str();
        let lock = self.refresh_locks.lock_for(id);
        let _in_process = lock.lock().await;
        let locked = self
            .records
            .store
            .lock_tokens(id)
            .await?
            .ok_or_else(|| Error::ConnectorNotFound(name.to_string()))?;
        let current = super::rows::from_row(&self.records.catalogue, locked.row.clone())?.at(now);
        let provider = self.oauth.provider(current.connector_type)?;
        // Whoever held the lock before us may have refreshed already.
        if let Some(token) = self
            .stored_access_token(name, provider.resource_url(), Some(&locked))
            .await?
            && token.expire_time > now + self.oauth.refresh_skew
        {
            locked.commit().await?;
            return Ok(token);
        }
        if let State::Deauthorized { reason, .. } = current.state {
            return Err(Error::Deauthorized {
                name: current.name,
                reason,
                with_credentials: false,
            });
        }
        let refresh_token = if provider.keeps_refresh_token() {
            let sealed = locked.secret(REFRESH_TOKEN_FIELD).await?.ok_or_else(|| {
                Error::Internal(format!("connector {} has no refresh token", current.name))
            })?;
            Some(self.open_field(&current.name.connector, REFRESH_TOKEN_FIELD, &sealed)?)
        } else {
            None
        };
        let refreshed = provider
            .refresh(&current.external_account.id, refresh_token.as_ref(), now)
            .await;
        match refreshed {
            Ok(tokens) => {
                // Commit the rotated refresh token before anyone sees the new access token.
                locked
                    .replace_secrets(self.records.seal_tokens(&current.name.connector, &tokens))
                    .await?;
                locked.commit().await?;
                tracing::info!(connector = %current.name, "access token refreshed");
                Ok(access_token_of(&tokens, provider.resource_url()))
            }
            Err(error) => match provider.grant_lost(&error) {
                // The grant is gone (the provider says how); anything else leaves it alone.
                Some(loss) => {
                    let reason = match loss {
                        GrantLoss::Revoked => DeauthorizationReason::Revoked,
                        GrantLoss::Expired => DeauthorizationReason::Expired,
                    };
                    tracing::warn!(connector = %current.name, %error, ?reason, "grant gone: deauthorizing");
                    Err(self
                        .records
                        .deauthorize_locked(locked, current, reason, now)
                        .await?)
                }
                None => Err(error.into()),
            },
        }
    }

    pub(super) async fn stored_access_token(
        &self,
        name: &ConnectorName,
        resource_url: &str,
        locked: Option<&persistence::TokenLock>,
    ) -> Result<Option<AccessToken>> {
        let sealed = match locked {
            Some(locked) => locked.secret(ACCESS_TOKEN_FIELD).await?,
            None => {
                self.records
                    .store
                    .get_secret(name.connector.as_str(), ACCESS_TOKEN_FIELD)
                    .await?
            }
        };
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let payload = self.open_field(&name.connector, ACCESS_TOKEN_FIELD, &sealed)?;
        let stored: StoredAccessToken = serde_json::from_slice(payload.expose_secret().as_bytes())
            .map_err(|_| Error::Internal(format!("connector {name} has a corrupt access token")))?;
        let expire_time = DateTime::from_timestamp_micros(stored.expire_time).ok_or_else(|| {
            Error::Internal(format!("connector {name} has a corrupt token expiry"))
        })?;
        Ok(Some(AccessToken {
            token: stored.token.into(),
            kind: AccessTokenKind::Bearer,
            expire_time,
            scopes: stored.scopes,
            resource_url: resource_url.to_owned(),
        }))
    }

    pub(super) fn open_field(
        &self,
        id: &ConnectorId,
        field: &str,
        sealed: &Sealed,
    ) -> Result<SecretString> {
        super::rows::open_text(&self.records.sealer, id, field, sealed)
    }
}

/// The access token a worker gets from fresh tokens.
fn access_token_of(tokens: &Tokens, resource_url: &str) -> AccessToken {
    AccessToken {
        token: tokens.access_token.expose_secret().to_owned().into(),
        kind: AccessTokenKind::Bearer,
        expire_time: tokens.expire_time,
        scopes: tokens.scopes.clone(),
        resource_url: resource_url.to_owned(),
    }
}
