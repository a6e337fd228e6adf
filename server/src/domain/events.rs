//! The connector event log as the API shows it: every lifecycle change (authorized,
//! reauthorized, deauthorized with its reason, deleted), appended by the persistence layer in
//! the same transaction as the change, in cursor order. Events carry no secrets.

use chrono::{DateTime, Utc};

use super::{
    Connectors,
    connector_type::ConnectorTypeId,
    error::{Error, Result},
    model::{AccountId, ConnectorId, ConnectorName, DeauthorizationReason},
};
use crate::persistence::{
    EVENT_ACCOUNT_DELETED, EVENT_AUTHORIZED, EVENT_DEAUTHORIZED, EVENT_DELETED, EVENT_REAUTHORIZED,
    EventRow,
};

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

impl Connectors {
    /// An account's events after `after` (0 for the beginning), at most `page_size`.
    pub async fn list_events(
        &self,
        account: &AccountId,
        after: i64,
        page_size: u64,
    ) -> Result<EventPage> {
        let rows = self
            .store
            .list_events(account.as_str(), after, page_size + 1)
            .await?;
        let mut events = rows.into_iter().map(event_of).collect::<Result<Vec<_>>>()?;
        let next_after = if events.len() as u64 > page_size {
            events.truncate(page_size as usize);
            events.last().map(|event| event.cursor)
        } else {
            None
        };
        Ok(EventPage { events, next_after })
    }
}

fn event_of(row: EventRow) -> Result<ConnectorEvent> {
    let corrupt = || Error::Internal(format!("event {} is corrupt", row.cursor));
    let kind = match row.kind.as_str() {
        EVENT_AUTHORIZED => EventKind::Authorized,
        EVENT_REAUTHORIZED => EventKind::Reauthorized,
        EVENT_DEAUTHORIZED => EventKind::Deauthorized,
        EVENT_DELETED => EventKind::Deleted,
        EVENT_ACCOUNT_DELETED => EventKind::AccountDeleted,
        _ => return Err(corrupt()),
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
            Some(ConnectorTypeId::parse(&row.connector_type).ok_or_else(corrupt)?),
        )
    };
    Ok(ConnectorEvent {
        cursor: row.cursor,
        account,
        connector,
        connector_type,
        kind,
        reason: row.reason.as_deref().and_then(DeauthorizationReason::parse),
        time: DateTime::from_timestamp_micros(row.create_time).ok_or_else(corrupt)?,
    })
}
