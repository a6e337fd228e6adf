//! Noticing a revoked Azure account key. Azure has no token to refresh, so a customer who
//! rotates or regenerates the key we hold would only show up as failing transfers. Before handing
//! out a SAS, the key is checked against the storage account (a signed List Containers request)
//! when this process has not seen it accepted within `azure_key_check_interval`; a rejected key
//! deauthorizes the connector (reason `REVOKED`), like `invalid_grant` does for OAuth 2.0.
//! Transient failures of the check never deauthorize: the SAS is handed out, since signing it
//! needs nothing from Azure.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};

use super::{
    Connectors,
    error::{Error, Result},
    model::{Connector, DeauthorizationReason, State},
};
use crate::providers;

/// A key seen accepted: at which connector revision, and when.
type Accepted = (i64, DateTime<Utc>);

/// When this process last saw each connector's key accepted, by connector id.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyChecks(Arc<Mutex<HashMap<String, Accepted>>>);

/// Entries kept before stale ones are dropped.
const KEY_CHECKS_KEPT: usize = 10_000;

impl KeyChecks {
    fn fresh(&self, connector: &Connector, now: DateTime<Utc>, interval: chrono::Duration) -> bool {
        let checks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checks
            .get(connector.name.connector.as_str())
            .is_some_and(|(revision, at)| {
                *revision == connector.revision && now - *at < interval && *at <= now
            })
    }

    fn record(&self, connector: &Connector, now: DateTime<Utc>, interval: chrono::Duration) {
        let mut checks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if checks.len() >= KEY_CHECKS_KEPT {
            checks.retain(|_, (_, at)| now - *at < interval);
        }
        checks.insert(
            connector.name.connector.as_str().to_owned(),
            (connector.revision, now),
        );
    }
}

impl Connectors {
    /// Checks an authorized Azure connector's key unless it was accepted recently; a rejected
    /// key deauthorizes the connector and answers [`Error::Deauthorized`].
    pub(super) async fn verify_account_key(&self, connector: &Connector, key: &[u8]) -> Result<()> {
        let now = self.clock.now();
        let interval = self.azure_key_check_interval;
        if self.key_checks.fresh(connector, now, interval) {
            return Ok(());
        }
        match self
            .azure
            .check_credentials(&connector.external_account.id, key, now)
            .await
        {
            Ok(()) => {
                self.key_checks.record(connector, now, interval);
                Ok(())
            }
            Err(providers::Error::CredentialsRejected(message)) => {
                tracing::warn!(connector = %connector.name, %message, "the storage account rejected the key; deauthorizing");
                self.deauthorize_revoked_key(connector).await
            }
            Err(error) => {
                tracing::warn!(connector = %connector.name, %error, "could not check the account key; handing out a SAS anyway");
                Ok(())
            }
        }
    }

    /// Deauthorizes (reason `REVOKED`) the connector whose key was rejected, if it is still at
    /// the revision whose key was checked (a reauthorization in between brought a new key).
    async fn deauthorize_revoked_key(&self, connector: &Connector) -> Result<()> {
        let Some(locked) = self
            .store
            .lock_tokens(connector.name.connector.as_str())
            .await?
        else {
            return Err(Error::ConnectorNotFound(connector.name.to_string()));
        };
        if locked.row.revision != connector.revision {
            return Err(Error::ConcurrentModification(format!(
                "connector {}",
                connector.name
            )));
        }
        let now = self.clock.now();
        let reason = DeauthorizationReason::Revoked;
        let mut deauthorized = connector.clone();
        deauthorized.state = State::Deauthorized { reason, at: now };
        deauthorized.update_time = now;
        deauthorized.revision += 1;
        locked
            .deauthorize(super::service::to_row(&deauthorized))
            .await?;
        locked.commit().await?;
        self.revocations_queued();
        Err(Error::Deauthorized {
            name: connector.name.clone(),
            reason,
            with_credentials: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        connector_type::ConnectorTypeId,
        model::{AccountId, ConnectorId, ConnectorName, DisplayName, ExternalAccount, Labels},
    };

    fn connector(revision: i64, now: DateTime<Utc>) -> Connector {
        Connector {
            name: ConnectorName {
                account: AccountId::new("acme").unwrap(),
                connector: ConnectorId::generate(),
            },
            connector_type: ConnectorTypeId::AzureBlobStorage,
            display_name: DisplayName::new("store").unwrap(),
            state: State::Authorized,
            external_account: ExternalAccount {
                id: "store".into(),
                label: "store".into(),
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
    fn an_accepted_key_is_trusted_for_the_interval_and_only_at_its_revision() {
        let checks = KeyChecks::default();
        let now = Utc::now();
        let interval = chrono::Duration::minutes(15);
        let checked = connector(3, now);
        assert!(!checks.fresh(&checked, now, interval), "never checked");
        checks.record(&checked, now, interval);
        assert!(checks.fresh(&checked, now + chrono::Duration::minutes(14), interval));
        assert!(!checks.fresh(&checked, now + chrono::Duration::minutes(15), interval));
        let reauthorized = Connector {
            revision: 4,
            ..checked.clone()
        };
        assert!(!checks.fresh(&reauthorized, now, interval), "a new key");
    }
}
