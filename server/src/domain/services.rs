//! Putting the domain together: [`compose`] builds every service once from what the server
//! was started with, so each owns only its own dependencies and shares the rest explicitly.
//!
//! The services (as qdrant's are): `lifecycle::Lifecycle` (create, list, update, reauthorize,
//! delete, sweep), `access::Access` (tokens, revealed passwords, transfer reports),
//! `oauth::Authorizations` (linking OAuth 2.0 connectors), `events::Events` (the event log),
//! `revocation::Revocations` (the revocation outbox worker) and `health::Health` (the store
//! only). Underneath, `records::Records` is the core they share and
//! `credential_checks::CredentialLinks` the credential providers and their checks.

use std::sync::Arc;

use super::access::Access;
use super::connector_type::Catalogue;
use super::credential_checks::{CredentialLinks, CredentialProviders};
use super::events::Events;
use super::health::Health;
use super::lifecycle::Lifecycle;
use super::oauth::Authorizations;
use super::observer::Observer;
use super::records::Records;
use super::revocation::Revocations;
use super::settings::{LifecycleSettings, OAuthSettings, RefreshLocks};
use crate::{clock::Clock, crypto::Sealer, persistence::Store};

/// What the domain is built from.
#[derive(Debug)]
pub struct Dependencies {
    /// The database.
    pub store: Store,
    /// Seals and opens secrets.
    pub sealer: Arc<Sealer>,
    /// The connector types this build has.
    pub catalogue: Catalogue,
    /// The providers of the types that link with credentials.
    pub credential_providers: CredentialProviders,
    /// The OAuth 2.0 providers and how linking runs.
    pub oauth: OAuthSettings,
    /// Inactivity, revocation and credential-check timings.
    pub lifecycle: LifecycleSettings,
    /// What time it is (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Where what happens is reported (metrics, in the server).
    pub observer: Arc<dyn Observer>,
}

/// The domain's services, each cloned cheaply to whoever calls it.
#[derive(Debug, Clone)]
pub struct Services {
    /// Create, list, update, reauthorize, delete, sweep.
    pub lifecycle: Lifecycle,
    /// Access tokens, revealed credentials, transfer reports.
    pub access: Access,
    /// OAuth 2.0 linking (the gRPC methods and the browser callback).
    pub authorizations: Authorizations,
    /// The event log.
    pub events: Events,
    /// The revocation outbox worker's service.
    pub revocations: Revocations,
    /// The database check.
    pub health: Health,
}

/// Builds the domain's services.
pub fn compose(dependencies: Dependencies) -> Services {
    let Dependencies {
        store,
        sealer,
        catalogue,
        credential_providers,
        oauth,
        lifecycle,
        clock,
        observer,
    } = dependencies;
    // Tokens of the types whose provider can revoke go to the revocation outbox.
    let revocable_types = oauth
        .providers
        .iter()
        .filter(|(_, provider)| provider.revokes())
        .map(|(connector_type, _)| connector_type.as_str().to_owned());
    let store = store.with_revocable_types(revocable_types);
    let records = Records {
        catalogue: Arc::new(catalogue),
        store: store.clone(),
        sealer,
        clock,
        observer,
        revocation_wakeup: Arc::default(),
        inactivity_period: lifecycle.inactivity_period,
    };
    let credentials = CredentialLinks::new(
        records.clone(),
        credential_providers,
        lifecycle.credential_check_interval,
    );
    // A delete waits for a refresh of the same connector in flight in this process.
    let refresh_locks = RefreshLocks::default();
    Services {
        lifecycle: Lifecycle::new(
            records.clone(),
            credentials.clone(),
            refresh_locks.clone(),
            oauth.providers.keys().copied().collect(),
        ),
        access: Access::new(records.clone(), credentials, oauth.clone(), refresh_locks),
        revocations: Revocations::new(&records, oauth.providers.clone(), lifecycle.revocation),
        authorizations: Authorizations::new(records.clone(), oauth),
        events: Events::new(store.clone(), records.catalogue.clone()),
        health: Health::new(store),
    }
}
