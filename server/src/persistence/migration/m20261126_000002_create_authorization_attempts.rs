//! Authorization attempts of the OAuth 2.0 flow: one row per `state` handed out.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AuthorizationAttempt {
    Table,
    StateHash,
    Account,
    ConnectorType,
    ConnectorId,
    DisplayName,
    ReturnUrl,
    KeyId,
    Nonce,
    Ciphertext,
    CreateTime,
    ExpireTime,
    ConsumeTime,
}

// The trait spells `&SchemaManager` with an elided lifetime; matching it exactly is required.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthorizationAttempt::Table)
                    // SHA-256 of the state: a database read does not hand out usable states.
                    .col(string(AuthorizationAttempt::StateHash).primary_key())
                    .col(string(AuthorizationAttempt::Account))
                    .col(string(AuthorizationAttempt::ConnectorType))
                    .col(string_null(AuthorizationAttempt::ConnectorId))
                    .col(string_null(AuthorizationAttempt::DisplayName))
                    .col(string_null(AuthorizationAttempt::ReturnUrl))
                    // The sealed PKCE verifier.
                    .col(string(AuthorizationAttempt::KeyId))
                    .col(blob(AuthorizationAttempt::Nonce))
                    .col(blob(AuthorizationAttempt::Ciphertext))
                    .col(big_integer(AuthorizationAttempt::CreateTime))
                    .col(big_integer(AuthorizationAttempt::ExpireTime))
                    .col(big_integer_null(AuthorizationAttempt::ConsumeTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("authorization_attempt_by_expiry")
                    .table(AuthorizationAttempt::Table)
                    .col(AuthorizationAttempt::ExpireTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthorizationAttempt::Table).to_owned())
            .await
    }
}
