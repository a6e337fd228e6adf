//! Handing out access: a short-lived credential (`GetAccessToken`), or for a type that has
//! none (a password) its stored fields (`RevealConnectorCredentials`); and recording transfers,
//! which keep a connector from being deauthorized for inactivity. [`Access`] is the service
//! that does it; the OAuth 2.0 tokens and their refresh are in `oauth_tokens`.

use super::credential_checks::CredentialLinks;
use super::records::Records;
use super::rows::{from_row, require_authorized};
use super::settings::{OAuthSettings, RefreshLocks};
use super::token_cache::TokenCache;
use super::{
    error::{Error, Result},
    model::{AccessToken, AccessTokenKind, Connector, ConnectorName},
};
use crate::providers::credentials::AccessKind;

/// The service that hands out access to connectors and records their transfers. It owns the
/// cache of credentials handed out and shares the records, the credential checks, the OAuth
/// 2.0 providers (with the refresh skew) and the per-connector refresh locks (a delete waits
/// for a refresh in flight).
#[derive(Debug, Clone)]
pub struct Access {
    pub(super) records: Records,
    pub(super) credentials: CredentialLinks,
    pub(super) oauth: OAuthSettings,
    pub(super) refresh_locks: RefreshLocks,
    /// Credentials handed out recently (see `token_cache`).
    pub(super) token_cache: TokenCache,
}

impl Access {
    pub(super) fn new(
        records: Records,
        credentials: CredentialLinks,
        oauth: OAuthSettings,
        refresh_locks: RefreshLocks,
    ) -> Self {
        Self {
            records,
            credentials,
            oauth,
            refresh_locks,
            token_cache: TokenCache::default(),
        }
    }

    /// A short-lived credential for moving data.
    pub async fn access_token(&self, name: &ConnectorName) -> Result<AccessToken> {
        let connector = self.records.get(name).await?;
        require_authorized(&connector)?;
        let now = self.records.clock.now();
        if let Some(token) = self.token_cache.get(&connector, now) {
            return Ok(token);
        }
        match self.credentials.provider_of(connector.connector_type) {
            Some(provider) if !provider.mints_access() => {
                Err(Error::NoAccessToken(connector.connector_type))
            }
            Some(provider) => {
                let secrets = self
                    .records
                    .open_secrets(name, provider.secret_fields())
                    .await?;
                self.credentials
                    .verify_credentials(&connector, provider.as_ref(), &secrets)
                    .await?;
                let access = provider
                    .mint(&connector.external_account.id, &secrets, now)
                    .await?;
                let token = AccessToken {
                    token: access.token,
                    kind: match access.kind {
                        AccessKind::AzureSas => AccessTokenKind::AzureSas,
                        AccessKind::AwsSession {
                            access_key_id,
                            secret_access_key,
                        } => AccessTokenKind::AwsSession {
                            access_key_id,
                            secret_access_key,
                        },
                    },
                    expire_time: access.expire_time,
                    scopes: access.scopes,
                    resource_url: access.resource_url,
                };
                // Reused for a minute at most, and while more than half its life is left.
                let reuse_until =
                    (now + chrono::Duration::minutes(1)).min(now + (token.expire_time - now) / 2);
                self.token_cache.put(&connector, &token, now, reuse_until);
                Ok(token)
            }
            None => {
                let token = self.oauth_access_token(&connector).await?;
                let reuse_until = token.expire_time - self.oauth.refresh_skew;
                self.token_cache.put(&connector, &token, now, reuse_until);
                Ok(token)
            }
        }
    }

    /// The stored credentials of a connector that has no short-lived token (a password), for
    /// the worker that moves its data. Checked against the service like any credential before
    /// it is handed out (a rejected password deauthorizes the connector); with the host key
    /// what the provider pins (an SSH host key), in the field the provider names for it.
    pub async fn reveal_credentials(
        &self,
        name: &ConnectorName,
    ) -> Result<Vec<(&'static str, secrecy::SecretString)>> {
        use secrecy::ExposeSecret as _;
        let connector = self.records.get(name).await?;
        require_authorized(&connector)?;
        let provider = self.credentials.provider(connector.connector_type)?;
        if provider.mints_access() {
            return Err(Error::NotRevealable(connector.connector_type));
        }
        let secrets = self
            .records
            .open_secrets(name, provider.secret_fields())
            .await?;
        self.credentials
            .verify_credentials(&connector, provider, &secrets)
            .await?;
        let mut fields = secrets
            .iter()
            .map(|(&field, value)| {
                String::from_utf8(value.expose_secret().to_vec())
                    .map(|text| (field, secrecy::SecretString::from(text)))
                    .map_err(|_| Error::Internal(format!("connector {name}: {field} is not text")))
            })
            .collect::<Result<Vec<_>>>()?;
        // The worker must insist on the same value this service pinned.
        if let (Some(attribute), Some(pinned)) =
            (provider.pinned(), connector.external_account.pinned)
        {
            fields.push((attribute.field, pinned.into()));
        }
        Ok(fields)
    }

    /// Records data moved with a connector; more than zero bytes counts as activity.
    pub async fn record_transfer(&self, name: &ConnectorName, bytes: u64) -> Result<Connector> {
        if bytes == 0 {
            let connector = self.records.get(name).await?;
            require_authorized(&connector)?;
            return Ok(connector);
        }
        let now = self.records.clock.now();
        // One conditional statement: concurrent reports on one connector never conflict.
        let recorded = self
            .records
            .store
            .record_transfer(
                name.account.as_str(),
                name.connector.as_str(),
                now.timestamp_micros(),
                (now + self.records.inactivity_period).timestamp_micros(),
            )
            .await?;
        match recorded {
            Some(row) => Ok(from_row(&self.records.catalogue, row)?.at(now)),
            None => {
                // Missing, or not authorized (deauthorized, or past its inactivity deadline).
                let connector = self.records.get(name).await?;
                require_authorized(&connector)?;
                Err(Error::ConcurrentModification(format!(
                    "connector {name} changed state during the report"
                )))
            }
        }
    }
}
