//! The revocation outbox: a sealed token waiting to be revoked at its provider.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revocation")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i64,
    pub(crate) account: String,
    pub(crate) connector_id: String,
    pub(crate) connector_type: String,
    pub(crate) field: String,
    pub(crate) key_id: String,
    pub(crate) nonce: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_time: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
