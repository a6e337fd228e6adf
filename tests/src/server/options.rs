//! How a test server is started: its options, a hook for any other configuration change, and
//! its OAuth 2.0 settings.

use std::{sync::Arc, time::Duration};

use connector_server::{Config, clock::ManualClock};

use crate::backend::Backend;

/// How to start a test server; defaults are sensible for most tests.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Database backend.
    pub backend: Backend,
    /// Blob endpoint template; `None` means the shared Azurite.
    pub azure_blob_endpoint: Option<String>,
    /// Configure the test API keys (else the server generates an admin key file).
    pub configure_api_keys: bool,
    /// Configure a master key explicitly (always for PostgreSQL; for SQLite `false` exercises
    /// the generated key file).
    pub configure_master_key: bool,
    /// Largest request message accepted.
    pub max_request_bytes: Option<usize>,
    /// How often health checks the database.
    pub health_check_interval: Option<Duration>,
    /// Timeout of each request to a cloud service.
    pub provider_timeout: Option<Duration>,
    /// Deadline of each RPC.
    pub request_timeout: Option<Duration>,
    /// OAuth 2.0: identity platform and Graph base URLs, app registrations, return URLs.
    pub oauth: Option<OAuthOptions>,
    /// Share another test server's database and master key (a second process of one
    /// deployment).
    pub share_database_of: Option<(String, Option<String>)>,
    /// Tries of a revocation before it is `FAILED`.
    pub revocation_max_attempts: Option<u32>,
    /// How often the revocation worker polls (default 50 ms).
    pub revocation_poll_interval: Option<Duration>,
    /// Use this clock (another server's, so one move moves both) instead of a new one.
    pub clock: Option<ManualClock>,
    /// Last changes to the configuration, for settings no other option covers.
    pub configure: Option<ConfigHook>,
}

/// A change to a test server's configuration (see [`ServerOptions::configure`]).
#[derive(Clone)]
pub struct ConfigHook(pub Arc<dyn Fn(&mut Config) + Send + Sync>);

impl ConfigHook {
    /// A hook running `change`.
    pub fn new(change: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        Self(Arc::new(change))
    }
}

impl std::fmt::Debug for ConfigHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigHook")
    }
}

/// The Microsoft OAuth 2.0 types: their endpoints are the identity platform's and Graph's.
pub const MICROSOFT_TYPES: [&str; 3] = [
    "office-365",
    "onedrive-consumer",
    "onedrive-for-business-user",
];

/// OAuth 2.0 settings of a test server.
#[derive(Clone)]
pub struct OAuthOptions {
    /// Identity platform base URL (the emulator's).
    pub login_base: String,
    /// Graph base URL (the emulator's).
    pub graph_base: String,
    /// App registrations, by connector type id.
    pub apps: Vec<(&'static str, connector_server::config::OAuthAppConfig)>,
    /// Allowed return URLs.
    pub return_urls: Vec<String>,
}

impl std::fmt::Debug for OAuthOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthOptions")
            .field("login_base", &self.login_base)
            .field("return_urls", &self.return_urls)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    /// Defaults for a backend.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            azure_blob_endpoint: None,
            configure_api_keys: true,
            configure_master_key: backend == Backend::Postgres,
            max_request_bytes: None,
            health_check_interval: None,
            provider_timeout: None,
            request_timeout: None,
            oauth: None,
            share_database_of: None,
            revocation_max_attempts: None,
            revocation_poll_interval: None,
            clock: None,
            configure: None,
        }
    }
}
