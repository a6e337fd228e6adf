//! The configuration file format and environment variables, turned into a checked [`Config`]:
//! every key is optional, unknown keys are refused, and each value is bounded or refused with a
//! message naming the key.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{
    Config, ConfigError, Limits, LogFormat, MasterKeyConfig, TlsConfig,
    api_keys::{FileApiKey, api_key},
    types,
};

/// The configuration file format (all keys optional). No `Debug`: it holds raw keys.
#[derive(Default, Deserialize)]
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
    /// `[types.<connector type id>]` sections: each type's module reads its own.
    #[serde(default)]
    types: BTreeMap<String, toml::Table>,
    /// `[oauth.<connector type id>]` tables: the older name of an OAuth 2.0 type's section.
    #[serde(default)]
    oauth: BTreeMap<String, toml::Table>,
    /// Every other top-level key: an older name of a type's key (see `types.rs`), or a
    /// mistake, refused there.
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
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

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Loads the configuration from an optional TOML file and the environment (`CONNECTOR_*`,
/// `DATABASE_URL`). Returns it with the address to listen on.
pub fn load(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Config, SocketAddr), ConfigError> {
    let mut file_config = match file {
        Some(path) => read(path)?,
        None => FileConfig::default(),
    };
    let data_dir = env("CONNECTOR_DATA_DIR")
        .map(PathBuf::from)
        .or(file_config.data_dir.take())
        .unwrap_or_else(|| PathBuf::from("data"));
    let mut config = Config::new(data_dir);
    config.types = types::sections(
        std::mem::take(&mut file_config.types),
        std::mem::take(&mut file_config.oauth),
        std::mem::take(&mut file_config.other),
        &env,
    )?;
    database(&mut config, &file_config, &env)?;
    keys(&mut config, &mut file_config, &env)?;
    transport(&mut config, &mut file_config, &env)?;
    limits(&mut config.limits, &file_config);
    authorization(&mut config, &mut file_config, &env)?;
    lifecycle(&mut config, &file_config);
    observability(&mut config, &mut file_config, &env)?;
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

/// The file, parsed. Errors give only the message and line: toml's own rendering quotes the
/// offending line, which could hold a master key.
fn read(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError(format!("cannot read {}: {error}", path.display())))?;
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
    })
}

/// Whether an environment flag is on.
fn flag(value: String) -> bool {
    matches!(value.as_str(), "1" | "true" | "yes")
}

/// The database keys.
fn database(
    config: &mut Config,
    file: &FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    config.database_url = env("DATABASE_URL").or(file.database_url.clone());
    if let Some(connections) = file.database_max_connections {
        config.database_max_connections = connections.max(1);
    }
    if let Some(secs) = file.database_acquire_timeout_secs {
        config.database_acquire_timeout = Duration::from_secs(secs.clamp(1, 60));
    }
    let startup_wait = match env("CONNECTOR_DATABASE_STARTUP_WAIT_SECS") {
        Some(secs) => Some(secs.trim().parse::<u64>().map_err(|_| {
            ConfigError("CONNECTOR_DATABASE_STARTUP_WAIT_SECS must be a number of seconds".into())
        })?),
        None => file.database_startup_wait_secs,
    };
    if let Some(secs) = startup_wait {
        config.database_startup_wait = Duration::from_secs(secs.min(86_400));
    }
    if let Some(secs) = file.database_statement_timeout_secs {
        config.database_statement_timeout = Duration::from_secs(secs.clamp(1, 3600));
    }
    if let Some(ms) = file.row_cache_ttl_ms {
        config.row_cache_ttl = Duration::from_millis(ms.min(60_000));
    }
    if let Some(secs) = file.health_check_interval_secs {
        config.health_check_interval = Duration::from_secs(secs.clamp(1, 60));
    }
    Ok(())
}

/// The master keys and API keys.
fn keys(
    config: &mut Config,
    file: &mut FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    config.master_key = match (env("CONNECTOR_MASTER_KEY"), file.master_key.take()) {
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
    config.previous_master_keys = std::mem::take(&mut file.previous_master_keys)
        .into_iter()
        .map(|key| MasterKeyConfig {
            id: key.id,
            key_base64: key.key.into(),
        })
        .collect();
    config.api_keys = std::mem::take(&mut file.api_keys)
        .into_iter()
        .map(api_key)
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// TLS, plaintext, endpoints policy and the per-request bounds.
fn transport(
    config: &mut Config,
    file: &mut FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    config.tls = tls(file.tls.take(), env)?;
    if let Some(allow) = env("CONNECTOR_ALLOW_PLAINTEXT")
        .map(flag)
        .or(file.allow_plaintext)
    {
        config.allow_plaintext = allow;
    }
    if let Some(allow) = env("CONNECTOR_ALLOW_INSECURE_ENDPOINTS")
        .map(flag)
        .or(file.allow_insecure_endpoints)
    {
        config.allow_insecure_endpoints = allow;
    }
    if let Some(allow) = env("CONNECTOR_ALLOW_PRIVATE_ENDPOINTS")
        .map(flag)
        .or(file.allow_private_endpoints)
    {
        config.allow_private_endpoints = allow;
    }
    if let Some(secs) = file.provider_timeout_secs {
        config.provider_timeout = Duration::from_secs(secs.clamp(1, 600));
    }
    if let Some(secs) = file.request_timeout_secs {
        config.request_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(bytes) = file.max_request_bytes {
        config.max_request_bytes = bytes.max(4096);
    }
    Ok(())
}

/// `[tls]`, with `CONNECTOR_TLS_*` overriding it.
fn tls(
    file_tls: Option<FileTls>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TlsConfig>, ConfigError> {
    let client_ca = env("CONNECTOR_TLS_CLIENT_CA").map(PathBuf::from);
    let tls = match (
        env("CONNECTOR_TLS_CERT").map(PathBuf::from),
        env("CONNECTOR_TLS_KEY").map(PathBuf::from),
        file_tls,
    ) {
        (Some(cert), Some(key), file_tls) => Some(TlsConfig {
            cert,
            key,
            client_ca: client_ca.clone().or(file_tls.and_then(|tls| tls.client_ca)),
        }),
        (None, None, Some(file_tls)) => Some(TlsConfig {
            cert: file_tls.cert,
            key: file_tls.key,
            client_ca: client_ca.clone().or(file_tls.client_ca),
        }),
        (None, None, None) => None,
        _ => {
            return Err(ConfigError(
                "CONNECTOR_TLS_CERT and CONNECTOR_TLS_KEY go together".into(),
            ));
        }
    };
    if tls.is_none() && client_ca.is_some() {
        return Err(ConfigError(
            "CONNECTOR_TLS_CLIENT_CA needs TLS (a certificate and key) configured".into(),
        ));
    }
    Ok(tls)
}

/// Bounds on connections, streams and calls.
fn limits(limits: &mut Limits, file: &FileConfig) {
    let secs = |value: Option<u64>, min: u64, max: u64| {
        value.map(|secs| Duration::from_secs(secs.clamp(min, max)))
    };
    if let Some(streams) = file.max_concurrent_streams {
        limits.max_concurrent_streams = streams.clamp(1, 10_000);
    }
    if let Some(calls) = file.concurrency_per_connection {
        limits.concurrency_per_connection = calls.clamp(1, 10_000);
    }
    if let Some(calls) = file.max_in_flight_requests {
        limits.max_in_flight_requests = calls.clamp(1, 100_000);
    }
    if let Some(watches) = file.max_watches_per_key {
        limits.max_watches_per_key = watches.clamp(1, 1_000_000);
    }
    if let Some(watches) = file.max_watches_per_account {
        limits.max_watches_per_account = watches.clamp(1, 1_000_000);
    }
    let durations = [
        (
            &mut limits.keepalive_interval,
            secs(file.keepalive_interval_secs, 1, 3600),
        ),
        (
            &mut limits.keepalive_timeout,
            secs(file.keepalive_timeout_secs, 1, 600),
        ),
        (
            &mut limits.max_connection_age,
            secs(file.max_connection_age_secs, 1, 7 * 86_400),
        ),
        (
            &mut limits.max_connection_age_grace,
            secs(file.max_connection_age_grace_secs, 1, 86_400),
        ),
        (
            &mut limits.max_watch_duration,
            secs(file.max_watch_secs, 1, 86_400),
        ),
        (
            &mut limits.shutdown_grace,
            secs(file.shutdown_grace_secs, 1, 3600),
        ),
    ];
    for (limit, given) in durations {
        if let Some(given) = given {
            *limit = given;
        }
    }
}

/// Where browsers are sent: the public URL, the return URLs and whether the callback may
/// complete an authorization. URLs are checked now rather than when a browser arrives.
fn authorization(
    config: &mut Config,
    file: &mut FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    config.public_url = env("CONNECTOR_PUBLIC_URL").or(file.public_url.take());
    config.return_urls = std::mem::take(&mut file.return_urls);
    config.callback_completes_authorizations =
        file.callback_completes_authorizations.unwrap_or(false);
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
    Ok(())
}

/// Inactivity, the sweeper, credential checks and revocation retries.
fn lifecycle(config: &mut Config, file: &FileConfig) {
    if let Some(days) = file.inactivity_period_days {
        config.inactivity_period = Duration::from_secs(days.max(1) * 24 * 3600);
    }
    if let Some(secs) = file.sweep_interval_secs {
        config.sweep_interval = Duration::from_secs(secs.max(1));
    }
    if let Some(batch) = file.sweep_batch {
        config.sweep_batch = batch.clamp(1, 100_000);
    }
    if let Some(secs) = file.azure_key_check_interval_secs {
        config.azure_key_check_interval = Duration::from_secs(secs.min(86_400));
    }
    if let Some(attempts) = file.revocation_max_attempts {
        config.revocation_max_attempts = attempts.clamp(1, 100);
    }
    if let Some(secs) = file.revocation_initial_backoff_secs {
        config.revocation_initial_backoff = Duration::from_secs(secs.clamp(1, 86_400));
    }
    if let Some(secs) = file.revocation_max_backoff_secs {
        config.revocation_max_backoff = Duration::from_secs(secs.clamp(1, 86_400));
    }
    if let Some(secs) = file.revocation_poll_interval_secs {
        config.revocation_poll_interval = Duration::from_secs(secs.clamp(1, 3600));
    }
}

/// Metrics, logs, the console and cross-origin calls.
fn observability(
    config: &mut Config,
    file: &mut FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    config.metrics_listen = match env("CONNECTOR_METRICS_LISTEN") {
        Some(listen) => Some(listen.parse().map_err(|_| {
            ConfigError(format!(
                "CONNECTOR_METRICS_LISTEN `{listen}` is not an address:port"
            ))
        })?),
        None => file.metrics_listen,
    };
    if let Some(console) = env("CONNECTOR_CONSOLE").map(flag).or(file.console) {
        config.console_enabled = console;
    }
    let origins = env("CONNECTOR_CORS_ALLOWED_ORIGINS")
        .map(|list| {
            list.split(',')
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect()
        })
        .or(file.cors_allowed_origins.take())
        .unwrap_or_default();
    for origin in &origins {
        check_origin(origin)?;
    }
    config.cors_allowed_origins = origins;
    if let Some(format) = env("CONNECTOR_LOG_FORMAT").or(file.log_format.take()) {
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
    Ok(())
}

/// An origin is a scheme, a host and maybe a port: nothing else matches a browser's `Origin`
/// header, and `*` would let any page call with a key it got hold of.
fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(origin).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && !origin.ends_with('/')
    });
    match parsed {
        Some(_) => Ok(()),
        None => Err(ConfigError(format!(
            "cors_allowed_origins: `{origin}` is not an origin such as https://console.example.com"
        ))),
    }
}

#[cfg(test)]
mod tests;
