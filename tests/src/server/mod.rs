//! The connector-server under test, started in this process on `127.0.0.1:0` through
//! `connector_server::run`, with its configuration built from [`ServerOptions`]; and the real
//! binary as a child process ([`ServerBinary`]).

use std::{collections::BTreeSet, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::Utc;
use connector_client::ConnectorClient;
use connector_server::{
    Config,
    access::{ApiKey, Scope},
    clock::ManualClock,
    config::MasterKeyConfig,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::Status;

use crate::{azurite::Azurite, backend::Backend, postgres::fresh_postgres_database};

mod binary;
mod database;
mod options;

pub use binary::{ServerBinary, start_second_process, wait_until_serving};
pub use options::{ConfigHook, MICROSOFT_TYPES, OAuthOptions, ServerOptions};

/// The API key every test server accepts for all accounts.
pub const ADMIN_KEY: &str = "test-admin-key";
/// An API key limited to [`SCOPED_ACCOUNT`].
pub const SCOPED_KEY: &str = "test-scoped-key";
/// The only account [`SCOPED_KEY`] may use.
pub const SCOPED_ACCOUNT: &str = "scoped-account";

/// A server started in this process on `127.0.0.1:0`, with its data directory, database, clock
/// and keys. It can be stopped and started again on the same data.
#[derive(Debug)]
pub struct TestServer {
    /// The options it was started with.
    pub options: ServerOptions,
    /// Its injected clock; tests move it.
    pub clock: ManualClock,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its database URL (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    /// The master key in use (base64), when configured.
    pub master_key: Option<String>,
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), connector_server::Error>>>,
    _data: Arc<tempfile::TempDir>,
}

/// A random base64 master key.
pub fn random_master_key() -> String {
    let key: [u8; 32] = std::array::from_fn(|_| rand_byte());
    BASE64.encode(key)
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

impl TestServer {
    /// Starts a server with default options on `backend`.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(ServerOptions::new(backend)).await
    }

    /// Starts a server with `options`.
    pub async fn start_with(options: ServerOptions) -> TestServer {
        let data = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data_dir = data.path().to_owned();
        let (database_url, master_key) = match &options.share_database_of {
            Some((url, key)) => (url.clone(), key.clone()),
            None => (
                match options.backend {
                    Backend::Sqlite => connector_server::persistence::Store::sqlite_url(&data_dir),
                    Backend::Postgres => fresh_postgres_database().await,
                },
                options.configure_master_key.then(random_master_key),
            ),
        };
        let clock = options
            .clock
            .clone()
            .unwrap_or_else(|| ManualClock::new(Utc::now()));
        let mut server = TestServer {
            options,
            clock,
            data_dir,
            database_url,
            master_key,
            address: "127.0.0.1:0".parse().expect("address"),
            shutdown: None,
            task: None,
            _data: data,
        };
        server.boot().await.expect("test server starts");
        server
    }

    /// The configuration this server runs with.
    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.data_dir);
        config.database_url = Some(self.database_url.clone());
        // Many test servers share one PostgreSQL server: keep each pool small.
        config.database_max_connections = 4;
        config.clock = Arc::new(self.clock.clone());
        let azure_blob_endpoint = self
            .options
            .azure_blob_endpoint
            .clone()
            .unwrap_or_else(|| Azurite::shared().endpoint_template());
        config
            .types
            .set("azure-blob-storage", "endpoint", azure_blob_endpoint);
        config.master_key = self.master_key.clone().map(|key| MasterKeyConfig {
            id: "test-key".to_owned(),
            key_base64: key.into(),
        });
        if self.options.configure_api_keys {
            config.api_keys = vec![
                ApiKey {
                    id: "admin".to_owned(),
                    sha256: ApiKey::hash(ADMIN_KEY),
                    scope: Scope::AllAccounts,
                    capabilities: ApiKey::all_capabilities(),
                },
                ApiKey {
                    id: "scoped".to_owned(),
                    sha256: ApiKey::hash(SCOPED_KEY),
                    scope: Scope::Accounts(BTreeSet::from([SCOPED_ACCOUNT.to_owned()])),
                    capabilities: ApiKey::all_capabilities(),
                },
            ];
        }
        if let Some(bytes) = self.options.max_request_bytes {
            config.max_request_bytes = bytes;
        }
        if let Some(interval) = self.options.health_check_interval {
            config.health_check_interval = interval;
        }
        if let Some(timeout) = self.options.provider_timeout {
            config.provider_timeout = timeout;
        }
        if let Some(timeout) = self.options.request_timeout {
            config.request_timeout = timeout;
        }
        if let Some(attempts) = self.options.revocation_max_attempts {
            config.revocation_max_attempts = attempts;
        }
        // The revocation worker reads the injected clock; polling often lets it see a clock
        // the test moved without the test waiting long.
        config.revocation_poll_interval = self
            .options
            .revocation_poll_interval
            .unwrap_or(Duration::from_millis(50));
        if let Some(oauth) = &self.options.oauth {
            for (type_id, app) in &oauth.apps {
                config.set_oauth_app(type_id, app.clone());
                if MICROSOFT_TYPES.contains(type_id) {
                    config
                        .types
                        .set(type_id, "login_url", oauth.login_base.clone());
                    config
                        .types
                        .set(type_id, "graph_url", oauth.graph_base.clone());
                }
            }
            config.return_urls = oauth.return_urls.clone();
        }
        if let Some(ConfigHook(configure)) = &self.options.configure {
            configure(&mut config);
        }
        config
    }

    /// Starts the server with [`Self::config`]; an error means it refused to start.
    pub async fn boot(&mut self) -> Result<(), String> {
        self.boot_with(self.config()).await
    }

    /// Starts the server with a given configuration.
    pub async fn boot_with(&mut self, config: Config) -> Result<(), String> {
        assert!(self.task.is_none(), "server already running");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        self.address = listener.local_addr().expect("local address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let mut task = tokio::spawn(connector_server::run(listener, config, async {
            let _ = stopped.await;
        }));
        // Ready when the health service answers, or failed when `run` returned early.
        loop {
            tokio::select! {
                result = &mut task => {
                    return Err(match result {
                        Ok(Ok(())) => "server stopped right away".to_owned(),
                        Ok(Err(error)) => error.to_string(),
                        Err(panic) => format!("server panicked: {panic}"),
                    });
                }
                ready = self.health_status() => {
                    if ready.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        self.shutdown = Some(shutdown);
        self.task = Some(task);
        Ok(())
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// Stops and starts the server on the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await.expect("server restarts");
    }

    /// Options for a second server process sharing this one's database and master key.
    pub fn sharing_options(&self) -> ServerOptions {
        let mut options = self.options.clone();
        options.share_database_of = Some((self.database_url.clone(), self.master_key.clone()));
        options
    }

    /// The OAuth 2.0 redirect URI of this server.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}/oauth/callback", self.address)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A client with the admin key.
    pub async fn client(&self) -> ConnectorClient {
        self.client_with_key(ADMIN_KEY).await
    }

    /// A client with any key.
    pub async fn client_with_key(&self, key: &str) -> ConnectorClient {
        ConnectorClient::connect(self.endpoint(), key)
            .await
            .expect("connect")
    }

    /// The health status of the whole server (service "").
    pub async fn health_status(&self) -> Result<i32, Status> {
        let channel = tonic::transport::Endpoint::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        Ok(response.into_inner().status)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
