//! `[[api_keys]]` entries of the configuration file: a key's id, the SHA-256 of its secret,
//! the accounts it may act for and what it may do.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::ConfigError;
use crate::access::{ApiKey, Capability, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileApiKey {
    pub(super) id: String,
    pub(super) sha256: String,
    /// Account ids; absent or `["*"]` means every account.
    pub(super) accounts: Option<Vec<String>>,
    /// `read`, `manage`, `tokens`; absent means all three.
    pub(super) capabilities: Option<Vec<String>>,
}

/// A checked API key.
pub(super) fn api_key(key: FileApiKey) -> Result<ApiKey, ConfigError> {
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
