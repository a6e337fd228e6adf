//! Authorization attempts the orchestrator completes itself: the callback forwards the browser
//! with the provider's parameters instead of linking the account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AuthorizationAttempt {
    Table,
    OrchestratorCompletes,
}

// The trait spells `&SchemaManager` with an elided lifetime; matching it exactly is required.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationAttempt::Table)
                    .add_column(boolean(AuthorizationAttempt::OrchestratorCompletes).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationAttempt::Table)
                    .drop_column(AuthorizationAttempt::OrchestratorCompletes)
                    .to_owned(),
            )
            .await
    }
}
