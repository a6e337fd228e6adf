//! Who may do what, on which customer accounts. An API key is configured as a SHA-256 hash with
//! a scope (all accounts, or a list of them) and capabilities (what kinds of calls it may make);
//! the transport layer authenticates a call to a [`Caller`] and asks it before touching an
//! account's connectors.
//!
//! A missing capability is denied before anything else is looked at. Outside the scope, a
//! connector does not exist (`NOT_FOUND`, so names cannot be probed) and acting under the
//! parent account is denied.

use std::collections::BTreeSet;

use sha2::{Digest as _, Sha256};

use crate::{
    domain::{
        Error,
        model::{AccountId, ConnectorName},
    },
    transport::Refusal,
};

/// Which customer accounts a key may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account (an administrator or a single-tenant orchestrator).
    AllAccounts,
    /// Only these account ids.
    Accounts(BTreeSet<String>),
}

/// A kind of call a key may make. Least privilege per caller: an orchestrator `read` and
/// `manage`, a data-moving worker `tokens` (and `read`), an auditor `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `GetConnector`, `ListConnectors`, `ListConnectorEvents`, `WatchConnectorEvents`.
    Read,
    /// `CreateConnector`, `StartAuthorization`, `StartReauthorization`,
    /// `CompleteAuthorization`, `UpdateConnector`, `ReauthorizeConnector`, `DeleteConnector`,
    /// `DeleteAccount`.
    Manage,
    /// `GetAccessToken`, `RecordTransfer`: the credentials that move data.
    Tokens,
    /// `RevealConnectorCredentials`: a password connector's stored credentials. Only keys that
    /// list it have it (and the generated admin key).
    Reveal,
}

impl Capability {
    /// Every capability (the generated admin key's).
    pub const ALL: [Capability; 4] = [
        Capability::Read,
        Capability::Manage,
        Capability::Tokens,
        Capability::Reveal,
    ];

    /// A configured key's capabilities when it lists none: everything but `reveal`, which
    /// hands out long-lived passwords and must be asked for by name.
    pub const DEFAULT: [Capability; 3] = [Capability::Read, Capability::Manage, Capability::Tokens];

    /// The name used in configuration and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Read => "read",
            Capability::Manage => "manage",
            Capability::Tokens => "tokens",
            Capability::Reveal => "reveal",
        }
    }

    /// A capability by its configuration name.
    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL
            .into_iter()
            .find(|capability| capability.as_str() == name)
    }
}

/// A configured API key: its id (for logs), the SHA-256 of the key, its scope and capabilities.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Name of the key, logged with each call; never the key itself.
    pub id: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// What it may access.
    pub scope: Scope,
    /// What kinds of calls it may make.
    pub capabilities: BTreeSet<Capability>,
}

impl ApiKey {
    /// A key with every capability, as keys configured without a `capabilities` list are.
    pub fn all_capabilities() -> BTreeSet<Capability> {
        Capability::ALL.into_iter().collect()
    }

    /// The SHA-256 of a key, as configured.
    pub fn hash(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The id of the key it used.
    pub key_id: String,
    scope: Scope,
    capabilities: BTreeSet<Capability>,
}

impl Caller {
    /// The caller holding `key`.
    pub fn new(key: &ApiKey) -> Self {
        Self {
            key_id: key.id.clone(),
            scope: key.scope.clone(),
            capabilities: key.capabilities.clone(),
        }
    }

    /// Refuses a call the key has no capability for.
    pub fn require(&self, capability: Capability) -> Result<(), Refusal> {
        if self.capabilities.contains(&capability) {
            Ok(())
        } else {
            crate::audit::refused(
                "CAPABILITY_MISSING",
                Some(&self.key_id),
                None,
                capability.as_str(),
            );
            Err(Refusal::CapabilityMissing(capability.as_str()))
        }
    }

    fn may_access(&self, account: &AccountId) -> bool {
        match &self.scope {
            Scope::AllAccounts => true,
            Scope::Accounts(accounts) => accounts.contains(account.as_str()),
        }
    }

    /// A connector outside the caller's scope does not exist as far as the caller can tell.
    pub fn authorize_connector(&self, name: &ConnectorName) -> Result<(), Refusal> {
        if self.may_access(&name.account) {
            Ok(())
        } else {
            crate::audit::refused("OUTSIDE_SCOPE", Some(&self.key_id), None, &name.to_string());
            Err(Error::ConnectorNotFound(name.to_string()).into())
        }
    }

    /// Acting under a parent account outside the caller's scope is denied outright.
    pub fn authorize_parent(&self, account: &AccountId) -> Result<(), Refusal> {
        if self.may_access(account) {
            Ok(())
        } else {
            crate::audit::refused(
                "ACCOUNT_ACCESS_DENIED",
                Some(&self.key_id),
                None,
                &format!("accounts/{account}"),
            );
            Err(Refusal::AccountAccessDenied(account.clone()))
        }
    }
}
