//! The connector event log: one row per lifecycle change, appended in the same transaction as
//! the change, with a monotonically increasing cursor.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ConnectorEvent {
    Table,
    Cursor,
    Account,
    ConnectorId,
    ConnectorType,
    Kind,
    Reason,
    CreateTime,
}

// The trait spells `&SchemaManager` with an elided lifetime; matching it exactly is required.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConnectorEvent::Table)
                    .col(big_pk_auto(ConnectorEvent::Cursor))
                    .col(string(ConnectorEvent::Account))
                    .col(string(ConnectorEvent::ConnectorId))
                    .col(string(ConnectorEvent::ConnectorType))
                    .col(string(ConnectorEvent::Kind))
                    .col(string_null(ConnectorEvent::Reason))
                    .col(big_integer(ConnectorEvent::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("connector_event_by_account")
                    .table(ConnectorEvent::Table)
                    .col(ConnectorEvent::Account)
                    .col(ConnectorEvent::Cursor)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConnectorEvent::Table).to_owned())
            .await
    }
}
