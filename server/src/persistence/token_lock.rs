//! The lock that makes a token refresh single-flight, within and across processes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, QuerySelect as _,
    TransactionTrait as _,
};

use super::entity::{connector, connector_secret};
use super::events::append_event;
use super::revocations::{queue_revocations, revocation_of};
use super::row_cache::RowCache;
use super::secrets::{replace_secrets, sealed, sealed_secrets};
use super::{Backend, ConnectorRow, ConnectorState, Error, EventKind, EventReason, Result, Store};
use crate::crypto::Sealed;

enum LockConnection {
    Transaction(sea_orm::DatabaseTransaction),
    Plain(DatabaseConnection),
}

/// A connector locked for a token refresh (see [`Store::lock_tokens`]). Dropping it without
/// [`TokenLock::commit`] rolls back what it wrote on PostgreSQL.
pub struct TokenLock {
    connection: LockConnection,
    /// The connector as it was when locked.
    pub row: ConnectorRow,
    revocable_types: Arc<BTreeSet<String>>,
    /// Dropped once a write of the lock is committed.
    rows: Arc<RowCache>,
    /// Released with the lock (see `Store::token_lock_permits`).
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for TokenLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLock")
            .field("connector", &self.row.id)
            .finish_non_exhaustive()
    }
}

impl TokenLock {
    /// A sealed secret of the locked connector.
    pub async fn secret(&self, field: &str) -> Result<Option<Sealed>> {
        let query = connector_secret::Entity::find_by_id((self.row.id.clone(), field.to_owned()));
        let found = match &self.connection {
            LockConnection::Transaction(txn) => query.one(txn).await?,
            LockConnection::Plain(db) => query.one(db).await?,
        };
        Ok(found.map(|secret| sealed(secret).1))
    }

    /// Replaces some secrets of the locked connector (new tokens), if the connector is still
    /// authorized by the authorization it was locked with; [`Error::Contention`] otherwise (it
    /// was reauthorized, deauthorized or deleted meanwhile, and its newer state wins).
    pub async fn replace_secrets(&self, secrets: Vec<(String, Sealed)>) -> Result<()> {
        let write = async |connection: &sea_orm::DatabaseTransaction| {
            self.still_current(connection).await?;
            replace_secrets(connection, &self.row.id, secrets).await
        };
        self.write(write).await
    }

    /// Deauthorizes the locked connector as `row` says (state, reason, time), erases every
    /// secret it held and queues their revocation, under the same condition as
    /// [`TokenLock::replace_secrets`]. Only the state columns are written, with the revision
    /// bumped in place: labels or a transfer recorded during the refresh are kept.
    pub async fn deauthorize(&self, row: ConnectorRow) -> Result<()> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        let write = async |connection: &sea_orm::DatabaseTransaction| {
            self.still_current(connection).await?;
            let id = row.id.clone();
            let secrets = sealed_secrets(
                connector_secret::Entity::find()
                    .filter(connector_secret::Column::ConnectorId.eq(id.as_str()))
                    .all(connection)
                    .await?,
            );
            connector::Entity::update_many()
                .col_expr(connector::Column::State, Expr::value(row.state))
                .col_expr(
                    connector::Column::DeauthorizationReason,
                    Expr::value(row.deauthorization_reason),
                )
                .col_expr(
                    connector::Column::DeauthorizeTime,
                    Expr::value(row.deauthorize_time),
                )
                .col_expr(connector::Column::UpdateTime, Expr::value(row.update_time))
                .col_expr(
                    connector::Column::Revision,
                    Expr::col(connector::Column::Revision).add(1),
                )
                .filter(connector::Column::Id.eq(id.as_str()))
                .exec(connection)
                .await?;
            connector_secret::Entity::delete_many()
                .filter(connector_secret::Column::ConnectorId.eq(id))
                .exec(connection)
                .await?;
            append_event(
                connection,
                &row,
                EventKind::Deauthorized,
                row.deauthorization_reason.map(EventReason::from),
                row.update_time,
            )
            .await?;
            let revocation = revocation_of(&self.revocable_types, &row, &secrets, row.update_time);
            queue_revocations(connection, revocation.into_iter().collect()).await?;
            Ok(())
        };
        self.write(write).await
    }

    /// Runs `write` in the lock's transaction (PostgreSQL: committed with the lock), or in a
    /// transaction of its own (SQLite, where no transaction is held across the provider call).
    async fn write(
        &self,
        write: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<()>,
    ) -> Result<()> {
        match &self.connection {
            LockConnection::Transaction(txn) => write(txn).await,
            LockConnection::Plain(db) => {
                let txn = db.begin().await?;
                write(&txn).await?;
                txn.commit().await?;
                self.rows.changed(&self.row.id);
                Ok(())
            }
        }
    }

    /// Checks, inside the write's transaction, that the authorization the tokens belong to is
    /// still the connector's: still authorized, and not reauthorized since it was locked (on
    /// SQLite nothing is held across the provider call, so this is the guard). Unrelated
    /// changes (labels, a transfer report) bump the revision but must not make a refresh fail:
    /// the provider has already rotated the refresh token, and dropping the new one would leave
    /// the connector holding a spent token.
    async fn still_current(&self, connection: &sea_orm::DatabaseTransaction) -> Result<()> {
        use sea_orm::sea_query::Expr;
        let unchanged = connector::Entity::update_many()
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision),
            )
            .filter(connector::Column::Id.eq(self.row.id.as_str()))
            .filter(connector::Column::AuthorizeTime.eq(self.row.authorize_time))
            .filter(connector::Column::State.eq(ConnectorState::Authorized))
            .exec(connection)
            .await?;
        if unchanged.rows_affected == 1 {
            Ok(())
        } else {
            Err(Error::Contention(format!(
                "connector {} was reauthorized, deauthorized or deleted during a token refresh",
                self.row.id
            )))
        }
    }

    /// Commits what was written and releases the lock.
    pub async fn commit(self) -> Result<()> {
        if let LockConnection::Transaction(txn) = self.connection {
            txn.commit().await?;
            self.rows.changed(&self.row.id);
        }
        Ok(())
    }
}

impl Store {
    /// Takes the lock that makes a token refresh single-flight across processes: on PostgreSQL
    /// a transaction holding `SELECT … FOR UPDATE` on the connector row until
    /// [`TokenLock::commit`] (at most half the pool's connections are held this way at once); on SQLite (one process by design) the caller's in-process lock
    /// is the whole story, so no transaction is held across the provider call. `None` if the
    /// connector is gone.
    pub async fn lock_tokens(&self, connector_id: &str) -> Result<Option<TokenLock>> {
        match self.backend() {
            Backend::Postgres => {
                let permit = tokio::time::timeout(
                    Duration::from_secs(30),
                    self.token_lock_permits.clone().acquire_owned(),
                )
                .await
                .map_err(|_| {
                    Error::Unavailable(
                        "every token lock stayed busy for 30 s (slow provider calls)".into(),
                    )
                })?
                .map_err(|_| Error::Unavailable("the store is shutting down".into()))?;
                let txn = self.db.begin().await?;
                let row = connector::Entity::find_by_id(connector_id.to_owned())
                    .lock_exclusive()
                    .one(&txn)
                    .await?;
                Ok(row.map(|row| TokenLock {
                    connection: LockConnection::Transaction(txn),
                    row,
                    revocable_types: self.revocable_types.clone(),
                    rows: self.rows.clone(),
                    _permit: Some(permit),
                }))
            }
            Backend::Sqlite => {
                let row = connector::Entity::find_by_id(connector_id.to_owned())
                    .one(&self.db)
                    .await?;
                Ok(row.map(|row| TokenLock {
                    connection: LockConnection::Plain(self.db.clone()),
                    row,
                    revocable_types: self.revocable_types.clone(),
                    rows: self.rows.clone(),
                    _permit: None,
                }))
            }
        }
    }
}
