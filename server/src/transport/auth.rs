//! API keys. Every `ConnectorService` call carries `authorization: Bearer <key>`; the key's
//! SHA-256 is looked up among the configured hashes (keys are never stored in the clear), and
//! the caller it names is put in the request extensions for the handlers.
//!
//! Only the connector service is wrapped, so health and reflection stay open by construction.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use sha2::{Digest as _, Sha256};
use tonic::{Code, Request, Status};

use super::status::status;
use crate::domain::{
    Error,
    model::{AccountId, ConnectorName},
};

/// Which customer accounts a key may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account (an administrator or a single-tenant orchestrator).
    AllAccounts,
    /// Only these account ids.
    Accounts(BTreeSet<String>),
}

/// A configured API key: its id (for logs), the SHA-256 of the key, and its scope.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Name of the key, logged with each call; never the key itself.
    pub id: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// What it may access.
    pub scope: Scope,
}

impl ApiKey {
    /// The SHA-256 of a key, as configured.
    pub fn hash(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) key_id: String,
    scope: Scope,
}

impl Caller {
    fn may_access(&self, account: &AccountId) -> bool {
        match &self.scope {
            Scope::AllAccounts => true,
            Scope::Accounts(accounts) => accounts.contains(account.as_str()),
        }
    }

    /// A connector outside the caller's scope does not exist as far as the caller can tell.
    pub(crate) fn authorize_connector(&self, name: &ConnectorName) -> Result<(), Status> {
        if self.may_access(&name.account) {
            Ok(())
        } else {
            Err(Error::ConnectorNotFound(name.to_string()).into())
        }
    }

    /// Acting under a parent account the caller may not use is denied outright.
    pub(crate) fn authorize_parent(&self, account: &AccountId) -> Result<(), Status> {
        if self.may_access(account) {
            Ok(())
        } else {
            Err(status(
                Code::PermissionDenied,
                "ACCOUNT_ACCESS_DENIED",
                format!("this API key may not act on accounts/{account}"),
                &[("account", format!("accounts/{account}"))],
            ))
        }
    }
}

/// The caller a handler is serving; set by [`authenticate`].
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Error::Internal("request reached a handler without a caller".into()).into())
}

/// Builds the interceptor that authenticates every call by its bearer key.
pub(crate) fn authenticate(
    keys: &[ApiKey],
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
    let by_hash: Arc<HashMap<[u8; 32], ApiKey>> =
        Arc::new(keys.iter().map(|key| (key.sha256, key.clone())).collect());
    move |mut request: Request<()>| {
        let presented = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                unauthenticated(
                    "API_KEY_MISSING",
                    "missing `authorization: Bearer <api key>` metadata",
                )
            })?
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                unauthenticated(
                    "API_KEY_MISSING",
                    "the authorization metadata must be `Bearer <api key>`",
                )
            })?;
        let key = by_hash
            .get(&ApiKey::hash(presented))
            .ok_or_else(|| unauthenticated("API_KEY_INVALID", "unknown API key"))?;
        request.extensions_mut().insert(Caller {
            key_id: key.id.clone(),
            scope: key.scope.clone(),
        });
        Ok(request)
    }
}

fn unauthenticated(reason: &str, message: &str) -> Status {
    status(Code::Unauthenticated, reason, message, &[])
}
