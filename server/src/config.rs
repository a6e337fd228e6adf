//! Server configuration: an optional TOML file, overridden by environment variables, with
//! defaults that make a bare `connector-server` a working embedded server (SQLite in `./data`).

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    access::{ApiKey, Capability, Scope},
    clock::{Clock, SystemClock},
    domain::connector_type::ConnectorTypeId,
};

/// The default Azure Blob endpoint template.
pub const DEFAULT_AZURE_BLOB_ENDPOINT: &str = "https://{account}.blob.core.windows.net";

/// The default Microsoft identity platform base URL.
pub const DEFAULT_MICROSOFT_LOGIN: &str = "https://login.microsoftonline.com";
/// The default Microsoft Graph base URL.
pub const DEFAULT_MICROSOFT_GRAPH: &str = "https://graph.microsoft.com";

/// An OAuth 2.0 app registration for one connector type.
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
    /// RFC 7009 revocation endpoint, if the provider has one.
    pub revocation_url: Option<String>,
}

/// The default tenant segment and scopes of each OAuth 2.0 connector type (Microsoft's).
pub fn default_oauth(connector_type: ConnectorTypeId) -> Option<(&'static str, &'static str)> {
    match connector_type {
        ConnectorTypeId::OneDriveConsumer => Some((
            "consumers",
            "openid profile offline_access User.Read Files.ReadWrite.All",
        )),
        ConnectorTypeId::OneDriveForBusinessUser => Some((
            "organizations",
            "openid profile offline_access User.Read Files.ReadWrite.All Sites.ReadWrite.All",
        )),
        ConnectorTypeId::Office365 => Some((
            "organizations",
            "openid profile https://graph.microsoft.com/.default",
        )),
        ConnectorTypeId::AmazonS3 | ConnectorTypeId::AzureBlobStorage | ConnectorTypeId::WebDav => {
            None
        }
    }
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
    /// Blob endpoint template containing `{account}`.
    pub azure_blob_endpoint: String,
    /// Lifetime of the SAS tokens handed out (at most one hour).
    pub sas_lifetime: Duration,
    /// The S3 endpoint `amazon-s3` connectors name (an S3-compatible service's, or AWS's).
    pub s3_endpoint: String,
    /// The STS endpoint that checks `amazon-s3` keys and issues session credentials.
    pub sts_endpoint: String,
    /// The region STS requests are signed for.
    pub aws_region: String,
    /// Lifetime of the session credentials handed out (15 minutes to one hour).
    pub aws_session_lifetime: Duration,
    /// Permissions of the SAS tokens handed out (letters of `rwdlacup`, canonical order).
    pub sas_permissions: String,
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
    /// Microsoft identity platform base URL.
    pub microsoft_login: String,
    /// Microsoft Graph base URL.
    pub microsoft_graph: String,
    /// OAuth 2.0 app registrations by connector type.
    pub oauth_apps: HashMap<ConnectorTypeId, OAuthAppConfig>,
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
            database_statement_timeout: Duration::from_secs(10),
            row_cache_ttl: Duration::from_secs(1),
            master_key: None,
            previous_master_keys: Vec::new(),
            api_keys: Vec::new(),
            tls: None,
            allow_plaintext: false,
            azure_blob_endpoint: DEFAULT_AZURE_BLOB_ENDPOINT.to_owned(),
            sas_lifetime: Duration::from_secs(3600),
            s3_endpoint: "https://s3.amazonaws.com".to_owned(),
            sts_endpoint: "https://sts.amazonaws.com".to_owned(),
            aws_region: "us-east-1".to_owned(),
            aws_session_lifetime: Duration::from_secs(3600),
            sas_permissions: crate::providers::azure_blob::DEFAULT_SAS_PERMISSIONS.to_owned(),
            provider_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            max_request_bytes: 1024 * 1024,
            health_check_interval: Duration::from_secs(2),
            limits: Limits::default(),
            public_url: None,
            return_urls: Vec::new(),
            callback_completes_authorizations: false,
            microsoft_login: DEFAULT_MICROSOFT_LOGIN.to_owned(),
            microsoft_graph: DEFAULT_MICROSOFT_GRAPH.to_owned(),
            oauth_apps: HashMap::new(),
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
    /// Refuses provider endpoints that would carry account keys, client secrets or tokens in
    /// the clear: the identity platform, Graph, revocation endpoints and the Blob endpoint must
    /// be `https`, except on loopback (an emulator on this machine) or when
    /// `allow_insecure_endpoints` is set. Checked at start-up.
    pub fn check_endpoints(&self) -> Result<(), ConfigError> {
        let revocation_urls = self
            .oauth_apps
            .values()
            .filter_map(|app| app.revocation_url.as_deref());
        let blob = self.azure_blob_endpoint.replace("{account}", "account");
        let endpoints = [
            ("microsoft_login", self.microsoft_login.as_str()),
            ("microsoft_graph", self.microsoft_graph.as_str()),
            ("azure_blob_endpoint", blob.as_str()),
            ("s3_endpoint", self.s3_endpoint.as_str()),
            ("sts_endpoint", self.sts_endpoint.as_str()),
        ]
        .into_iter()
        .chain(revocation_urls.map(|url| ("revocation_url", url)));
        for (key, endpoint) in endpoints {
            let parsed = url::Url::parse(endpoint)
                .ok()
                .filter(|url| url.host().is_some())
                .ok_or_else(|| ConfigError(format!("{key} `{endpoint}` is not an absolute URL")))?;
            match parsed.scheme() {
                "https" => {}
                "http" if self.allow_insecure_endpoints || is_loopback(&parsed) => {}
                "http" => {
                    return Err(ConfigError(format!(
                        "{key} `{endpoint}` is plain http: secrets would cross the network \
                         unencrypted; use https (or set allow_insecure_endpoints for an \
                         emulator)"
                    )));
                }
                other => {
                    return Err(ConfigError(format!(
                        "{key} `{endpoint}` has unsupported scheme `{other}`"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
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
            .field("azure_blob_endpoint", &self.azure_blob_endpoint)
            .field("sas_lifetime", &self.sas_lifetime)
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

/// The configuration file format (all keys optional). No `Debug`: it holds raw keys.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    database_acquire_timeout_secs: Option<u64>,
    database_statement_timeout_secs: Option<u64>,
    row_cache_ttl_ms: Option<u64>,
    health_check_interval_secs: Option<u64>,
    master_key: Option<FileMasterKey>,
    #[serde(default)]
    previous_master_keys: Vec<FileMasterKey>,
    #[serde(default)]
    api_keys: Vec<FileApiKey>,
    tls: Option<FileTls>,
    allow_plaintext: Option<bool>,
    azure_blob_endpoint: Option<String>,
    sas_lifetime_secs: Option<u64>,
    s3_endpoint: Option<String>,
    sts_endpoint: Option<String>,
    aws_region: Option<String>,
    aws_session_lifetime_secs: Option<u64>,
    sas_permissions: Option<String>,
    provider_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_request_bytes: Option<usize>,
    max_concurrent_streams: Option<u32>,
    concurrency_per_connection: Option<usize>,
    max_in_flight_requests: Option<usize>,
    keepalive_interval_secs: Option<u64>,
    keepalive_timeout_secs: Option<u64>,
    max_connection_age_secs: Option<u64>,
    max_connection_age_grace_secs: Option<u64>,
    max_watches_per_key: Option<usize>,
    max_watches_per_account: Option<usize>,
    max_watch_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    public_url: Option<String>,
    #[serde(default)]
    return_urls: Vec<String>,
    callback_completes_authorizations: Option<bool>,
    microsoft_login: Option<String>,
    microsoft_graph: Option<String>,
    inactivity_period_days: Option<u64>,
    sweep_interval_secs: Option<u64>,
    sweep_batch: Option<u64>,
    azure_key_check_interval_secs: Option<u64>,
    allow_insecure_endpoints: Option<bool>,
    allow_private_endpoints: Option<bool>,
    revocation_max_attempts: Option<u32>,
    revocation_initial_backoff_secs: Option<u64>,
    revocation_max_backoff_secs: Option<u64>,
    revocation_poll_interval_secs: Option<u64>,
    /// `[oauth.<connector type id>]` tables.
    #[serde(default)]
    oauth: HashMap<String, FileOAuthApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOAuthApp {
    client_id: String,
    client_secret: String,
    tenant: Option<String>,
    scopes: Option<Vec<String>>,
    revocation_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMasterKey {
    id: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApiKey {
    id: String,
    sha256: String,
    /// Account ids; absent or `["*"]` means every account.
    accounts: Option<Vec<String>>,
    /// `read`, `manage`, `tokens`; absent means all three.
    capabilities: Option<Vec<String>>,
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Loads the configuration from an optional TOML file and the environment (`CONNECTOR_*`,
/// `DATABASE_URL`). Returns it with the address to listen on.
pub fn load(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Config, SocketAddr), ConfigError> {
    let file_config: FileConfig = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| ConfigError(format!("cannot read {}: {error}", path.display())))?;
            // Only the message and line: toml's own rendering quotes the offending line, which
            // could hold a master key.
            toml::from_str(&text).map_err(|error| {
                let line = error
                    .span()
                    .map(|span| text[..span.start].lines().count().max(1))
                    .unwrap_or(0);
                ConfigError(format!(
                    "{} line {line}: {}",
                    path.display(),
                    error.message()
                ))
            })?
        }
        None => FileConfig::default(),
    };
    let data_dir = env("CONNECTOR_DATA_DIR")
        .map(PathBuf::from)
        .or(file_config.data_dir)
        .unwrap_or_else(|| PathBuf::from("data"));
    let mut config = Config::new(data_dir);
    config.database_url = env("DATABASE_URL").or(file_config.database_url);
    if let Some(connections) = file_config.database_max_connections {
        config.database_max_connections = connections.max(1);
    }
    if let Some(secs) = file_config.database_acquire_timeout_secs {
        config.database_acquire_timeout = Duration::from_secs(secs.clamp(1, 60));
    }
    if let Some(secs) = file_config.database_statement_timeout_secs {
        config.database_statement_timeout = Duration::from_secs(secs.clamp(1, 3600));
    }
    if let Some(ms) = file_config.row_cache_ttl_ms {
        config.row_cache_ttl = Duration::from_millis(ms.min(60_000));
    }
    if let Some(secs) = file_config.health_check_interval_secs {
        config.health_check_interval = Duration::from_secs(secs.clamp(1, 60));
    }
    config.master_key = match (env("CONNECTOR_MASTER_KEY"), file_config.master_key) {
        (Some(key), file_key) => Some(MasterKeyConfig {
            id: env("CONNECTOR_MASTER_KEY_ID")
                .or(file_key.map(|file_key| file_key.id))
                .unwrap_or_else(|| "env".to_owned()),
            key_base64: key.into(),
        }),
        (None, Some(key)) => Some(MasterKeyConfig {
            id: key.id,
            key_base64: key.key.into(),
        }),
        (None, None) => None,
    };
    config.previous_master_keys = file_config
        .previous_master_keys
        .into_iter()
        .map(|key| MasterKeyConfig {
            id: key.id,
            key_base64: key.key.into(),
        })
        .collect();
    config.api_keys = file_config
        .api_keys
        .into_iter()
        .map(api_key)
        .collect::<Result<_, _>>()?;
    config.tls = match (
        env("CONNECTOR_TLS_CERT").map(PathBuf::from),
        env("CONNECTOR_TLS_KEY").map(PathBuf::from),
        file_config.tls,
    ) {
        (Some(cert), Some(key), file_tls) => Some(TlsConfig {
            cert,
            key,
            client_ca: env("CONNECTOR_TLS_CLIENT_CA")
                .map(PathBuf::from)
                .or(file_tls.and_then(|tls| tls.client_ca)),
        }),
        (None, None, Some(file_tls)) => Some(TlsConfig {
            cert: file_tls.cert,
            key: file_tls.key,
            client_ca: env("CONNECTOR_TLS_CLIENT_CA")
                .map(PathBuf::from)
                .or(file_tls.client_ca),
        }),
        (None, None, None) => None,
        _ => {
            return Err(ConfigError(
                "CONNECTOR_TLS_CERT and CONNECTOR_TLS_KEY go together".into(),
            ));
        }
    };
    if config.tls.is_none() && env("CONNECTOR_TLS_CLIENT_CA").is_some() {
        return Err(ConfigError(
            "CONNECTOR_TLS_CLIENT_CA needs TLS (a certificate and key) configured".into(),
        ));
    }
    if let Some(allow) = env("CONNECTOR_ALLOW_PLAINTEXT")
        .map(|value| matches!(value.as_str(), "1" | "true" | "yes"))
        .or(file_config.allow_plaintext)
    {
        config.allow_plaintext = allow;
    }
    if let Some(endpoint) = env("CONNECTOR_AZURE_BLOB_ENDPOINT").or(file_config.azure_blob_endpoint)
    {
        if !endpoint.contains("{account}") {
            return Err(ConfigError(
                "azure_blob_endpoint must contain `{account}`".into(),
            ));
        }
        config.azure_blob_endpoint = endpoint;
    }
    if let Some(endpoint) = env("CONNECTOR_S3_ENDPOINT").or(file_config.s3_endpoint) {
        config.s3_endpoint = endpoint.trim_end_matches('/').to_owned();
    }
    if let Some(endpoint) = env("CONNECTOR_STS_ENDPOINT").or(file_config.sts_endpoint) {
        config.sts_endpoint = endpoint.trim_end_matches('/').to_owned();
    }
    if let Some(region) = file_config.aws_region {
        config.aws_region = region;
    }
    if let Some(secs) = file_config.aws_session_lifetime_secs {
        if !(900..=3600).contains(&secs) {
            return Err(ConfigError(
                "aws_session_lifetime_secs must be between 900 and 3600".into(),
            ));
        }
        config.aws_session_lifetime = Duration::from_secs(secs);
    }
    if let Some(secs) = file_config.sas_lifetime_secs {
        if !(60..=3600).contains(&secs) {
            return Err(ConfigError(
                "sas_lifetime_secs must be between 60 and 3600".into(),
            ));
        }
        config.sas_lifetime = Duration::from_secs(secs);
    }
    if let Some(permissions) = file_config.sas_permissions {
        config.sas_permissions =
            crate::providers::azure_blob::canonical_sas_permissions(&permissions)
                .map_err(|why| ConfigError(format!("sas_permissions `{permissions}`: {why}")))?;
    }
    if let Some(secs) = file_config.provider_timeout_secs {
        config.provider_timeout = Duration::from_secs(secs.clamp(1, 600));
    }
    if let Some(secs) = file_config.request_timeout_secs {
        config.request_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(bytes) = file_config.max_request_bytes {
        config.max_request_bytes = bytes.max(4096);
    }
    let limits = &mut config.limits;
    if let Some(streams) = file_config.max_concurrent_streams {
        limits.max_concurrent_streams = streams.clamp(1, 10_000);
    }
    if let Some(calls) = file_config.concurrency_per_connection {
        limits.concurrency_per_connection = calls.clamp(1, 10_000);
    }
    if let Some(calls) = file_config.max_in_flight_requests {
        limits.max_in_flight_requests = calls.clamp(1, 100_000);
    }
    if let Some(secs) = file_config.keepalive_interval_secs {
        limits.keepalive_interval = Duration::from_secs(secs.clamp(1, 3600));
    }
    if let Some(secs) = file_config.keepalive_timeout_secs {
        limits.keepalive_timeout = Duration::from_secs(secs.clamp(1, 600));
    }
    if let Some(secs) = file_config.max_connection_age_secs {
        limits.max_connection_age = Duration::from_secs(secs.clamp(1, 7 * 86_400));
    }
    if let Some(secs) = file_config.max_connection_age_grace_secs {
        limits.max_connection_age_grace = Duration::from_secs(secs.clamp(1, 86_400));
    }
    if let Some(watches) = file_config.max_watches_per_key {
        limits.max_watches_per_key = watches.clamp(1, 1_000_000);
    }
    if let Some(watches) = file_config.max_watches_per_account {
        limits.max_watches_per_account = watches.clamp(1, 1_000_000);
    }
    if let Some(secs) = file_config.max_watch_secs {
        limits.max_watch_duration = Duration::from_secs(secs.clamp(1, 86_400));
    }
    if let Some(secs) = file_config.shutdown_grace_secs {
        limits.shutdown_grace = Duration::from_secs(secs.clamp(1, 3600));
    }
    config.public_url = env("CONNECTOR_PUBLIC_URL").or(file_config.public_url);
    config.return_urls = file_config.return_urls;
    config.callback_completes_authorizations = file_config
        .callback_completes_authorizations
        .unwrap_or(false);
    // Checked now rather than when a browser arrives at the callback.
    for url in config.public_url.iter().chain(&config.return_urls) {
        match url::Url::parse(url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
            _ => {
                return Err(ConfigError(format!(
                    "`{url}` is not an absolute http(s) URL"
                )));
            }
        }
    }
    if let Some(login) = file_config.microsoft_login {
        config.microsoft_login = login;
    }
    if let Some(graph) = file_config.microsoft_graph {
        config.microsoft_graph = graph;
    }
    if let Some(days) = file_config.inactivity_period_days {
        config.inactivity_period = Duration::from_secs(days.max(1) * 24 * 3600);
    }
    if let Some(secs) = file_config.sweep_interval_secs {
        config.sweep_interval = Duration::from_secs(secs.max(1));
    }
    if let Some(batch) = file_config.sweep_batch {
        config.sweep_batch = batch.clamp(1, 100_000);
    }
    if let Some(allow) = env("CONNECTOR_ALLOW_INSECURE_ENDPOINTS")
        .map(|value| matches!(value.as_str(), "1" | "true" | "yes"))
        .or(file_config.allow_insecure_endpoints)
    {
        config.allow_insecure_endpoints = allow;
    }
    if let Some(allow) = env("CONNECTOR_ALLOW_PRIVATE_ENDPOINTS")
        .map(|value| matches!(value.as_str(), "1" | "true" | "yes"))
        .or(file_config.allow_private_endpoints)
    {
        config.allow_private_endpoints = allow;
    }
    if let Some(secs) = file_config.azure_key_check_interval_secs {
        config.azure_key_check_interval = Duration::from_secs(secs.min(86_400));
    }
    if let Some(attempts) = file_config.revocation_max_attempts {
        config.revocation_max_attempts = attempts.clamp(1, 100);
    }
    if let Some(secs) = file_config.revocation_initial_backoff_secs {
        config.revocation_initial_backoff = Duration::from_secs(secs.clamp(1, 86_400));
    }
    if let Some(secs) = file_config.revocation_max_backoff_secs {
        config.revocation_max_backoff = Duration::from_secs(secs.clamp(1, 86_400));
    }
    if let Some(secs) = file_config.revocation_poll_interval_secs {
        config.revocation_poll_interval = Duration::from_secs(secs.clamp(1, 3600));
    }
    for (id, app) in file_config.oauth {
        let connector_type = ConnectorTypeId::parse(&id)
            .filter(|connector_type| default_oauth(*connector_type).is_some())
            .ok_or_else(|| ConfigError(format!("[oauth.{id}]: not an OAuth 2.0 connector type")))?;
        config.oauth_apps.insert(
            connector_type,
            OAuthAppConfig {
                client_id: app.client_id,
                client_secret: app.client_secret.into(),
                tenant: app.tenant,
                scopes: app.scopes,
                revocation_url: app.revocation_url,
            },
        );
    }
    let listen = match env("CONNECTOR_LISTEN") {
        Some(listen) => listen.parse().map_err(|_| {
            ConfigError(format!(
                "CONNECTOR_LISTEN `{listen}` is not an address:port"
            ))
        })?,
        None => file_config
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
    };
    Ok((config, listen))
}

fn api_key(key: FileApiKey) -> Result<ApiKey, ConfigError> {
    let sha256: [u8; 32] = hex::decode(key.sha256.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            ConfigError(format!(
                "api key `{}`: sha256 must be 64 hex digits",
                key.id
            ))
        })?;
    let scope = match key.accounts {
        None => Scope::AllAccounts,
        Some(accounts) if accounts.iter().any(|account| account == "*") => Scope::AllAccounts,
        Some(accounts) => Scope::Accounts(accounts.into_iter().collect::<BTreeSet<_>>()),
    };
    let capabilities = match key.capabilities {
        None => Capability::DEFAULT.into_iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                Capability::parse(name).ok_or_else(|| {
                    ConfigError(format!(
                        "api key `{}`: capability `{name}` is not one of read, manage, tokens",
                        key.id
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(ApiKey {
        id: key.id,
        sha256,
        scope,
        capabilities,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret as _;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn file(content: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), content).unwrap();
        file
    }

    #[test]
    fn provider_endpoints_must_be_https_except_on_loopback() {
        let mut config = Config::new("data");
        config.check_endpoints().expect("the defaults are https");
        config.azure_blob_endpoint = "http://127.0.0.1:10000/{account}".into();
        config.microsoft_login = "http://localhost:8080".into();
        config.microsoft_graph = "http://[::1]:8080".into();
        config
            .check_endpoints()
            .expect("an emulator on this machine");
        config.azure_blob_endpoint = "http://azurite:10000/{account}".into();
        let refused = config
            .check_endpoints()
            .expect_err("plain http over a network");
        assert!(refused.0.contains("azure_blob_endpoint"), "{refused}");
        config.allow_insecure_endpoints = true;
        config.check_endpoints().expect("explicitly allowed");
        config.allow_insecure_endpoints = false;
        config.azure_blob_endpoint = DEFAULT_AZURE_BLOB_ENDPOINT.into();
        config.oauth_apps.insert(
            ConnectorTypeId::OneDriveConsumer,
            OAuthAppConfig {
                client_id: "id".into(),
                client_secret: "secret".to_owned().into(),
                tenant: None,
                scopes: None,
                revocation_url: Some("http://idp.example.com/revoke".into()),
            },
        );
        let refused = config.check_endpoints().expect_err("revocation over http");
        assert!(refused.0.contains("revocation_url"), "{refused}");
    }

    #[test]
    fn no_configuration_means_the_embedded_default() {
        let (config, listen) = load(None, env_of(&[])).unwrap();
        assert_eq!(listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert!(config.database_url.is_none() && config.master_key.is_none());
        assert!(config.api_keys.is_empty());
        assert_eq!(config.azure_blob_endpoint, DEFAULT_AZURE_BLOB_ENDPOINT);
    }

    #[test]
    fn file_settings_and_environment_overrides() {
        let hash = "ab".repeat(32);
        let config_file = file(&format!(
            r#"
            listen = "0.0.0.0:6000"
            database_url = "postgres://u:p@db/connectors"
            azure_blob_endpoint = "http://127.0.0.1:10000/{{account}}"
            sas_lifetime_secs = 600
            [master_key]
            id = "k2"
            key = "AAAA"
            [[previous_master_keys]]
            id = "k1"
            key = "BBBB"
            [[api_keys]]
            id = "all"
            sha256 = "{hash}"
            [[api_keys]]
            id = "star"
            sha256 = "{hash}"
            accounts = ["*"]
            [[api_keys]]
            id = "two"
            sha256 = "{hash}"
            accounts = ["a", "b"]
            "#
        ));
        let (config, listen) = load(
            Some(config_file.path()),
            env_of(&[
                ("CONNECTOR_LISTEN", "127.0.0.1:7000"),
                ("CONNECTOR_MASTER_KEY", "CCCC"),
            ]),
        )
        .unwrap();
        assert_eq!(listen.to_string(), "127.0.0.1:7000", "the environment wins");
        assert_eq!(
            config.database_url.as_deref(),
            Some("postgres://u:p@db/connectors")
        );
        let master = config.master_key.as_ref().unwrap();
        assert_eq!(
            (master.id.as_str(), master.key_base64.expose_secret()),
            ("k2", "CCCC")
        );
        assert_eq!(config.previous_master_keys[0].id, "k1");
        assert_eq!(config.sas_lifetime, Duration::from_secs(600));
        assert_eq!(config.api_keys[0].scope, Scope::AllAccounts);
        assert_eq!(config.api_keys[1].scope, Scope::AllAccounts);
        assert_eq!(
            config.api_keys[2].scope,
            Scope::Accounts(BTreeSet::from(["a".to_owned(), "b".to_owned()]))
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains(":p@") && !shown.contains("CCCC"), "{shown}");
    }

    #[test]
    fn bad_settings_are_refused_without_quoting_secrets() {
        let cases = [
            "sas_lifetime_secs = 7200",
            "azure_blob_endpoint = \"https://example.net\"",
            "[[api_keys]]\nid = \"x\"\nsha256 = \"nothex\"",
            "unknown_setting = 1",
            "return_urls = [\"/relative\"]",
            "public_url = \"javascript:alert(1)\"",
            "[master_key]\nid = \"k\"\nkey = \"TOP-SECRET\" oops",
        ];
        for content in cases {
            let config_file = file(content);
            let error = load(Some(config_file.path()), env_of(&[])).expect_err(content);
            assert!(!error.to_string().contains("TOP-SECRET"), "{error}");
        }
    }

    #[test]
    fn the_readme_example_configuration_loads() {
        let readme = include_str!("../../README.md");
        let example = readme
            .split("Example `connector.toml`:")
            .nth(1)
            .and_then(|rest| rest.split("```toml").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("the README has an example configuration");
        let config_file = file(example);
        let (config, listen) = load(Some(config_file.path()), env_of(&[])).expect("it loads");
        assert_eq!(listen.port(), 50051);
        assert!(
            config
                .oauth_apps
                .contains_key(&ConnectorTypeId::OneDriveConsumer)
        );
        assert_eq!(config.return_urls.len(), 1);
        let capabilities: Vec<Vec<Capability>> = config
            .api_keys
            .iter()
            .map(|key| key.capabilities.iter().copied().collect())
            .collect();
        assert_eq!(
            capabilities,
            [
                vec![Capability::Read, Capability::Manage],
                vec![Capability::Read, Capability::Tokens]
            ]
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://user:hunter2@db:5432/x"),
            "postgres://user:<redacted>@db:5432/x"
        );
        assert_eq!(redact_password("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
