//! One row per connector lifecycle change. Carries no secrets.

use sea_orm::entity::prelude::*;

use super::values::{EventKind, EventReason};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connector_event")]
/// One stored row.
pub struct Model {
    #[sea_orm(primary_key)]
    pub(crate) cursor: i64,
    pub(crate) account: String,
    pub(crate) connector_id: String,
    pub(crate) connector_type: String,
    pub(crate) kind: EventKind,
    pub(crate) reason: Option<EventReason>,
    pub(crate) create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
