//! The first schema: connectors, their sealed secrets, and the master-key check rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// Variant names are the column names, so `ConnectorType` must keep its prefix.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Connector {
    Table,
    Id,
    Account,
    ConnectorType,
    DisplayName,
    State,
    DeauthorizationReason,
    DeauthorizeTime,
    ExternalAccountId,
    ExternalAccountLabel,
    Labels,
    CreateTime,
    UpdateTime,
    AuthorizeTime,
    LastTransferTime,
    Revision,
}

#[derive(DeriveIden)]
enum ConnectorSecret {
    Table,
    ConnectorId,
    Field,
    KeyId,
    Nonce,
    Ciphertext,
}

#[derive(DeriveIden)]
enum SealingKeyCheck {
    Table,
    KeyId,
    Nonce,
    Ciphertext,
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
                    .table(Connector::Table)
                    .col(string(Connector::Id).primary_key())
                    .col(string(Connector::Account))
                    .col(string(Connector::ConnectorType))
                    .col(string(Connector::DisplayName))
                    .col(string(Connector::State))
                    .col(string_null(Connector::DeauthorizationReason))
                    .col(big_integer_null(Connector::DeauthorizeTime))
                    .col(string(Connector::ExternalAccountId))
                    .col(string(Connector::ExternalAccountLabel))
                    .col(text(Connector::Labels))
                    .col(big_integer(Connector::CreateTime))
                    .col(big_integer(Connector::UpdateTime))
                    .col(big_integer(Connector::AuthorizeTime))
                    .col(big_integer_null(Connector::LastTransferTime))
                    .col(big_integer(Connector::Revision))
                    .to_owned(),
            )
            .await?;
        // "Once per account": the database, not a read-then-insert, guarantees one connector per
        // (customer account, connector type, external account), so concurrent creates cannot race.
        manager
            .create_index(
                Index::create()
                    .name("connector_once_per_external_account")
                    .table(Connector::Table)
                    .col(Connector::Account)
                    .col(Connector::ConnectorType)
                    .col(Connector::ExternalAccountId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Keyset pagination of one account's connectors by id.
        manager
            .create_index(
                Index::create()
                    .name("connector_by_account")
                    .table(Connector::Table)
                    .col(Connector::Account)
                    .col(Connector::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConnectorSecret::Table)
                    .col(string(ConnectorSecret::ConnectorId))
                    .col(string(ConnectorSecret::Field))
                    .col(string(ConnectorSecret::KeyId))
                    .col(blob(ConnectorSecret::Nonce))
                    .col(blob(ConnectorSecret::Ciphertext))
                    .primary_key(
                        Index::create()
                            .col(ConnectorSecret::ConnectorId)
                            .col(ConnectorSecret::Field),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("connector_secret_connector")
                            .from(ConnectorSecret::Table, ConnectorSecret::ConnectorId)
                            .to(Connector::Table, Connector::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SealingKeyCheck::Table)
                    .col(string(SealingKeyCheck::KeyId).primary_key())
                    .col(blob(SealingKeyCheck::Nonce))
                    .col(blob(SealingKeyCheck::Ciphertext))
                    .col(big_integer(SealingKeyCheck::CreateTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SealingKeyCheck::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConnectorSecret::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Connector::Table).to_owned())
            .await
    }
}
