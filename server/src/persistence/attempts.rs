//! OAuth 2.0 authorization attempts: the `state` a callback must present, kept until it is
//! consumed once or expires.

use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _,
};

use super::entity::authorization_attempt;
use super::rows::attempt_row;
use super::{AttemptRow, Consumed, Result, Store};

impl Store {
    /// Records an authorization attempt, and drops attempts that expired over a day ago.
    pub async fn insert_attempt(&self, row: AttemptRow) -> Result<()> {
        let stale_before = row.create_time - 86_400_000_000;
        authorization_attempt::Entity::delete_many()
            .filter(authorization_attempt::Column::ExpireTime.lt(stale_before))
            .exec(&self.db)
            .await?;
        authorization_attempt::ActiveModel {
            state_hash: Set(row.state_hash),
            account: Set(row.account),
            connector_type: Set(row.connector_type),
            connector_id: Set(row.connector_id),
            display_name: Set(row.display_name),
            return_url: Set(row.return_url),
            key_id: Set(row.pkce_verifier.key_id),
            nonce: Set(row.pkce_verifier.nonce),
            ciphertext: Set(row.pkce_verifier.ciphertext),
            create_time: Set(row.create_time),
            expire_time: Set(row.expire_time),
            consume_time: Set(None),
            orchestrator_completes: Set(row.orchestrator_completes),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// An attempt as the browser brings its `state` back to the callback, without using it up:
    /// `Consumed::Attempt` while it is live, else why not.
    pub async fn peek_attempt(&self, state_hash: &str, now_micros: i64) -> Result<Consumed> {
        let Some(found) = authorization_attempt::Entity::find_by_id(state_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(Consumed::Unknown);
        };
        Ok(if found.consume_time.is_some() {
            Consumed::AlreadyUsed
        } else if found.expire_time <= now_micros {
            Consumed::Expired
        } else {
            Consumed::Attempt(Box::new(attempt_row(found)))
        })
    }

    /// Uses up a `state`, once: of concurrent callers with the same state, one gets the attempt.
    /// A state whose account `may_access` refuses is reported unknown and left unused.
    pub async fn consume_attempt(
        &self,
        state_hash: &str,
        now_micros: i64,
        may_access: impl Fn(&str) -> bool,
    ) -> Result<Consumed> {
        let Some(found) = authorization_attempt::Entity::find_by_id(state_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(Consumed::Unknown);
        };
        if !may_access(&found.account) {
            return Ok(Consumed::Unknown);
        }
        if found.consume_time.is_some() {
            return Ok(Consumed::AlreadyUsed);
        }
        let claimed = authorization_attempt::Entity::update_many()
            .col_expr(
                authorization_attempt::Column::ConsumeTime,
                sea_orm::sea_query::Expr::value(now_micros),
            )
            .filter(authorization_attempt::Column::StateHash.eq(state_hash))
            .filter(authorization_attempt::Column::ConsumeTime.is_null())
            .exec(&self.db)
            .await?;
        if claimed.rows_affected != 1 {
            return Ok(Consumed::AlreadyUsed);
        }
        if found.expire_time <= now_micros {
            return Ok(Consumed::Expired);
        }
        Ok(Consumed::Attempt(Box::new(attempt_row(found))))
    }
}
