//! The endpoints of the other providers the emulator plays (see [`crate::Flavour`]): who signed
//! in (Dropbox's `get_current_account`, Box's `users/me`) and token revocation (Google's
//! `/revoke`, Dropbox's `/2/auth/token/revoke`). Their authorize and token legs are the shared
//! ones, `/common/oauth2/v2.0/…`, which behave as the client registration's flavour says.
//!
//! A bearer token is checked as Graph checks it (unknown, revoked, expired or of a revoked
//! grant → 401), and the answer is the provider's JSON shape, reduced to the fields a client
//! reads.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::token::{inject, revocation_failure};
use crate::model::User;
use crate::params::Params;
use crate::records::Subject;
use crate::store::{Shared, Store};

/// The user behind a valid delegated bearer token, and its grant.
fn bearer_user<'a>(store: &'a Store, headers: &HeaderMap) -> Option<(&'a User, usize)> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    let record = store.access_tokens.get(token)?;
    if record.revoked || store.now() >= record.expires_at {
        return None;
    }
    let Subject::User { grant } = record.subject else {
        return None;
    };
    if store.grant_revoked(grant) {
        return None;
    }
    Some((store.grant_user(grant)?, grant))
}

fn unauthorized(body: serde_json::Value) -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// Dropbox `POST /2/users/get_current_account`: the account id (`dbid:…`) and e-mail.
pub(super) async fn dropbox_current_account(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let store = shared.lock();
    match bearer_user(&store, &headers) {
        Some((user, _)) => axum::Json(json!({
            "account_id": format!("dbid:{}", user.object_id),
            "email": user.mail.as_deref().unwrap_or(&user.user_principal_name),
            "name": { "display_name": user.display_name },
        }))
        .into_response(),
        None => unauthorized(json!({
            "error_summary": "invalid_access_token/",
            "error": { ".tag": "invalid_access_token" },
        })),
    }
}

/// Dropbox `POST /2/auth/token/revoke`: revokes the grant behind the bearer token (its
/// refresh token and every access token issued from it).
pub(super) async fn dropbox_revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    if let Some(failure) = revocation_failure(&shared) {
        return inject(&shared, failure, None).await;
    }
    let mut store = shared.lock();
    match bearer_user(&store, &headers).map(|(_, grant)| grant) {
        Some(grant) => {
            store.revoke_grant(grant);
            axum::Json(serde_json::Value::Null).into_response()
        }
        None => unauthorized(json!({
            "error_summary": "invalid_access_token/",
            "error": { ".tag": "invalid_access_token" },
        })),
    }
}

/// Box `GET /2.0/users/me`: the user id and login.
pub(super) async fn box_me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let store = shared.lock();
    match bearer_user(&store, &headers) {
        Some((user, _)) => axum::Json(json!({
            "type": "user",
            // Box user ids are numbers written as strings.
            "id": numeric_id(&user.object_id),
            "name": user.display_name,
            "login": user.mail.as_deref().unwrap_or(&user.user_principal_name),
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"Service\", error=\"invalid_token\"",
            )],
        )
            .into_response(),
    }
}

/// A stable decimal id from an object id.
fn numeric_id(object_id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(object_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) % 100_000_000_000).to_string()
}

/// Google `POST /revoke` (`token=…`, no client authentication): a refresh token revokes its
/// whole grant; an access token only itself; an unknown token is `400 invalid_token`.
pub(super) async fn google_revoke(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if let Some(failure) = revocation_failure(&shared) {
        return inject(&shared, failure, None).await;
    }
    let token = Params::parse(&body)
        .ok()
        .and_then(|params| params.get("token").map(str::to_owned));
    let mut store = shared.lock();
    let grant = token
        .as_deref()
        .and_then(|token| store.refresh_tokens.get(token))
        .map(|refresh| refresh.grant);
    if let Some(grant) = grant {
        store.revoke_grant(grant);
        return StatusCode::OK.into_response();
    }
    if let Some(access) = token
        .as_deref()
        .and_then(|token| store.access_tokens.get_mut(token))
    {
        access.revoked = true;
        return StatusCode::OK.into_response();
    }
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": "invalid_token",
            "error_description": "Token expired or revoked",
        })),
    )
        .into_response()
}
