//! One row per connector lifecycle change. Carries no secrets.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connector_event")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) cursor: i64,
    pub(crate) account: String,
    pub(crate) connector_id: String,
    pub(crate) connector_type: String,
    pub(crate) kind: String,
    pub(crate) reason: Option<String>,
    pub(crate) create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
