//! [`Connectors`]: the domain service the transport calls for what is not yet a service of its
//! own, over the shared core `records::Records`.
//! What it does is split by responsibility: `lifecycle` (create, list, update, reauthorize,
//! delete, sweep) and `revocation` (handing the outbox worker its service). Services of their
//! own: `events::Events` reads the event log, `revocation::Revocations` works the revocation
//! outbox, `oauth::Authorizations` links OAuth 2.0 connectors, `access::Access` hands out
//! tokens and revealed passwords and records transfers, `credential_checks::CredentialLinks`
//! owns the credential providers and their checks, and `health::Health`, which owns only the
//! store, checks the database.

use std::sync::Arc;

use super::access::Access;
use super::credential_checks::{CredentialLinks, CredentialProviders};
use super::oauth::Authorizations;
use super::observer::{Observer, Unobserved};
use super::records::Records;
use super::settings::{Lifecycle, OAuthSettings, RefreshLocks};
use super::{
    connector_type::{Catalogue, ConnectorTypeId},
    error::Result,
    model::{Connector, ConnectorName},
};
use crate::{clock::Clock, crypto::Sealer, persistence::Store};

/// The connector operations.
#[derive(Debug, Clone)]
pub struct Connectors {
    /// The connector records and their secrets.
    pub(super) records: Records,
    /// Linking with credentials, and checking them before access is handed out.
    pub(super) credentials: CredentialLinks,
    pub(super) oauth: OAuthSettings,
    pub(super) refresh_locks: RefreshLocks,
    pub(super) revocation: super::RevocationSettings,
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
        let records = Records {
            catalogue: Arc::new(catalogue),
            store,
            sealer,
            clock,
            observer: Arc::new(Unobserved),
            revocation_wakeup: Arc::default(),
            inactivity_period: lifecycle.inactivity_period,
        };
        Self {
            credentials: CredentialLinks::new(
                records.clone(),
                credential_providers,
                lifecycle.credential_check_interval,
            ),
            records,
            oauth,
            refresh_locks: RefreshLocks::default(),
            revocation: lifecycle.revocation,
        }
    }

    /// The connector types this build has.
    pub fn catalogue(&self) -> &Catalogue {
        &self.records.catalogue
    }

    /// Whether connectors of `connector_type` can be linked on this server: it has a provider
    /// (an OAuth 2.0 type needs an app registration).
    pub fn is_configured(&self, connector_type: ConnectorTypeId) -> bool {
        self.credentials.links(connector_type) || self.oauth.providers.contains_key(&connector_type)
    }

    /// Reports what it does (deauthorizations, sweeps, revocation tries) to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.records.observer = observer.clone();
        self.credentials.set_observer(observer);
        self
    }

    /// The service that links OAuth 2.0 connectors, sharing these records (so call it after
    /// [`Self::with_observer`]).
    pub fn authorizations(&self) -> Authorizations {
        Authorizations::new(self.records.clone(), self.oauth.clone())
    }

    /// The service that hands out access, sharing these records, credential checks and refresh
    /// locks (so call it after [`Self::with_observer`]).
    pub fn access(&self) -> Access {
        Access::new(
            self.records.clone(),
            self.credentials.clone(),
            self.oauth.clone(),
            self.refresh_locks.clone(),
        )
    }

    /// Gets a connector.
    ///
    /// Served from the store's row cache: this process's own changes are seen at once, other
    /// processes' within the cache's time to live (`row_cache_ttl_ms`).
    pub async fn get(&self, name: &ConnectorName) -> Result<Connector> {
        self.records.get(name).await
    }
}
