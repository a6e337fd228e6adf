//! The inactivity sweep: connectors past their deadline are deauthorized in batches.

use sea_orm::{
    ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    TransactionTrait as _,
};

use super::entity::{connector, connector_secret};
use super::events::{append_events, event_model};
use super::revocations::{queue_revocations, revocation_of};
use super::secrets::secrets_by_connector;
use super::{ConnectorState, DeauthorizationReason, EventKind, EventReason, Result, Store};

impl Store {
    /// Deauthorizes (reason `INACTIVITY`, at the deadline) up to `batch` authorized connectors
    /// whose inactivity deadline has passed, erasing their secrets, in one transaction. On
    /// PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so several sweeping
    /// processes share the work without processing a connector twice or waiting on each other.
    /// Returns the ids deauthorized.
    pub async fn sweep_inactive(&self, now_micros: i64, batch: u64) -> Result<Vec<String>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType};
        let txn = self.db.begin().await?;
        let due: Vec<String> = connector::Entity::find()
            .select_only()
            .column(connector::Column::Id)
            .filter(connector::Column::State.eq(ConnectorState::Authorized))
            .filter(connector::Column::InactivityDeadline.lte(now_micros))
            .order_by_asc(connector::Column::InactivityDeadline)
            .limit(batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_tuple()
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(due);
        }
        connector::Entity::update_many()
            .col_expr(
                connector::Column::State,
                Expr::value(ConnectorState::Deauthorized),
            )
            .col_expr(
                connector::Column::DeauthorizationReason,
                Expr::value(DeauthorizationReason::Inactivity),
            )
            .col_expr(
                connector::Column::DeauthorizeTime,
                Expr::col(connector::Column::InactivityDeadline),
            )
            .col_expr(connector::Column::UpdateTime, Expr::value(now_micros))
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision).add(1),
            )
            .filter(connector::Column::Id.is_in(due.clone()))
            // Re-checked: on SQLite nothing is locked, and a transfer may have just landed.
            .filter(connector::Column::State.eq(ConnectorState::Authorized))
            .filter(connector::Column::InactivityDeadline.lte(now_micros))
            .exec(&txn)
            .await?;
        // Only the connectors this sweep deauthorized lose their secrets (not one that a
        // transfer just revived between the select and the update).
        let swept: Vec<String> = connector::Entity::find()
            .select_only()
            .column(connector::Column::Id)
            .filter(connector::Column::Id.is_in(due))
            .filter(connector::Column::State.eq(ConnectorState::Deauthorized))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut secrets_by_connector = secrets_by_connector(&txn, &swept).await?;
        connector_secret::Entity::delete_many()
            .filter(connector_secret::Column::ConnectorId.is_in(swept.clone()))
            .exec(&txn)
            .await?;
        let rows = connector::Entity::find()
            .filter(connector::Column::Id.is_in(swept.clone()))
            .order_by_asc(connector::Column::Id)
            .all(&txn)
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut revocations = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(event_model(
                &row.account,
                &row.id,
                &row.connector_type,
                EventKind::Deauthorized,
                Some(EventReason::Inactivity),
                now_micros,
            ));
            let secrets = secrets_by_connector.remove(&row.id).unwrap_or_default();
            revocations.extend(revocation_of(
                &self.revocable_types,
                &row,
                &secrets,
                now_micros,
            ));
        }
        append_events(&txn, events).await?;
        queue_revocations(&txn, revocations).await?;
        txn.commit().await?;
        for id in &swept {
            self.rows.changed(id);
        }
        Ok(swept)
    }
}
