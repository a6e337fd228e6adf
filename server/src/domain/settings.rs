//! The settings and small shared state the domain service is assembled from: OAuth 2.0
//! providers, lifecycle and revocation timings, the per-connector refresh locks and the
//! record of recent credential checks. A leaf: it imports no other domain module but the
//! catalogue, the model and the error.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use rand::Rng as _;

use super::{
    connector_type::ConnectorTypeId,
    error::{Error, Result},
    model::Connector,
};
use crate::providers::oauth::OAuthProvider;

/// How the service runs OAuth 2.0: a provider (an app registration) per type, its redirect
/// URI, the return URLs it may send browsers to, and timings.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The provider of each OAuth 2.0 connector type with an app registration; a type without
    /// one cannot be linked.
    pub providers: HashMap<ConnectorTypeId, Arc<dyn OAuthProvider>>,
    /// The redirect URI registered with the provider: `{public_url}/oauth/callback`.
    pub redirect_uri: String,
    /// Return URLs a caller may ask for, matched exactly.
    pub return_urls: Vec<String>,
    /// How long an authorization link works.
    pub attempt_lifetime: chrono::Duration,
    /// Refresh when the access token expires within this.
    pub refresh_skew: chrono::Duration,
    /// Opt-in: the callback may complete an authorization itself, after the user confirms on a
    /// page naming the customer account being linked. Off (the default), every authorization is
    /// completed by the orchestrator (`CompleteAuthorization`), which binds it to the user who
    /// started it; Office 365 is always completed that way.
    pub callback_completes: bool,
}

impl OAuthSettings {
    /// The provider of an OAuth 2.0 type, as configured.
    pub(super) fn provider(&self, connector_type: ConnectorTypeId) -> Result<&dyn OAuthProvider> {
        if connector_type.info().auth_method.uses_credentials() {
            return Err(Error::CredentialsRequired(connector_type));
        }
        self.providers
            .get(&connector_type)
            .map(|provider| provider.as_ref())
            .ok_or(Error::OAuthNotConfigured(connector_type))
    }
}

/// Per-connector locks that make refreshes single-flight within this process.
#[derive(Debug, Default, Clone)]
pub(super) struct RefreshLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl RefreshLocks {
    pub(super) fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget locks nobody holds, so the map stays as small as the refreshes in flight.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(id.to_owned()).or_default().clone()
    }
}

/// How revocations are retried.
#[derive(Debug, Clone, Copy)]
pub struct RevocationSettings {
    /// Tries before the outcome is `FAILED` (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failed try; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between tries.
    pub max_backoff: Duration,
    /// How long a claimed try may take before another process may take it over. Longer than
    /// the provider timeout.
    pub lease: Duration,
    /// Revocations tried at once by one process.
    pub concurrency: u64,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
            concurrency: 16,
        }
    }
}

impl RevocationSettings {
    /// The wait after try `attempt` (1-based) failed: `initial_backoff · 2^(attempt-1)`, at most
    /// `max_backoff`, with "equal jitter" (between half of it and all of it) so that tokens
    /// queued together during an outage do not all come back at the same instant.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        let full = self
            .initial_backoff
            .saturating_mul(1_u32 << exponent.min(31))
            .min(self.max_backoff);
        let half = full / 2;
        half + rand::rng().random_range(Duration::ZERO..=full - half)
    }
}

/// Lifecycle timings.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleSettings {
    /// A connector that moves no data for this long is deauthorized.
    pub inactivity_period: chrono::Duration,
    /// How revocations are retried.
    pub revocation: super::RevocationSettings,
    /// How long stored credentials seen accepted by their service (an account key) are trusted
    /// before handing out access checks them again.
    pub credential_check_interval: chrono::Duration,
}

/// A check's result, per connector id: for the key of which authorization (its
/// `authorize_time`; a reauthorization brings a new key), and until when it holds.
type Checked = (DateTime<Utc>, DateTime<Utc>);

/// The keys this process checked recently, by connector id.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyChecks(Arc<Mutex<HashMap<String, Checked>>>);

/// Entries kept before stale ones are dropped.
const KEY_CHECKS_KEPT: usize = 10_000;

impl KeyChecks {
    pub(super) fn fresh(&self, connector: &Connector, now: DateTime<Utc>) -> bool {
        let checks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checks
            .get(connector.name.connector.as_str())
            .is_some_and(|(authorized, until)| {
                *authorized == connector.authorize_time && now < *until
            })
    }

    pub(super) fn record(
        &self,
        connector: &Connector,
        now: DateTime<Utc>,
        valid_for: chrono::Duration,
    ) {
        let mut checks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if checks.len() >= KEY_CHECKS_KEPT {
            checks.retain(|_, (_, until)| now < *until);
        }
        checks.insert(
            connector.name.connector.as_str().to_owned(),
            (connector.authorize_time, now + valid_for),
        );
    }
}
