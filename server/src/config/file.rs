//! The configuration file format and environment variables, turned into a checked [`Config`]:
//! every key is optional, unknown keys are refused, and each value is bounded or refused with a
//! message naming the key.

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{Config, ConfigError, LogFormat, MasterKeyConfig, OAuthAppConfig, TlsConfig};
use crate::{
    access::{ApiKey, Capability, Scope},
    domain::connector_type::ConnectorTypeId,
};

/// The configuration file format (all keys optional). No `Debug`: it holds raw keys.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    database_acquire_timeout_secs: Option<u64>,
    database_startup_wait_secs: Option<u64>,
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
    metrics_listen: Option<SocketAddr>,
    log_format: Option<String>,
    console: Option<bool>,
    cors_allowed_origins: Option<Vec<String>>,
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
    authorize_url: Option<String>,
    token_url: Option<String>,
    identity_url: Option<String>,
    issuer: Option<String>,
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
    let startup_wait = match env("CONNECTOR_DATABASE_STARTUP_WAIT_SECS") {
        Some(secs) => Some(secs.trim().parse::<u64>().map_err(|_| {
            ConfigError("CONNECTOR_DATABASE_STARTUP_WAIT_SECS must be a number of seconds".into())
        })?),
        None => file_config.database_startup_wait_secs,
    };
    if let Some(secs) = startup_wait {
        config.database_startup_wait = Duration::from_secs(secs.min(86_400));
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
    config.metrics_listen = match env("CONNECTOR_METRICS_LISTEN") {
        Some(listen) => Some(listen.parse().map_err(|_| {
            ConfigError(format!(
                "CONNECTOR_METRICS_LISTEN `{listen}` is not an address:port"
            ))
        })?),
        None => file_config.metrics_listen,
    };
    if let Some(console) = env("CONNECTOR_CONSOLE")
        .map(|value| matches!(value.as_str(), "1" | "true" | "yes"))
        .or(file_config.console)
    {
        config.console_enabled = console;
    }
    let origins = env("CONNECTOR_CORS_ALLOWED_ORIGINS")
        .map(|list| {
            list.split(',')
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect()
        })
        .or(file_config.cors_allowed_origins)
        .unwrap_or_default();
    for origin in &origins {
        // An origin is a scheme, a host and maybe a port: nothing else matches a browser's
        // `Origin` header, and `*` would let any page call with a key it got hold of.
        let parsed = url::Url::parse(origin).ok().filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && !origin.ends_with('/')
        });
        if parsed.is_none() {
            return Err(ConfigError(format!(
                "cors_allowed_origins: `{origin}` is not an origin such as https://console.example.com"
            )));
        }
    }
    config.cors_allowed_origins = origins;
    if let Some(format) = env("CONNECTOR_LOG_FORMAT").or(file_config.log_format) {
        config.log_format = match format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError(format!(
                    "log_format `{other}` is not `text` or `json`"
                )));
            }
        };
    }
    for (id, app) in file_config.oauth {
        let connector_type = ConnectorTypeId::parse(&id)
            .filter(|connector_type| !connector_type.info().auth_method.uses_credentials())
            .ok_or_else(|| ConfigError(format!("[oauth.{id}]: not an OAuth 2.0 connector type")))?;
        config.oauth_apps.insert(
            connector_type,
            OAuthAppConfig {
                client_id: app.client_id,
                client_secret: app.client_secret.into(),
                tenant: app.tenant,
                scopes: app.scopes,
                revocation_url: app.revocation_url,
                authorize_url: app.authorize_url,
                token_url: app.token_url,
                identity_url: app.identity_url,
                issuer: app.issuer,
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
mod tests;
