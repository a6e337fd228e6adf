//! [`Connectors`]: the operations the API exposes, as domain rules over the store, the sealer
//! and the providers.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::oauth::{OAuthSettings, RefreshLocks};
use super::{
    connector_type::ConnectorTypeId,
    error::{Error, Result},
    model::{
        AccessToken, AccessTokenKind, AccountId, Connector, ConnectorId, ConnectorName,
        DeauthorizationReason, DisplayName, ExternalAccount, Labels, State, StateFilter,
    },
};
use crate::{
    clock::Clock,
    crypto::{Sealed, Sealer},
    persistence::{self, ConnectorQuery, ConnectorRow, DeleteOutcome, Store},
    providers::{
        self,
        credentials::{
            AccessKind, CredentialFields, CredentialProvider, FieldError, Identity, Parsed, Secrets,
        },
        microsoft::Microsoft,
    },
};

/// The providers of the connector types that link with credentials, by type (built at
/// start-up; see `lib.rs`).
pub type CredentialProviders =
    std::collections::BTreeMap<ConnectorTypeId, Arc<dyn CredentialProvider>>;
/// How often a read-modify-write is retried when a concurrent writer got in between.
const WRITE_ATTEMPTS: usize = 5;

use crate::persistence::{EVENT_REAUTHORIZED, STATE_AUTHORIZED, STATE_DEAUTHORIZED};

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

/// Lifecycle timings.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// A connector that moves no data for this long is deauthorized.
    pub inactivity_period: chrono::Duration,
    /// How revocations are retried.
    pub revocation: super::RevocationSettings,
    /// How long an Azure account key seen accepted by its storage account is trusted before
    /// `GetAccessToken` checks it again.
    pub azure_key_check_interval: chrono::Duration,
}

/// The connector operations.
#[derive(Debug, Clone)]
pub struct Connectors {
    pub(super) store: Store,
    pub(super) sealer: Arc<Sealer>,
    pub(super) credential_providers: Arc<CredentialProviders>,
    pub(super) microsoft: Microsoft,
    pub(super) oauth: OAuthSettings,
    pub(super) refresh_locks: RefreshLocks,
    /// Credentials handed out recently (see `token_cache`).
    token_cache: super::token_cache::TokenCache,
    pub(super) inactivity_period: chrono::Duration,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) revocation: super::RevocationSettings,
    pub(super) revocation_wakeup: Arc<tokio::sync::Notify>,
    pub(super) azure_key_check_interval: chrono::Duration,
    pub(super) key_checks: super::credential_checks::KeyChecks,
}

impl Connectors {
    /// Assembles the domain service.
    pub fn new(
        store: Store,
        sealer: Arc<Sealer>,
        credential_providers: CredentialProviders,
        microsoft: Microsoft,
        oauth: OAuthSettings,
        lifecycle: Lifecycle,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Tokens of the types with an RFC 7009 endpoint go to the revocation outbox.
        let revocable_types = oauth
            .apps
            .iter()
            .filter(|(_, app)| app.revocation_url.is_some())
            .map(|(connector_type, _)| connector_type.as_str().to_owned());
        let store = store.with_revocable_types(revocable_types);
        Self {
            store,
            sealer,
            credential_providers: Arc::new(credential_providers),
            microsoft,
            oauth,
            refresh_locks: RefreshLocks::default(),
            token_cache: Default::default(),
            inactivity_period: lifecycle.inactivity_period,
            clock,
            revocation: lifecycle.revocation,
            revocation_wakeup: Arc::default(),
            azure_key_check_interval: lifecycle.azure_key_check_interval,
            key_checks: Default::default(),
        }
    }

    /// Deauthorizes every connector past its inactivity deadline, in batches of `batch`
    /// (bounded memory), and returns how many. Safe to run in several processes at once.
    pub async fn sweep_inactive(&self, batch: u64) -> Result<u64> {
        let mut total = 0;
        loop {
            let swept = self
                .store
                .sweep_inactive(micros(self.clock.now()), batch)
                .await?;
            total += swept.len() as u64;
            if !swept.is_empty() {
                self.revocations_queued();
            }
            if (swept.len() as u64) < batch {
                return Ok(total);
            }
        }
    }

    /// Checks credentials whose fields do not name their account; the account the service
    /// names.
    async fn identity_checked(
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
    fn credential_provider(
        &self,
        connector_type: ConnectorTypeId,
    ) -> Result<&dyn CredentialProvider> {
        self.credential_providers
            .get(&connector_type)
            .map(|provider| provider.as_ref())
            .ok_or(Error::OAuthAuthorizationRequired(connector_type))
    }

    /// Validates credential fields for a type (their names already checked against the
    /// catalogue): the credentials, or every field whose value is not acceptable.
    pub fn parse_credentials(
        &self,
        connector_type: ConnectorTypeId,
        fields: &CredentialFields,
    ) -> Result<std::result::Result<Parsed, Vec<FieldError>>> {
        Ok(self.credential_provider(connector_type)?.parse(fields))
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
        let provider = self.credential_provider(connector_type)?;
        let existing = async |identity: &Identity| -> Result<()> {
            match self
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
                    .check(Some(identity), &credentials.secrets, self.clock.now())
                    .await?;
                identity.clone()
            }
            None => {
                let identity = self.identity_checked(provider, &credentials).await?;
                existing(&identity).await?;
                identity
            }
        };
        let external_account = ExternalAccount {
            id: identity.id,
            label: identity.label,
        };

        let now = self.clock.now();
        let name = ConnectorName {
            account,
            connector: ConnectorId::generate(),
        };
        let connector = Connector {
            display_name: display_name
                .unwrap_or_else(|| DisplayName::from_label(&external_account.label)),
            name,
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
        };
        let secrets = self.seal_credentials(&connector.name.connector, &credentials);
        self.insert_new(connector, secrets).await
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
        Ok(from_row(row)?.at(now))
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
            .store
            .list_connectors(
                account.as_str(),
                ConnectorQuery {
                    connector_type: filter.connector_type.map(ConnectorTypeId::as_str),
                    state: filter.state.map(|state| match state {
                        StateFilter::Authorized => STATE_AUTHORIZED,
                        StateFilter::Deauthorized => STATE_DEAUTHORIZED,
                    }),
                    after_id: after.map(ConnectorId::as_str),
                    limit: page_size + 1,
                    now_micros: micros(self.clock.now()),
                },
            )
            .await?;
        let now = self.clock.now();
        let mut connectors = rows
            .into_iter()
            .map(|row| from_row(row).map(|connector| connector.at(now)))
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
            if display_name != self.load(name).await?.display_name.as_str() {
                return Err(Error::DisplayNameImmutable);
            }
        }
        let labels = update
            .labels
            .as_ref()
            .map(|labels| serde_json::to_string(labels.as_map()))
            .transpose()
            .map_err(|error| Error::Internal(format!("labels do not serialise: {error}")))?;
        let now = self.clock.now();
        // One statement, guarded by the revision only when the caller sent an etag.
        let updated = self
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
            Some(row) => Ok(from_row(row)?.at(now)),
            None => {
                self.load(name).await?;
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
        let current = from_row(self.load(name).await?)?;
        let provider = self.credential_provider(current.connector_type)?;
        let identity = match &credentials.identity {
            Some(identity) => identity.clone(),
            None => self.identity_checked(provider, &credentials).await?,
        };
        if identity.id != current.external_account.id {
            return Err(Error::AccountMismatch {
                name: name.clone(),
                expected: current.external_account.id,
                given: identity.id,
            });
        }
        if credentials.identity.is_some() {
            provider
                .check(Some(&identity), &credentials.secrets, self.clock.now())
                .await?;
        }
        let connector = self
            .renew(name, || {
                self.seal_credentials(&name.connector, &credentials)
            })
            .await?;
        tracing::info!(connector = %name, "connector reauthorized");
        Ok(connector)
    }

    /// Marks a connector authorized again with new secrets: same name and display name,
    /// `authorize_time` now, and a fresh inactivity period.
    pub(super) async fn renew(
        &self,
        name: &ConnectorName,
        secrets: impl Fn() -> Vec<(String, Sealed)>,
    ) -> Result<Connector> {
        let now = self.clock.now();
        self.modify(name, None, secrets, Some(EVENT_REAUTHORIZED), |connector| {
            connector.state = State::Authorized;
            connector.authorize_time = now;
            connector.update_time = now;
            connector.inactivity_deadline = now + self.inactivity_period;
            Ok(())
        })
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
            .store
            .delete_connector(
                name.account.as_str(),
                name.connector.as_str(),
                expected_revision,
                micros(self.clock.now()),
            )
            .await?
        {
            DeleteOutcome::Deleted => {
                tracing::info!(connector = %name, "connector deleted, secrets destroyed");
                self.revocations_queued();
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
            .store
            .delete_account(account.as_str(), micros(self.clock.now()))
            .await?;
        tracing::info!(account = %account, count, "account deleted");
        self.revocations_queued();
        Ok(count)
    }

    /// A short-lived credential for moving data.
    pub async fn access_token(&self, name: &ConnectorName) -> Result<AccessToken> {
        let connector = self.get(name).await?;
        require_authorized(&connector)?;
        let now = self.clock.now();
        if let Some(token) = self.token_cache.get(&connector, now) {
            return Ok(token);
        }
        match self.credential_providers.get(&connector.connector_type) {
            Some(provider) if !provider.mints_access() => {
                Err(Error::NoAccessToken(connector.connector_type))
            }
            Some(provider) => {
                let secrets = self.open_secrets(name, provider.secret_fields()).await?;
                self.verify_credentials(&connector, provider.as_ref(), &secrets)
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
    /// it is handed out (a rejected password deauthorizes the connector).
    pub async fn reveal_credentials(
        &self,
        name: &ConnectorName,
    ) -> Result<Vec<(&'static str, secrecy::SecretString)>> {
        use secrecy::ExposeSecret as _;
        let connector = self.get(name).await?;
        require_authorized(&connector)?;
        let provider = self.credential_provider(connector.connector_type)?;
        if provider.mints_access() {
            return Err(Error::NotRevealable(connector.connector_type));
        }
        let secrets = self.open_secrets(name, provider.secret_fields()).await?;
        self.verify_credentials(&connector, provider, &secrets)
            .await?;
        secrets
            .iter()
            .map(|(&field, value)| {
                String::from_utf8(value.expose_secret().to_vec())
                    .map(|text| (field, secrecy::SecretString::from(text)))
                    .map_err(|_| Error::Internal(format!("connector {name}: {field} is not text")))
            })
            .collect()
    }

    /// Records data moved with a connector; more than zero bytes counts as activity.
    pub async fn record_transfer(&self, name: &ConnectorName, bytes: u64) -> Result<Connector> {
        if bytes == 0 {
            let connector = self.get(name).await?;
            require_authorized(&connector)?;
            return Ok(connector);
        }
        let now = self.clock.now();
        // One conditional statement: concurrent reports on one connector never conflict.
        let recorded = self
            .store
            .record_transfer(
                name.account.as_str(),
                name.connector.as_str(),
                now.timestamp_micros(),
                (now + self.inactivity_period).timestamp_micros(),
            )
            .await?;
        match recorded {
            Some(row) => Ok(from_row(row)?.at(now)),
            None => {
                // Missing, or not authorized (deauthorized, or past its inactivity deadline).
                let connector = self.get(name).await?;
                require_authorized(&connector)?;
                Err(Error::ConcurrentModification(format!(
                    "connector {name} changed state during the report"
                )))
            }
        }
    }

    /// Read-modify-write of one connector, guarded by its revision: retried when a concurrent
    /// writer got in between, unless the caller pinned an etag.
    pub(super) async fn modify(
        &self,
        name: &ConnectorName,
        pinned: Option<i64>,
        secrets: impl Fn() -> Vec<(String, Sealed)>,
        event: Option<&str>,
        mut change: impl FnMut(&mut Connector) -> Result<()>,
    ) -> Result<Connector> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut connector = from_row(self.load(name).await?)?.at(self.clock.now());
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

    async fn load(&self, name: &ConnectorName) -> Result<ConnectorRow> {
        self.store
            .get_connector(name.account.as_str(), name.connector.as_str())
            .await?
            .ok_or_else(|| Error::ConnectorNotFound(name.to_string()))
    }

    pub(super) fn seal_field(&self, id: &ConnectorId, field: &str, plaintext: &[u8]) -> Sealed {
        self.sealer.seal(plaintext, &secret_context(id, field))
    }

    fn seal_credentials(&self, id: &ConnectorId, credentials: &Parsed) -> Vec<(String, Sealed)> {
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
    async fn open_secrets(
        &self,
        name: &ConnectorName,
        fields: &'static [&'static str],
    ) -> Result<Secrets> {
        let mut secrets = Secrets::new();
        for &field in fields {
            secrets.insert(field, self.open_secret(name, field).await?);
        }
        Ok(secrets)
    }

    async fn open_secret(
        &self,
        name: &ConnectorName,
        field: &str,
    ) -> Result<secrecy::SecretSlice<u8>> {
        let id = &name.connector;
        let sealed = self
            .store
            .get_secret(id.as_str(), field)
            .await?
            // Deleted between reading the connector and reading its secret.
            .ok_or_else(|| Error::ConnectorNotFound(name.to_string()))?;
        self.sealer
            .open(&sealed, &secret_context(id, field))
            .map_err(|error| Error::Internal(format!("connector {}: {error}", id.as_str())))
    }
}

/// Associated data binding a ciphertext to its connector and field.
pub(super) fn secret_context(id: &ConnectorId, field: &str) -> Vec<u8> {
    stored_secret_context(id.as_str(), field)
}

/// [`secret_context`] from a stored connector id.
pub(crate) fn stored_secret_context(connector_id: &str, field: &str) -> Vec<u8> {
    format!("connector/{connector_id}/{field}").into_bytes()
}

fn require_authorized(connector: &Connector) -> Result<()> {
    match connector.state {
        State::Authorized => Ok(()),
        State::Deauthorized { reason, .. } => Err(Error::Deauthorized {
            name: connector.name.clone(),
            reason,
            with_credentials: connector
                .connector_type
                .info()
                .auth_method
                .uses_credentials(),
        }),
    }
}

fn already_exists(
    connector_type: ConnectorTypeId,
    account: &AccountId,
    existing: ConnectorRow,
) -> Error {
    match ConnectorId::new(&existing.id) {
        Ok(connector) => Error::AlreadyExists {
            connector_type,
            existing: ConnectorName {
                account: account.clone(),
                connector,
            },
        },
        Err(_) => Error::Internal(format!(
            "stored connector id `{}` is malformed",
            existing.id
        )),
    }
}

pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

fn from_micros(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::Internal(format!("stored time {micros} is out of range")))
}

pub(super) fn to_row(connector: &Connector) -> ConnectorRow {
    let (state, reason, deauthorize_time) = match connector.state {
        State::Authorized => (STATE_AUTHORIZED, None, None),
        State::Deauthorized { reason, at } => (
            STATE_DEAUTHORIZED,
            Some(reason.as_str().to_owned()),
            Some(micros(at)),
        ),
    };
    ConnectorRow {
        id: connector.name.connector.as_str().to_owned(),
        account: connector.name.account.as_str().to_owned(),
        connector_type: connector.connector_type.as_str().to_owned(),
        display_name: connector.display_name.as_str().to_owned(),
        state: state.to_owned(),
        deauthorization_reason: reason,
        deauthorize_time,
        external_account_id: connector.external_account.id.clone(),
        external_account_label: connector.external_account.label.clone(),
        labels: serde_json::to_string(connector.labels.as_map())
            .expect("a string map always serialises"),
        create_time: micros(connector.create_time),
        update_time: micros(connector.update_time),
        authorize_time: micros(connector.authorize_time),
        last_transfer_time: connector.last_transfer_time.map(micros),
        revision: connector.revision,
        inactivity_deadline: micros(connector.inactivity_deadline),
    }
}

pub(super) fn from_row(row: ConnectorRow) -> Result<Connector> {
    let corrupt =
        |what: &str| Error::Internal(format!("connector {} has a corrupt {what}", row.id));
    let state = match row.state.as_str() {
        STATE_AUTHORIZED => State::Authorized,
        STATE_DEAUTHORIZED => State::Deauthorized {
            reason: row
                .deauthorization_reason
                .as_deref()
                .and_then(DeauthorizationReason::parse)
                .ok_or_else(|| corrupt("deauthorization reason"))?,
            at: from_micros(
                row.deauthorize_time
                    .ok_or_else(|| corrupt("deauthorize time"))?,
            )?,
        },
        _ => return Err(corrupt("state")),
    };
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&row.labels).map_err(|_| corrupt("labels"))?;
    Ok(Connector {
        name: ConnectorName {
            account: AccountId::new(&row.account).map_err(|_| corrupt("account"))?,
            connector: ConnectorId::new(&row.id).map_err(|_| corrupt("id"))?,
        },
        connector_type: ConnectorTypeId::parse(&row.connector_type)
            .ok_or_else(|| corrupt("type"))?,
        display_name: DisplayName::new(&row.display_name).map_err(|_| corrupt("display name"))?,
        state,
        external_account: ExternalAccount {
            id: row.external_account_id.clone(),
            label: row.external_account_label.clone(),
        },
        labels: Labels::new(labels).map_err(|_| corrupt("labels"))?,
        create_time: from_micros(row.create_time)?,
        update_time: from_micros(row.update_time)?,
        authorize_time: from_micros(row.authorize_time)?,
        last_transfer_time: row.last_transfer_time.map(from_micros).transpose()?,
        revision: row.revision,
        inactivity_deadline: from_micros(row.inactivity_deadline)?,
    })
}

impl From<persistence::Error> for Error {
    fn from(error: persistence::Error) -> Self {
        match error {
            persistence::Error::Unavailable(message) => {
                tracing::warn!(%message, "database unavailable");
                Error::StorageUnavailable
            }
            persistence::Error::Contention(message) => {
                tracing::info!(%message, "concurrent transactions conflicted");
                Error::ConcurrentModification("the connector".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<providers::Error> for Error {
    fn from(error: providers::Error) -> Self {
        match error {
            providers::Error::CredentialsRejected(message) | providers::Error::Refused(message) => {
                Error::CredentialsRejected(message)
            }
            providers::Error::InvalidGrant { description, .. } => {
                Error::CredentialsRejected(format!("invalid_grant: {description}"))
            }
            providers::Error::IdTokenRejected(message) => Error::AuthorizationCodeRejected(
                format!("the id token is not acceptable: {message}"),
            ),
            providers::Error::AdminRequired => Error::AdminRequired,
            providers::Error::ClientRejected(message) => Error::OAuthClientRejected(message),
            // A provider answering what its protocol does not allow is treated as an outage.
            providers::Error::Protocol(message) => Error::ProviderUnavailable {
                message,
                retry_after: std::time::Duration::from_secs(30),
            },
            providers::Error::Unavailable {
                message,
                retry_after,
            } => Error::ProviderUnavailable {
                message,
                retry_after,
            },
        }
    }
}
