//! The event log every watcher and `ListConnectorEvents` reads: appended inside the writer's
//! transaction, in commit order.

use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DbBackend, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};

use super::entity::connector_event;
use super::{ConnectorRow, EventKind, EventReason, EventRow, Result, Store};

/// An event to append.
pub(super) fn event_model(
    account: &str,
    connector_id: &str,
    connector_type: &str,
    kind: EventKind,
    reason: Option<EventReason>,
    now_micros: i64,
) -> connector_event::ActiveModel {
    connector_event::ActiveModel {
        cursor: sea_orm::ActiveValue::NotSet,
        account: Set(account.to_owned()),
        connector_id: Set(connector_id.to_owned()),
        connector_type: Set(connector_type.to_owned()),
        kind: Set(kind),
        reason: Set(reason),
        create_time: Set(now_micros),
    }
}

/// Appends events, in order, inside the caller's transaction. On PostgreSQL a
/// transaction-scoped advisory lock serialises appenders, so cursors become visible in commit
/// order and a reader following the log never skips an event that commits late. Callers append
/// last, after every row lock their transaction takes: the advisory lock is then never held
/// while waiting for a row (which could deadlock against a transaction holding that row and
/// waiting for the advisory lock, or stall every append behind a token refresh).
pub(super) async fn append_events(
    txn: &impl sea_orm::ConnectionTrait,
    events: Vec<connector_event::ActiveModel>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7411)")
            .await?;
    }
    // Multi-row inserts, kept under both databases' limits on bound parameters.
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<_> = events.by_ref().take(INSERT_CHUNK).collect();
        connector_event::Entity::insert_many(chunk)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Rows per multi-row insert (times at most 12 columns stays below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters).
pub(super) const INSERT_CHUNK: usize = 1000;

/// Appends one event about `row` inside the caller's transaction.
pub(super) async fn append_event(
    txn: &impl sea_orm::ConnectionTrait,
    row: &ConnectorRow,
    kind: EventKind,
    reason: Option<EventReason>,
    now_micros: i64,
) -> Result<()> {
    append_events(
        txn,
        vec![event_model(
            &row.account,
            &row.id,
            &row.connector_type,
            kind,
            reason,
            now_micros,
        )],
    )
    .await
}

impl Store {
    /// An account's events after `after_cursor`, oldest first, at most `limit`.
    pub async fn list_events(
        &self,
        account: &str,
        after_cursor: i64,
        limit: u64,
    ) -> Result<Vec<EventRow>> {
        Ok(connector_event::Entity::find()
            .filter(connector_event::Column::Account.eq(account))
            .filter(connector_event::Column::Cursor.gt(after_cursor))
            .order_by_asc(connector_event::Column::Cursor)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// Every account's events after `after_cursor`, oldest first, at most `limit`: what the
    /// process's one event feed polls.
    pub async fn events_after(&self, after_cursor: i64, limit: u64) -> Result<Vec<EventRow>> {
        Ok(connector_event::Entity::find()
            .filter(connector_event::Column::Cursor.gt(after_cursor))
            .order_by_asc(connector_event::Column::Cursor)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// The highest event cursor (0 with no events).
    pub async fn latest_event_cursor(&self) -> Result<i64> {
        let latest: Option<Option<i64>> = connector_event::Entity::find()
            .select_only()
            .column_as(connector_event::Column::Cursor.max(), "latest")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(latest.flatten().unwrap_or(0))
    }
}
