//! The closed sets of values some columns hold, as typed enums (SeaORM active enums stored as
//! their upper-case names, the text the columns held before they were typed).

use sea_orm::entity::prelude::*;

/// A connector's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ConnectorState {
    /// It holds a working authorization.
    #[sea_orm(string_value = "AUTHORIZED")]
    Authorized,
    /// It lost its authorization (`deauthorization_reason` says why).
    #[sea_orm(string_value = "DEAUTHORIZED")]
    Deauthorized,
}

/// Why a connector lost its authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum DeauthorizationReason {
    /// No data moved within the inactivity period.
    #[sea_orm(string_value = "INACTIVITY")]
    Inactivity,
    /// The provider or the customer withdrew it.
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
    /// It ran out at the provider.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
}

/// What a lifecycle event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EventKind {
    /// A connector was linked.
    #[sea_orm(string_value = "AUTHORIZED")]
    Authorized,
    /// A connector was reauthorized.
    #[sea_orm(string_value = "REAUTHORIZED")]
    Reauthorized,
    /// A connector was deauthorized (`reason` says why).
    #[sea_orm(string_value = "DEAUTHORIZED")]
    Deauthorized,
    /// A connector was deleted.
    #[sea_orm(string_value = "DELETED")]
    Deleted,
    /// A connector went with its customer account.
    #[sea_orm(string_value = "ACCOUNT_DELETED")]
    AccountDeleted,
    /// The revocation of what a deleted connector held finished (`reason` holds the outcome).
    #[sea_orm(string_value = "REVOCATION_FINISHED")]
    RevocationFinished,
}

/// The `reason` of an event: a deauthorization reason, or a revocation outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EventReason {
    /// Deauthorized for inactivity.
    #[sea_orm(string_value = "INACTIVITY")]
    Inactivity,
    /// Deauthorized because the grant was withdrawn; or revoked at the provider.
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
    /// Deauthorized because the grant ran out.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
    /// Nothing could be revoked (the provider has no way, or nothing revocable was held).
    #[sea_orm(string_value = "NOT_SUPPORTED")]
    NotSupported,
    /// Every try to revoke failed.
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// How a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationOutcome {
    /// The provider revoked the token.
    Revoked,
    /// The provider offers no way to revoke it.
    NotSupported,
    /// Every try failed.
    Failed,
}

impl From<DeauthorizationReason> for EventReason {
    fn from(reason: DeauthorizationReason) -> Self {
        match reason {
            DeauthorizationReason::Inactivity => EventReason::Inactivity,
            DeauthorizationReason::Revoked => EventReason::Revoked,
            DeauthorizationReason::Expired => EventReason::Expired,
        }
    }
}

impl From<RevocationOutcome> for EventReason {
    fn from(outcome: RevocationOutcome) -> Self {
        match outcome {
            RevocationOutcome::Revoked => EventReason::Revoked,
            RevocationOutcome::NotSupported => EventReason::NotSupported,
            RevocationOutcome::Failed => EventReason::Failed,
        }
    }
}
