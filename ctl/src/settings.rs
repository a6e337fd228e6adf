//! Where to connect and with which key. Each setting comes from the first of: a flag, the
//! environment (clap reads the `CONNECTORCTL_*` variables into the same fields), the config
//! file, the default. The API key itself is only ever read from `CONNECTORCTL_API_KEY` or a
//! file, never from an argument, so it does not show in `ps`.
//!
//! An endpoint written without a scheme (`127.0.0.1:50051`, grpcurl's habit) is taken as
//! `http://` on loopback, where the server serves plaintext, and as `https://` anywhere else, as
//! grpcurl does: a guess never sends the API key in the clear off the machine.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use connector_client::ConnectorClient;
use serde::Deserialize;

use crate::{cli::ConnectionArgs, failure::Failure};

/// The endpoint when nothing else names one: a server on this machine.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// The config file's keys; relative paths in it are relative to the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    endpoint: Option<String>,
    api_key_file: Option<PathBuf>,
    account: Option<String>,
    ca_cert: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// The settings in effect. `Debug` leaves the API key out.
pub(crate) struct Settings {
    endpoint: String,
    api_key: Option<String>,
    account: Option<String>,
    ca_cert: Option<PathBuf>,
    client_identity: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Resolves the settings from the flags (with their environment variables), the rest of the
    /// environment and the config file.
    pub(crate) fn resolve(args: &ConnectionArgs) -> Result<Settings, Failure> {
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => match default_config_path() {
                Some(path) if path.exists() => read_file(&path)?,
                _ => FileSettings::default(),
            },
        };
        let api_key = match (&args.api_key_file, env("CONNECTORCTL_API_KEY")) {
            (Some(path), _) => Some(read_key_file(path)?),
            (None, Some(key)) => Some(key),
            (None, None) => match env("CONNECTORCTL_API_KEY_FILE")
                .map(PathBuf::from)
                .or(file.api_key_file)
            {
                Some(path) => Some(read_key_file(&path)?),
                None => None,
            },
        };
        let client_identity = match (
            args.client_cert.clone().or(file.client_cert),
            args.client_key.clone().or(file.client_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(Failure::Usage(
                    "a client certificate needs its key: give both --client-cert and --client-key"
                        .to_owned(),
                ));
            }
        };
        Ok(Settings {
            endpoint: with_scheme(
                args.endpoint
                    .as_deref()
                    .or(file.endpoint.as_deref())
                    .unwrap_or(DEFAULT_ENDPOINT),
            ),
            api_key,
            account: args.account.clone().or(file.account),
            ca_cert: args.ca_cert.clone().or(file.ca_cert),
            client_identity,
        })
    }

    /// Connects to the server. Without an API key the calls go out without one, and the
    /// server's `API_KEY_MISSING` answer says how to give one.
    pub(crate) async fn connect(&self) -> Result<ConnectorClient, Failure> {
        let mut builder =
            ConnectorClient::builder(&self.endpoint, self.api_key.as_deref().unwrap_or_default());
        if let Some(path) = &self.ca_cert {
            builder = builder.ca_certificate_pem(read(path)?);
        }
        if let Some((cert, key)) = &self.client_identity {
            builder = builder.client_identity_pem(read(cert)?, read(key)?);
        }
        builder.connect().await.map_err(|error| match error {
            connector_client::Error::Connect(error) => Failure::Unreachable(format!(
                "cannot reach the server at {}: {}. Check the endpoint (--endpoint, CONNECTORCTL_ENDPOINT) and that the server is running, then retry",
                self.endpoint,
                causes(&error)
            )),
            error => Failure::Usage(error.to_string()),
        })
    }

    /// `accounts/{account}` of `--account` (or its environment variable or config key).
    pub(crate) fn parent(&self) -> Result<String, Failure> {
        match &self.account {
            Some(account) if account.starts_with("accounts/") => Ok(account.clone()),
            Some(account) => Ok(format!("accounts/{account}")),
            None => Err(Failure::Usage(
                "no account: give --account, CONNECTORCTL_ACCOUNT or `account` in the config file"
                    .to_owned(),
            )),
        }
    }

    /// A connector's resource name from a full name or a bare id (under the account).
    pub(crate) fn connector_name(&self, connector: &str) -> Result<String, Failure> {
        if connector.starts_with("accounts/") {
            Ok(connector.to_owned())
        } else {
            Ok(format!("{}/connectors/{connector}", self.parent()?))
        }
    }
}

/// `endpoint` with a scheme: as written when it has one; else `http://` for a loopback host and
/// `https://` for any other.
fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        return endpoint.to_owned();
    }
    let authority = endpoint.split('/').next().unwrap_or_default();
    // `[::1]:50051`, `127.0.0.1:50051`, `localhost:50051`, or a host without a port.
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
            _ => authority,
        },
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let scheme = if loopback { "http" } else { "https" };
    format!("{scheme}://{endpoint}")
}

/// An error and its causes, `: `-separated: tonic's "transport error" alone says nothing, the
/// cause ("Connection refused") says what to fix.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `$XDG_CONFIG_HOME/connectorctl/config.toml`, or under `~/.config`.
fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("connectorctl").join("config.toml"))
}

fn read_file(path: &Path) -> Result<FileSettings, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", path.display())))?;
    let mut settings: FileSettings = toml::from_str(&text)
        .map_err(|error| Failure::Usage(format!("{}: {error}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for file in [
        &mut settings.api_key_file,
        &mut settings.ca_cert,
        &mut settings.client_cert,
        &mut settings.client_key,
    ]
    .into_iter()
    .flatten()
    {
        *file = dir.join(&*file);
    }
    Ok(settings)
}

/// The API key in a file, without the line end an editor adds.
fn read_key_file(path: &Path) -> Result<String, Failure> {
    let key = String::from_utf8(read(path)?)
        .map_err(|_| Failure::Usage(format!("{} is not text", path.display())))?;
    Ok(key.trim().to_owned())
}

/// A file's bytes, or a usage error naming it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::with_scheme;

    #[test]
    fn an_endpoint_without_a_scheme_gets_one_that_keeps_the_key_safe() {
        for (written, meant) in [
            ("127.0.0.1:50051", "http://127.0.0.1:50051"),
            ("localhost:50051", "http://localhost:50051"),
            ("[::1]:50051", "http://[::1]:50051"),
            ("127.1.2.3", "http://127.1.2.3"),
            (
                "connectors.internal:50051",
                "https://connectors.internal:50051",
            ),
            ("10.0.0.5:50051", "https://10.0.0.5:50051"),
            ("[2001:db8::1]:443", "https://[2001:db8::1]:443"),
            ("http://10.0.0.5:50051", "http://10.0.0.5:50051"),
            ("https://127.0.0.1:50051", "https://127.0.0.1:50051"),
        ] {
            assert_eq!(with_scheme(written), meant, "{written}");
        }
    }
}
