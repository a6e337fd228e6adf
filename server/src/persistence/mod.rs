//! Persistence: SeaORM over SQLite (the embedded default) or PostgreSQL.
//!
//! The rest of the server sees [`Store`] and plain rows; entities and SQL stay here. Every
//! multi-row change runs in one transaction, and every update of a connector is guarded by its
//! revision, so a concurrent writer can never be silently overwritten.

mod entity;
mod migration;
mod row_cache;
mod transfer_batches;

use std::{collections::BTreeSet, path::Path, sync::Arc, time::Duration};

use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait as _, ConnectOptions,
    ConnectionTrait as _, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, RuntimeErr, SqlErr, TransactionTrait as _,
};
use sea_orm_migration::MigratorTrait as _;

use crate::crypto::{Sealed, Sealer};
use entity::{
    authorization_attempt, connector, connector_event, connector_secret, revocation,
    sealing_key_check,
};
use row_cache::RowCache;
use transfer_batches::TransferBatches;

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

/// A connector as stored. Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRow {
    /// Connector id.
    pub id: String,
    /// Customer account id.
    pub account: String,
    /// Connector type id.
    pub connector_type: String,
    /// Display name.
    pub display_name: String,
    /// `AUTHORIZED` or `DEAUTHORIZED`.
    pub state: String,
    /// Why it was deauthorized.
    pub deauthorization_reason: Option<String>,
    /// When it was deauthorized.
    pub deauthorize_time: Option<i64>,
    /// External account id.
    pub external_account_id: String,
    /// External account label.
    pub external_account_label: String,
    /// Labels as a JSON object.
    pub labels: String,
    /// Creation time.
    pub create_time: i64,
    /// Last change.
    pub update_time: i64,
    /// Last authorization.
    pub authorize_time: i64,
    /// Last transfer.
    pub last_transfer_time: Option<i64>,
    /// Revision, incremented on every change.
    pub revision: i64,
    /// When the connector is deauthorized for inactivity unless data moves.
    pub inactivity_deadline: i64,
}

/// Which connectors a list wants.
#[derive(Debug, Default, Clone)]
pub struct ConnectorQuery<'a> {
    /// Only this connector type.
    pub connector_type: Option<&'a str>,
    /// Only this state.
    pub state: Option<&'a str>,
    /// Only ids after this one (keyset pagination).
    pub after_id: Option<&'a str>,
    /// At most this many rows.
    pub limit: u64,
    /// Now, for the state filter: a connector past its inactivity deadline counts as
    /// deauthorized before the sweeper reaches it.
    pub now_micros: i64,
}

/// An OAuth 2.0 authorization attempt as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    /// SHA-256 (hex) of the `state`.
    pub state_hash: String,
    /// Customer account.
    pub account: String,
    /// Connector type id.
    pub connector_type: String,
    /// The connector being reauthorized, if any.
    pub connector_id: Option<String>,
    /// Display name for a new connector.
    pub display_name: Option<String>,
    /// Where to send the browser afterwards.
    pub return_url: Option<String>,
    /// The callback forwards the browser to `return_url` with the provider's parameters, and
    /// the orchestrator completes the authorization.
    pub orchestrator_completes: bool,
    /// The sealed PKCE verifier.
    pub pkce_verifier: Sealed,
    /// Creation time.
    pub create_time: i64,
    /// Expiry.
    pub expire_time: i64,
}

/// What consuming a `state` found.
#[derive(Debug)]
pub enum Consumed {
    /// The attempt, now used up.
    Attempt(Box<AttemptRow>),
    /// No such state.
    Unknown,
    /// It was used before.
    AlreadyUsed,
    /// It expired (and is now used up).
    Expired,
}

/// A lifecycle event as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Position in the log; assigned on append.
    pub cursor: i64,
    /// Customer account.
    pub account: String,
    /// Connector id.
    pub connector_id: String,
    /// Connector type id.
    pub connector_type: String,
    /// `AUTHORIZED`, `REAUTHORIZED`, `DEAUTHORIZED` or `DELETED`.
    pub kind: String,
    /// Deauthorization reason, for `DEAUTHORIZED`.
    pub reason: Option<String>,
    /// When it happened.
    pub create_time: i64,
}

impl From<connector_event::Model> for EventRow {
    fn from(event: connector_event::Model) -> Self {
        EventRow {
            cursor: event.cursor,
            account: event.account,
            connector_id: event.connector_id,
            connector_type: event.connector_type,
            kind: event.kind,
            reason: event.reason,
            create_time: event.create_time,
        }
    }
}

/// Event kinds.
pub const EVENT_AUTHORIZED: &str = "AUTHORIZED";
/// A connector was reauthorized.
pub const EVENT_REAUTHORIZED: &str = "REAUTHORIZED";
/// A connector was deauthorized.
pub const EVENT_DEAUTHORIZED: &str = "DEAUTHORIZED";
/// A connector was deleted.
pub const EVENT_DELETED: &str = "DELETED";
/// A customer account was deleted.
pub const EVENT_ACCOUNT_DELETED: &str = "ACCOUNT_DELETED";

/// The final outcome of a revocation was recorded (`reason` holds the outcome).
pub const EVENT_REVOCATION_FINISHED: &str = "REVOCATION_FINISHED";

/// Revocation outcome: the provider revoked the token.
pub const REVOCATION_REVOKED: &str = "REVOKED";
/// Revocation outcome: the provider offers no way to revoke what we held.
pub const REVOCATION_NOT_SUPPORTED: &str = "NOT_SUPPORTED";
/// Revocation outcome: every try failed.
pub const REVOCATION_FAILED: &str = "FAILED";

/// The secret the revocation outbox keeps: an OAuth 2.0 refresh token (revoking it ends the
/// grant and the access tokens issued from it, RFC 7009 §2.1).
pub const REVOCABLE_FIELD: &str = "refresh_token";

/// An event to append.
fn event_model(
    account: &str,
    connector_id: &str,
    connector_type: &str,
    kind: &str,
    reason: Option<&str>,
    now_micros: i64,
) -> connector_event::ActiveModel {
    connector_event::ActiveModel {
        cursor: sea_orm::ActiveValue::NotSet,
        account: Set(account.to_owned()),
        connector_id: Set(connector_id.to_owned()),
        connector_type: Set(connector_type.to_owned()),
        kind: Set(kind.to_owned()),
        reason: Set(reason.map(str::to_owned)),
        create_time: Set(now_micros),
    }
}

/// Appends events, in order, inside the caller's transaction. On PostgreSQL a
/// transaction-scoped advisory lock serialises appenders, so cursors become visible in commit
/// order and a reader following the log never skips an event that commits late. Callers append
/// last, after every row lock their transaction takes: the advisory lock is then never held
/// while waiting for a row (which could deadlock against a transaction holding that row and
/// waiting for the advisory lock, or stall every append behind a token refresh).
async fn append_events(
    txn: &impl sea_orm::ConnectionTrait,
    events: Vec<connector_event::ActiveModel>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7411)")
            .await?;
    }
    // Multi-row inserts, kept under both databases' limits on bound parameters.
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<_> = events.by_ref().take(INSERT_CHUNK).collect();
        connector_event::Entity::insert_many(chunk)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Rows per multi-row insert (times at most 12 columns stays below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters).
const INSERT_CHUNK: usize = 1000;

/// Appends one event about `row` inside the caller's transaction.
async fn append_event(
    txn: &impl sea_orm::ConnectionTrait,
    row: &ConnectorRow,
    kind: &str,
    reason: Option<&str>,
    now_micros: i64,
) -> Result<()> {
    append_events(
        txn,
        vec![event_model(
            &row.account,
            &row.id,
            &row.connector_type,
            kind,
            reason,
            now_micros,
        )],
    )
    .await
}

/// What erasing a connector's secrets leaves to do at its provider.
enum Revocation {
    /// An outbox row: the token, to revoke in the background.
    Queued(revocation::ActiveModel),
    /// A final `NOT_SUPPORTED` outcome, recorded at once: the type has no revocation
    /// endpoint, or nothing revocable was held (an Azure account key stays valid at Azure
    /// until the customer rotates it).
    NotSupported(connector_event::ActiveModel),
}

/// The revocation for a connector whose `secrets` are being erased, if it held any (a
/// connector without secrets had them erased, and its revocation queued, when it was
/// deauthorized).
fn revocation_of(
    revocable_types: &BTreeSet<String>,
    row: &ConnectorRow,
    secrets: &[(String, Sealed)],
    now_micros: i64,
) -> Option<Revocation> {
    if secrets.is_empty() {
        return None;
    }
    let token = secrets
        .iter()
        .find(|(field, _)| field == REVOCABLE_FIELD)
        .filter(|_| revocable_types.contains(&row.connector_type));
    Some(match token {
        Some((field, sealed)) => Revocation::Queued(revocation::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            account: Set(row.account.clone()),
            connector_id: Set(row.id.clone()),
            connector_type: Set(row.connector_type.clone()),
            field: Set(field.clone()),
            key_id: Set(sealed.key_id.clone()),
            nonce: Set(sealed.nonce.clone()),
            ciphertext: Set(sealed.ciphertext.clone()),
            attempts: Set(0),
            next_attempt_time: Set(now_micros),
            last_error: Set(None),
            create_time: Set(now_micros),
        }),
        None => Revocation::NotSupported(event_model(
            &row.account,
            &row.id,
            &row.connector_type,
            EVENT_REVOCATION_FINISHED,
            Some(REVOCATION_NOT_SUPPORTED),
            now_micros,
        )),
    })
}

/// Writes revocations inside the caller's transaction: outbox rows, and the outcome events of
/// those that are final already.
async fn queue_revocations(
    txn: &impl sea_orm::ConnectionTrait,
    revocations: Vec<Revocation>,
) -> Result<()> {
    let mut queued = Vec::new();
    let mut final_events = Vec::new();
    for revocation in revocations {
        match revocation {
            Revocation::Queued(row) => queued.push(row),
            Revocation::NotSupported(event) => final_events.push(event),
        }
    }
    let mut queued = queued.into_iter().peekable();
    while queued.peek().is_some() {
        let chunk: Vec<_> = queued.by_ref().take(INSERT_CHUNK).collect();
        revocation::Entity::insert_many(chunk).exec(txn).await?;
    }
    append_events(txn, final_events).await
}

/// A stored secret as the sealer sees it, with its field name.
fn sealed(secret: connector_secret::Model) -> (String, Sealed) {
    (
        secret.field,
        Sealed {
            key_id: secret.key_id,
            nonce: secret.nonce,
            ciphertext: secret.ciphertext,
        },
    )
}

/// Secrets as the sealer sees them, with their field names.
fn sealed_secrets(secrets: Vec<connector_secret::Model>) -> Vec<(String, Sealed)> {
    secrets.into_iter().map(sealed).collect()
}

/// The secrets of several connectors, by connector id (queried in chunks of ids).
async fn secrets_by_connector(
    txn: &impl sea_orm::ConnectionTrait,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<(String, Sealed)>>> {
    let mut by_connector: std::collections::HashMap<String, Vec<(String, Sealed)>> =
        std::collections::HashMap::new();
    for chunk in ids.chunks(INSERT_CHUNK) {
        for secret in connector_secret::Entity::find()
            .filter(connector_secret::Column::ConnectorId.is_in(chunk.iter().cloned()))
            .all(txn)
            .await?
        {
            by_connector
                .entry(secret.connector_id.clone())
                .or_default()
                .push(sealed(secret));
        }
    }
    Ok(by_connector)
}

/// A revocation claimed from the outbox.
#[derive(Debug, Clone)]
pub struct RevocationRow {
    /// Outbox id.
    pub id: i64,
    /// Customer account.
    pub account: String,
    /// The connector the token belonged to.
    pub connector_id: String,
    /// Its type.
    pub connector_type: String,
    /// The secret field the token was stored under (part of its sealing context).
    pub field: String,
    /// The sealed token.
    pub token: Sealed,
    /// Tries so far, including the one this claim is for.
    pub attempts: u32,
}

/// The stored state of an authorized connector.
pub const STATE_AUTHORIZED: &str = "AUTHORIZED";
/// The stored state of a deauthorized connector.
pub const STATE_DEAUTHORIZED: &str = "DEAUTHORIZED";

/// What a guarded delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The connector and its secrets are gone, and a revocation is queued.
    Deleted,
    /// No such connector.
    NotFound,
    /// The connector exists but its revision is not the expected one.
    RevisionMismatch,
}

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
    transfers: Arc<TransferBatches>,
}

/// A fixed plaintext sealed per master key, to recognise the key at start-up.
const KEY_CHECK_PLAINTEXT: &[u8] = b"connector-service master key check v1";
const KEY_CHECK_CONTEXT: &[u8] = b"sealing_key_check";

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
            .acquire_timeout(settings.acquire_timeout);
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

    /// Refuses master keys that do not fit the stored data: every key id that sealed a stored
    /// secret must be configured, and each configured key must open its check row. Records a
    /// check row for a key seen for the first time.
    pub async fn verify_master_keys(&self, sealer: &Sealer, now_micros: i64) -> Result<()> {
        let checks = sealing_key_check::Entity::find().all(&self.db).await?;
        for check in &checks {
            if !sealer.knows_key(&check.key_id) {
                continue;
            }
            let sealed = Sealed {
                key_id: check.key_id.clone(),
                nonce: check.nonce.clone(),
                ciphertext: check.ciphertext.clone(),
            };
            if sealer.open(&sealed, KEY_CHECK_CONTEXT).is_err() {
                return Err(Error::MasterKey(format!(
                    "the configured master key `{}` is not the key that sealed this database's secrets; start the server with the original key (see the README on master keys)",
                    check.key_id
                )));
            }
        }
        let mut used_key_ids: Vec<String> = connector_secret::Entity::find()
            .select_only()
            .column(connector_secret::Column::KeyId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        let queued_key_ids: Vec<String> = revocation::Entity::find()
            .select_only()
            .column(revocation::Column::KeyId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        used_key_ids.extend(queued_key_ids);
        if let Some(missing) = used_key_ids.iter().find(|id| !sealer.knows_key(id)) {
            return Err(Error::MasterKey(format!(
                "stored secrets were sealed with master key `{missing}`, which is not configured; configure it (as the current or a previous key) to start"
            )));
        }
        let current = sealer.current_key_id();
        if !checks.iter().any(|check| check.key_id == current) {
            let sealed = sealer.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT);
            let inserted = sealing_key_check::ActiveModel {
                key_id: Set(sealed.key_id),
                nonce: Set(sealed.nonce),
                ciphertext: Set(sealed.ciphertext),
                create_time: Set(now_micros),
            }
            .insert(&self.db)
            .await
            .map_err(Error::from);
            match inserted {
                // Another process starting at the same moment recorded it first: check theirs.
                Err(Error::Conflict) => {
                    return Box::pin(self.verify_master_keys(sealer, now_micros)).await;
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Inserts a connector with its sealed secrets, atomically. [`Error::Conflict`] if the
    /// account already has a connector for that type and external account.
    pub async fn insert_connector(
        &self,
        row: ConnectorRow,
        secrets: Vec<(String, Sealed)>,
    ) -> Result<()> {
        let txn = self.db.begin().await?;
        let connector_id = row.id.clone();
        connector::ActiveModel::from(row.clone())
            .insert(&txn)
            .await?;
        insert_secrets(&txn, &connector_id, secrets).await?;
        append_event(&txn, &row, EVENT_AUTHORIZED, None, row.create_time).await?;
        txn.commit().await?;
        Ok(())
    }

    /// One connector of an account.
    pub async fn get_connector(&self, account: &str, id: &str) -> Result<Option<ConnectorRow>> {
        // `.all()` rather than `.one()`: a primary-key lookup needs no `LIMIT`, and a bound
        // `LIMIT` makes SQLite prepare the statement again on every call.
        Ok(connector::Entity::find_by_id(id.to_owned())
            .filter(connector::Column::Account.eq(account))
            .all(&self.db)
            .await?
            .into_iter()
            .next()
            .map(ConnectorRow::from))
    }

    /// One connector of an account, for reads that may be served from this process's row
    /// cache: never older than this process's last write to it, and at most the cache's time
    /// to live older than another process's (see `row_cache`). Writes read with
    /// [`Store::get_connector`].
    pub async fn get_connector_cached(
        &self,
        account: &str,
        id: &str,
        now_micros: i64,
    ) -> Result<Option<ConnectorRow>> {
        if let Some(row) = self.rows.get(account, id, now_micros) {
            return Ok(Some(row));
        }
        let ticket = self.rows.ticket();
        let row = self.get_connector(account, id).await?;
        if let Some(row) = &row {
            self.rows.put(ticket, row, now_micros);
        }
        Ok(row)
    }

    /// The account's connector of a type for an external account, if any.
    pub async fn find_by_external_account(
        &self,
        account: &str,
        connector_type: &str,
        external_account_id: &str,
    ) -> Result<Option<ConnectorRow>> {
        Ok(connector::Entity::find()
            .filter(connector::Column::Account.eq(account))
            .filter(connector::Column::ConnectorType.eq(connector_type))
            .filter(connector::Column::ExternalAccountId.eq(external_account_id))
            // At most one (a unique index); `.all()` binds no `LIMIT` (see `get_connector`).
            .all(&self.db)
            .await?
            .into_iter()
            .next()
            .map(ConnectorRow::from))
    }

    /// A page of an account's connectors, ordered by id.
    pub async fn list_connectors(
        &self,
        account: &str,
        query: ConnectorQuery<'_>,
    ) -> Result<Vec<ConnectorRow>> {
        let mut select = connector::Entity::find().filter(connector::Column::Account.eq(account));
        if let Some(connector_type) = query.connector_type {
            select = select.filter(connector::Column::ConnectorType.eq(connector_type));
        }
        match query.state {
            Some(STATE_AUTHORIZED) => {
                select = select
                    .filter(connector::Column::State.eq(STATE_AUTHORIZED))
                    .filter(connector::Column::InactivityDeadline.gt(query.now_micros));
            }
            Some(state) => {
                select = select.filter(
                    sea_orm::Condition::any()
                        .add(connector::Column::State.eq(state))
                        .add(connector::Column::InactivityDeadline.lte(query.now_micros)),
                );
            }
            None => {}
        }
        if let Some(after) = query.after_id {
            select = select.filter(connector::Column::Id.gt(after));
        }
        // The page size goes into the SQL text rather than a bound `LIMIT ?`: SQLite prepares
        // a statement again whenever its `LIMIT` parameter is bound, and page sizes are few,
        // so each stays prepared in the connection's statement cache.
        use sea_orm::QueryTrait as _;
        let mut statement = select
            .order_by_asc(connector::Column::Id)
            .build(self.db.get_database_backend());
        statement.sql = format!("{} LIMIT {}", statement.sql, query.limit);
        Ok(connector::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ConnectorRow::from)
            .collect())
    }

    /// Writes `row` if the stored revision is still `expected_revision`, replacing the secrets
    /// given (others stay). Returns whether it was written.
    pub async fn update_connector(
        &self,
        row: ConnectorRow,
        expected_revision: i64,
        secrets: Vec<(String, Sealed)>,
        event: Option<&str>,
    ) -> Result<bool> {
        let txn = self.db.begin().await?;
        let connector_id = row.id.clone();
        let event = event.map(|kind| (kind, row.clone()));
        let updated = connector::Entity::update_many()
            .set(connector::ActiveModel::from(row))
            .filter(connector::Column::Id.eq(connector_id.as_str()))
            .filter(connector::Column::Revision.eq(expected_revision))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        if !secrets.is_empty() {
            replace_secrets(&txn, &connector_id, secrets).await?;
        }
        if let Some((kind, row)) = event {
            append_event(&txn, &row, kind, None, row.update_time).await?;
        }
        txn.commit().await?;
        self.rows.changed(&connector_id);
        Ok(true)
    }

    /// Records a transfer report in one conditional statement: `last_transfer_time` and
    /// `update_time` move forward (never back), the inactivity deadline is pushed to at least
    /// `deadline_micros`, and the revision is bumped, on an authorized connector whose deadline
    /// has not passed. Concurrent reports on one connector cannot conflict: each is applied by
    /// the database on the row as it stands, and reports that arrive while one is being written
    /// share the next write (group commit, see `transfer_batches`; a merged write checks the
    /// deadline against its latest report). Returns the row afterwards, or `None` when no
    /// authorized connector matched (the caller reads it to say why).
    pub async fn record_transfer(
        &self,
        account: &str,
        id: &str,
        now_micros: i64,
        deadline_micros: i64,
    ) -> Result<Option<ConnectorRow>> {
        self.transfers
            .record(
                &format!("{account}/{id}"),
                now_micros,
                deadline_micros,
                async |now_micros, deadline_micros| {
                    self.write_transfer(account, id, now_micros, deadline_micros)
                        .await
                },
            )
            .await
    }

    async fn write_transfer(
        &self,
        account: &str,
        id: &str,
        now_micros: i64,
        deadline_micros: i64,
    ) -> Result<Option<ConnectorRow>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        let later = |column: connector::Column, value: i64| {
            Expr::case(
                Expr::col(column).is_null().or(Expr::col(column).lt(value)),
                value,
            )
            .finally(Expr::col(column))
        };
        let updated = connector::Entity::update_many()
            .col_expr(
                connector::Column::LastTransferTime,
                later(connector::Column::LastTransferTime, now_micros).into(),
            )
            .col_expr(
                connector::Column::UpdateTime,
                later(connector::Column::UpdateTime, now_micros).into(),
            )
            .col_expr(
                connector::Column::InactivityDeadline,
                later(connector::Column::InactivityDeadline, deadline_micros).into(),
            )
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision).add(1),
            )
            .filter(connector::Column::Account.eq(account))
            .filter(connector::Column::Id.eq(id))
            .filter(connector::Column::State.eq(STATE_AUTHORIZED))
            .filter(connector::Column::InactivityDeadline.gt(now_micros))
            .exec_with_returning(&self.db)
            .await?;
        self.rows.changed(id);
        Ok(updated.into_iter().next().map(ConnectorRow::from))
    }

    /// Replaces a connector's labels in one statement, guarded by the revision only when the
    /// caller pinned one (an etag): a concurrent transfer report never makes an unpinned label
    /// change fail. Returns the row afterwards, or `None` when nothing matched.
    pub async fn update_labels(
        &self,
        account: &str,
        id: &str,
        labels_json: Option<String>,
        now_micros: i64,
        pinned_revision: Option<i64>,
    ) -> Result<Option<ConnectorRow>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        let mut update = connector::Entity::update_many()
            .col_expr(connector::Column::UpdateTime, Expr::value(now_micros))
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision).add(1),
            )
            .filter(connector::Column::Account.eq(account))
            .filter(connector::Column::Id.eq(id));
        if let Some(labels) = labels_json {
            update = update.col_expr(connector::Column::Labels, Expr::value(labels));
        }
        if let Some(revision) = pinned_revision {
            update = update.filter(connector::Column::Revision.eq(revision));
        }
        let updated = update.exec_with_returning(&self.db).await?;
        self.rows.changed(id);
        Ok(updated.into_iter().next().map(ConnectorRow::from))
    }

    /// Deletes a connector and destroys its secrets, optionally only at a given revision.
    pub async fn delete_connector(
        &self,
        account: &str,
        id: &str,
        expected_revision: Option<i64>,
        now_micros: i64,
    ) -> Result<DeleteOutcome> {
        let txn = self.db.begin().await?;
        // Lock the row first (PostgreSQL), as every other writer does, so a token refresh in
        // flight finishes before the secrets are read: the ones returned are the latest.
        let Some(row) = connector::Entity::find_by_id(id.to_owned())
            .filter(connector::Column::Account.eq(account))
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(DeleteOutcome::NotFound);
        };
        if expected_revision.is_some_and(|revision| revision != row.revision) {
            txn.rollback().await?;
            return Ok(DeleteOutcome::RevisionMismatch);
        }
        let secrets = sealed_secrets(
            connector_secret::Entity::find()
                .filter(connector_secret::Column::ConnectorId.eq(id))
                .all(&txn)
                .await?,
        );
        connector_secret::Entity::delete_many()
            .filter(connector_secret::Column::ConnectorId.eq(id))
            .exec(&txn)
            .await?;
        connector::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await?;
        let row = ConnectorRow::from(row);
        append_event(&txn, &row, EVENT_DELETED, None, now_micros).await?;
        let revocation = revocation_of(&self.revocable_types, &row, &secrets, now_micros);
        queue_revocations(&txn, revocation.into_iter().collect()).await?;
        txn.commit().await?;
        self.rows.changed(id);
        self.reclaim_deleted_secrets().await;
        Ok(DeleteOutcome::Deleted)
    }

    /// An account's events after `after_cursor`, oldest first, at most `limit`.
    pub async fn list_events(
        &self,
        account: &str,
        after_cursor: i64,
        limit: u64,
    ) -> Result<Vec<EventRow>> {
        Ok(connector_event::Entity::find()
            .filter(connector_event::Column::Account.eq(account))
            .filter(connector_event::Column::Cursor.gt(after_cursor))
            .order_by_asc(connector_event::Column::Cursor)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(EventRow::from)
            .collect())
    }

    /// Every account's events after `after_cursor`, oldest first, at most `limit`: what the
    /// process's one event feed polls.
    pub async fn events_after(&self, after_cursor: i64, limit: u64) -> Result<Vec<EventRow>> {
        Ok(connector_event::Entity::find()
            .filter(connector_event::Column::Cursor.gt(after_cursor))
            .order_by_asc(connector_event::Column::Cursor)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(EventRow::from)
            .collect())
    }

    /// The highest event cursor (0 with no events).
    pub async fn latest_event_cursor(&self) -> Result<i64> {
        let latest: Option<Option<i64>> = connector_event::Entity::find()
            .select_only()
            .column_as(connector_event::Column::Cursor.max(), "latest")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(latest.flatten().unwrap_or(0))
    }

    /// Deletes every connector of an account with its secrets, appending one `DELETED` event
    /// each (and its revocation) and an `ACCOUNT_DELETED` event, in one transaction. Returns
    /// how many connectors were deleted.
    pub async fn delete_account(&self, account: &str, now_micros: i64) -> Result<u64> {
        let txn = self.db.begin().await?;
        let rows: Vec<ConnectorRow> = connector::Entity::find()
            .filter(connector::Column::Account.eq(account))
            .order_by_asc(connector::Column::Id)
            .lock_exclusive()
            .all(&txn)
            .await?
            .into_iter()
            .map(ConnectorRow::from)
            .collect();
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let mut secrets_by_connector = secrets_by_connector(&txn, &ids).await?;
        for id in ids.chunks(INSERT_CHUNK) {
            connector_secret::Entity::delete_many()
                .filter(connector_secret::Column::ConnectorId.is_in(id.iter().cloned()))
                .exec(&txn)
                .await?;
            connector::Entity::delete_many()
                .filter(connector::Column::Id.is_in(id.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        let mut deleted_events = Vec::with_capacity(rows.len());
        let mut revocations = Vec::new();
        for row in &rows {
            deleted_events.push(event_model(
                &row.account,
                &row.id,
                &row.connector_type,
                EVENT_DELETED,
                None,
                now_micros,
            ));
            let secrets = secrets_by_connector.remove(&row.id).unwrap_or_default();
            revocations.extend(revocation_of(
                &self.revocable_types,
                row,
                &secrets,
                now_micros,
            ));
        }
        append_events(&txn, deleted_events).await?;
        queue_revocations(&txn, revocations).await?;
        append_events(
            &txn,
            vec![event_model(
                account,
                "",
                "",
                EVENT_ACCOUNT_DELETED,
                None,
                now_micros,
            )],
        )
        .await?;
        txn.commit().await?;
        self.rows.changed_all();
        self.reclaim_deleted_secrets().await;
        Ok(rows.len() as u64)
    }

    /// A sealed secret of a connector.
    pub async fn get_secret(&self, connector_id: &str, field: &str) -> Result<Option<Sealed>> {
        Ok(
            // `.all()`: no bound `LIMIT` (see `get_connector`).
            connector_secret::Entity::find_by_id((connector_id.to_owned(), field.to_owned()))
                .all(&self.db)
                .await?
                .into_iter()
                .next()
                .map(|secret| sealed(secret).1),
        )
    }

    /// Records an authorization attempt, and drops attempts that expired over a day ago.
    pub async fn insert_attempt(&self, row: AttemptRow) -> Result<()> {
        let stale_before = row.create_time - 86_400_000_000;
        authorization_attempt::Entity::delete_many()
            .filter(authorization_attempt::Column::ExpireTime.lt(stale_before))
            .exec(&self.db)
            .await?;
        authorization_attempt::ActiveModel {
            state_hash: Set(row.state_hash),
            account: Set(row.account),
            connector_type: Set(row.connector_type),
            connector_id: Set(row.connector_id),
            display_name: Set(row.display_name),
            return_url: Set(row.return_url),
            key_id: Set(row.pkce_verifier.key_id),
            nonce: Set(row.pkce_verifier.nonce),
            ciphertext: Set(row.pkce_verifier.ciphertext),
            create_time: Set(row.create_time),
            expire_time: Set(row.expire_time),
            consume_time: Set(None),
            orchestrator_completes: Set(row.orchestrator_completes),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// An attempt as the browser brings its `state` back to the callback, without using it up:
    /// `Consumed::Attempt` while it is live, else why not.
    pub async fn peek_attempt(&self, state_hash: &str, now_micros: i64) -> Result<Consumed> {
        let Some(found) = authorization_attempt::Entity::find_by_id(state_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(Consumed::Unknown);
        };
        Ok(if found.consume_time.is_some() {
            Consumed::AlreadyUsed
        } else if found.expire_time <= now_micros {
            Consumed::Expired
        } else {
            Consumed::Attempt(Box::new(attempt_row(found)))
        })
    }

    /// Uses up a `state`, once: of concurrent callers with the same state, one gets the attempt.
    /// A state whose account `may_access` refuses is reported unknown and left unused.
    pub async fn consume_attempt(
        &self,
        state_hash: &str,
        now_micros: i64,
        may_access: impl Fn(&str) -> bool,
    ) -> Result<Consumed> {
        let Some(found) = authorization_attempt::Entity::find_by_id(state_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(Consumed::Unknown);
        };
        if !may_access(&found.account) {
            return Ok(Consumed::Unknown);
        }
        if found.consume_time.is_some() {
            return Ok(Consumed::AlreadyUsed);
        }
        let claimed = authorization_attempt::Entity::update_many()
            .col_expr(
                authorization_attempt::Column::ConsumeTime,
                sea_orm::sea_query::Expr::value(now_micros),
            )
            .filter(authorization_attempt::Column::StateHash.eq(state_hash))
            .filter(authorization_attempt::Column::ConsumeTime.is_null())
            .exec(&self.db)
            .await?;
        if claimed.rows_affected != 1 {
            return Ok(Consumed::AlreadyUsed);
        }
        if found.expire_time <= now_micros {
            return Ok(Consumed::Expired);
        }
        Ok(Consumed::Attempt(Box::new(attempt_row(found))))
    }

    /// Takes the lock that makes a token refresh single-flight across processes: on PostgreSQL
    /// a transaction holding `SELECT … FOR UPDATE` on the connector row until
    /// [`TokenLock::commit`] (at most half the pool's connections are held this way at once); on SQLite (one process by design) the caller's in-process lock
    /// is the whole story, so no transaction is held across the provider call. `None` if the
    /// connector is gone.
    pub async fn lock_tokens(&self, connector_id: &str) -> Result<Option<TokenLock>> {
        match self.backend() {
            Backend::Postgres => {
                let permit = tokio::time::timeout(
                    Duration::from_secs(30),
                    self.token_lock_permits.clone().acquire_owned(),
                )
                .await
                .map_err(|_| {
                    Error::Unavailable(
                        "every token lock stayed busy for 30 s (slow provider calls)".into(),
                    )
                })?
                .map_err(|_| Error::Unavailable("the store is shutting down".into()))?;
                let txn = self.db.begin().await?;
                let row = connector::Entity::find_by_id(connector_id.to_owned())
                    .lock_exclusive()
                    .one(&txn)
                    .await?;
                Ok(row.map(|row| TokenLock {
                    connection: LockConnection::Transaction(txn),
                    row: row.into(),
                    revocable_types: self.revocable_types.clone(),
                    rows: self.rows.clone(),
                    _permit: Some(permit),
                }))
            }
            Backend::Sqlite => {
                let row = connector::Entity::find_by_id(connector_id.to_owned())
                    .one(&self.db)
                    .await?;
                Ok(row.map(|row| TokenLock {
                    connection: LockConnection::Plain(self.db.clone()),
                    row: row.into(),
                    revocable_types: self.revocable_types.clone(),
                    rows: self.rows.clone(),
                    _permit: None,
                }))
            }
        }
    }

    /// Deauthorizes (reason `INACTIVITY`, at the deadline) up to `batch` authorized connectors
    /// whose inactivity deadline has passed, erasing their secrets, in one transaction. On
    /// PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so several sweeping
    /// processes share the work without processing a connector twice or waiting on each other.
    /// Returns the ids deauthorized.
    pub async fn sweep_inactive(&self, now_micros: i64, batch: u64) -> Result<Vec<String>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType};
        let txn = self.db.begin().await?;
        let due: Vec<String> = connector::Entity::find()
            .select_only()
            .column(connector::Column::Id)
            .filter(connector::Column::State.eq(STATE_AUTHORIZED))
            .filter(connector::Column::InactivityDeadline.lte(now_micros))
            .order_by_asc(connector::Column::InactivityDeadline)
            .limit(batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_tuple()
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(due);
        }
        connector::Entity::update_many()
            .col_expr(connector::Column::State, Expr::value(STATE_DEAUTHORIZED))
            .col_expr(
                connector::Column::DeauthorizationReason,
                Expr::value("INACTIVITY"),
            )
            .col_expr(
                connector::Column::DeauthorizeTime,
                Expr::col(connector::Column::InactivityDeadline),
            )
            .col_expr(connector::Column::UpdateTime, Expr::value(now_micros))
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision).add(1),
            )
            .filter(connector::Column::Id.is_in(due.clone()))
            // Re-checked: on SQLite nothing is locked, and a transfer may have just landed.
            .filter(connector::Column::State.eq(STATE_AUTHORIZED))
            .filter(connector::Column::InactivityDeadline.lte(now_micros))
            .exec(&txn)
            .await?;
        // Only the connectors this sweep deauthorized lose their secrets (not one that a
        // transfer just revived between the select and the update).
        let swept: Vec<String> = connector::Entity::find()
            .select_only()
            .column(connector::Column::Id)
            .filter(connector::Column::Id.is_in(due))
            .filter(connector::Column::State.eq(STATE_DEAUTHORIZED))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut secrets_by_connector = secrets_by_connector(&txn, &swept).await?;
        connector_secret::Entity::delete_many()
            .filter(connector_secret::Column::ConnectorId.is_in(swept.clone()))
            .exec(&txn)
            .await?;
        let rows = connector::Entity::find()
            .filter(connector::Column::Id.is_in(swept.clone()))
            .order_by_asc(connector::Column::Id)
            .all(&txn)
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut revocations = Vec::with_capacity(rows.len());
        for row in rows {
            let row = ConnectorRow::from(row);
            events.push(event_model(
                &row.account,
                &row.id,
                &row.connector_type,
                EVENT_DEAUTHORIZED,
                Some("INACTIVITY"),
                now_micros,
            ));
            let secrets = secrets_by_connector.remove(&row.id).unwrap_or_default();
            revocations.extend(revocation_of(
                &self.revocable_types,
                &row,
                &secrets,
                now_micros,
            ));
        }
        append_events(&txn, events).await?;
        queue_revocations(&txn, revocations).await?;
        txn.commit().await?;
        for id in &swept {
            self.rows.changed(id);
        }
        Ok(swept)
    }

    /// Claims up to `limit` revocations due at `now_micros`: each one's try count goes up and
    /// it is leased until `lease_until_micros` (if this process dies mid-try, another takes it
    /// over then). On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
    /// processes never claim the same revocation at once.
    pub async fn claim_revocations(
        &self,
        now_micros: i64,
        lease_until_micros: i64,
        limit: u64,
    ) -> Result<Vec<RevocationRow>> {
        use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType};
        let txn = self.db.begin().await?;
        let due = revocation::Entity::find()
            .filter(revocation::Column::NextAttemptTime.lte(now_micros))
            // The index order: no sort of every due row on each claim.
            .order_by_asc(revocation::Column::NextAttemptTime)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(Vec::new());
        }
        revocation::Entity::update_many()
            .col_expr(
                revocation::Column::Attempts,
                Expr::col(revocation::Column::Attempts).add(1),
            )
            .col_expr(
                revocation::Column::NextAttemptTime,
                Expr::value(lease_until_micros),
            )
            .filter(revocation::Column::Id.is_in(due.iter().map(|row| row.id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(due
            .into_iter()
            .map(|row| RevocationRow {
                id: row.id,
                account: row.account,
                connector_id: row.connector_id,
                connector_type: row.connector_type,
                field: row.field,
                token: Sealed {
                    key_id: row.key_id,
                    nonce: row.nonce,
                    ciphertext: row.ciphertext,
                },
                attempts: u32::try_from(row.attempts).unwrap_or(0).saturating_add(1),
            })
            .collect())
    }

    /// Schedules the next try of a claimed revocation, unless another process took it over
    /// (its lease ran out) meanwhile. `last_error` must not contain the token.
    pub async fn retry_revocation(
        &self,
        claimed: &RevocationRow,
        next_attempt_micros: i64,
        last_error: &str,
    ) -> Result<bool> {
        use sea_orm::sea_query::Expr;
        let updated = revocation::Entity::update_many()
            .col_expr(
                revocation::Column::NextAttemptTime,
                Expr::value(next_attempt_micros),
            )
            .col_expr(revocation::Column::LastError, Expr::value(last_error))
            .filter(revocation::Column::Id.eq(claimed.id))
            .filter(revocation::Column::Attempts.eq(claimed.attempts))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Records the final outcomes of claimed revocations: removes them from the outbox (erasing
    /// the sealed tokens) and appends their `REVOCATION_FINISHED` events, in one transaction.
    /// A revocation another process took over meanwhile (its lease ran out) is left to that
    /// process. Returns the ones recorded.
    pub async fn finish_revocations<'a>(
        &self,
        outcomes: &'a [(RevocationRow, &'a str)],
        now_micros: i64,
    ) -> Result<Vec<&'a (RevocationRow, &'a str)>> {
        let txn = self.db.begin().await?;
        let mut recorded = Vec::with_capacity(outcomes.len());
        for finished in outcomes {
            let (claimed, _) = finished;
            let deleted = revocation::Entity::delete_many()
                .filter(revocation::Column::Id.eq(claimed.id))
                .filter(revocation::Column::Attempts.eq(claimed.attempts))
                .exec(&txn)
                .await?;
            if deleted.rows_affected == 1 {
                recorded.push(finished);
            }
        }
        let events = recorded
            .iter()
            .map(|(claimed, outcome)| {
                event_model(
                    &claimed.account,
                    &claimed.connector_id,
                    &claimed.connector_type,
                    EVENT_REVOCATION_FINISHED,
                    Some(outcome),
                    now_micros,
                )
            })
            .collect();
        append_events(&txn, events).await?;
        txn.commit().await?;
        Ok(recorded)
    }

    /// On SQLite, moves the write-ahead log into the database file (where `secure_delete` has
    /// overwritten the deleted secrets) and empties it, so no copy of a deleted secret stays in
    /// the log. PostgreSQL reclaims dead rows through its own vacuum.
    pub async fn reclaim_deleted_secrets(&self) {
        if self.backend() == Backend::Sqlite
            && let Err(error) = self
                .db
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
        {
            tracing::warn!(%error, "WAL checkpoint after a delete failed");
        }
    }
}

async fn insert_secrets(
    txn: &impl sea_orm::ConnectionTrait,
    connector_id: &str,
    secrets: Vec<(String, Sealed)>,
) -> Result<()> {
    for (field, sealed) in secrets {
        connector_secret::ActiveModel {
            connector_id: Set(connector_id.to_owned()),
            field: Set(field),
            key_id: Set(sealed.key_id),
            nonce: Set(sealed.nonce),
            ciphertext: Set(sealed.ciphertext),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// Which backend a database URL names.
pub fn backend_of(url: &str) -> Backend {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

impl From<connector::Model> for ConnectorRow {
    fn from(model: connector::Model) -> Self {
        Self {
            id: model.id,
            account: model.account,
            connector_type: model.connector_type,
            display_name: model.display_name,
            state: model.state,
            deauthorization_reason: model.deauthorization_reason,
            deauthorize_time: model.deauthorize_time,
            external_account_id: model.external_account_id,
            external_account_label: model.external_account_label,
            labels: model.labels,
            create_time: model.create_time,
            update_time: model.update_time,
            authorize_time: model.authorize_time,
            last_transfer_time: model.last_transfer_time,
            revision: model.revision,
            inactivity_deadline: model.inactivity_deadline,
        }
    }
}

impl From<ConnectorRow> for connector::ActiveModel {
    fn from(row: ConnectorRow) -> Self {
        Self {
            id: Set(row.id),
            account: Set(row.account),
            connector_type: Set(row.connector_type),
            display_name: Set(row.display_name),
            state: Set(row.state),
            deauthorization_reason: Set(row.deauthorization_reason),
            deauthorize_time: Set(row.deauthorize_time),
            external_account_id: Set(row.external_account_id),
            external_account_label: Set(row.external_account_label),
            labels: Set(row.labels),
            create_time: Set(row.create_time),
            update_time: Set(row.update_time),
            authorize_time: Set(row.authorize_time),
            last_transfer_time: Set(row.last_transfer_time),
            revision: Set(row.revision),
            inactivity_deadline: Set(row.inactivity_deadline),
        }
    }
}

enum LockConnection {
    Transaction(sea_orm::DatabaseTransaction),
    Plain(DatabaseConnection),
}

/// A connector locked for a token refresh (see [`Store::lock_tokens`]). Dropping it without
/// [`TokenLock::commit`] rolls back what it wrote on PostgreSQL.
pub struct TokenLock {
    connection: LockConnection,
    /// The connector as it was when locked.
    pub row: ConnectorRow,
    revocable_types: Arc<BTreeSet<String>>,
    /// Dropped once a write of the lock is committed.
    rows: Arc<RowCache>,
    /// Released with the lock (see `Store::token_lock_permits`).
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for TokenLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLock")
            .field("connector", &self.row.id)
            .finish_non_exhaustive()
    }
}

impl TokenLock {
    /// A sealed secret of the locked connector.
    pub async fn secret(&self, field: &str) -> Result<Option<Sealed>> {
        let query = connector_secret::Entity::find_by_id((self.row.id.clone(), field.to_owned()));
        let found = match &self.connection {
            LockConnection::Transaction(txn) => query.one(txn).await?,
            LockConnection::Plain(db) => query.one(db).await?,
        };
        Ok(found.map(|secret| sealed(secret).1))
    }

    /// Replaces some secrets of the locked connector (new tokens), if the connector is still
    /// authorized by the authorization it was locked with; [`Error::Contention`] otherwise (it
    /// was reauthorized, deauthorized or deleted meanwhile, and its newer state wins).
    pub async fn replace_secrets(&self, secrets: Vec<(String, Sealed)>) -> Result<()> {
        let write = async |connection: &sea_orm::DatabaseTransaction| {
            self.still_current(connection).await?;
            replace_secrets(connection, &self.row.id, secrets).await
        };
        self.write(write).await
    }

    /// Deauthorizes the locked connector as `row` says (state, reason, time), erases every
    /// secret it held and queues their revocation, under the same condition as
    /// [`TokenLock::replace_secrets`]. Only the state columns are written, with the revision
    /// bumped in place: labels or a transfer recorded during the refresh are kept.
    pub async fn deauthorize(&self, row: ConnectorRow) -> Result<()> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        let write = async |connection: &sea_orm::DatabaseTransaction| {
            self.still_current(connection).await?;
            let id = row.id.clone();
            let secrets = sealed_secrets(
                connector_secret::Entity::find()
                    .filter(connector_secret::Column::ConnectorId.eq(id.as_str()))
                    .all(connection)
                    .await?,
            );
            connector::Entity::update_many()
                .col_expr(connector::Column::State, Expr::value(row.state.clone()))
                .col_expr(
                    connector::Column::DeauthorizationReason,
                    Expr::value(row.deauthorization_reason.clone()),
                )
                .col_expr(
                    connector::Column::DeauthorizeTime,
                    Expr::value(row.deauthorize_time),
                )
                .col_expr(connector::Column::UpdateTime, Expr::value(row.update_time))
                .col_expr(
                    connector::Column::Revision,
                    Expr::col(connector::Column::Revision).add(1),
                )
                .filter(connector::Column::Id.eq(id.as_str()))
                .exec(connection)
                .await?;
            connector_secret::Entity::delete_many()
                .filter(connector_secret::Column::ConnectorId.eq(id))
                .exec(connection)
                .await?;
            append_event(
                connection,
                &row,
                EVENT_DEAUTHORIZED,
                row.deauthorization_reason.as_deref(),
                row.update_time,
            )
            .await?;
            let revocation = revocation_of(&self.revocable_types, &row, &secrets, row.update_time);
            queue_revocations(connection, revocation.into_iter().collect()).await?;
            Ok(())
        };
        self.write(write).await
    }

    /// Runs `write` in the lock's transaction (PostgreSQL: committed with the lock), or in a
    /// transaction of its own (SQLite, where no transaction is held across the provider call).
    async fn write(
        &self,
        write: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<()>,
    ) -> Result<()> {
        match &self.connection {
            LockConnection::Transaction(txn) => write(txn).await,
            LockConnection::Plain(db) => {
                let txn = db.begin().await?;
                write(&txn).await?;
                txn.commit().await?;
                self.rows.changed(&self.row.id);
                Ok(())
            }
        }
    }

    /// Checks, inside the write's transaction, that the authorization the tokens belong to is
    /// still the connector's: still authorized, and not reauthorized since it was locked (on
    /// SQLite nothing is held across the provider call, so this is the guard). Unrelated
    /// changes (labels, a transfer report) bump the revision but must not make a refresh fail:
    /// the provider has already rotated the refresh token, and dropping the new one would leave
    /// the connector holding a spent token.
    async fn still_current(&self, connection: &sea_orm::DatabaseTransaction) -> Result<()> {
        use sea_orm::sea_query::Expr;
        let unchanged = connector::Entity::update_many()
            .col_expr(
                connector::Column::Revision,
                Expr::col(connector::Column::Revision),
            )
            .filter(connector::Column::Id.eq(self.row.id.as_str()))
            .filter(connector::Column::AuthorizeTime.eq(self.row.authorize_time))
            .filter(connector::Column::State.eq(STATE_AUTHORIZED))
            .exec(connection)
            .await?;
        if unchanged.rows_affected == 1 {
            Ok(())
        } else {
            Err(Error::Contention(format!(
                "connector {} was reauthorized, deauthorized or deleted during a token refresh",
                self.row.id
            )))
        }
    }

    /// Commits what was written and releases the lock.
    pub async fn commit(self) -> Result<()> {
        if let LockConnection::Transaction(txn) = self.connection {
            txn.commit().await?;
            self.rows.changed(&self.row.id);
        }
        Ok(())
    }
}

fn attempt_row(found: authorization_attempt::Model) -> AttemptRow {
    AttemptRow {
        state_hash: found.state_hash,
        account: found.account,
        connector_type: found.connector_type,
        connector_id: found.connector_id,
        display_name: found.display_name,
        return_url: found.return_url,
        orchestrator_completes: found.orchestrator_completes,
        pkce_verifier: Sealed {
            key_id: found.key_id,
            nonce: found.nonce,
            ciphertext: found.ciphertext,
        },
        create_time: found.create_time,
        expire_time: found.expire_time,
    }
}

async fn replace_secrets(
    txn: &impl sea_orm::ConnectionTrait,
    connector_id: &str,
    secrets: Vec<(String, Sealed)>,
) -> Result<()> {
    let fields: Vec<String> = secrets.iter().map(|(field, _)| field.clone()).collect();
    connector_secret::Entity::delete_many()
        .filter(connector_secret::Column::ConnectorId.eq(connector_id))
        .filter(connector_secret::Column::Field.is_in(fields))
        .exec(txn)
        .await?;
    insert_secrets(txn, connector_id, secrets).await
}

/// What one `rewrap` pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RewrapReport {
    /// Ciphertexts sealed again under the current key's sub-key.
    pub resealed: u64,
    /// Ciphertexts already current.
    pub current: u64,
    /// Rows another writer changed (or deleted) between read and write: they were written by
    /// that writer with the current key, so nothing is lost.
    pub changed_meanwhile: u64,
    /// Ciphertexts that do not open (tampered or moved): left as they are, and reported.
    pub unopenable: u64,
}

/// How to compute the associated data each sealed column was bound to.
pub struct RewrapContexts<'a> {
    /// A connector secret (and a queued revocation's token): connector id and field.
    pub secret: &'a (dyn Fn(&str, &str) -> Vec<u8> + Sync),
    /// An authorization attempt's PKCE verifier: its state hash.
    pub attempt: &'a (dyn Fn(&str) -> Vec<u8> + Sync),
}

/// One sealed value read for rewrapping: the row's key and the value.
struct ToRewrap<K> {
    key: K,
    context: Vec<u8>,
    sealed: Sealed,
}

impl RewrapReport {
    /// Seals `item` again unless it is current; `None` when there is nothing to write.
    fn reseal<K>(&mut self, sealer: &Sealer, item: &ToRewrap<K>) -> Option<Sealed> {
        if sealer.is_current(&item.sealed) {
            self.current += 1;
            return None;
        }
        match sealer.open(&item.sealed, &item.context) {
            Ok(plaintext) => {
                use secrecy::ExposeSecret as _;
                Some(sealer.seal(plaintext.expose_secret(), &item.context))
            }
            Err(_) => {
                self.unopenable += 1;
                None
            }
        }
    }

    fn written(&mut self, rows_affected: u64) {
        if rows_affected == 1 {
            self.resealed += 1;
        } else {
            self.changed_meanwhile += 1;
        }
    }
}

impl Store {
    /// Seals every stored secret again under the current master key's sub-key, `batch` rows
    /// per transaction, while the service keeps running: each write is guarded by the old
    /// ciphertext, so a row another process rewrote meanwhile is left to that process. After a
    /// pass that reports nothing unopenable, no stored secret needs a previous master key.
    pub async fn rewrap(
        &self,
        sealer: &Sealer,
        batch: u64,
        contexts: &RewrapContexts<'_>,
    ) -> Result<RewrapReport> {
        let mut report = RewrapReport::default();
        // Connector secrets, by (connector id, field).
        let mut after: Option<(String, String)> = None;
        loop {
            let mut query = connector_secret::Entity::find()
                .order_by_asc(connector_secret::Column::ConnectorId)
                .order_by_asc(connector_secret::Column::Field)
                .limit(batch);
            if let Some((id, field)) = &after {
                query = query.filter(
                    sea_orm::Condition::any()
                        .add(connector_secret::Column::ConnectorId.gt(id.as_str()))
                        .add(
                            sea_orm::Condition::all()
                                .add(connector_secret::Column::ConnectorId.eq(id.as_str()))
                                .add(connector_secret::Column::Field.gt(field.as_str())),
                        ),
                );
            }
            let rows = query.all(&self.db).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.connector_id.clone(), last.field.clone()));
            let full = rows.len() as u64 == batch;
            let txn = self.db.begin().await?;
            for row in rows {
                let item = ToRewrap {
                    context: (contexts.secret)(&row.connector_id, &row.field),
                    sealed: Sealed {
                        key_id: row.key_id,
                        nonce: row.nonce,
                        ciphertext: row.ciphertext,
                    },
                    key: (row.connector_id, row.field),
                };
                let Some(resealed) = report.reseal(sealer, &item) else {
                    continue;
                };
                let result = connector_secret::Entity::update_many()
                    .col_expr(connector_secret::Column::KeyId, resealed.key_id.into())
                    .col_expr(connector_secret::Column::Nonce, resealed.nonce.into())
                    .col_expr(
                        connector_secret::Column::Ciphertext,
                        resealed.ciphertext.into(),
                    )
                    .filter(connector_secret::Column::ConnectorId.eq(item.key.0))
                    .filter(connector_secret::Column::Field.eq(item.key.1))
                    .filter(connector_secret::Column::Ciphertext.eq(item.sealed.ciphertext))
                    .exec(&txn)
                    .await?;
                report.written(result.rows_affected);
            }
            txn.commit().await?;
            if !full {
                break;
            }
        }
        // Queued revocations' tokens, by id.
        let mut after = 0i64;
        loop {
            let rows = revocation::Entity::find()
                .filter(revocation::Column::Id.gt(after))
                .order_by_asc(revocation::Column::Id)
                .limit(batch)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let full = rows.len() as u64 == batch;
            let txn = self.db.begin().await?;
            for row in rows {
                let item = ToRewrap {
                    context: (contexts.secret)(&row.connector_id, &row.field),
                    sealed: Sealed {
                        key_id: row.key_id,
                        nonce: row.nonce,
                        ciphertext: row.ciphertext,
                    },
                    key: row.id,
                };
                let Some(resealed) = report.reseal(sealer, &item) else {
                    continue;
                };
                let result = revocation::Entity::update_many()
                    .col_expr(revocation::Column::KeyId, resealed.key_id.into())
                    .col_expr(revocation::Column::Nonce, resealed.nonce.into())
                    .col_expr(revocation::Column::Ciphertext, resealed.ciphertext.into())
                    .filter(revocation::Column::Id.eq(item.key))
                    .filter(revocation::Column::Ciphertext.eq(item.sealed.ciphertext))
                    .exec(&txn)
                    .await?;
                report.written(result.rows_affected);
            }
            txn.commit().await?;
            if !full {
                break;
            }
        }
        // Authorization attempts' PKCE verifiers (short-lived, but a key removed while one is
        // pending would break it), by state hash.
        let mut after = String::new();
        loop {
            let rows = authorization_attempt::Entity::find()
                .filter(authorization_attempt::Column::StateHash.gt(after.as_str()))
                .order_by_asc(authorization_attempt::Column::StateHash)
                .limit(batch)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.state_hash.clone();
            let full = rows.len() as u64 == batch;
            let txn = self.db.begin().await?;
            for row in rows {
                let item = ToRewrap {
                    context: (contexts.attempt)(&row.state_hash),
                    sealed: Sealed {
                        key_id: row.key_id,
                        nonce: row.nonce,
                        ciphertext: row.ciphertext,
                    },
                    key: row.state_hash,
                };
                let Some(resealed) = report.reseal(sealer, &item) else {
                    continue;
                };
                let result = authorization_attempt::Entity::update_many()
                    .col_expr(authorization_attempt::Column::KeyId, resealed.key_id.into())
                    .col_expr(authorization_attempt::Column::Nonce, resealed.nonce.into())
                    .col_expr(
                        authorization_attempt::Column::Ciphertext,
                        resealed.ciphertext.into(),
                    )
                    .filter(authorization_attempt::Column::StateHash.eq(item.key))
                    .filter(authorization_attempt::Column::Ciphertext.eq(item.sealed.ciphertext))
                    .exec(&txn)
                    .await?;
                report.written(result.rows_affected);
            }
            txn.commit().await?;
            if !full {
                break;
            }
        }
        Ok(report)
    }
}
