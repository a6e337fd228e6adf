//! The revocation outbox: one row per revocation still to be tried, written in the same
//! transaction as the delete or deauthorization that erased the connector's secrets, and
//! removed (with its sealed token) once the outcome is final.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Revocation {
    Table,
    Id,
    Account,
    ConnectorId,
    ConnectorType,
    Field,
    KeyId,
    Nonce,
    Ciphertext,
    Attempts,
    NextAttemptTime,
    LastError,
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
                    .table(Revocation::Table)
                    .col(big_pk_auto(Revocation::Id))
                    .col(string(Revocation::Account))
                    .col(string(Revocation::ConnectorId))
                    .col(string(Revocation::ConnectorType))
                    .col(string(Revocation::Field))
                    .col(string(Revocation::KeyId))
                    .col(blob(Revocation::Nonce))
                    .col(blob(Revocation::Ciphertext))
                    .col(integer(Revocation::Attempts))
                    .col(big_integer(Revocation::NextAttemptTime))
                    .col(string_null(Revocation::LastError))
                    .col(big_integer(Revocation::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("revocation_by_next_attempt")
                    .table(Revocation::Table)
                    .col(Revocation::NextAttemptTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Revocation::Table).to_owned())
            .await
    }
}
