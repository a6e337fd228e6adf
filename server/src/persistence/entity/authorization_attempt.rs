//! One row per OAuth 2.0 `state` handed out: what it is bound to (account, connector type, the
//! connector for a reauthorization), the sealed PKCE verifier, and whether it was used.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_attempt")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) state_hash: String,
    pub(crate) account: String,
    pub(crate) connector_type: String,
    pub(crate) connector_id: Option<String>,
    pub(crate) display_name: Option<String>,
    pub(crate) return_url: Option<String>,
    pub(crate) key_id: String,
    pub(crate) nonce: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) create_time: i64,
    pub(crate) expire_time: i64,
    pub(crate) consume_time: Option<i64>,
    pub(crate) orchestrator_completes: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
