//! Durable revocation: when a connector's secrets are erased (delete, deauthorization, account
//! deletion), the persistence layer queues the token in an outbox in the same transaction. The
//! worker here carries the revocations out: each try is claimed with a lease (so several
//! processes share the work and a process that dies mid-try is taken over), failures are
//! retried with exponential backoff up to a bound, and the final outcome (`REVOKED`,
//! `NOT_SUPPORTED`, `FAILED`) is appended to the event log as the sealed token is erased.
//!
//! [`Revocations`] is a service of its own, owning what the worker needs; the other services
//! only wake it (through `records::Records`) when they queue a revocation.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::{
    connector_type::{Catalogue, ConnectorTypeId},
    error::Result,
    model::{self, ConnectorId},
    observer::{Observer, RevocationTry},
    records::Records,
    rows::{micros, open_text},
    settings::RevocationSettings,
};
use crate::{
    clock::Clock,
    crypto::Sealer,
    persistence::{RevocationOutcome, RevocationRow, Store},
    providers::oauth::OAuthProvider,
};

/// What one try came to.
enum Outcome {
    /// Final: recorded as an event, the token erased.
    Final(RevocationOutcome),
    /// Try again after this long.
    Retry(Duration, String),
}

/// The revocation outbox worker's service: claims the revocations that are due, tries them at
/// the provider of their type, and records retries and final outcomes.
#[derive(Debug, Clone)]
pub struct Revocations {
    store: Store,
    /// The connector types queued tokens are of.
    catalogue: Arc<Catalogue>,
    /// Opens the queued tokens.
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    /// The OAuth 2.0 providers, by type; those that revoke are asked to.
    providers: HashMap<ConnectorTypeId, Arc<dyn OAuthProvider>>,
    settings: RevocationSettings,
    /// Notified when this process queues revocations.
    wakeup: Arc<Notify>,
    observer: Arc<dyn Observer>,
}

impl Revocations {
    /// The worker's service over `records`, woken by their revocation wake-up.
    pub(super) fn new(
        records: &Records,
        providers: HashMap<ConnectorTypeId, Arc<dyn OAuthProvider>>,
        settings: RevocationSettings,
    ) -> Self {
        Self {
            store: records.store.clone(),
            catalogue: records.catalogue.clone(),
            sealer: records.sealer.clone(),
            clock: records.clock.clone(),
            providers,
            settings,
            wakeup: records.revocation_wakeup.clone(),
            observer: records.observer.clone(),
        }
    }

    /// What the outbox worker waits on between polls.
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }

    /// Tries every revocation that is due, `concurrency` at a time, and returns how many
    /// reached their final outcome. Safe to run in several processes at once.
    pub async fn process(&self) -> Result<u64> {
        let mut finished = 0;
        loop {
            let now = self.clock.now();
            let claimed = self
                .store
                .claim_revocations(
                    micros(now),
                    micros(now + chrono_duration(self.settings.lease)),
                    self.settings.concurrency,
                )
                .await?;
            let claimed_count = claimed.len() as u64;
            let mut tries = tokio::task::JoinSet::new();
            for row in claimed {
                let revocations = self.clone();
                tries.spawn(async move { revocations.try_revocation(row).await });
            }
            let mut outcomes = Vec::new();
            while let Some(result) = tries.join_next().await {
                match result {
                    Ok(Ok(Some(outcome))) => outcomes.push(outcome),
                    Ok(Ok(None)) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "recording a revocation try failed; it is retried when its lease ends")
                    }
                    Err(error) => tracing::error!(%error, "a revocation try panicked"),
                }
            }
            // The final outcomes of the round in one transaction (one turn at the event log).
            if !outcomes.is_empty() {
                let recorded = self
                    .store
                    .finish_revocations(&outcomes, micros(self.clock.now()))
                    .await?;
                for (row, outcome) in &recorded {
                    self.observer
                        .revocation_tried(RevocationTry::Finished(match outcome {
                            RevocationOutcome::Revoked => model::RevocationOutcome::Revoked,
                            RevocationOutcome::NotSupported => {
                                model::RevocationOutcome::NotSupported
                            }
                            RevocationOutcome::Failed => model::RevocationOutcome::Failed,
                        }));
                    tracing::info!(
                        connector = row.connector_id,
                        r#type = row.connector_type,
                        attempts = row.attempts,
                        ?outcome,
                        "revocation finished"
                    );
                }
                finished += recorded.len() as u64;
                self.store.reclaim_deleted_secrets().await;
            }
            if claimed_count < self.settings.concurrency {
                return Ok(finished);
            }
        }
    }

    /// One try of a claimed revocation: a retry is recorded here; a final outcome is returned
    /// for the round to record with the others.
    async fn try_revocation(
        &self,
        row: RevocationRow,
    ) -> Result<Option<(RevocationRow, RevocationOutcome)>> {
        let outcome = self.revoke(&row).await;
        let now = self.clock.now();
        match outcome {
            Outcome::Final(outcome) => Ok(Some((row, outcome))),
            Outcome::Retry(wait, error) => {
                self.observer.revocation_tried(RevocationTry::Retried);
                tracing::info!(
                    connector = row.connector_id,
                    attempts = row.attempts,
                    retry_in_secs = wait.as_secs(),
                    %error,
                    "revocation failed; retrying"
                );
                self.store
                    .retry_revocation(&row, micros(now + chrono_duration(wait)), &error)
                    .await?;
                Ok(None)
            }
        }
    }

    async fn revoke(&self, row: &RevocationRow) -> Outcome {
        let provider = self
            .catalogue
            .parse(&row.connector_type)
            .and_then(|connector_type| self.providers.get(&connector_type))
            .filter(|provider| provider.revokes());
        let Some(provider) = provider else {
            // This process has no endpoint for the type, though the one that queued the token
            // had (a configuration being rolled out or back): count it as a failed try, so a
            // process that has the endpoint can take the retry, and the token is still erased
            // (`FAILED`) after the last try if none does.
            let error = "no revocation endpoint is configured for this type in this process";
            return self.failed_try(row, error.to_owned(), None);
        };
        let token = ConnectorId::new(&row.connector_id)
            .map_err(|_| "malformed connector id".to_owned())
            .and_then(|id| {
                open_text(&self.sealer, &id, &row.field, &row.token)
                    .map_err(|error| error.to_string())
            });
        let token = match token {
            Ok(token) => token,
            Err(error) => {
                tracing::error!(connector = row.connector_id, %error, "a queued token cannot be opened");
                return Outcome::Final(RevocationOutcome::Failed);
            }
        };
        match provider.revoke(&token).await {
            Ok(true) => Outcome::Final(RevocationOutcome::Revoked),
            Ok(false) => Outcome::Final(RevocationOutcome::NotSupported),
            Err(error) => {
                let retry_after = match &error {
                    crate::providers::Error::Unavailable { retry_after, .. } => Some(*retry_after),
                    _ => None,
                };
                self.failed_try(row, error.to_string(), retry_after)
            }
        }
    }

    /// A failed try: retried after the backoff, but never sooner than the provider asked
    /// (`Retry-After` wins over the longest backoff; only a wait beyond a day is cut to a day,
    /// so a broken header cannot park a revocation for ever), or `FAILED` after the last try.
    fn failed_try(
        &self,
        row: &RevocationRow,
        error: String,
        retry_after: Option<Duration>,
    ) -> Outcome {
        if row.attempts >= self.settings.max_attempts {
            tracing::warn!(
                connector = row.connector_id,
                attempts = row.attempts,
                %error,
                "revocation failed for the last time"
            );
            return Outcome::Final(RevocationOutcome::Failed);
        }
        const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
        let wait = self
            .settings
            .backoff(row.attempts)
            .max(retry_after.unwrap_or_default().min(LONGEST_RETRY_AFTER));
        Outcome::Retry(wait, error)
    }
}

/// A wait as a chrono duration, capped at a year so that adding it to a time cannot overflow
/// (the configured values are bounded far below that; this guards the arithmetic).
fn chrono_duration(duration: Duration) -> chrono::Duration {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    chrono::Duration::from_std(duration.min(YEAR)).unwrap_or(chrono::Duration::days(365))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings::RevocationSettings;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_bound() {
        let settings = RevocationSettings {
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
            ..RevocationSettings::default()
        };
        for _ in 0..100 {
            for (attempt, full) in [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600)] {
                let wait = settings.backoff(attempt);
                let full = Duration::from_secs(full);
                assert!(wait >= full / 2 && wait <= full, "try {attempt}: {wait:?}");
            }
            assert!(settings.backoff(40) <= Duration::from_secs(600));
        }
    }
}
