//! The connector event log as the API shows it: every lifecycle change (authorized,
//! reauthorized, deauthorized with its reason, deleted, revocation outcome), appended by the persistence layer in
//! the same transaction as the change, in cursor order. Events carry no secrets.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{
    connector_type::{Catalogue, ConnectorTypeId},
    error::{Error, Result},
    model::{AccountId, ConnectorId, ConnectorName, DeauthorizationReason, RevocationOutcome},
};
use crate::persistence::{self, EventReason, EventRow, Store};

/// What happened to a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// It was created (authorized for the first time).
    Authorized,
    /// It was reauthorized.
    Reauthorized,
    /// It lost its authorization.
    Deauthorized,
    /// It was deleted.
    Deleted,
    /// The whole customer account was deleted.
    AccountDeleted,
    /// The revocation queued when it was deleted or deauthorized reached its final outcome.
    RevocationFinished,
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorEvent {
    /// Position in the log; increases with every event.
    pub cursor: i64,
    /// The account the event belongs to.
    pub account: AccountId,
    /// The connector (none for an account deletion).
    pub connector: Option<ConnectorName>,
    /// Its type (none for an account deletion).
    pub connector_type: Option<ConnectorTypeId>,
    /// What happened.
    pub kind: EventKind,
    /// Why, for a deauthorization.
    pub reason: Option<DeauthorizationReason>,
    /// How it ended, for a finished revocation.
    pub revocation_outcome: Option<RevocationOutcome>,
    /// When.
    pub time: DateTime<Utc>,
}

/// A page of events.
#[derive(Debug)]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<ConnectorEvent>,
    /// The cursor to continue after, if there are more.
    pub next_after: Option<i64>,
}

/// The event log, as callers read it: an account's events page by page, and every account's
/// new events for the process's event feed. A service of its own, owning what it needs (the
/// store): the log is written by the persistence layer with each change, never here.
#[derive(Debug, Clone)]
pub struct Events {
    store: Store,
    /// The connector types events name.
    catalogue: Arc<Catalogue>,
}

impl Events {
    /// Reads the event log in `store`, of connectors of `catalogue`'s types.
    pub fn new(store: Store, catalogue: Arc<Catalogue>) -> Self {
        Self { store, catalogue }
    }

    /// An account's events after `after` (0 for the beginning), at most `page_size`.
    pub async fn list(&self, account: &AccountId, after: i64, page_size: u64) -> Result<EventPage> {
        let rows = self
            .store
            .list_events(account.as_str(), after, page_size + 1)
            .await?;
        let mut events = rows
            .into_iter()
            .map(|row| event_of(&self.catalogue, row))
            .collect::<Result<Vec<_>>>()?;
        let next_after = if events.len() as u64 > page_size {
            events.truncate(page_size as usize);
            events.last().map(|event| event.cursor)
        } else {
            None
        };
        Ok(EventPage { events, next_after })
    }

    /// Every account's events after `after`, oldest first, at most `limit` (the process's
    /// event feed).
    pub async fn after(&self, after: i64, limit: u64) -> Result<Vec<ConnectorEvent>> {
        self.store
            .events_after(after, limit)
            .await?
            .into_iter()
            .map(|row| event_of(&self.catalogue, row))
            .collect()
    }

    /// The highest event cursor so far (0 with none).
    pub async fn latest_cursor(&self) -> Result<i64> {
        Ok(self.store.latest_event_cursor().await?)
    }
}

fn event_of(catalogue: &Catalogue, row: EventRow) -> Result<ConnectorEvent> {
    let corrupt = || Error::Internal(format!("event {} is corrupt", row.cursor));
    let kind = match row.kind {
        persistence::EventKind::Authorized => EventKind::Authorized,
        persistence::EventKind::Reauthorized => EventKind::Reauthorized,
        persistence::EventKind::Deauthorized => EventKind::Deauthorized,
        persistence::EventKind::Deleted => EventKind::Deleted,
        persistence::EventKind::AccountDeleted => EventKind::AccountDeleted,
        persistence::EventKind::RevocationFinished => EventKind::RevocationFinished,
    };
    // The stored `reason` is the deauthorization reason, or the outcome of a revocation.
    let (reason, revocation_outcome) = match (kind, row.reason) {
        (EventKind::RevocationFinished, Some(EventReason::Revoked)) => {
            (None, Some(RevocationOutcome::Revoked))
        }
        (EventKind::RevocationFinished, Some(EventReason::NotSupported)) => {
            (None, Some(RevocationOutcome::NotSupported))
        }
        (EventKind::RevocationFinished, Some(EventReason::Failed)) => {
            (None, Some(RevocationOutcome::Failed))
        }
        (EventKind::RevocationFinished, _) => return Err(corrupt()),
        (_, Some(EventReason::Inactivity)) => (Some(DeauthorizationReason::Inactivity), None),
        (_, Some(EventReason::Revoked)) => (Some(DeauthorizationReason::Revoked), None),
        (_, Some(EventReason::Expired)) => (Some(DeauthorizationReason::Expired), None),
        (_, _) => (None, None),
    };
    let account = AccountId::new(&row.account).map_err(|_| corrupt())?;
    let (connector, connector_type) = if kind == EventKind::AccountDeleted {
        (None, None)
    } else {
        (
            Some(ConnectorName {
                account: account.clone(),
                connector: ConnectorId::new(&row.connector_id).map_err(|_| corrupt())?,
            }),
            Some(catalogue.parse(&row.connector_type).ok_or_else(corrupt)?),
        )
    };
    Ok(ConnectorEvent {
        cursor: row.cursor,
        account,
        connector,
        connector_type,
        kind,
        reason,
        revocation_outcome,
        time: DateTime::from_timestamp_micros(row.create_time).ok_or_else(corrupt)?,
    })
}
