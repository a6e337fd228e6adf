//! API-key authentication. Every `ConnectorService` call carries `authorization: Bearer <key>`;
//! the key's SHA-256 is looked up among the configured hashes (keys are never stored in the
//! clear), and the [`Caller`] it names is put in the request extensions for the handlers.
//!
//! Only the connector service is wrapped, so health and reflection stay open by construction.

use std::{collections::HashMap, sync::Arc};

use tonic::{Request, Status};

use crate::{
    access::{ApiKey, Caller, Capability},
    audit,
    domain::Error,
};

use super::Refusal;

/// The caller a handler is serving (set by [`authenticate`]), once it holds `capability`.
pub(crate) fn caller<T>(request: &Request<T>, capability: Capability) -> Result<Caller, Status> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Error::Internal("request reached a handler without a caller".into()))?;
    caller.require(capability)?;
    Ok(caller)
}

/// Builds the interceptor that authenticates every call by its bearer key.
pub(crate) fn authenticate(
    keys: &[ApiKey],
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
    let by_hash: Arc<HashMap<[u8; 32], ApiKey>> =
        Arc::new(keys.iter().map(|key| (key.sha256, key.clone())).collect());
    move |mut request: Request<()>| {
        let peer = request.remote_addr();
        let refuse = |refusal: Refusal, reason: &'static str| {
            audit::refused(reason, None, peer.map(|peer| peer.to_string()), "");
            Status::from(refusal)
        };
        let mut presented = request.metadata().get_all("authorization").iter();
        let first = presented
            .next()
            .ok_or_else(|| refuse(Refusal::ApiKeyMissing, "API_KEY_MISSING"))?;
        // Two keys: which one the caller meant is a guess, and proxies disagree on which wins.
        if presented.next().is_some() {
            return Err(refuse(Refusal::ApiKeyAmbiguous, "API_KEY_AMBIGUOUS"));
        }
        let presented = first
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| refuse(Refusal::ApiKeyMissing, "API_KEY_MISSING"))?;
        let key = by_hash
            .get(&ApiKey::hash(presented))
            .ok_or_else(|| refuse(Refusal::ApiKeyInvalid, "API_KEY_INVALID"))?;
        // On the call's span (see `observe`): its log line names the key.
        tracing::Span::current().record("api_key", key.id.as_str());
        request.extensions_mut().insert(Caller::new(key));
        Ok(request)
    }
}
