//! Whether the service can do its work, as the health service reports it: the database, the
//! one dependency every operation needs, answers. The transport asks here rather than reaching
//! into persistence itself. [`Health`] is a service of its own that owns only the store: the
//! health check needs nothing else, and builds without the rest of the domain.

use std::time::Duration;

use crate::persistence::Store;

/// Whether a dependency answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// It answered in time.
    Up,
    /// It failed, or did not answer in time.
    Down,
}

/// What the service's work depends on, as last checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthReport {
    /// The database.
    pub database: Availability,
}

impl HealthReport {
    /// Whether calls can be served.
    pub fn serving(self) -> bool {
        self.database == Availability::Up
    }
}

/// The health check: asks the dependencies whether they answer.
#[derive(Debug, Clone)]
pub struct Health {
    store: Store,
}

impl Health {
    /// The health check of the service backed by `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Checks the dependencies; one that does not answer within `within` is down (a database
    /// that stopped answering must not hold the check, and so the reported status, up).
    pub async fn check(&self, within: Duration) -> HealthReport {
        let answered = tokio::time::timeout(within, self.store.ping())
            .await
            .is_ok_and(|pinged| pinged.is_ok());
        HealthReport {
            database: if answered {
                Availability::Up
            } else {
                Availability::Down
            },
        }
    }
}
