//! Server configuration: an optional TOML file, overridden by environment variables, with
//! defaults that make a bare `connector-server` a working embedded server (SQLite in `./data`).

use std::{path::PathBuf, sync::Arc, time::Duration};

use secrecy::SecretString;

use crate::{
    access::ApiKey,
    clock::{Clock, SystemClock},
    connector_types::Sections,
};

mod api_keys;
mod file;
mod types;

pub use file::{DEFAULT_LISTEN, load};

/// An OAuth 2.0 app registration for one connector type, for setting up a server in code
/// ([`Config::set_oauth_app`]); a configuration file gives the same keys in the type's section.
#[derive(Clone)]
pub struct OAuthAppConfig {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Tenant segment; defaults per connector type (`consumers`, `organizations`).
    pub tenant: Option<String>,
    /// Scopes; default per connector type.
    pub scopes: Option<Vec<String>>,
    /// The revocation endpoint: for Microsoft types an RFC 7009 endpoint if one is wanted
    /// (Microsoft has none); for the others an override of the provider's own.
    pub revocation_url: Option<String>,
    /// Overrides the provider's authorization endpoint (not for Microsoft types, which take
    /// `login_url`).
    pub authorize_url: Option<String>,
    /// Overrides the provider's token endpoint (likewise).
    pub token_url: Option<String>,
    /// Overrides the call that names the account (Dropbox, Box).
    pub identity_url: Option<String>,
    /// Overrides the id token issuer (Google).
    pub issuer: Option<String>,
}

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// TLS for the listening port: the server's certificate chain and key (PEM files), and
/// optionally a CA bundle that client certificates must chain to (mutual TLS).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle: when set, every connection must present a client certificate it signed
    /// (checked in the TLS handshake); the API key is still required on every call.
    pub client_ca: Option<PathBuf>,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A master key given in configuration.
#[derive(Debug, Clone)]
pub struct MasterKeyConfig {
    /// Key id, stored beside every ciphertext it seals.
    pub id: String,
    /// The 32-byte key, base64.
    pub key_base64: SecretString,
}

/// Everything `run` needs. `Debug` hides the database password and every key.
#[derive(Clone)]
pub struct Config {
    /// Directory for the SQLite database and generated key files.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; `None` means the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Largest number of pooled PostgreSQL connections (SQLite always uses one).
    pub database_max_connections: u32,
    /// Longest wait for a database connection (a database that is gone answers
    /// `DATABASE_UNAVAILABLE` after this).
    pub database_acquire_timeout: Duration,
    /// How long start-up waits for a database it cannot reach (reporting health `NOT_SERVING`
    /// meanwhile) before it gives up; zero gives up at once.
    pub database_startup_wait: Duration,
    /// Longest a PostgreSQL statement may run.
    pub database_statement_timeout: Duration,
    /// How long `GetConnector` and `GetAccessToken` reuse a connector row read in this process.
    /// This process's own changes are seen at once; another process's within this bound.
    pub row_cache_ttl: Duration,
    /// The key new secrets are sealed with. `None`: with SQLite, a key file in `data_dir`
    /// (created on first start); with PostgreSQL, an error (every process must share one key).
    pub master_key: Option<MasterKeyConfig>,
    /// Older keys that still open existing secrets (key rotation).
    pub previous_master_keys: Vec<MasterKeyConfig>,
    /// Accepted API keys. Empty: an admin key file is created in `data_dir`.
    pub api_keys: Vec<ApiKey>,
    /// TLS (and mTLS) on the listening port; `None`: plaintext, allowed on loopback only unless
    /// `allow_plaintext`.
    pub tls: Option<TlsConfig>,
    /// Allow listening without TLS on an address other than loopback (behind a mesh or proxy
    /// that terminates TLS). Off: such a configuration is refused at start-up.
    pub allow_plaintext: bool,
    /// Each connector type's section, `[types.<id>]`: its module reads and checks it.
    pub types: Sections,
    /// Timeout for each provider HTTP request.
    pub provider_timeout: Duration,
    /// Deadline of each RPC.
    pub request_timeout: Duration,
    /// Largest accepted request message.
    pub max_request_bytes: usize,
    /// How often the health service checks the database.
    pub health_check_interval: Duration,
    /// Bounds on connections, streams and calls in flight.
    pub limits: Limits,
    /// The URL browsers reach this server at; the OAuth 2.0 redirect URI is
    /// `{public_url}/oauth/callback`. Default: `http://{listen address}`.
    pub public_url: Option<String>,
    /// Return URLs `StartAuthorization` may send browsers to afterwards (exact match).
    pub return_urls: Vec<String>,
    /// Opt-in: the OAuth callback may link an account itself, after the user confirms on a
    /// page naming the customer account. Off by default: the orchestrator completes every
    /// authorization (`CompleteAuthorization`), binding it to the user who started it.
    pub callback_completes_authorizations: bool,
    /// How long an authorization link works.
    pub authorization_lifetime: Duration,
    /// Access tokens are refreshed when they expire within this.
    pub refresh_skew: Duration,
    /// A connector that moves no data for this long is deauthorized (90 days).
    pub inactivity_period: Duration,
    /// How often the sweeper looks for connectors past their inactivity deadline.
    pub sweep_interval: Duration,
    /// Connectors deauthorized per sweeper transaction.
    pub sweep_batch: u64,
    /// How often the process's one event feed looks for new events for the open watches.
    pub event_poll_interval: Duration,
    /// Allow plain-http provider endpoints on hosts other than this machine (for emulators in
    /// a container network). Off: credentials and tokens only travel over TLS, or to loopback.
    pub allow_insecure_endpoints: bool,
    /// Whether customer-given endpoints (a WebDAV server's URL) may be plain http and resolve
    /// to private, loopback or link-local addresses. Off: this service never becomes a way
    /// into its own network.
    pub allow_private_endpoints: bool,
    /// How long an Azure account key seen accepted is trusted before `GetAccessToken` checks
    /// it with the storage account again (a rejected key deauthorizes the connector).
    pub azure_key_check_interval: Duration,
    /// Tries of a revocation before its outcome is `FAILED`.
    pub revocation_max_attempts: u32,
    /// Wait after a revocation's first failed try; doubled after each further one.
    pub revocation_initial_backoff: Duration,
    /// Longest wait between revocation tries.
    pub revocation_max_backoff: Duration,
    /// How often the revocation worker looks for due revocations (it is also woken when one is
    /// queued by this process).
    pub revocation_poll_interval: Duration,
    /// Where Prometheus metrics are served (`GET /metrics`, plain HTTP); `None` (the default):
    /// not served.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve the connectors console at `/console/` (on by default). Its own address,
    /// `{public_url}/console/`, is then also an accepted OAuth 2.0 return URL.
    pub console_enabled: bool,
    /// Browser origins (`https://host[:port]`) allowed to call the API over gRPC-Web from
    /// another origin (CORS). Empty (the default): only same-origin pages, such as the console.
    pub cors_allowed_origins: Vec<String>,
    /// How the binary writes its logs (the library only emits them).
    pub log_format: LogFormat,
    /// The clock; the system clock except in tests.
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// Defaults for a server keeping its data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            database_max_connections: 10,
            database_acquire_timeout: Duration::from_secs(3),
            database_startup_wait: Duration::from_secs(300),
            database_statement_timeout: Duration::from_secs(10),
            row_cache_ttl: Duration::from_secs(1),
            master_key: None,
            previous_master_keys: Vec::new(),
            api_keys: Vec::new(),
            tls: None,
            allow_plaintext: false,
            types: Sections::default(),
            provider_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            max_request_bytes: 1024 * 1024,
            health_check_interval: Duration::from_secs(2),
            limits: Limits::default(),
            public_url: None,
            return_urls: Vec::new(),
            callback_completes_authorizations: false,
            authorization_lifetime: Duration::from_secs(600),
            refresh_skew: Duration::from_secs(300),
            inactivity_period: Duration::from_secs(90 * 24 * 3600),
            sweep_interval: Duration::from_secs(3600),
            sweep_batch: 1000,
            event_poll_interval: Duration::from_millis(250),
            allow_insecure_endpoints: false,
            allow_private_endpoints: false,
            azure_key_check_interval: Duration::from_secs(900),
            revocation_max_attempts: 10,
            revocation_initial_backoff: Duration::from_secs(30),
            revocation_max_backoff: Duration::from_secs(3600),
            revocation_poll_interval: Duration::from_secs(10),
            metrics_listen: None,
            console_enabled: true,
            cors_allowed_origins: Vec::new(),
            log_format: LogFormat::Text,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Bounds that keep one client (or many) from exhausting the server. The defaults are meant
/// for production; every one can be changed in the configuration file.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// HTTP/2 `MAX_CONCURRENT_STREAMS` announced on every connection.
    pub max_concurrent_streams: u32,
    /// Calls of one connection served at once; more wait.
    pub concurrency_per_connection: usize,
    /// Connector-service calls in flight in the process; one more answers `RESOURCE_EXHAUSTED`
    /// `OVERLOADED` at once.
    pub max_in_flight_requests: usize,
    /// HTTP/2 ping interval on idle connections (a dead peer is dropped after the timeout).
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered.
    pub keepalive_timeout: Duration,
    /// A connection older than this is asked to go away (GOAWAY), so clients rebalance across
    /// replicas; its calls get `max_connection_age_grace` to finish.
    pub max_connection_age: Duration,
    /// How long calls of an aged connection may still run.
    pub max_connection_age_grace: Duration,
    /// Open `WatchConnectorEvents` streams per API key.
    pub max_watches_per_key: usize,
    /// Open `WatchConnectorEvents` streams per customer account.
    pub max_watches_per_account: usize,
    /// How long one watch stays open; then the stream ends and the client resumes.
    pub max_watch_duration: Duration,
    /// After SIGTERM, how long in-flight calls and open connections get before the process
    /// closes them and exits.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 200,
            concurrency_per_connection: 64,
            max_in_flight_requests: 512,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(1800),
            max_connection_age_grace: Duration::from_secs(60),
            max_watches_per_key: 1000,
            max_watches_per_account: 16,
            max_watch_duration: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Configures `type_id`'s app registration (as its `[types.<id>]` section would).
    pub fn set_oauth_app(&mut self, type_id: &str, app: OAuthAppConfig) {
        use secrecy::ExposeSecret as _;
        let types = &mut self.types;
        types.set(type_id, "client_id", app.client_id);
        types.set(type_id, "client_secret", app.client_secret.expose_secret());
        if let Some(scopes) = app.scopes {
            types.set(type_id, "scopes", scopes);
        }
        let optional = [
            ("tenant", app.tenant),
            ("revocation_url", app.revocation_url),
            ("authorize_url", app.authorize_url),
            ("token_url", app.token_url),
            ("identity_url", app.identity_url),
            ("issuer", app.issuer),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                types.set(type_id, key, value);
            }
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_password),
            )
            .field("database_max_connections", &self.database_max_connections)
            .field("master_key", &self.master_key.as_ref().map(|key| &key.id))
            .field(
                "api_keys",
                &self.api_keys.iter().map(|key| &key.id).collect::<Vec<_>>(),
            )
            .field("tls", &self.tls)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// A database URL with its password replaced, for logs and `Debug`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials
                .split_once(':')
                .map_or(credentials, |(user, _)| user);
            format!("{scheme}://{user}:<redacted>@{host}")
        }
        _ => url.to_owned(),
    }
}
