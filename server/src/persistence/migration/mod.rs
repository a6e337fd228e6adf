//! Versioned schema migrations, applied at start-up. One dated file per change, each with `up`
//! and `down`; a shipped migration is never edited, only followed by a new one.

use sea_orm_migration::prelude::*;

mod m20261126_000001_create_connectors;
mod m20261126_000002_create_authorization_attempts;
mod m20261126_000003_add_inactivity_deadline;
mod m20261126_000004_create_connector_events;
mod m20261127_000005_create_revocations;
mod m20261127_000006_add_orchestrator_completes;
mod m20261202_000007_add_host_key_fingerprint;

/// Every migration, oldest first.
pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_connectors::Migration),
            Box::new(m20261126_000002_create_authorization_attempts::Migration),
            Box::new(m20261126_000003_add_inactivity_deadline::Migration),
            Box::new(m20261126_000004_create_connector_events::Migration),
            Box::new(m20261127_000005_create_revocations::Migration),
            Box::new(m20261127_000006_add_orchestrator_completes::Migration),
            Box::new(m20261202_000007_add_host_key_fingerprint::Migration),
        ]
    }
}
