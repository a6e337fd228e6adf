//! The inactivity deadline of each connector, indexed for the sweeper. Existing rows get the
//! default 90 days after their last authorization or transfer.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Connector {
    Table,
    State,
    InactivityDeadline,
}

/// 90 days in microseconds.
const DEFAULT_PERIOD_MICROS: i64 = 90 * 24 * 3600 * 1_000_000;

// The trait spells `&SchemaManager` with an elided lifetime; matching it exactly is required.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Connector::Table)
                    .add_column(big_integer(Connector::InactivityDeadline).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE connector SET inactivity_deadline = \
                 CASE WHEN last_transfer_time IS NOT NULL AND last_transfer_time > authorize_time \
                 THEN last_transfer_time ELSE authorize_time END + {DEFAULT_PERIOD_MICROS}"
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("connector_due_for_inactivity")
                    .table(Connector::Table)
                    .col(Connector::State)
                    .col(Connector::InactivityDeadline)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("connector_due_for_inactivity")
                    .table(Connector::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Connector::Table)
                    .drop_column(Connector::InactivityDeadline)
                    .to_owned(),
            )
            .await
    }
}
