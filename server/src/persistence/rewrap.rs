//! Re-sealing every stored secret under the current master key, online and in guarded
//! batches, so that an older key can be retired.

use sea_orm::{
    ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    TransactionTrait as _,
};

use super::entity::{authorization_attempt, connector_secret, revocation};
use super::{Result, Store};
use crate::crypto::{Sealed, Sealer};

/// What one `rewrap` pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RewrapReport {
    /// Ciphertexts sealed again under the current key's sub-key.
    pub resealed: u64,
    /// Ciphertexts already current.
    pub current: u64,
    /// Rows another writer changed (or deleted) between read and write: they were written by
    /// that writer with the current key, so nothing is lost.
    pub changed_meanwhile: u64,
    /// Ciphertexts that do not open (tampered or moved): left as they are, and reported.
    pub unopenable: u64,
}

/// How to compute the associated data each sealed column was bound to.
pub struct RewrapContexts<'a> {
    /// A connector secret (and a queued revocation's token): connector id and field.
    pub secret: &'a (dyn Fn(&str, &str) -> Vec<u8> + Sync),
    /// An authorization attempt's PKCE verifier: its state hash.
    pub attempt: &'a (dyn Fn(&str) -> Vec<u8> + Sync),
}

/// One sealed value read for rewrapping: the row's key and the value.
struct ToRewrap<K> {
    key: K,
    context: Vec<u8>,
    sealed: Sealed,
}

impl RewrapReport {
    /// Seals `item` again unless it is current; `None` when there is nothing to write.
    fn reseal<K>(&mut self, sealer: &Sealer, item: &ToRewrap<K>) -> Option<Sealed> {
        if sealer.is_current(&item.sealed) {
            self.current += 1;
            return None;
        }
        match sealer.open(&item.sealed, &item.context) {
            Ok(plaintext) => {
                use secrecy::ExposeSecret as _;
                Some(sealer.seal(plaintext.expose_secret(), &item.context))
            }
            Err(_) => {
                self.unopenable += 1;
                None
            }
        }
    }

    fn written(&mut self, rows_affected: u64) {
        if rows_affected == 1 {
            self.resealed += 1;
        } else {
            self.changed_meanwhile += 1;
        }
    }
}

impl Store {
    /// Seals every stored secret again under the current master key's sub-key, `batch` rows
    /// per transaction, while the service keeps running: each write is guarded by the old
    /// ciphertext, so a row another process rewrote meanwhile is left to that process. After a
    /// pass that reports nothing unopenable, no stored secret needs a previous master key.
    pub async fn rewrap(
        &self,
        sealer: &Sealer,
        batch: u64,
        contexts: &RewrapContexts<'_>,
    ) -> Result<RewrapReport> {
        let mut report = RewrapReport::default();
        // Connector secrets, by (connector id, field).
        let mut after: Option<(String, String)> = None;
        loop {
            let mut query = connector_secret::Entity::find()
                .order_by_asc(connector_secret::Column::ConnectorId)
                .order_by_asc(connector_secret::Column::Field)
                .limit(batch);
            if let Some((id, field)) = &after {
                query = query.filter(
                    sea_orm::Condition::any()
                        .add(connector_secret::Column::ConnectorId.gt(id.as_str()))
                        .add(
                            sea_orm::Condition::all()
                                .add(connector_secret::Column::ConnectorId.eq(id.as_str()))
                                .add(connector_secret::Column::Field.gt(field.as_str())),
                        ),
                );
            }
            let rows = query.all(&self.db).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.connector_id.clone(), last.field.clone()));
            let full = rows.len() as u64 == batch;
            let txn = self.db.begin().await?;
            for row in rows {
                let item = ToRewrap {
                    context: (contexts.secret)(&row.connector_id, &row.field),
                    sealed: Sealed {
                        key_id: row.key_id,
                        nonce: row.nonce,
                        ciphertext: row.ciphertext,
                    },
                    key: (row.connector_id, row.field),
                };
                let Some(resealed) = report.reseal(sealer, &item) else {
                    continue;
                };
                let result = connector_secret::Entity::update_many()
                    .col_expr(connector_secret::Column::KeyId, resealed.key_id.into())
                    .col_expr(connector_secret::Column::Nonce, resealed.nonce.into())
                    .col_expr(
                        connector_secret::Column::Ciphertext,
                        resealed.ciphertext.into(),
                    )
                    .filter(connector_secret::Column::ConnectorId.eq(item.key.0))
                    .filter(connector_secret::Column::Field.eq(item.key.1))
                    .filter(connector_secret::Column::Ciphertext.eq(item.sealed.ciphertext))
                    .exec(&txn)
                    .await?;
                report.written(result.rows_affected);
            }
            txn.commit().await?;
            if !full {
                break;
            }
        }
        // Queued revocations' tokens, by id.
        let mut after = 0i64;
        loop {
            let rows = revocation::Entity::find()
                .filter(revocation::Column::Id.gt(after))
                .order_by_asc(revocation::Column::Id)
                .limit(batch)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let full = rows.len() as u64 == batch;
            let txn = self.db.begin().await?;
            for row in rows {
                let item = ToRewrap {
                    context: (contexts.secret)(&row.connector_id, &row.field),
                    sealed: Sealed {
                        key_id: row.key_id,
                        nonce: row.nonce,
                        ciphertext: row.ciphertext,
                    },
                    key: row.id,
                };
                let Some(resealed) = report.reseal(sealer, &item) else {
                    continue;
                };
                let result = revocation::Entity::update_many()
                    .col_expr(revocation::Column::KeyId, resealed.key_id.into())
                    .col_expr(revocation::Column::Nonce, resealed.nonce.into())
                    .col_expr(revocation::Column::Ciphertext, resealed.ciphertext.into())
                    .filter(revocation::Column::Id.eq(item.key))
                    .filter(revocation::Column::Ciphertext.eq(item.sealed.ciphertext))
                    .exec(&txn)
                    .await?;
                report.written(result.rows_affected);
            }
            txn.commit().await?;
            if !full {
                break;
            }
        }
        // Authorization attempts' PKCE verifiers (short-lived, but a key removed while one is
        // pending would break it), by state hash.
        let mut after = String::new();
        loop {
            let rows = authorization_attempt::Entity::find()
                .filter(authorization_attempt::Column::StateHash.gt(after.as_str()))
                .order_by_asc(authorization_attempt::Column::StateHash)
                .limit(batch)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.state_hash.clone();
            let full = rows.len() as u64 == batch;
            let txn = self.db.begin().await?;
            for row in rows {
                let item = ToRewrap {
                    context: (contexts.attempt)(&row.state_hash),
                    sealed: Sealed {
                        key_id: row.key_id,
                        nonce: row.nonce,
                        ciphertext: row.ciphertext,
                    },
                    key: row.state_hash,
                };
                let Some(resealed) = report.reseal(sealer, &item) else {
                    continue;
                };
                let result = authorization_attempt::Entity::update_many()
                    .col_expr(authorization_attempt::Column::KeyId, resealed.key_id.into())
                    .col_expr(authorization_attempt::Column::Nonce, resealed.nonce.into())
                    .col_expr(
                        authorization_attempt::Column::Ciphertext,
                        resealed.ciphertext.into(),
                    )
                    .filter(authorization_attempt::Column::StateHash.eq(item.key))
                    .filter(authorization_attempt::Column::Ciphertext.eq(item.sealed.ciphertext))
                    .exec(&txn)
                    .await?;
                report.written(result.rows_affected);
            }
            txn.commit().await?;
            if !full {
                break;
            }
        }
        Ok(report)
    }
}
