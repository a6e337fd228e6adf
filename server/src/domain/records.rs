//! [`Records`]: the core every domain service shares. It loads and writes a connector under
//! its revision, links a new one, renews and deauthorizes one, and seals and opens its secrets;
//! it owns what that needs (the store, the keys, the clock, the catalogue rows are parsed
//! with, the observer told of deauthorizations, the revocation worker's wake-up and the
//! inactivity period) and nothing a single service alone needs.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::observer::Observer;
use super::rows::{already_exists, from_row, secret_context, to_row};
use super::{
    connector_type::{Catalogue, ConnectorTypeId},
    error::{Error, Result},
    model::{
        AccountId, Connector, ConnectorId, ConnectorName, DeauthorizationReason, DisplayName,
        ExternalAccount, Labels, State,
    },
};
use crate::{
    clock::Clock,
    crypto::{Sealed, Sealer},
    persistence::{self, ConnectorRow, EventKind, Store},
    providers::credentials::{Identity, Parsed, Secrets},
};

/// How often a read-modify-write is retried when a concurrent writer got in between.
const WRITE_ATTEMPTS: usize = 5;

/// The connector records and their secrets, shared (cloned) by the services.
#[derive(Debug, Clone)]
pub(super) struct Records {
    /// The connector types this build has (rows are parsed with it).
    pub(super) catalogue: Arc<Catalogue>,
    pub(super) store: Store,
    pub(super) sealer: Arc<Sealer>,
    pub(super) clock: Arc<dyn Clock>,
    /// Where what happens is reported (metrics, in the server).
    pub(super) observer: Arc<dyn Observer>,
    /// Notified when this process queues revocations (see `revocation`).
    pub(super) revocation_wakeup: Arc<tokio::sync::Notify>,
    pub(super) inactivity_period: chrono::Duration,
}

impl Records {
    /// Lets the outbox worker know that revocations were just queued, so the first try does
    /// not wait for its next poll.
    pub(super) fn revocations_queued(&self) {
        self.revocation_wakeup.notify_one();
    }

    /// A connector linked at `now`: a new id, authorized, at revision 1, its inactivity period
    /// starting, linked to the external account the provider named, and named after it unless
    /// a display name was given.
    pub(super) fn linked_now(
        &self,
        account: AccountId,
        connector_type: ConnectorTypeId,
        display_name: Option<DisplayName>,
        identity: Identity,
        labels: Labels,
        now: DateTime<Utc>,
    ) -> Connector {
        let external_account = ExternalAccount {
            id: identity.id,
            label: identity.label,
            pinned: identity.pinned,
        };
        Connector {
            display_name: display_name
                .unwrap_or_else(|| DisplayName::from_label(&external_account.label)),
            name: ConnectorName {
                account,
                connector: ConnectorId::generate(),
            },
            connector_type,
            state: State::Authorized,
            external_account,
            labels,
            create_time: now,
            update_time: now,
            authorize_time: now,
            last_transfer_time: None,
            revision: 1,
            inactivity_deadline: now + self.inactivity_period,
        }
    }

    /// Inserts a new connector with its secrets; a concurrent or earlier link of the same
    /// external account under the same customer account makes it ALREADY_EXISTS.
    pub(super) async fn insert_new(
        &self,
        connector: Connector,
        secrets: Vec<(String, Sealed)>,
    ) -> Result<Connector> {
        let connector_type = connector.connector_type;
        match self
            .store
            .insert_connector(to_row(&connector), secrets)
            .await
        {
            Ok(()) => {
                tracing::info!(connector = %connector.name, r#type = %connector_type, "connector created");
                Ok(connector)
            }
            Err(persistence::Error::Conflict) => {
                let existing = self
                    .store
                    .find_by_external_account(
                        connector.name.account.as_str(),
                        connector_type.as_str(),
                        &connector.external_account.id,
                    )
                    .await?
                    .ok_or_else(|| Error::Internal("unique conflict without a row".into()))?;
                Err(already_exists(
                    connector_type,
                    &connector.name.account,
                    existing,
                ))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Gets a connector.
    ///
    /// Served from the store's row cache: this process's own changes are seen at once, other
    /// processes' within the cache's time to live (`row_cache_ttl_ms`).
    pub(super) async fn get(&self, name: &ConnectorName) -> Result<Connector> {
        let now = self.clock.now();
        let row = self
            .store
            .get_connector_cached(
                name.account.as_str(),
                name.connector.as_str(),
                now.timestamp_micros(),
            )
            .await?
            .ok_or_else(|| Error::ConnectorNotFound(name.to_string()))?;
        Ok(from_row(&self.catalogue, row)?.at(now))
    }

    /// Marks a connector authorized again with new secrets: same name and display name,
    /// `authorize_time` now, and a fresh inactivity period; the value now pinned (`None` for
    /// types whose provider pins nothing).
    pub(super) async fn renew(
        &self,
        name: &ConnectorName,
        pinned: Option<String>,
        secrets: impl Fn() -> Vec<(String, Sealed)>,
    ) -> Result<Connector> {
        let now = self.clock.now();
        self.modify(
            name,
            None,
            secrets,
            Some(EventKind::Reauthorized),
            |connector| {
                connector.external_account.pinned = pinned.clone();
                connector.state = State::Authorized;
                connector.authorize_time = now;
                connector.update_time = now;
                connector.inactivity_deadline = now + self.inactivity_period;
                Ok(())
            },
        )
        .await
    }

    /// Deauthorizes a locked connector (its secrets erased, its revocation queued, the event
    /// appended) and returns the error that tells the caller so.
    pub(super) async fn deauthorize_locked(
        &self,
        locked: persistence::TokenLock,
        current: Connector,
        reason: DeauthorizationReason,
        now: DateTime<Utc>,
    ) -> Result<Error> {
        let mut deauthorized = current;
        deauthorized.state = State::Deauthorized { reason, at: now };
        deauthorized.update_time = now;
        deauthorized.revision += 1;
        locked.deauthorize(to_row(&deauthorized)).await?;
        locked.commit().await?;
        self.observer.deauthorized(reason, 1);
        self.revocations_queued();
        Ok(Error::Deauthorized {
            name: deauthorized.name,
            reason,
            with_credentials: deauthorized
                .connector_type
                .info()
                .auth_method
                .uses_credentials(),
        })
    }

    /// Read-modify-write of one connector, guarded by its revision: retried when a concurrent
    /// writer got in between, unless the caller pinned an etag.
    pub(super) async fn modify(
        &self,
        name: &ConnectorName,
        pinned: Option<i64>,
        secrets: impl Fn() -> Vec<(String, Sealed)>,
        event: Option<EventKind>,
        mut change: impl FnMut(&mut Connector) -> Result<()>,
    ) -> Result<Connector> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut connector =
                from_row(&self.catalogue, self.load(name).await?)?.at(self.clock.now());
            let revision = connector.revision;
            if pinned.is_some_and(|pinned| pinned != revision) {
                return Err(Error::EtagMismatch(name.to_string()));
            }
            change(&mut connector)?;
            connector.revision = revision + 1;
            if self
                .store
                .update_connector(to_row(&connector), revision, secrets(), event)
                .await?
            {
                return Ok(connector);
            }
            if pinned.is_some() {
                return Err(Error::EtagMismatch(name.to_string()));
            }
        }
        Err(Error::ConcurrentModification(format!("connector {name}")))
    }

    pub(super) async fn load(&self, name: &ConnectorName) -> Result<ConnectorRow> {
        self.store
            .get_connector(name.account.as_str(), name.connector.as_str())
            .await?
            .ok_or_else(|| Error::ConnectorNotFound(name.to_string()))
    }

    pub(super) fn seal_field(&self, id: &ConnectorId, field: &str, plaintext: &[u8]) -> Sealed {
        self.sealer.seal(plaintext, &secret_context(id, field))
    }

    pub(super) fn seal_credentials(
        &self,
        id: &ConnectorId,
        credentials: &Parsed,
    ) -> Vec<(String, Sealed)> {
        use secrecy::ExposeSecret as _;
        credentials
            .secrets
            .iter()
            .map(|(field, value)| {
                (
                    (*field).to_owned(),
                    self.sealer
                        .seal(value.expose_secret(), &secret_context(id, field)),
                )
            })
            .collect()
    }

    /// The stored secrets a credential provider keeps, opened.
    pub(super) async fn open_secrets(
        &self,
        name: &ConnectorName,
        fields: &'static [&'static str],
    ) -> Result<Secrets> {
        let id = &name.connector;
        let stored = self.store.get_secrets(id.as_str()).await?;
        if stored.is_empty() {
            // Deleted between reading the connector and reading its secrets.
            return Err(Error::ConnectorNotFound(name.to_string()));
        }
        let mut secrets = Secrets::new();
        for (field, sealed) in stored {
            // Only the provider's fields, by their static names; a field a type may leave
            // out (a password when a key is given) is simply absent.
            if let Some(&field) = fields.iter().find(|&&wanted| wanted == field) {
                let opened = self
                    .sealer
                    .open(&sealed, &secret_context(id, field))
                    .map_err(|error| {
                        Error::Internal(format!("connector {}: {error}", id.as_str()))
                    })?;
                secrets.insert(field, opened);
            }
        }
        Ok(secrets)
    }
}
