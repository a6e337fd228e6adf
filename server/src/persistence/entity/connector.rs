//! One row per connector. Times are microseconds since the Unix epoch (portable across SQLite
//! and PostgreSQL, and exact to compare).

use sea_orm::entity::prelude::*;

use super::values::{ConnectorState, DeauthorizationReason};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connector")]
/// One stored row.
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) account: String,
    pub(crate) connector_type: String,
    pub(crate) display_name: String,
    pub(crate) state: ConnectorState,
    pub(crate) deauthorization_reason: Option<DeauthorizationReason>,
    pub(crate) deauthorize_time: Option<i64>,
    pub(crate) external_account_id: String,
    pub(crate) external_account_label: String,
    pub(crate) labels: String,
    pub(crate) create_time: i64,
    pub(crate) update_time: i64,
    pub(crate) authorize_time: i64,
    pub(crate) last_transfer_time: Option<i64>,
    pub(crate) revision: i64,
    pub(crate) inactivity_deadline: i64,
    /// What the type's provider pins about the service (an SSH host key's fingerprint). The
    /// column keeps the name it was added under.
    #[sea_orm(column_name = "host_key_fingerprint")]
    pub(crate) pinned: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
