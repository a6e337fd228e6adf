//! The lifecycle of a connector: created once per external account (after its credentials
//! are checked), listed, relabelled (never renamed), reauthorized for the same account only,
//! deleted for good, and swept when it has moved no data for the inactivity period.
//! [`Lifecycle`] is the service that does it.

use std::{collections::BTreeSet, sync::Arc};

use super::credential_checks::CredentialLinks;
use super::records::Records;
use super::rows::{already_exists, from_row, micros};
use super::settings::RefreshLocks;
use super::{
    connector_type::{Catalogue, ConnectorTypeId},
    error::{Error, Result},
    model::{
        AccountId, Connector, ConnectorId, ConnectorName, DeauthorizationReason, DisplayName,
        Labels, StateFilter,
    },
    observer::Sweep,
};
use crate::{
    persistence::{ConnectorQuery, ConnectorState, DeleteOutcome},
    providers::credentials::{CredentialFields, FieldError, Identity, Parsed},
};

/// Which connectors a list returns.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListFilter {
    /// Only this type.
    pub connector_type: Option<ConnectorTypeId>,
    /// Only this state.
    pub state: Option<StateFilter>,
}

/// One page of connectors.
#[derive(Debug)]
pub struct ConnectorPage {
    /// The connectors, ordered by id.
    pub connectors: Vec<Connector>,
    /// Id to continue after, if there are more.
    pub next_after: Option<ConnectorId>,
}

/// A requested change to a connector's mutable fields.
#[derive(Debug, Default)]
pub struct ConnectorUpdate {
    /// New labels, replacing the old ones.
    pub labels: Option<Labels>,
    /// A display name the caller sent along; it must equal the current one.
    pub display_name: Option<String>,
    /// Act only if the connector is still at this revision (from its etag).
    pub expected_revision: Option<i64>,
}

/// The service that creates, lists, changes and deletes connectors, and sweeps inactive
/// ones. It shares the records, the credential checks and the refresh locks (a delete waits
/// for a refresh in flight).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    records: Records,
    credentials: CredentialLinks,
    refresh_locks: RefreshLocks,
    /// The OAuth 2.0 types with an app registration (they can be linked here).
    oauth_types: Arc<BTreeSet<ConnectorTypeId>>,
}

impl Lifecycle {
    pub(super) fn new(
        records: Records,
        credentials: CredentialLinks,
        refresh_locks: RefreshLocks,
        oauth_types: BTreeSet<ConnectorTypeId>,
    ) -> Self {
        Self {
            records,
            credentials,
            refresh_locks,
            oauth_types: Arc::new(oauth_types),
        }
    }

    /// The connector types this build has.
    pub fn catalogue(&self) -> &Catalogue {
        &self.records.catalogue
    }

    /// Whether connectors of `connector_type` can be linked on this server: it has a provider
    /// (an OAuth 2.0 type needs an app registration).
    pub fn is_configured(&self, connector_type: ConnectorTypeId) -> bool {
        self.credentials.links(connector_type) || self.oauth_types.contains(&connector_type)
    }

    /// Gets a connector.
    ///
    /// Served from the store's row cache: this process's own changes are seen at once, other
    /// processes' within the cache's time to live (`row_cache_ttl_ms`).
    pub async fn get(&self, name: &ConnectorName) -> Result<Connector> {
        self.records.get(name).await
    }

    /// Deauthorizes every connector past its inactivity deadline, in batches of `batch`
    /// (bounded memory), and returns how many. Safe to run in several processes at once.
    /// Reported to the observer once it ends: the sweep, and the connectors it deauthorized.
    pub async fn sweep_inactive(&self, batch: u64) -> Result<u64> {
        let swept = self.sweep_batches(batch).await;
        match &swept {
            Ok(count) => {
                self.records.observer.swept(Sweep::Completed);
                if *count > 0 {
                    self.records
                        .observer
                        .deauthorized(DeauthorizationReason::Inactivity, *count);
                }
            }
            Err(_) => self.records.observer.swept(Sweep::Failed),
        }
        swept
    }

    async fn sweep_batches(&self, batch: u64) -> Result<u64> {
        let mut total = 0;
        loop {
            let swept = self
                .records
                .store
                .sweep_inactive(micros(self.records.clock.now()), batch)
                .await?;
            total += swept.len() as u64;
            if !swept.is_empty() {
                self.records.revocations_queued();
            }
            if (swept.len() as u64) < batch {
                return Ok(total);
            }
        }
    }

    /// Validates credential fields for a type (their names already checked against the
    /// catalogue): the credentials, or every field whose value is not acceptable.
    pub fn parse_credentials(
        &self,
        connector_type: ConnectorTypeId,
        fields: &CredentialFields,
    ) -> Result<std::result::Result<Parsed, Vec<FieldError>>> {
        self.credentials.parse(connector_type, fields)
    }

    /// Creates a connector of a credential-based type, after the cloud service accepted the
    /// credentials. One connector per (account, type, external account).
    pub async fn create(
        &self,
        account: AccountId,
        connector_type: ConnectorTypeId,
        display_name: Option<DisplayName>,
        labels: Labels,
        credentials: Parsed,
    ) -> Result<Connector> {
        let provider = self.credentials.provider(connector_type)?;
        let existing = async |identity: &Identity| -> Result<()> {
            match self
                .records
                .store
                .find_by_external_account(account.as_str(), connector_type.as_str(), &identity.id)
                .await?
            {
                Some(existing) => Err(already_exists(connector_type, &account, existing)),
                None => Ok(()),
            }
        };
        // Once per account, asked before the service when the fields name the account; after
        // it when only the service can (it names the account while checking).
        let identity = match &credentials.identity {
            Some(identity) => {
                existing(identity).await?;
                provider
                    .check(
                        Some(identity),
                        &credentials.secrets,
                        self.records.clock.now(),
                    )
                    .await?
                    .unwrap_or_else(|| identity.clone())
            }
            None => {
                let identity = self
                    .credentials
                    .identity_checked(provider, &credentials)
                    .await?;
                existing(&identity).await?;
                identity
            }
        };
        let connector = self.records.linked_now(
            account,
            connector_type,
            display_name,
            identity,
            labels,
            self.records.clock.now(),
        );
        let secrets = self
            .records
            .seal_credentials(&connector.name.connector, &credentials);
        self.records.insert_new(connector, secrets).await
    }

    /// Lists an account's connectors after `after`, at most `page_size` of them.
    pub async fn list(
        &self,
        account: &AccountId,
        filter: ListFilter,
        after: Option<&ConnectorId>,
        page_size: u64,
    ) -> Result<ConnectorPage> {
        let rows = self
            .records
            .store
            .list_connectors(
                account.as_str(),
                ConnectorQuery {
                    connector_type: filter.connector_type.map(ConnectorTypeId::as_str),
                    state: filter.state.map(|state| match state {
                        StateFilter::Authorized => ConnectorState::Authorized,
                        StateFilter::Deauthorized => ConnectorState::Deauthorized,
                    }),
                    after_id: after.map(ConnectorId::as_str),
                    limit: page_size + 1,
                    now_micros: micros(self.records.clock.now()),
                },
            )
            .await?;
        let now = self.records.clock.now();
        let mut connectors = rows
            .into_iter()
            .map(|row| from_row(&self.records.catalogue, row).map(|connector| connector.at(now)))
            .collect::<Result<Vec<_>>>()?;
        let next_after = if connectors.len() as u64 > page_size {
            connectors.truncate(page_size as usize);
            connectors.last().map(|last| last.name.connector.clone())
        } else {
            None
        };
        Ok(ConnectorPage {
            connectors,
            next_after,
        })
    }

    /// Changes the mutable fields (labels). The display name never changes.
    pub async fn update(&self, name: &ConnectorName, update: ConnectorUpdate) -> Result<Connector> {
        if let Some(display_name) = &update.display_name {
            // The display name never changes, so this read cannot race with anything.
            if display_name != self.records.load(name).await?.display_name.as_str() {
                return Err(Error::DisplayNameImmutable);
            }
        }
        let labels = update
            .labels
            .as_ref()
            .map(|labels| serde_json::to_string(labels.as_map()))
            .transpose()
            .map_err(|error| Error::Internal(format!("labels do not serialise: {error}")))?;
        let now = self.records.clock.now();
        // One statement, guarded by the revision only when the caller sent an etag.
        let updated = self
            .records
            .store
            .update_labels(
                name.account.as_str(),
                name.connector.as_str(),
                labels,
                now.timestamp_micros(),
                update.expected_revision,
            )
            .await?;
        match updated {
            Some(row) => Ok(from_row(&self.records.catalogue, row)?.at(now)),
            None => {
                self.records.load(name).await?;
                Err(Error::EtagMismatch(name.to_string()))
            }
        }
    }

    /// Renews a credential-based connector with new credentials for the same external account.
    pub async fn reauthorize(
        &self,
        name: &ConnectorName,
        credentials: Parsed,
    ) -> Result<Connector> {
        let current = from_row(&self.records.catalogue, self.records.load(name).await?)?;
        let provider = self.credentials.provider(current.connector_type)?;
        let identity = match &credentials.identity {
            Some(identity) => identity.clone(),
            None => {
                self.credentials
                    .identity_checked(provider, &credentials)
                    .await?
            }
        };
        if identity.id != current.external_account.id {
            return Err(Error::AccountMismatch {
                name: name.clone(),
                expected: current.external_account.id,
                given: identity.id,
            });
        }
        let identity = if credentials.identity.is_some() {
            // The pinned value stays unless the caller names the one to accept instead.
            let expected = Identity {
                pinned: identity
                    .pinned
                    .clone()
                    .or(current.external_account.pinned.clone()),
                ..identity.clone()
            };
            provider
                .check(
                    Some(&expected),
                    &credentials.secrets,
                    self.records.clock.now(),
                )
                .await?
                .unwrap_or(expected)
        } else {
            identity
        };
        let connector = self
            .records
            .renew(name, identity.pinned, || {
                self.records.seal_credentials(&name.connector, &credentials)
            })
            .await?;
        tracing::info!(connector = %name, "connector reauthorized");
        Ok(connector)
    }

    /// Deletes a connector for good, destroying its secrets and queueing the revocation of
    /// our access at its provider (in the same transaction; the outbox worker carries it out,
    /// so a provider that is down never blocks or undoes a delete).
    pub async fn delete(&self, name: &ConnectorName, expected_revision: Option<i64>) -> Result<()> {
        // A refresh in flight in this process finishes first, so the delete erases (and queues
        // for revocation) the refresh token it rotated to, not the spent one. Across processes
        // on PostgreSQL the delete's row lock does the same.
        let refresh = self.refresh_locks.lock_for(name.connector.as_str());
        let _refresh = refresh.lock().await;
        match self
            .records
            .store
            .delete_connector(
                name.account.as_str(),
                name.connector.as_str(),
                expected_revision,
                micros(self.records.clock.now()),
            )
            .await?
        {
            DeleteOutcome::Deleted => {
                tracing::info!(connector = %name, "connector deleted, secrets destroyed");
                self.records.revocations_queued();
                Ok(())
            }
            DeleteOutcome::NotFound => Err(Error::ConnectorNotFound(name.to_string())),
            DeleteOutcome::RevisionMismatch => Err(Error::EtagMismatch(name.to_string())),
        }
    }

    /// Deletes every connector of a customer account (as [`Self::delete`] does for each) and
    /// returns how many.
    pub async fn delete_account(&self, account: &AccountId) -> Result<u64> {
        let count = self
            .records
            .store
            .delete_account(account.as_str(), micros(self.records.clock.now()))
            .await?;
        tracing::info!(account = %account, count, "account deleted");
        self.records.revocations_queued();
        Ok(count)
    }
}
