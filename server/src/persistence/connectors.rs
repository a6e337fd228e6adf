//! The connector table: create, read, list, the single-statement writes (transfer reports,
//! labels), revision-guarded updates, and deletion of a connector or a whole account.

use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, TransactionTrait as _,
};

use super::entity::{connector, connector_secret};
use super::events::{INSERT_CHUNK, append_event, append_events, event_model};
use super::revocations::{queue_revocations, revocation_of};
use super::secrets::{insert_secrets, replace_all_secrets, sealed_secrets, secrets_by_connector};
use super::{
    ConnectorQuery, ConnectorRow, ConnectorState, DeleteOutcome, EventKind, Result, Store,
    unique_row,
};
use crate::crypto::Sealed;

impl Store {
    /// Inserts a connector with its sealed secrets, atomically. [`Error::Conflict`] if the
    /// account already has a connector for that type and external account.
    pub async fn insert_connector(
        &self,
        row: ConnectorRow,
        secrets: Vec<(String, Sealed)>,
    ) -> Result<()> {
        let txn = self.db.begin().await?;
        let connector_id = row.id.clone();
        // Every column written (`reset_all` marks the model's values as set).
        connector::ActiveModel::from(row.clone())
            .reset_all()
            .insert(&txn)
            .await?;
        insert_secrets(&txn, &connector_id, secrets).await?;
        append_event(&txn, &row, EventKind::Authorized, None, row.create_time).await?;
        txn.commit().await?;
        Ok(())
    }

    /// One connector of an account.
    pub async fn get_connector(&self, account: &str, id: &str) -> Result<Option<ConnectorRow>> {
        let select = connector::Entity::find_by_id(id.to_owned())
            .filter(connector::Column::Account.eq(account));
        unique_row(select, &self.db).await
    }

    /// One connector of an account, for reads that may be served from this process's row
    /// cache: never older than this process's last write to it, and at most the cache's time
    /// to live older than another process's (see `row_cache`). Writes read with
    /// [`Store::get_connector`].
    pub async fn get_connector_cached(
        &self,
        account: &str,
        id: &str,
        now_micros: i64,
    ) -> Result<Option<ConnectorRow>> {
        if let Some(row) = self.rows.get(account, id, now_micros) {
            return Ok(Some(row));
        }
        let ticket = self.rows.ticket();
        let row = self.get_connector(account, id).await?;
        if let Some(row) = &row {
            self.rows.put(ticket, row, now_micros);
        }
        Ok(row)
    }

    /// The account's connector of a type for an external account, if any.
    pub async fn find_by_external_account(
        &self,
        account: &str,
        connector_type: &str,
        external_account_id: &str,
    ) -> Result<Option<ConnectorRow>> {
        // At most one: a unique index.
        let select = connector::Entity::find()
            .filter(connector::Column::Account.eq(account))
            .filter(connector::Column::ConnectorType.eq(connector_type))
            .filter(connector::Column::ExternalAccountId.eq(external_account_id));
        unique_row(select, &self.db).await
    }

    /// A page of an account's connectors, ordered by id.
    pub async fn list_connectors(
        &self,
        account: &str,
        query: ConnectorQuery<'_>,
    ) -> Result<Vec<ConnectorRow>> {
        let mut select = connector::Entity::find().filter(connector::Column::Account.eq(account));
        if let Some(connector_type) = query.connector_type {
            select = select.filter(connector::Column::ConnectorType.eq(connector_type));
        }
        match query.state {
            Some(ConnectorState::Authorized) => {
                select = select
                    .filter(connector::Column::State.eq(ConnectorState::Authorized))
                    .filter(connector::Column::InactivityDeadline.gt(query.now_micros));
            }
            Some(state) => {
                select = select.filter(
                    sea_orm::Condition::any()
                        .add(connector::Column::State.eq(state))
                        .add(connector::Column::InactivityDeadline.lte(query.now_micros)),
                );
            }
            None => {}
        }
        if let Some(after) = query.after_id {
            select = select.filter(connector::Column::Id.gt(after));
        }
        // The page size goes into the SQL text rather than a bound `LIMIT ?`: SQLite prepares
        // a statement again whenever its `LIMIT` parameter is bound, and page sizes are few,
        // so each stays prepared in the connection's statement cache.
        use sea_orm::QueryTrait as _;
        let mut statement = select
            .order_by_asc(connector::Column::Id)
            .build(self.db.get_database_backend());
        statement.sql = format!("{} LIMIT {}", statement.sql, query.limit);
        Ok(connector::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// Writes `row` if the stored revision is still `expected_revision`, and when `secrets` are
    /// given, makes them the connector's only secrets (a reauthorization). Returns whether it
    /// was written.
    pub async fn update_connector(
        &self,
        row: ConnectorRow,
        expected_revision: i64,
        secrets: Vec<(String, Sealed)>,
        event: Option<EventKind>,
    ) -> Result<bool> {
        let txn = self.db.begin().await?;
        let connector_id = row.id.clone();
        let event = event.map(|kind| (kind, row.clone()));
        let updated = connector::Entity::update_many()
            .set(connector::ActiveModel::from(row).reset_all())
            .filter(connector::Column::Id.eq(connector_id.as_str()))
            .filter(connector::Column::Revision.eq(expected_revision))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        if !secrets.is_empty() {
            replace_all_secrets(&txn, &connector_id, secrets).await?;
        }
        if let Some((kind, row)) = event {
            append_event(&txn, &row, kind, None, row.update_time).await?;
        }
        txn.commit().await?;
        self.rows.changed(&connector_id);
        Ok(true)
    }

    /// Records a transfer report in one conditional statement: `last_transfer_time` and
    /// `update_time` move forward (never back), the inactivity deadline is pushed to at least
    /// `deadline_micros`, and the revision is bumped, on an authorized connector whose deadline
    /// has not passed. Concurrent reports on one connector cannot conflict: each is applied by
    /// the database on the row as it stands, and reports that arrive while one is being written
    /// share the next write (group commit, see `transfer_batches`; a merged write checks the
    /// deadline against its latest report). Returns the row afterwards, or `None` when no
    /// authorized connector matched (the caller reads it to say why).
    pub async fn record_transfer(
        &self,
        account: &str,
        id: &str,
        now_micros: i64,
        deadline_micros: i64,
    ) -> Result<Option<ConnectorRow>> {
        self.transfers
            .record(
                &format!("{account}/{id}"),
                now_micros,
                deadline_micros,
                async |now_micros, deadline_micros| {
                    self.write_transfer(account, id, now_micros, deadline_micros)
                        .await
                },
            )
            .await
    }

    async fn write_transfer(
        &self,
        account: &str,
        id: &str,
        now_micros: i64,
        deadline_micros: i64,
    ) -> Result<Option<ConnectorRow>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        let later = |column: connector::Column, value: i64| {
            Expr::case(
                Expr::col(column).is_null().or(Expr::col(column).lt(value)),
                value,
            )
            .finally(Expr::col(column))
        };
        let updated = connector::Entity::update_many()
            .col_expr(
                connector::Column::LastTransferTime,
                later(connector::Column::LastTransferTime, now_micros).into(),
            )
            .col_expr(
                connector::Column::UpdateTime,
                later(connector::Column::UpdateTime, now_micros).into(),
            )
            .col_expr(
                connector::Column::InactivityDeadline,
                later(connector::Column::InactivityDeadline, deadline_micros).into(),
            )
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision).add(1),
            )
            .filter(connector::Column::Account.eq(account))
            .filter(connector::Column::Id.eq(id))
            .filter(connector::Column::State.eq(ConnectorState::Authorized))
            .filter(connector::Column::InactivityDeadline.gt(now_micros))
            .exec_with_returning(&self.db)
            .await?;
        self.rows.changed(id);
        Ok(updated.into_iter().next())
    }

    /// Replaces a connector's labels in one statement, guarded by the revision only when the
    /// caller pinned one (an etag): a concurrent transfer report never makes an unpinned label
    /// change fail. Returns the row afterwards, or `None` when nothing matched.
    pub async fn update_labels(
        &self,
        account: &str,
        id: &str,
        labels_json: Option<String>,
        now_micros: i64,
        pinned_revision: Option<i64>,
    ) -> Result<Option<ConnectorRow>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        let mut update = connector::Entity::update_many()
            .col_expr(connector::Column::UpdateTime, Expr::value(now_micros))
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision).add(1),
            )
            .filter(connector::Column::Account.eq(account))
            .filter(connector::Column::Id.eq(id));
        if let Some(labels) = labels_json {
            update = update.col_expr(connector::Column::Labels, Expr::value(labels));
        }
        if let Some(revision) = pinned_revision {
            update = update.filter(connector::Column::Revision.eq(revision));
        }
        let updated = update.exec_with_returning(&self.db).await?;
        self.rows.changed(id);
        Ok(updated.into_iter().next())
    }

    /// Deletes a connector and destroys its secrets, optionally only at a given revision.
    pub async fn delete_connector(
        &self,
        account: &str,
        id: &str,
        expected_revision: Option<i64>,
        now_micros: i64,
    ) -> Result<DeleteOutcome> {
        let txn = self.db.begin().await?;
        // Lock the row first (PostgreSQL), as every other writer does, so a token refresh in
        // flight finishes before the secrets are read: the ones returned are the latest.
        let Some(row) = connector::Entity::find_by_id(id.to_owned())
            .filter(connector::Column::Account.eq(account))
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(DeleteOutcome::NotFound);
        };
        if expected_revision.is_some_and(|revision| revision != row.revision) {
            txn.rollback().await?;
            return Ok(DeleteOutcome::RevisionMismatch);
        }
        let secrets = sealed_secrets(
            connector_secret::Entity::find()
                .filter(connector_secret::Column::ConnectorId.eq(id))
                .all(&txn)
                .await?,
        );
        connector_secret::Entity::delete_many()
            .filter(connector_secret::Column::ConnectorId.eq(id))
            .exec(&txn)
            .await?;
        connector::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await?;
        append_event(&txn, &row, EventKind::Deleted, None, now_micros).await?;
        let revocation = revocation_of(&self.revocable_types, &row, &secrets, now_micros);
        queue_revocations(&txn, revocation.into_iter().collect()).await?;
        txn.commit().await?;
        self.rows.changed(id);
        self.reclaim_deleted_secrets().await;
        Ok(DeleteOutcome::Deleted)
    }

    /// Deletes every connector of an account with its secrets, appending one `DELETED` event
    /// each (and its revocation) and an `ACCOUNT_DELETED` event, in one transaction. Returns
    /// how many connectors were deleted.
    pub async fn delete_account(&self, account: &str, now_micros: i64) -> Result<u64> {
        let txn = self.db.begin().await?;
        let rows: Vec<ConnectorRow> = connector::Entity::find()
            .filter(connector::Column::Account.eq(account))
            .order_by_asc(connector::Column::Id)
            .lock_exclusive()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let mut secrets_by_connector = secrets_by_connector(&txn, &ids).await?;
        for id in ids.chunks(INSERT_CHUNK) {
            connector_secret::Entity::delete_many()
                .filter(connector_secret::Column::ConnectorId.is_in(id.iter().cloned()))
                .exec(&txn)
                .await?;
            connector::Entity::delete_many()
                .filter(connector::Column::Id.is_in(id.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        let mut deleted_events = Vec::with_capacity(rows.len());
        let mut revocations = Vec::new();
        for row in &rows {
            deleted_events.push(event_model(
                &row.account,
                &row.id,
                &row.connector_type,
                EventKind::Deleted,
                None,
                now_micros,
            ));
            let secrets = secrets_by_connector.remove(&row.id).unwrap_or_default();
            revocations.extend(revocation_of(
                &self.revocable_types,
                row,
                &secrets,
                now_micros,
            ));
        }
        append_events(&txn, deleted_events).await?;
        queue_revocations(&txn, revocations).await?;
        append_events(
            &txn,
            vec![event_model(
                account,
                "",
                "",
                EventKind::AccountDeleted,
                None,
                now_micros,
            )],
        )
        .await?;
        txn.commit().await?;
        self.rows.changed_all();
        self.reclaim_deleted_secrets().await;
        Ok(rows.len() as u64)
    }
}
