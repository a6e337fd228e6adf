//! Connector Service: owns the links ("connectors") between customer accounts and their cloud
//! storage accounts, and serves them over gRPC.
//!
//! The library does the work and the `connector-server` binary is thin: it reads the
//! configuration, binds a socket and calls [`run`]. Tests call [`run`] the same way on
//! `127.0.0.1:0` with an injected clock.
//!
//! Layers, with dependencies pointing one way: `transport` (tonic) → `domain` (lifecycle rules)
//! → `providers` (cloud services), `persistence` (SeaORM) and `crypto` (sealing).

#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod clock;
pub mod config;
pub mod connector_types;
pub mod crypto;
pub mod domain;
mod error;
mod key_files;
mod measured;
pub mod metrics;
pub mod persistence;
pub mod providers;
mod registry;
pub mod transport;

use std::{future::Future, path::Path, sync::Arc};

use tokio::net::TcpListener;

pub use config::Config;

pub use error::Error;
pub use key_files::{ADMIN_KEY_FILE, MASTER_KEY_FILE};

use crate::{error::io_error, key_files::KeyFiles, persistence::Store, transport::PageTokens};

/// Seals every stored secret again under the current master key (`connector-server rewrap`),
/// `batch` rows per transaction, online: servers sharing the database keep running. Afterwards
/// previous master keys can be removed from the configuration.
pub async fn rewrap(config: &Config, batch: u64) -> Result<persistence::RewrapReport, Error> {
    let database_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&config.data_dir));
    let backend = persistence::backend_of(&database_url);
    let sealer = key_files::sealer(config, backend, KeyFiles::Create)?;
    let store = Store::open_with(
        &database_url,
        &persistence::PoolSettings {
            max_connections: config.database_max_connections,
            acquire_timeout: config.database_acquire_timeout,
            statement_timeout: config.database_statement_timeout,
            row_cache_ttl: config.row_cache_ttl,
        },
    )
    .await?;
    store
        .verify_master_keys(&sealer, config.clock.now().timestamp_micros())
        .await?;
    let secret =
        |connector_id: &str, field: &str| domain::rows::stored_secret_context(connector_id, field);
    let attempt = |state_hash: &str| domain::oauth::attempt_context(state_hash);
    Ok(store
        .rewrap(
            &sealer,
            batch.max(1),
            &persistence::RewrapContexts {
                secret: &secret,
                attempt: &attempt,
            },
        )
        .await?)
}

/// Where the server listens: a socket the caller bound (tests bind `127.0.0.1:0`), or an
/// address start-up binds once everything that can refuse a start has been checked, so a
/// refused start never accepts a connection.
#[derive(Debug)]
pub enum Listen {
    /// Already bound.
    Bound(TcpListener),
    /// Bound by start-up, after its checks.
    Address(std::net::SocketAddr),
}

impl Listen {
    fn address(&self) -> Result<std::net::SocketAddr, Error> {
        match self {
            Listen::Bound(listener) => listener
                .local_addr()
                .map_err(io_error("cannot read the listen address")),
            Listen::Address(address) => Ok(*address),
        }
    }

    async fn bind(self) -> Result<TcpListener, Error> {
        match self {
            Listen::Bound(listener) => Ok(listener),
            Listen::Address(address) => TcpListener::bind(address)
                .await
                .map_err(io_error(format!("cannot listen on {address}"))),
        }
    }
}

/// Runs the server on `listener` until `shutdown` resolves, then drains in-flight calls.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    start(Listen::Bound(listener), config, shutdown).await
}

/// Starts the server and runs it until `shutdown` resolves, then drains in-flight calls.
///
/// The order keeps refusals ahead of the port: the configuration, TLS, key files and the
/// database (with the master keys checked against it) come first, and only then is `listen`
/// bound. The one exception is a database that cannot be reached yet: the port is bound to
/// report health `NOT_SERVING` while start-up retries for `database_startup_wait`.
pub async fn start(
    listen: Listen,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    key_files::create_private_dir(&config.data_dir)?;
    let address = listen.address()?;
    let tls = server_tls(&config, address)?;
    let database_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&config.data_dir));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.provider_timeout)
        .build()
        .map_err(|error| config::ConfigError(format!("cannot build the HTTP client: {error}")))?;
    let metrics = metrics::Metrics::new();
    let providers = registry::providers(&config, &http, &metrics)?;
    metrics.zero_connector_types(&providers.catalogue);
    let backend = persistence::backend_of(&database_url);
    let sealer = Arc::new(key_files::sealer(&config, backend, KeyFiles::Create)?);
    let api_keys = key_files::api_keys(&config, backend, KeyFiles::Create)?;

    let public_url = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if tls.is_some() => format!("https://{address}"),
        None => format!("http://{address}"),
    };
    // The console completes its own authorizations: its page is a return URL.
    let mut config = config;
    if config.console_enabled {
        config
            .return_urls
            .push(format!("{public_url}{}", transport::CONSOLE_PATH));
    }
    let oauth = registry::oauth_settings(&config, providers.oauth, &public_url);

    let (store, listen) = open_database(&config, &database_url, listen, tls.clone()).await?;
    store
        .verify_master_keys(&sealer, config.clock.now().timestamp_micros())
        .await?;
    tracing::info!(backend = ?store.backend(), master_key = sealer.current_key_id(), "database ready");
    let listener = listen.bind().await?;
    if config.console_enabled {
        tracing::info!(url = %format!("{public_url}{}/", transport::CONSOLE_PATH), "the console is served here");
    }

    let services = domain::compose(domain::Dependencies {
        store: store.clone(),
        sealer: sealer.clone(),
        catalogue: providers.catalogue,
        credential_providers: providers.credentials,
        oauth,
        lifecycle: domain::LifecycleSettings {
            inactivity_period: chrono::Duration::from_std(config.inactivity_period)
                .unwrap_or(chrono::Duration::days(90)),
            revocation: domain::RevocationSettings {
                max_attempts: config.revocation_max_attempts.max(1),
                initial_backoff: config.revocation_initial_backoff,
                max_backoff: config
                    .revocation_max_backoff
                    .max(config.revocation_initial_backoff),
                // A try lasts at most the provider timeout; the lease leaves a wide margin.
                lease: config
                    .provider_timeout
                    .saturating_mul(2)
                    .saturating_add(std::time::Duration::from_secs(60)),
                ..domain::RevocationSettings::default()
            },
            credential_check_interval: chrono::Duration::from_std(config.azure_key_check_interval)
                .unwrap_or(chrono::Duration::minutes(15)),
        },
        clock: config.clock.clone(),
        observer: metrics.clone(),
    });
    let sweeper = tokio::spawn(sweep_inactive_connectors(
        services.lifecycle.clone(),
        config.sweep_interval,
        config.sweep_batch,
    ));

    let metrics_server = match config.metrics_listen {
        Some(metrics_address) => {
            let listener = TcpListener::bind(metrics_address)
                .await
                .map_err(io_error(format!(
                    "cannot listen for metrics on {metrics_address}"
                )))?;
            if let Ok(bound) = listener.local_addr() {
                tracing::info!(address = %bound, "serving Prometheus metrics at /metrics");
            }
            Some(tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
                store.clone(),
                config.clock.clone(),
            )))
        }
        None => None,
    };

    let revoker = tokio::spawn(revoke_queued_tokens(
        services.revocations,
        config.revocation_poll_interval,
    ));

    tracing::info!(
        %address,
        tls = tls.is_some(),
        mtls = config.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some()),
        "serving gRPC"
    );
    let served = transport::serve(
        listener,
        transport::Serving {
            lifecycle: services.lifecycle,
            authorizations: services.authorizations,
            access: services.access,
            health: services.health,
            events: services.events,
            page_tokens: PageTokens::new(sealer),
            api_keys,
            request_timeout: config.request_timeout,
            max_request_bytes: config.max_request_bytes,
            health_check_interval: config.health_check_interval,
            event_poll_interval: config.event_poll_interval,
            limits: config.limits,
            console: config.console_enabled,
            cors_allowed_origins: config.cors_allowed_origins.clone(),
            metrics,
            tls,
        },
        shutdown,
    )
    .await;
    sweeper.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    // A try cut off here stays claimed until its lease ends, then any process retries it.
    revoker.abort();
    served?;
    tracing::info!("server stopped");
    Ok(())
}

/// Opens the database. One that cannot be reached yet (a replica started beside a restarting
/// PostgreSQL) is retried with backoff for `database_startup_wait`, while the port reports
/// health `NOT_SERVING`; then start-up gives up. Any other failure refuses the start at once.
async fn open_database(
    config: &Config,
    url: &str,
    listen: Listen,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Result<(Store, Listen), Error> {
    let settings = persistence::PoolSettings {
        max_connections: config.database_max_connections,
        acquire_timeout: config.database_acquire_timeout,
        statement_timeout: config.database_statement_timeout,
        row_cache_ttl: config.row_cache_ttl,
    };
    let message = match Store::open_with(url, &settings).await {
        Ok(store) => return Ok((store, listen)),
        Err(persistence::Error::Unavailable(message))
            if !config.database_startup_wait.is_zero() =>
        {
            message
        }
        Err(error) => return Err(error.into()),
    };
    let wait = config.database_startup_wait;
    tracing::warn!(%message, ?wait, "the database cannot be reached; reporting NOT_SERVING while retrying");
    let retries = async {
        let deadline = tokio::time::Instant::now() + wait;
        let mut backoff = std::time::Duration::from_millis(500);
        loop {
            tokio::time::sleep(backoff).await;
            match Store::open_with(url, &settings).await {
                Ok(store) => return Ok(store),
                Err(persistence::Error::Unavailable(message))
                    if tokio::time::Instant::now() + backoff < deadline =>
                {
                    tracing::warn!(%message, retry_in = ?backoff, "the database still cannot be reached");
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                }
                Err(error) => return Err(Error::from(error)),
            }
        }
    };
    let listener = listen.bind().await?;
    let (listener, store) = transport::waiting::until(listener, tls, retries).await?;
    Ok((store?, Listen::Bound(listener)))
}

/// The TLS settings of the listening port, read from the configured PEM files. Without TLS,
/// only a loopback address is served unless `allow_plaintext` says a mesh or proxy encrypts
/// the traffic: API keys, account keys and access tokens cross this port.
fn server_tls(
    config: &Config,
    address: std::net::SocketAddr,
) -> Result<Option<tonic::transport::ServerTlsConfig>, Error> {
    install_crypto_provider();
    let Some(tls) = &config.tls else {
        if !address.ip().is_loopback() && !config.allow_plaintext {
            return Err(config::ConfigError(format!(
                "refusing to listen on {address} without TLS: API keys, account keys and access \
                 tokens would cross the network in the clear. Configure [tls] cert and key \
                 (CONNECTOR_TLS_CERT, CONNECTOR_TLS_KEY), or set allow_plaintext = true \
                 (CONNECTOR_ALLOW_PLAINTEXT=true) behind a mesh or proxy that terminates TLS"
            ))
            .into());
        }
        return Ok(None);
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(io_error(format!("cannot read {}", path.display())))
    };
    let mut server = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(read(&tls.cert)?, read(&tls.key)?),
    );
    if let Some(client_ca) = &tls.client_ca {
        server = server.client_ca_root(tonic::transport::Certificate::from_pem(read(client_ca)?));
    }
    Ok(Some(server))
}

/// Makes AWS-LC rustls's process-wide cryptography, as reqwest uses it. The dependency graph
/// enables both of rustls's providers (ring comes with the database drivers), and then rustls
/// cannot choose one by itself for tonic's TLS. A provider installed earlier (by an embedding
/// program) is kept.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The inactivity sweeper: at start-up and then every `interval`, deauthorizes the connectors
/// past their deadline. Reads never wait for it (a connector past its deadline already reads as
/// deauthorized); it makes the state durable and erases the secrets. (The domain reports each
/// sweep to its observer, the metrics.)
async fn sweep_inactive_connectors(
    lifecycle: domain::Lifecycle,
    interval: std::time::Duration,
    batch: u64,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match lifecycle.sweep_inactive(batch).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "deauthorized connectors for inactivity"),
            Err(error) => {
                tracing::warn!(%error, "inactivity sweep failed; retrying at the next interval")
            }
        }
    }
}

/// The revocation outbox worker: at start-up, whenever this process queues a revocation, and
/// every `interval` (for tries that came due, and for revocations other processes queued),
/// carries out the revocations that are due.
async fn revoke_queued_tokens(revocations: domain::Revocations, interval: std::time::Duration) {
    let wakeup = revocations.wakeup();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = wakeup.notified() => {}
        }
        if let Err(error) = revocations.process().await {
            tracing::warn!(%error, "revocation worker failed; retrying at the next interval");
        }
    }
}

/// Everything start-up validates, without opening the database or writing a file: the provider
/// endpoints, TLS (the certificate and key are read and built into a TLS configuration), the
/// master keys, the API keys and the OAuth 2.0 registrations. `listen` is where the server
/// would listen (plaintext is refused off loopback). A description of what was checked.
pub fn check_config(config: &Config, listen: std::net::SocketAddr) -> Result<String, Error> {
    let database_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&config.data_dir));
    let providers = registry::providers(config, &reqwest::Client::new(), &metrics::Metrics::new())?;
    if let Some(tls) = server_tls(config, listen)? {
        tonic::transport::Server::builder()
            .tls_config(tls)
            .map_err(|error| {
                config::ConfigError(format!(
                    "[tls] cert and key do not make a TLS configuration: {error}"
                ))
            })?;
    }
    let backend = persistence::backend_of(&database_url);
    let sealer = key_files::sealer(config, backend, KeyFiles::ReadOnly)?;
    let api_keys = key_files::api_keys(config, backend, KeyFiles::ReadOnly)?;
    let mut oauth_types: Vec<&str> = providers.oauth.keys().map(|id| id.as_str()).collect();
    oauth_types.sort_unstable();
    Ok(format!(
        "configuration OK: {backend:?} database, listening on {listen} ({}), master key `{}`, {} API key(s), OAuth 2.0 types: {}, metrics: {}, logs: {}",
        if config.tls.is_some() {
            "TLS"
        } else {
            "plaintext"
        },
        sealer.current_key_id(),
        api_keys.len(),
        if oauth_types.is_empty() {
            "none".to_owned()
        } else {
            oauth_types.join(", ")
        },
        config
            .metrics_listen
            .map_or("off".to_owned(), |address| format!(
                "http://{address}/metrics"
            )),
        match config.log_format {
            config::LogFormat::Text => "text",
            config::LogFormat::Json => "json",
        },
    ))
}
