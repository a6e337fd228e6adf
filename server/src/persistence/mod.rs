//! Persistence: SeaORM over SQLite (the embedded default) or PostgreSQL.
//!
//! The rest of the server sees [`Store`] and plain rows; entities and SQL stay here. Every
//! multi-row change runs in one transaction, and every update of a connector is guarded by its
//! revision, so a concurrent writer can never be silently overwritten.
//!
//! This module opens the store and classifies database errors; each concern has a module of
//! its own: `connectors` (the connector table), `secrets` (sealed secrets and the master-key
//! check), `events` (the event log), `attempts` (OAuth authorization attempts), `revocations`
//! (the revocation outbox), `token_lock` (single-flight token refresh), `sweep` (inactivity),
//! `rewrap` (re-sealing under a new key), with `rows` the plain types the domain sees.

mod attempts;
mod connectors;
mod entity;
mod events;
mod migration;
mod revocations;
mod rewrap;
mod row_cache;
mod rows;
mod secrets;
mod stats;
mod sweep;
mod token_lock;
mod transfer_batches;

use std::{collections::BTreeSet, path::Path, sync::Arc, time::Duration};

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlErr};
use sea_orm_migration::MigratorTrait as _;

use row_cache::RowCache;
use transfer_batches::TransferBatches;

pub use rewrap::{RewrapContexts, RewrapReport};
pub use rows::{
    AttemptRow, ConnectorQuery, ConnectorRow, ConnectorState, Consumed, DeauthorizationReason,
    DeleteOutcome, EventKind, EventReason, EventRow, REVOCABLE_FIELD, RevocationOutcome,
    RevocationRow,
};
pub use stats::{POOL_TIMEOUTS, PoolStatus};
pub use token_lock::TokenLock;

/// Errors of the persistence layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A unique constraint refused the write (for connectors: once per external account).
    #[error("a row with the same unique key exists")]
    Conflict,
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A deadlock or serialization failure between concurrent transactions; retrying is safe.
    #[error("concurrent transactions conflicted: {0}")]
    Contention(String),
    /// The master keys do not fit the stored data; the server must not start.
    #[error("{0}")]
    MasterKey(String),
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Database(String),
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
            return Error::Conflict;
        }
        let unavailable = match &error {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
            DbErr::Exec(RuntimeErr::SqlxError(inner))
            | DbErr::Query(RuntimeErr::SqlxError(inner)) => connection_lost(inner),
            _ => false,
        };
        if unavailable {
            if matches!(
                error,
                DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)
            ) {
                POOL_TIMEOUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Error::Unavailable(error.to_string())
        } else if contention(&error) {
            Error::Contention(error.to_string())
        } else {
            Error::Database(error.to_string())
        }
    }
}

/// Creates the SQLite database file readable by this user only (0600) before SQLite opens it,
/// and makes an existing one (with its `-wal` and `-shm` files) private. SQLite creates its
/// `-wal` and `-shm` files with the database file's permissions, so they stay private too.
fn make_sqlite_files_private(url: &str) -> Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let failed = |error: std::io::Error| Error::Unavailable(format!("{path}: {error}"));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        options.open(path).map_err(failed)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(failed(error));
                }
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    options.open(path).map_err(failed)?;
    Ok(())
}

/// PostgreSQL deadlock (40P01) or serialization failure (40001), and SQLite "busy".
fn contention(error: &DbErr) -> bool {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sea_orm::sqlx::Error::Database(database) => database
                    .code()
                    .is_some_and(|code| matches!(code.as_ref(), "40P01" | "40001" | "5" | "6")),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a driver error means the database is out of reach (as opposed to a bad statement):
/// I/O and pool failures, PostgreSQL connection exceptions (class 08), operator intervention
/// such as a shutdown or a dropped database (class 57), and a database that no longer exists.
fn connection_lost(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57") || code == "3D000"
        }),
        _ => false,
    }
}

/// How the connection pool behaves, above all when the database goes away.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Largest number of pooled PostgreSQL connections (SQLite always uses one).
    pub max_connections: u32,
    /// Longest wait for a pooled connection, including (re)connecting to the database.
    pub acquire_timeout: Duration,
    /// Longest a PostgreSQL statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// How long a connector row read for `GetConnector`/`GetAccessToken` is reused in this
    /// process (this process's own writes drop it at once; other processes' changes are seen
    /// within this). Zero: every read goes to the database.
    pub row_cache_ttl: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            row_cache_ttl: Duration::from_secs(1),
        }
    }
}

/// Result of persistence operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database handle the domain uses.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Connector types whose refresh tokens can be revoked at their provider.
    revocable_types: Arc<BTreeSet<String>>,
    /// On PostgreSQL, how many token locks (each a pooled connection in a transaction, held
    /// across a provider call) may be held at once: half the pool, so refreshes of many
    /// connectors at once wait for each other rather than starve every other query.
    token_lock_permits: Arc<tokio::sync::Semaphore>,
    /// Connector rows for the hot reads (see [`Store::get_connector_cached`]).
    rows: Arc<RowCache>,
    /// Concurrent transfer reports on one connector, merged into shared writes.
    transfers: Arc<TransferBatches<Result<Option<ConnectorRow>>>>,
}

impl Store {
    /// Connects and applies pending migrations.
    ///
    /// SQLite runs in WAL mode with `synchronous = FULL`, so every acknowledged write survives a
    /// crash or power loss, and with a single connection: SQLite serialises writers anyway, and
    /// one connection rules out "database is locked" upgrades between concurrent transactions.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        Self::open_with(
            url,
            &PoolSettings {
                max_connections,
                ..PoolSettings::default()
            },
        )
        .await
    }

    /// Like [`Store::open`], with every pool setting. A database that stops answering makes
    /// calls fail within `acquire_timeout` (waiting for a connection, including reconnecting)
    /// or `statement_timeout` (a statement that hangs), never the 30 s sqlx waits by default.
    pub async fn open_with(url: &str, settings: &PoolSettings) -> Result<Self> {
        let max_connections = settings.max_connections;
        if backend_of(url) == Backend::Sqlite {
            make_sqlite_files_private(url)?;
        }
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .connect_timeout(settings.acquire_timeout)
            .acquire_timeout(settings.acquire_timeout)
            // No idle reaper. sqlx 0.9.0's reaper loops `num_idle()` times over `try_acquire`
            // without yielding, and `release` hands the permit back before it counts the idle
            // connection, so a concurrent acquire can wrap `num_idle` below zero: the reaper
            // then spins a worker thread indefinitely (seen as a hung test on one worker
            // thread). Connections are few and long-lived here; a broken one is replaced when
            // it fails.
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
        match backend_of(url) {
            Backend::Sqlite => {
                options.max_connections(1).min_connections(1);
                options.map_sqlx_sqlite_opts(|sqlite| {
                    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                    sqlite
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full)
                        .foreign_keys(true)
                        .busy_timeout(Duration::from_secs(10))
                        // Deleted secrets are overwritten, not left in free pages.
                        .pragma("secure_delete", "ON")
                });
            }
            Backend::Postgres => {
                let statement_timeout = settings.statement_timeout.as_millis().to_string();
                options
                    .max_connections(max_connections.max(1))
                    .min_connections(1)
                    .map_sqlx_postgres_opts(move |postgres| {
                        postgres.options([("statement_timeout", statement_timeout.as_str())])
                    });
            }
        }
        let db = Database::connect(options).await?;
        // Several processes starting at once on one PostgreSQL database race to apply the same
        // migration; the losers find it applied when they try again.
        let mut attempt = 0;
        while let Err(error) = migration::Migrator::up(&db, None).await {
            attempt += 1;
            if attempt == 3 {
                return Err(error.into());
            }
            tracing::warn!(%error, "migrations failed, retrying (another process may be applying them)");
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
        }
        Ok(Self {
            db,
            revocable_types: Arc::default(),
            token_lock_permits: Arc::new(tokio::sync::Semaphore::new(
                (max_connections / 2).max(1) as usize
            )),
            rows: Arc::new(RowCache::new(settings.row_cache_ttl)),
            transfers: Arc::default(),
        })
    }

    /// The connector types whose refresh tokens can be revoked at their provider (RFC 7009):
    /// erasing such a token queues it in the revocation outbox. For other types the outcome
    /// is recorded as `NOT_SUPPORTED` at once.
    #[must_use]
    pub fn with_revocable_types(mut self, types: impl IntoIterator<Item = String>) -> Self {
        self.revocable_types = Arc::new(types.into_iter().collect());
        self
    }

    /// The SQLite URL of the embedded default database in `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("connectors.db").display()
        )
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// Checks that the database answers (for the health service).
    pub async fn ping(&self) -> Result<()> {
        self.db
            .ping()
            .await
            .map_err(|error| Error::Unavailable(error.to_string()))
    }
}

/// The one row a lookup by a unique key finds, if any. Not SeaORM's `.one()`: that binds a
/// `LIMIT ?`, and SQLite prepares a statement again whenever its `LIMIT` parameter is bound,
/// which was most of a `GetConnector`'s cost.
async fn unique_row<E: sea_orm::EntityTrait>(
    select: sea_orm::Select<E>,
    db: &DatabaseConnection,
) -> Result<Option<E::Model>> {
    Ok(select.all(db).await?.into_iter().next())
}

/// Which backend a database URL names.
pub fn backend_of(url: &str) -> Backend {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}
