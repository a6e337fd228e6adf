//! The revocation outbox: what erasing a connector's secrets leaves to revoke at its provider,
//! claimed and retried by the revocation worker.

use std::collections::BTreeSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, TransactionTrait as _,
};

use super::entity::{connector_event, revocation};
use super::events::{INSERT_CHUNK, append_events, event_model};
use super::{
    ConnectorRow, EventKind, EventReason, REVOCABLE_FIELD, Result, RevocationOutcome,
    RevocationRow, Store,
};
use crate::crypto::Sealed;

/// What erasing a connector's secrets leaves to do at its provider.
pub(super) enum Revocation {
    /// An outbox row: the token, to revoke in the background.
    Queued(revocation::ActiveModel),
    /// A final `NOT_SUPPORTED` outcome, recorded at once: the type has no revocation
    /// endpoint, or nothing revocable was held (an Azure account key stays valid at Azure
    /// until the customer rotates it).
    NotSupported(connector_event::ActiveModel),
}

/// The revocation for a connector whose `secrets` are being erased, if it held any (a
/// connector without secrets had them erased, and its revocation queued, when it was
/// deauthorized).
pub(super) fn revocation_of(
    revocable_types: &BTreeSet<String>,
    row: &ConnectorRow,
    secrets: &[(String, Sealed)],
    now_micros: i64,
) -> Option<Revocation> {
    if secrets.is_empty() {
        return None;
    }
    let token = secrets
        .iter()
        .find(|(field, _)| field == REVOCABLE_FIELD)
        .filter(|_| revocable_types.contains(&row.connector_type));
    Some(match token {
        Some((field, sealed)) => Revocation::Queued(revocation::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            account: Set(row.account.clone()),
            connector_id: Set(row.id.clone()),
            connector_type: Set(row.connector_type.clone()),
            field: Set(field.clone()),
            key_id: Set(sealed.key_id.clone()),
            nonce: Set(sealed.nonce.clone()),
            ciphertext: Set(sealed.ciphertext.clone()),
            attempts: Set(0),
            next_attempt_time: Set(now_micros),
            last_error: Set(None),
            create_time: Set(now_micros),
        }),
        None => Revocation::NotSupported(event_model(
            &row.account,
            &row.id,
            &row.connector_type,
            EventKind::RevocationFinished,
            Some(RevocationOutcome::NotSupported.into()),
            now_micros,
        )),
    })
}

/// Writes revocations inside the caller's transaction: outbox rows, and the outcome events of
/// those that are final already.
pub(super) async fn queue_revocations(
    txn: &impl sea_orm::ConnectionTrait,
    revocations: Vec<Revocation>,
) -> Result<()> {
    let mut queued = Vec::new();
    let mut final_events = Vec::new();
    for revocation in revocations {
        match revocation {
            Revocation::Queued(row) => queued.push(row),
            Revocation::NotSupported(event) => final_events.push(event),
        }
    }
    let mut queued = queued.into_iter().peekable();
    while queued.peek().is_some() {
        let chunk: Vec<_> = queued.by_ref().take(INSERT_CHUNK).collect();
        revocation::Entity::insert_many(chunk).exec(txn).await?;
    }
    append_events(txn, final_events).await
}

impl Store {
    /// Claims up to `limit` revocations due at `now_micros`: each one's try count goes up and
    /// it is leased until `lease_until_micros` (if this process dies mid-try, another takes it
    /// over then). On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
    /// processes never claim the same revocation at once.
    pub async fn claim_revocations(
        &self,
        now_micros: i64,
        lease_until_micros: i64,
        limit: u64,
    ) -> Result<Vec<RevocationRow>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType};
        let txn = self.db.begin().await?;
        let due = revocation::Entity::find()
            .filter(revocation::Column::NextAttemptTime.lte(now_micros))
            // The index order: no sort of every due row on each claim.
            .order_by_asc(revocation::Column::NextAttemptTime)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(Vec::new());
        }
        revocation::Entity::update_many()
            .col_expr(
                revocation::Column::Attempts,
                Expr::col(revocation::Column::Attempts).add(1),
            )
            .col_expr(
                revocation::Column::NextAttemptTime,
                Expr::value(lease_until_micros),
            )
            .filter(revocation::Column::Id.is_in(due.iter().map(|row| row.id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(due
            .into_iter()
            .map(|row| RevocationRow {
                id: row.id,
                account: row.account,
                connector_id: row.connector_id,
                connector_type: row.connector_type,
                field: row.field,
                token: Sealed {
                    key_id: row.key_id,
                    nonce: row.nonce,
                    ciphertext: row.ciphertext,
                },
                attempts: u32::try_from(row.attempts).unwrap_or(0).saturating_add(1),
            })
            .collect())
    }

    /// Schedules the next try of a claimed revocation, unless another process took it over
    /// (its lease ran out) meanwhile. `last_error` must not contain the token.
    pub async fn retry_revocation(
        &self,
        claimed: &RevocationRow,
        next_attempt_micros: i64,
        last_error: &str,
    ) -> Result<bool> {
        use sea_orm::sea_query::Expr;
        let updated = revocation::Entity::update_many()
            .col_expr(
                revocation::Column::NextAttemptTime,
                Expr::value(next_attempt_micros),
            )
            .col_expr(revocation::Column::LastError, Expr::value(last_error))
            .filter(revocation::Column::Id.eq(claimed.id))
            .filter(revocation::Column::Attempts.eq(claimed.attempts))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Records the final outcomes of claimed revocations: removes them from the outbox (erasing
    /// the sealed tokens) and appends their `REVOCATION_FINISHED` events, in one transaction.
    /// A revocation another process took over meanwhile (its lease ran out) is left to that
    /// process. Returns the ones recorded.
    pub async fn finish_revocations<'a>(
        &self,
        outcomes: &'a [(RevocationRow, RevocationOutcome)],
        now_micros: i64,
    ) -> Result<Vec<&'a (RevocationRow, RevocationOutcome)>> {
        let txn = self.db.begin().await?;
        let mut recorded = Vec::with_capacity(outcomes.len());
        for finished in outcomes {
            let (claimed, _) = finished;
            let deleted = revocation::Entity::delete_many()
                .filter(revocation::Column::Id.eq(claimed.id))
                .filter(revocation::Column::Attempts.eq(claimed.attempts))
                .exec(&txn)
                .await?;
            if deleted.rows_affected == 1 {
                recorded.push(finished);
            }
        }
        let events = recorded
            .iter()
            .map(|(claimed, outcome)| {
                event_model(
                    &claimed.account,
                    &claimed.connector_id,
                    &claimed.connector_type,
                    EventKind::RevocationFinished,
                    Some(EventReason::from(*outcome)),
                    now_micros,
                )
            })
            .collect();
        append_events(&txn, events).await?;
        txn.commit().await?;
        Ok(recorded)
    }
}
