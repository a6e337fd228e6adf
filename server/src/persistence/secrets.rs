//! Sealed secrets: reading and replacing them, reclaiming deleted ones, and the start-up check
//! that the configured master keys fit the stored data.

use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait as _, ConnectionTrait as _,
    EntityTrait as _, QueryFilter as _, QuerySelect as _,
};

use super::entity::{connector_secret, revocation, sealing_key_check};
use super::events::INSERT_CHUNK;
use super::{Backend, Error, Result, Store, unique_row};
use crate::crypto::{Sealed, Sealer};

/// A stored secret as the sealer sees it, with its field name.
pub(super) fn sealed(secret: connector_secret::Model) -> (String, Sealed) {
    (
        secret.field,
        Sealed {
            key_id: secret.key_id,
            nonce: secret.nonce,
            ciphertext: secret.ciphertext,
        },
    )
}

/// Secrets as the sealer sees them, with their field names.
pub(super) fn sealed_secrets(secrets: Vec<connector_secret::Model>) -> Vec<(String, Sealed)> {
    secrets.into_iter().map(sealed).collect()
}

/// The secrets of several connectors, by connector id (queried in chunks of ids).
pub(super) async fn secrets_by_connector(
    txn: &impl sea_orm::ConnectionTrait,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<(String, Sealed)>>> {
    let mut by_connector: std::collections::HashMap<String, Vec<(String, Sealed)>> =
        std::collections::HashMap::new();
    for chunk in ids.chunks(INSERT_CHUNK) {
        for secret in connector_secret::Entity::find()
            .filter(connector_secret::Column::ConnectorId.is_in(chunk.iter().cloned()))
            .all(txn)
            .await?
        {
            by_connector
                .entry(secret.connector_id.clone())
                .or_default()
                .push(sealed(secret));
        }
    }
    Ok(by_connector)
}

/// A fixed plaintext sealed per master key, to recognise the key at start-up.
const KEY_CHECK_PLAINTEXT: &[u8] = b"connector-service master key check v1";

const KEY_CHECK_CONTEXT: &[u8] = b"sealing_key_check";

pub(super) async fn insert_secrets(
    txn: &impl sea_orm::ConnectionTrait,
    connector_id: &str,
    secrets: Vec<(String, Sealed)>,
) -> Result<()> {
    for (field, sealed) in secrets {
        connector_secret::ActiveModel {
            connector_id: Set(connector_id.to_owned()),
            field: Set(field),
            key_id: Set(sealed.key_id),
            nonce: Set(sealed.nonce),
            ciphertext: Set(sealed.ciphertext),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

pub(super) async fn replace_secrets(
    txn: &impl sea_orm::ConnectionTrait,
    connector_id: &str,
    secrets: Vec<(String, Sealed)>,
) -> Result<()> {
    let fields: Vec<String> = secrets.iter().map(|(field, _)| field.clone()).collect();
    connector_secret::Entity::delete_many()
        .filter(connector_secret::Column::ConnectorId.eq(connector_id))
        .filter(connector_secret::Column::Field.is_in(fields))
        .exec(txn)
        .await?;
    insert_secrets(txn, connector_id, secrets).await
}

/// Replaces every secret of a connector with `secrets` (a new authorization: a field the new
/// credentials leave out, such as a password replaced by a key, must not linger).
pub(super) async fn replace_all_secrets(
    txn: &impl sea_orm::ConnectionTrait,
    connector_id: &str,
    secrets: Vec<(String, Sealed)>,
) -> Result<()> {
    connector_secret::Entity::delete_many()
        .filter(connector_secret::Column::ConnectorId.eq(connector_id))
        .exec(txn)
        .await?;
    insert_secrets(txn, connector_id, secrets).await
}

impl Store {
    /// Refuses master keys that do not fit the stored data: every key id that sealed a stored
    /// secret must be configured, and each configured key must open its check row. Records a
    /// check row for a key seen for the first time.
    pub async fn verify_master_keys(&self, sealer: &Sealer, now_micros: i64) -> Result<()> {
        let checks = sealing_key_check::Entity::find().all(&self.db).await?;
        for check in &checks {
            if !sealer.knows_key(&check.key_id) {
                continue;
            }
            let sealed = Sealed {
                key_id: check.key_id.clone(),
                nonce: check.nonce.clone(),
                ciphertext: check.ciphertext.clone(),
            };
            if sealer.open(&sealed, KEY_CHECK_CONTEXT).is_err() {
                return Err(Error::MasterKey(format!(
                    "the configured master key `{}` is not the key that sealed this database's secrets; start the server with the original key (see the README on master keys)",
                    check.key_id
                )));
            }
        }
        let mut used_key_ids: Vec<String> = connector_secret::Entity::find()
            .select_only()
            .column(connector_secret::Column::KeyId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        let queued_key_ids: Vec<String> = revocation::Entity::find()
            .select_only()
            .column(revocation::Column::KeyId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        used_key_ids.extend(queued_key_ids);
        if let Some(missing) = used_key_ids.iter().find(|id| !sealer.knows_key(id)) {
            return Err(Error::MasterKey(format!(
                "stored secrets were sealed with master key `{missing}`, which is not configured; configure it (as the current or a previous key) to start"
            )));
        }
        let current = sealer.current_key_id();
        if !checks.iter().any(|check| check.key_id == current) {
            let sealed = sealer.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT);
            let inserted = sealing_key_check::ActiveModel {
                key_id: Set(sealed.key_id),
                nonce: Set(sealed.nonce),
                ciphertext: Set(sealed.ciphertext),
                create_time: Set(now_micros),
            }
            .insert(&self.db)
            .await
            .map_err(Error::from);
            match inserted {
                // Another process starting at the same moment recorded it first: check theirs.
                Err(Error::Conflict) => {
                    return Box::pin(self.verify_master_keys(sealer, now_micros)).await;
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// A sealed secret of a connector.
    pub async fn get_secret(&self, connector_id: &str, field: &str) -> Result<Option<Sealed>> {
        let select =
            connector_secret::Entity::find_by_id((connector_id.to_owned(), field.to_owned()));
        Ok(unique_row(select, &self.db)
            .await?
            .map(|secret| sealed(secret).1))
    }

    /// Every secret of a connector, with its field name (none once it is deleted).
    pub async fn get_secrets(&self, connector_id: &str) -> Result<Vec<(String, Sealed)>> {
        let found = connector_secret::Entity::find()
            .filter(connector_secret::Column::ConnectorId.eq(connector_id))
            .all(&self.db)
            .await?;
        Ok(sealed_secrets(found))
    }

    /// On SQLite, moves the write-ahead log into the database file (where `secure_delete` has
    /// overwritten the deleted secrets) and empties it, so no copy of a deleted secret stays in
    /// the log. PostgreSQL reclaims dead rows through its own vacuum.
    pub async fn reclaim_deleted_secrets(&self) {
        if self.backend() == Backend::Sqlite
            && let Err(error) = self
                .db
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
        {
            tracing::warn!(%error, "WAL checkpoint after a delete failed");
        }
    }
}
