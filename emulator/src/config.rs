//! The emulator's start-up configuration: what the binary reads from a TOML or JSON file, and
//! what [`crate::EmulatorBuilder`] fills in for a test.
//!
//! ```toml
//! listen = "127.0.0.1:8400"            # default 127.0.0.1:0 (any free port)
//! default_fixtures = true              # the fixtures of `identity_emulator::fixtures`
//! redirect_uris = ["http://127.0.0.1:8080/oauth/callback"]   # added to the default client
//! access_token_lifetime_secs = 3600
//! refresh_token_lifetime_secs = 7776000
//! code_lifetime_secs = 600
//!
//! [[clients]]
//! client_id = "my-app"
//! client_secret = "s3cret"
//! redirect_uris = ["http://127.0.0.1:9000/cb"]
//!
//! [[tenants]]
//! tenant_id = "11111111-2222-3333-4444-555555555555"
//! default_domain = "northwind.onmicrosoft.com"
//! display_name = "Northwind"
//!
//! [[users]]
//! kind = "work"                        # or "personal" (tenant_id = the consumer tenant)
//! tenant_id = "11111111-2222-3333-4444-555555555555"
//! object_id = "66666666-7777-8888-9999-000000000000"
//! user_principal_name = "nancy@northwind.onmicrosoft.com"
//! mail = "nancy@northwind.onmicrosoft.com"
//! display_name = "Nancy Davolio"
//!
//! [[admin_consents]]
//! tenant_id = "11111111-2222-3333-4444-555555555555"
//! client_id = "my-app"
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::knobs::Lifetimes;
use crate::model::{Client, Tenant, User};

/// An administrator's consent recorded at start-up (as if the admin consent page had been
/// accepted for `tenant_id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminConsent {
    /// The consenting tenant (id or default domain).
    pub tenant_id: String,
    /// The client consented to.
    pub client_id: String,
}

/// Everything the emulator starts with; see the module documentation for the file format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free one. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Load [`crate::fixtures`] before the entries below. Default `true`.
    pub default_fixtures: bool,
    /// Redirect URIs added to the default client ([`crate::fixtures::CLIENT_ID`]).
    pub redirect_uris: Vec<String>,
    /// More clients (a client with a fixture's id replaces it).
    pub clients: Vec<Client>,
    /// More tenants.
    pub tenants: Vec<Tenant>,
    /// More users (work users' tenants must be known).
    pub users: Vec<User>,
    /// Admin consents granted from the start.
    pub admin_consents: Vec<AdminConsent>,
    /// Access token lifetime in seconds. Default 3600.
    pub access_token_lifetime_secs: u64,
    /// Refresh token lifetime in seconds. Default 90 days.
    pub refresh_token_lifetime_secs: u64,
    /// Authorization code lifetime in seconds. Default 600.
    pub code_lifetime_secs: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        let lifetimes = Lifetimes::default();
        EmulatorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            default_fixtures: true,
            redirect_uris: Vec::new(),
            clients: Vec::new(),
            tenants: Vec::new(),
            users: Vec::new(),
            admin_consents: Vec::new(),
            access_token_lifetime_secs: lifetimes.access_token.as_secs(),
            refresh_token_lifetime_secs: lifetimes.refresh_token.as_secs(),
            code_lifetime_secs: lifetimes.authorization_code.as_secs(),
        }
    }
}

/// A configuration file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON for [`EmulatorConfig`].
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

impl EmulatorConfig {
    /// Reads a configuration file: JSON when its name ends in `.json`, TOML otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<EmulatorConfig, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|ext| ext == "json") {
            serde_json::from_str(&text).map_err(|error| error.to_string())
        } else {
            toml::from_str(&text).map_err(|error| error.to_string())
        };
        parsed.map_err(|message| ConfigError::Parse {
            path: shown,
            message,
        })
    }

    /// The lifetimes the configuration asks for.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            access_token: Duration::from_secs(self.access_token_lifetime_secs),
            refresh_token: Duration::from_secs(self.refresh_token_lifetime_secs),
            authorization_code: Duration::from_secs(self.code_lifetime_secs),
        }
    }
}
