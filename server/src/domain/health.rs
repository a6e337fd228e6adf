//! Whether the service can do its work, as the health service reports it: the database, the
//! one dependency every operation needs, answers. The transport asks here rather than reaching
//! into persistence itself.

use std::time::Duration;

use super::Connectors;

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
pub struct Health {
    /// The database.
    pub database: Availability,
}

impl Health {
    /// Whether calls can be served.
    pub fn serving(self) -> bool {
        self.database == Availability::Up
    }
}

impl Connectors {
    /// Checks the dependencies; one that does not answer within `within` is down (a database
    /// that stopped answering must not hold the check, and so the reported status, up).
    pub async fn health(&self, within: Duration) -> Health {
        let answered = tokio::time::timeout(within, self.store.ping())
            .await
            .is_ok_and(|pinged| pinged.is_ok());
        Health {
            database: if answered {
                Availability::Up
            } else {
                Availability::Down
            },
        }
    }
}
