//! [`Connectors`]: the domain service the transport calls, and the core every responsibility
//! shares: loading and writing a connector under its revision, sealing and opening its
//! secrets, and the registry of credential providers. What it does is split by responsibility:
//! `lifecycle` (create, list, update, reauthorize, delete, sweep), `access` (tokens, revealed
//! passwords, transfer reports), `oauth` (linking and refreshing), `credential_checks`,
//! and `revocation` (queuing, and handing the outbox worker its service). None of them imports
//! another; each imports this module. The event log is read by a service of its own,
//! `events::Events`, the revocation outbox is worked by `revocation::Revocations`, and the
//! health check is `health::Health`, which owns only the store.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::observer::{Observer, Unobserved};
use super::rows::{already_exists, from_row, secret_context, to_row};
use super::settings::{KeyChecks, Lifecycle, OAuthSettings, RefreshLocks};
use super::token_cache::TokenCache;
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
    providers::credentials::{CredentialProvider, Identity, Parsed, Secrets},
};

/// The providers of the connector types that link with credentials, by type (built at
/// start-up; see `lib.rs`).
pub type CredentialProviders =
    std::collections::BTreeMap<ConnectorTypeId, Arc<dyn CredentialProvider>>;

/// How often a read-modify-write is retried when a concurrent writer got in between.
const WRITE_ATTEMPTS: usize = 5;

/// The connector operations.
#[derive(Debug, Clone)]
pub struct Connectors {
    /// The connector types this build has.
    pub(super) catalogue: Arc<Catalogue>,
    pub(super) store: Store,
    pub(super) sealer: Arc<Sealer>,
    pub(super) credential_providers: Arc<CredentialProviders>,
    pub(super) oauth: OAuthSettings,
    pub(super) refresh_locks: RefreshLocks,
    /// Credentials handed out recently (see `token_cache`).
    pub(super) token_cache: TokenCache,
    pub(super) inactivity_period: chrono::Duration,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) revocation: super::RevocationSettings,
    pub(super) revocation_wakeup: Arc<tokio::sync::Notify>,
    pub(super) credential_check_interval: chrono::Duration,
    pub(super) key_checks: KeyChecks,
    /// Where what happens is reported (metrics, in the server).
    pub(super) observer: Arc<dyn Observer>,
}

impl Connectors {
    /// Assembles the domain service.
    pub fn new(
        store: Store,
        sealer: Arc<Sealer>,
        catalogue: Catalogue,
        credential_providers: CredentialProviders,
        oauth: OAuthSettings,
        lifecycle: Lifecycle,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Tokens of the types whose provider can revoke go to the revocation outbox.
        let revocable_types = oauth
            .providers
            .iter()
            .filter(|(_, provider)| provider.revokes())
            .map(|(connector_type, _)| connector_type.as_str().to_owned());
        let store = store.with_revocable_types(revocable_types);
        Self {
            catalogue: Arc::new(catalogue),
            store,
            sealer,
            credential_providers: Arc::new(credential_providers),
            oauth,
            refresh_locks: RefreshLocks::default(),
            token_cache: Default::default(),
            inactivity_period: lifecycle.inactivity_period,
            clock,
            revocation: lifecycle.revocation,
            revocation_wakeup: Arc::default(),
            credential_check_interval: lifecycle.credential_check_interval,
            key_checks: Default::default(),
            observer: Arc::new(Unobserved),
        }
    }

    /// The connector types this build has.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Whether connectors of `connector_type` can be linked on this server: it has a provider
    /// (an OAuth 2.0 type needs an app registration).
    pub fn is_configured(&self, connector_type: ConnectorTypeId) -> bool {
        self.credential_providers.contains_key(&connector_type)
            || self.oauth.providers.contains_key(&connector_type)
    }

    /// Reports what it does (deauthorizations, sweeps, revocation tries) to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Checks credentials whose fields do not name their account; the account the service
    /// names.
    pub(super) async fn identity_checked(
        &self,
        provider: &dyn CredentialProvider,
        credentials: &Parsed,
    ) -> Result<Identity> {
        provider
            .check(None, &credentials.secrets, self.clock.now())
            .await?
            .ok_or_else(|| Error::Internal("a credential provider named no account".into()))
    }

    /// The provider of a type that links with credentials; OAuth 2.0 types have none.
    pub(super) fn credential_provider(
        &self,
        connector_type: ConnectorTypeId,
    ) -> Result<&dyn CredentialProvider> {
        self.credential_providers
            .get(&connector_type)
            .map(|provider| provider.as_ref())
            .ok_or(Error::OAuthAuthorizationRequired(connector_type))
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
    pub async fn get(&self, name: &ConnectorName) -> Result<Connector> {
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
