//! Noticing revoked credentials (an account key, a password). Such types have no token to
//! refresh, so a customer who rotates or regenerates what we hold would only show up as
//! failing transfers. Before minting access, the stored credentials are checked against the
//! service (the provider's `check`) when this process has not seen them
//! accepted within `credential_check_interval`; credentials the service rejects
//! ([`providers::Error::CredentialsRejected`]) deauthorize the connector (reason `REVOKED`),
//! like `invalid_grant` does for OAuth 2.0. Nothing else does: a firewall, disabled key access,
//! an outage or a slow answer (the check gives up after a few seconds) leave the connector alone
//! and access is minted, since minting needs nothing from the service; such an inconclusive
//! check is not repeated for a minute.

use std::{sync::Arc, time::Duration};

use super::{
    connector_type::ConnectorTypeId,
    error::{Error, Result},
    model::{Connector, DeauthorizationReason, State},
    records::Records,
    settings::KeyChecks,
};
use crate::providers::{
    self,
    credentials::{CredentialFields, CredentialProvider, FieldError, Identity, Parsed, Secrets},
};

/// The providers of the connector types that link with credentials, by type (built at
/// start-up; see `lib.rs`).
pub type CredentialProviders =
    std::collections::BTreeMap<ConnectorTypeId, Arc<dyn CredentialProvider>>;

/// How long the check may take before it counts as inconclusive.
const KEY_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an inconclusive check (outage, timeout, refusal) is not repeated.
const INCONCLUSIVE_FOR: chrono::Duration = chrono::Duration::minutes(1);

/// The service behind connectors linked with credentials: their providers, checking what a
/// caller gives, and noticing revoked credentials before access is handed out. Shared by the
/// lifecycle (linking) and access (handing out).
#[derive(Debug, Clone)]
pub(super) struct CredentialLinks {
    records: Records,
    providers: Arc<CredentialProviders>,
    /// Credentials this process saw accepted recently, by connector.
    key_checks: KeyChecks,
    /// How long accepted credentials are not checked again.
    check_interval: chrono::Duration,
}

impl CredentialLinks {
    pub(super) fn new(
        records: Records,
        providers: CredentialProviders,
        check_interval: chrono::Duration,
    ) -> Self {
        Self {
            records,
            providers: Arc::new(providers),
            key_checks: KeyChecks::default(),
            check_interval,
        }
    }

    /// Whether connectors of `connector_type` link with credentials on this server.
    pub(super) fn links(&self, connector_type: ConnectorTypeId) -> bool {
        self.providers.contains_key(&connector_type)
    }

    /// The provider of a type that links with credentials; OAuth 2.0 types have none.
    pub(super) fn provider(
        &self,
        connector_type: ConnectorTypeId,
    ) -> Result<&dyn CredentialProvider> {
        self.providers
            .get(&connector_type)
            .map(|provider| provider.as_ref())
            .ok_or(Error::OAuthAuthorizationRequired(connector_type))
    }

    /// The provider of a type that links with credentials, if it has one.
    pub(super) fn provider_of(
        &self,
        connector_type: ConnectorTypeId,
    ) -> Option<&Arc<dyn CredentialProvider>> {
        self.providers.get(&connector_type)
    }

    /// Validates credential fields for a type (their names already checked against the
    /// catalogue): the credentials, or every field whose value is not acceptable.
    pub(super) fn parse(
        &self,
        connector_type: ConnectorTypeId,
        fields: &CredentialFields,
    ) -> Result<std::result::Result<Parsed, Vec<FieldError>>> {
        Ok(self.provider(connector_type)?.parse(fields))
    }

    /// Checks credentials whose fields do not name their account; the account the service
    /// names.
    pub(super) async fn identity_checked(
        &self,
        provider: &dyn CredentialProvider,
        credentials: &Parsed,
    ) -> Result<Identity> {
        provider
            .check(None, &credentials.secrets, self.records.clock.now())
            .await?
            .ok_or_else(|| Error::Internal("a credential provider named no account".into()))
    }

    /// Checks an authorized connector's stored credentials unless they were checked recently;
    /// credentials the service rejects deauthorize the connector and answer
    /// [`Error::Deauthorized`].
    pub(super) async fn verify_credentials(
        &self,
        connector: &Connector,
        provider: &dyn CredentialProvider,
        secrets: &Secrets,
    ) -> Result<()> {
        let now = self.records.clock.now();
        if self.key_checks.fresh(connector, now) {
            return Ok(());
        }
        let checked = tokio::time::timeout(
            KEY_CHECK_TIMEOUT,
            provider.check(
                Some(&providers::credentials::Identity {
                    id: connector.external_account.id.clone(),
                    label: connector.external_account.label.clone(),
                    pinned: connector.external_account.pinned.clone(),
                }),
                secrets,
                now,
            ),
        )
        .await;
        match checked {
            Ok(Ok(_)) => {
                self.key_checks.record(connector, now, self.check_interval);
                Ok(())
            }
            Ok(Err(providers::Error::CredentialsRejected(message))) => {
                tracing::warn!(connector = %connector.name, %message, "the service rejected the stored credentials; deauthorizing");
                self.deauthorize_revoked_key(connector).await
            }
            // Not inconclusive: the server may be someone in the middle, so nothing is handed
            // out until a reauthorization accepts the new key.
            Ok(Err(providers::Error::PinnedChanged {
                attribute,
                expected,
                presented,
            })) => {
                tracing::warn!(connector = %connector.name, %expected, %presented, "the server presents another {}; refusing", attribute.noun);
                Err(Error::PinnedChanged {
                    name: Some(connector.name.clone()),
                    attribute,
                    expected,
                    presented,
                })
            }
            Ok(Err(error)) => {
                tracing::warn!(connector = %connector.name, %error, "the credential check was inconclusive; handing out access anyway");
                self.key_checks.record(connector, now, INCONCLUSIVE_FOR);
                Ok(())
            }
            Err(_) => {
                tracing::warn!(connector = %connector.name, "the credential check timed out; handing out access anyway");
                self.key_checks.record(connector, now, INCONCLUSIVE_FOR);
                Ok(())
            }
        }
    }

    /// Deauthorizes (reason `REVOKED`) the connector whose key was rejected, as it is now
    /// (a transfer recorded meanwhile is kept), unless it was reauthorized meanwhile (with a new
    /// key: the caller should ask again).
    async fn deauthorize_revoked_key(&self, checked: &Connector) -> Result<()> {
        let Some(locked) = self
            .records
            .store
            .lock_tokens(checked.name.connector.as_str())
            .await?
        else {
            return Err(Error::ConnectorNotFound(checked.name.to_string()));
        };
        let now = self.records.clock.now();
        let current = super::rows::from_row(&self.records.catalogue, locked.row.clone())?.at(now);
        if current.authorize_time != checked.authorize_time {
            return Err(Error::ConcurrentModification(format!(
                "connector {}",
                checked.name
            )));
        }
        if let State::Deauthorized { reason, .. } = current.state {
            return Err(Error::Deauthorized {
                name: current.name,
                reason,
                with_credentials: true,
            });
        }
        Err(self
            .records
            .deauthorize_locked(locked, current, DeauthorizationReason::Revoked, now)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings::KeyChecks;
    use crate::domain::{
        connector_type::examples,
        model::{AccountId, ConnectorId, ConnectorName, DisplayName, ExternalAccount, Labels},
    };
    use chrono::{DateTime, Utc};

    fn connector(revision: i64, now: DateTime<Utc>) -> Connector {
        Connector {
            name: ConnectorName {
                account: AccountId::new("acme").unwrap(),
                connector: ConnectorId::generate(),
            },
            connector_type: examples::catalogue().parse("example-key").unwrap(),
            display_name: DisplayName::new("store").unwrap(),
            state: State::Authorized,
            external_account: ExternalAccount {
                id: "store".into(),
                label: "store".into(),
                pinned: None,
            },
            labels: Labels::default(),
            create_time: now,
            update_time: now,
            authorize_time: now,
            last_transfer_time: None,
            revision,
            inactivity_deadline: now,
        }
    }

    #[test]
    fn a_checked_key_is_trusted_for_its_period_and_only_for_its_authorization() {
        let checks = KeyChecks::default();
        let now = Utc::now();
        let interval = chrono::Duration::minutes(15);
        let checked = connector(3, now);
        assert!(!checks.fresh(&checked, now), "never checked");
        checks.record(&checked, now, interval);
        assert!(checks.fresh(&checked, now + chrono::Duration::minutes(14)));
        assert!(!checks.fresh(&checked, now + chrono::Duration::minutes(15)));
        let transferred = Connector {
            revision: 4,
            ..checked.clone()
        };
        assert!(
            checks.fresh(&transferred, now),
            "a recorded transfer keeps the key"
        );
        let reauthorized = Connector {
            authorize_time: now + chrono::Duration::seconds(1),
            ..checked.clone()
        };
        assert!(!checks.fresh(&reauthorized, now), "a new key");
    }
}
