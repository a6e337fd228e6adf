//! What the metrics read at scrape time: connectors by type and state, the revocation outbox,
//! and the connection pool.

use std::sync::atomic::AtomicU64;

use sea_orm::{
    ColumnTrait as _, EntityTrait as _, QueryFilter as _, QuerySelect as _,
    sea_query::{Expr, ExprTrait as _},
};

use super::entity::{connector, revocation};
use super::{ConnectorState, Result, Store};

/// Waits for a pooled connection that timed out in this process (each answered
/// `DATABASE_UNAVAILABLE`); counted where driver errors are classified.
pub static POOL_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// The connection pool's state.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
}

impl Store {
    /// Connectors by type and state, as readers see them at `now_micros`: a connector past its
    /// inactivity deadline counts as deauthorized before the sweeper has written it.
    pub async fn connector_counts(
        &self,
        now_micros: i64,
    ) -> Result<Vec<(String, &'static str, i64)>> {
        let by_state: Vec<(String, ConnectorState, i64)> = connector::Entity::find()
            .select_only()
            .column(connector::Column::ConnectorType)
            .column(connector::Column::State)
            .column_as(Expr::col(connector::Column::Id).count(), "count")
            .group_by(connector::Column::ConnectorType)
            .group_by(connector::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        let past_deadline: Vec<(String, i64)> = connector::Entity::find()
            .select_only()
            .column(connector::Column::ConnectorType)
            .column_as(Expr::col(connector::Column::Id).count(), "count")
            .filter(connector::Column::State.eq(ConnectorState::Authorized))
            .filter(connector::Column::InactivityDeadline.lte(now_micros))
            .group_by(connector::Column::ConnectorType)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut counts = std::collections::BTreeMap::<(String, &'static str), i64>::new();
        for (connector_type, state, count) in by_state {
            let state = match state {
                ConnectorState::Authorized => "authorized",
                ConnectorState::Deauthorized => "deauthorized",
            };
            *counts.entry((connector_type, state)).or_default() += count;
        }
        for (connector_type, count) in past_deadline {
            *counts
                .entry((connector_type.clone(), "authorized"))
                .or_default() -= count;
            *counts.entry((connector_type, "deauthorized")).or_default() += count;
        }
        Ok(counts
            .into_iter()
            .map(|((connector_type, state), count)| (connector_type, state, count))
            .collect())
    }

    /// Tokens waiting in the revocation outbox, and when the oldest was queued.
    pub async fn outbox_status(&self) -> Result<(i64, Option<i64>)> {
        let status: Option<(i64, Option<i64>)> = revocation::Entity::find()
            .select_only()
            .column_as(Expr::col(revocation::Column::Id).count(), "depth")
            .column_as(Expr::col(revocation::Column::CreateTime).min(), "oldest")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(status.unwrap_or((0, None)))
    }

    /// The connection pool's state.
    pub fn pool_status(&self) -> PoolStatus {
        match self.backend() {
            super::Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                PoolStatus {
                    size: pool.size(),
                    idle: pool.num_idle() as u32,
                    max: pool.options().get_max_connections(),
                }
            }
            super::Backend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                PoolStatus {
                    size: pool.size(),
                    idle: pool.num_idle() as u32,
                    max: pool.options().get_max_connections(),
                }
            }
        }
    }
}
